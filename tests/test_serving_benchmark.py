"""The serving benchmark (``tools/serving_bench/``): its parsing and figures, fast; and one short real run, slow."""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from conftest import TEMPLATE, Steps

from tools.serving_bench import common, envs, load, logcost, markdown, peers, procs, report, run, servers

# wrk 4.1's output for a run with the benchmark's script: its own report, then the line the script's done() prints.
WRK_OUTPUT = """Running 2s test @ http://127.0.0.1:40123/predict
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.08ms  512.28us   7.08ms   92.43%
    Req/Sec     7.75k   114.22     8.32k    84.31%
  Latency Distribution
     50%    1.94ms
     75%    1.98ms
     90%    2.07ms
     99%    3.95ms
  15500 requests in 2.00s, 3.94MB read
  Non-2xx or 3xx responses: 3
Requests/sec:   7750.00
Transfer/sec:      1.97MB
SERVING_BENCHMARK_SUMMARY {"requests": 15500, "duration_us": 2000000, "bytes": 4131000, "errors": {"connect": 0, \
"read": 1, "write": 0, "timeout": 2, "status": 3}, "latency_us": {"mean": 2080.4, "max": 7080.0, "p50": 1940.0, \
"p90": 2070.0, "p99": 3950.0, "p999": 6100.0}}
"""


def test_parse_wrk_reads_the_summary_line() -> None:
    figures = load.parse_wrk(WRK_OUTPUT)
    assert figures["requests"] == 15500
    assert figures["seconds"] == 2.0
    assert figures["throughput_rps"] == 7750.0
    assert figures["latency_ms"] == {"mean": 2.08, "max": 7.08, "p50": 1.94, "p90": 2.07, "p99": 3.95, "p999": 6.1}
    assert figures["non_2xx"] == 3
    assert figures["socket_errors"] == 3
    assert figures["errors"]["total"] == 6


def test_parse_wrk_without_the_summary_line_fails() -> None:
    without = "\n".join(line for line in WRK_OUTPUT.splitlines() if not line.startswith(load.SUMMARY_MARK))
    with pytest.raises(ValueError, match="no summary line"):
        load.parse_wrk(without)


def test_lua_script_quotes_any_body() -> None:
    body = '{"x": "]]", "y": "]=]"}'
    script = load.lua_script("/predict", body)
    assert f"wrk.body = [==[{body}]==]" in script
    assert 'wrk.path = "/predict"' in script
    assert "done = function(summary, latency, requests)" in script


def test_parse_stat_handles_any_command_name() -> None:
    # Fields of proc(5): pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime
    # stime cutime cstime ...; the name holds spaces and parentheses.
    text = "4242 (my (odd) name) S 17 4242 4242 0 -1 4194560 9264 0 11 0 444 96 7 3 20 0 7 0 1029558 376725504 16930"
    assert procs.parse_stat(text) == {"ppid": 17, "pgrp": 4242, "utime": 444, "stime": 96, "cutime": 7, "cstime": 3}


def test_parse_status_reads_memory_and_threads() -> None:
    text = "Name:\tpython\nVmHWM:\t   70100 kB\nVmRSS:\t   67948 kB\nThreads:\t7\n"
    assert procs.parse_status(text) == {"VmRSS": 67948, "VmHWM": 70100, "Threads": 7}
    assert procs.parse_status("Name:\tzombie\nState:\tZ (zombie)\n") == {"VmRSS": 0, "VmHWM": 0, "Threads": 0}


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_process_tree_figures_of_this_process() -> None:
    deadline = time.process_time() + 0.05
    while time.process_time() < deadline:  # burn a little CPU so the tick counters move
        pass
    assert procs.tree_cpu_seconds(os.getpid()) > 0
    memory = procs.tree_memory(os.getpid())
    assert memory["rss_mb"] > 1
    assert memory["processes"] >= 1
    assert memory["threads"] >= 1


def test_disk_usage_counts_a_hard_linked_file_once(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"x" * 100_000)
    alone = procs.disk_usage(tmp_path)
    os.link(tmp_path / "a", tmp_path / "b")
    assert procs.disk_usage(tmp_path) == alone
    assert alone >= 100_000


def test_dataset_is_deterministic(tmp_path: Path) -> None:
    first = common.write_dataset(tmp_path / "a.csv", rows=200, seed=3).read_bytes()
    assert common.write_dataset(tmp_path / "b.csv", rows=200, seed=3).read_bytes() == first
    header = first.decode().splitlines()[0].split(",")
    assert header == [*(f"f{i:02d}" for i in range(common.FEATURES)), common.TARGET_COLUMN]
    rows = common.sample_rows(tmp_path / "a.csv", 2)
    assert len(rows) == 2
    assert len(rows[0]) == common.FEATURES
    labels = {line.rsplit(",", 1)[1] for line in first.decode().splitlines()[1:]}
    assert labels == {"0", "1"}


def test_tensor_request_follows_the_onnx_inputs() -> None:
    rows = [{"a": 1.0, "b": 2.0}, {"a": 3.0, "b": 4.0}]
    per_feature = [{"name": "a", "shape": [None, 1]}, {"name": "b", "shape": [None, 1]}]
    assert servers.tensor_request(rows, per_feature, ["a", "b"]) == {
        "inputs": {"a": [[1.0], [3.0]], "b": [[2.0], [4.0]]}
    }
    packed = [{"name": "__numeric__", "shape": [None, 2]}]
    assert servers.tensor_request(rows, packed, ["b", "a"]) == {"inputs": {"__numeric__": [[2.0, 1.0], [4.0, 3.0]]}}
    with pytest.raises(common.StepFailed, match="cannot fill"):
        servers.tensor_request(rows, [{"name": "other", "shape": [None, 5]}], ["a", "b"])


def _log_figures(off_rps: float, on_rps: float) -> dict[str, Any]:
    def side(rps: float, cpu: float) -> dict[str, Any]:
        load = {"requests": int(rps * 10), "seconds": 10.0, "cpu_seconds": cpu * rps * 10 / 1e6}
        return {**load, "throughput_rps": rps, "latency_ms": {"p50": 0.5, "p99": 1.0}, "errors": {"total": 0}}

    off = [side(off_rps, 30.0), side(off_rps, 30.0)]
    on = [side(on_rps, 31.0), side(on_rps, 31.0)]
    ratio = on_rps / off_rps
    return {
        "sample": 0.1,
        "rounds": 2,
        "seconds_per_run": 10,
        "off": logcost.loads_summary(off),
        "on": logcost.loads_summary(on),
        "throughput_ratio": ratio,
        "overhead_pct": round((1 - ratio) * 100, 2),
        "round_ratios": [ratio, ratio],
        "throughput_ratio_all_rounds": ratio,
        "log": {
            "files": 1,
            "lines": 6_000,
            "bytes": 2_400_000,
            "requests": 60_000,
            "share_logged": 0.1,
            "dropped": 0,
            "write_errors": 0,
        },
        "stopped_cleanly": True,
    }


def _server(
    title: str, group: str, rps: float, cpu: float, p99: float, cold: float, rss: float, env: float
) -> dict[str, Any]:
    return {
        "title": title,
        "group": group,
        "processes": 1,
        "cold_start_s": cold,
        "idle_rss_mb": rss,
        "runtime_env_mb": env,
        "runtime_env": {"packages": 8, "from": "= base"},
        "stopped_cleanly": True,
        "load": {
            "throughput_rps": rps,
            "cpu_us_per_request": cpu,
            "latency_ms": {"p50": p99 / 2, "p99": p99},
            "errors": {"total": 0},
            "non_2xx": 0,
        },
    }


def _figures(
    ours_rps: float = 30_000,
    cpu_us: float = 30.0,
    p99: float = 1.5,
    logged_rps: float = 29_700,
    asgi_rps: float = 12_000,
    peers: bool = True,
) -> dict[str, Any]:
    measured = {
        "ours": _server("`pkg serve`", "ours", ours_rps, cpu_us, p99, 0.2, 60.0, 150.0),
        "uvicorn": _server("uvicorn + ASGI", "asgi", asgi_rps, 60.0, 3.0, 0.4, 70.0, 152.0),
        "granian": _server("granian + ASGI", "asgi", asgi_rps * 0.9, 55.0, 2.5, 0.5, 75.0, 160.0),
        "mlflow": _server("`mlflow models serve`", "peer", 1_000, 1_000.0, 100.0, 4.0, 480.0, 800.0),
        "kserve": _server("KServe ModelServer", "peer", 1_500, 500.0, 50.0, 3.0, 300.0, 380.0),
        "mlserver": _server("MLServer", "peer", 600, 900.0, 40.0, 20.0, 250.0, 370.0),
    }
    if not peers:
        del measured["kserve"], measured["mlserver"]
    same = [("1", [0.25, 0.75])]
    figures: dict[str, Any] = {
        "servers": measured,
        "settings": {"connections": 16, "duration": 10, "warmup": 2, "starts": 3},
        "model": {"features": 30, "family": "linear", "task": "classification"},
        "machine": {"cpus": 2, "cpu": "test"},
        "load_average": {"before": 0.5, "after": 1.0},
        "date": "2026-01-01T00:00:00+00:00",
        "parity": {name: report.parity(same, same) for name in measured if name != "ours"},
        "prediction_log": _log_figures(ours_rps, logged_rps),
    }
    figures["ratios"] = report.all_ratios(measured)
    figures["targets"] = report.judge(figures)
    return figures


def test_targets_are_judged_against_the_issues() -> None:
    met = _figures()
    assert met["ratios"]["mlflow"]["throughput"] == 30.0
    assert met["ratios"]["mlflow"]["cold_start"] == 20.0
    assert met["ratios"]["best_peer"]["throughput"] == 20.0  # against KServe's 1,500
    assert met["ratios"]["best_peer"]["which"]["throughput"] == "kserve"
    assert met["ratios"]["best_peer"]["which"]["latency_p99"] == "mlserver"
    assert met["ratios"]["best_peer"]["which"]["cold_start"] == "kserve"
    assert met["ratios"]["best_asgi"]["throughput"] == 2.5  # against uvicorn's 12,000
    assert met["ratios"]["best_asgi"]["which"]["latency_p99"] == "granian"
    assert all(t["met"] for t in met["targets"]), met["targets"]
    assert met["prediction_log"]["overhead_pct"] == 1.0
    missed = _figures(ours_rps=15_000, cpu_us=41.0, p99=2.5, logged_rps=14_250)  # 5 % lost: not under 5 %
    assert {t["name"] for t in missed["targets"] if not t["met"]} == {
        "throughput",
        "throughput_peers",
        "http_layer",
        "cpu_per_request",
        "latency_p99",
        "prediction_log",
    }


def test_targets_of_servers_not_run_are_not_measured() -> None:
    figures = _figures(peers=False)
    assert figures["ratios"]["best_peer"] is None  # "the best of the three" needs the three
    judged = {t["name"]: t for t in figures["targets"]}
    assert judged["throughput_peers"]["met"] is None
    assert judged["throughput_peers"]["value"] is None
    assert judged["throughput"]["met"] is True
    del figures["servers"]["uvicorn"], figures["servers"]["granian"]
    figures["ratios"] = report.all_ratios(figures["servers"])
    assert {t["name"] for t in report.judge(figures) if t["met"] is None} == {"throughput_peers", "http_layer"}


def test_parity_needs_the_same_labels_and_probabilities() -> None:
    same = report.parity([("a", [0.1, 0.9]), ("b", [0.8, 0.2])], [("a", [0.1, 0.9]), ("b", [0.8, 0.2])])
    assert same["identical"]
    assert not report.parity([("a", [0.1, 0.9])], [("b", [0.1, 0.9])])["identical"]
    assert not report.parity([("a", [0.1, 0.9])], [("a", [0.2, 0.8])])["identical"]
    assert not report.parity([("a", [0.1, 0.9])], [])["identical"]
    close = [("a", [0.1 + 5e-5, 0.9 - 5e-5])]
    assert not report.parity([("a", [0.1, 0.9])], close)["identical"]
    assert report.parity([("a", [0.1, 0.9])], close, common.SKLEARN_TOLERANCE)["identical"]


def test_problems_name_what_makes_a_run_invalid() -> None:
    figures = _figures()
    assert report.problems(figures) == []
    figures["servers"]["granian"]["load"]["errors"] = {"total": 3}
    figures["servers"]["kserve"]["load"]["errors"] = {"total": 2, "timeout": 2}  # socket errors only: a peer's own
    figures["servers"]["mlserver"]["load"]["non_2xx"] = 1
    figures["parity"]["mlflow"] = report.parity([("a", [1.0])], [("b", [1.0])])
    found = report.problems(figures)
    assert len(found) == 3, found
    assert any(p.startswith("granian had errors under load") for p in found)
    assert any(p.startswith("mlserver answered non-2xx") for p in found)
    assert any(p.startswith("mlflow answered differently from ours") for p in found)


def test_markdown_tables_and_readme_block(tmp_path: Path) -> None:
    figures = _figures(ours_rps=15_000, logged_rps=14_850)
    table = markdown.markdown(figures)
    header = (
        "| figure | ours: `pkg serve` | uvicorn + ASGI | granian + ASGI | `mlflow models serve` | KServe ModelServer "
        "| MLServer | ours vs the best peer | ours vs the best ASGI server |"
    )
    assert header in table
    assert (
        "| requests/s | 15,000 | 12,000 | 10,800 | 1,000 | 1,500 | 600 | 10.0× more (KServe ModelServer) "
        "| 1.2× more (uvicorn + ASGI) |" in table
    )
    assert "| cold start (process start to ready), s | 0.200 | 0.400 | 0.500 | 4.000 | 3.000 | 20.000 |" in table
    assert "| throughput vs `mlflow models serve` (issue 3) | 15.00× | ≥ 20× | **no** |" in table
    assert "| throughput vs the best of MLflow, KServe and MLServer (issue 11) | 10.00× | ≥ 15× | **no** |" in table
    assert "| cold start (process start to ready) | 0.20 s | ≤ 0.5 s | yes |" in table
    assert "| requests/s | 15,000 | 14,850 | -1.0 % | < 5% lost | yes |" in table
    assert "| server CPU per request, µs | 30.0 | 31.0 | +1.0 | | |" in table
    assert "the median of the 2 rounds' ratios, 0.990 (from 0.990 to 0.990; 0.990 over all rounds together)" in table
    assert "6,000 lines (2.4 MB in 1 file) for 60,000 requests (10.0%), 0 dropped" in table
    assert "Targets met: **6 of 9** measured" in table
    assert "Same model: every server gave our labels" in table
    del figures["prediction_log"]  # figures of a run without it: no such table
    figures["targets"] = report.judge(figures)
    text = markdown.markdown(figures)
    assert "logging off" not in text
    assert "| throughput lost to the prediction log at the default sample rate | – | < 5 % | not measured |" in text
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\nbefore\n\n{common.BEGIN}\nold table\n{common.END}\n\nafter\n")
    markdown.update_readme(readme, table)
    markdown.update_readme(readme, table)  # idempotent
    assert readme.read_text() == f"# Title\n\nbefore\n\n{common.BEGIN}\n{table}{common.END}\n\nafter\n"
    readme.write_text("# no markers\n")
    with pytest.raises(SystemExit, match="no"):
        markdown.update_readme(readme, table)


def test_mlserver_speaks_the_open_inference_protocol() -> None:
    rows = [{"a": 1.0, "b": 2.0}, {"a": 3.0, "b": 4.0}]
    request = peers.mlserver_request(rows)
    assert request["parameters"] == {"content_type": "pd"}
    assert request["inputs"] == [
        {"name": "a", "shape": [2], "datatype": "FP64", "data": [1.0, 3.0]},
        {"name": "b", "shape": [2], "datatype": "FP64", "data": [2.0, 4.0]},
    ]
    assert request["outputs"] == [{"name": "predict_proba"}]
    response = {
        "outputs": [{"name": "predict_proba", "shape": [2, 2], "datatype": "FP64", "data": [0.2, 0.8, 0.7, 0.3]}]
    }
    assert peers.mlserver_answers(response, ["0", "1"]) == [("1", [0.2, 0.8]), ("0", [0.7, 0.3])]
    with pytest.raises(common.StepFailed, match="not predict_proba"):
        peers.mlserver_answers({"outputs": [{"name": "predict", "data": [1, 0]}]}, ["0", "1"])


def test_kserve_model_script_compiles() -> None:
    compile(peers.KSERVE_MODEL, "onnx_model.py", "exec")


def test_servers_option_keeps_ours_first() -> None:
    assert run._servers("mlserver,ours,uvicorn") == ["ours", "uvicorn", "mlserver"]
    assert run._servers("granian") == ["ours", "granian"]
    with pytest.raises(Exception, match="unknown servers"):
        run._servers("ours,triton")


def test_lock_pins_come_from_the_export() -> None:
    exported = "numpy==2.4.6\nonnxruntime==1.24.1 ; python_full_version >= '3.11'\nscikit-learn==1.9.1\n"
    assert envs._lock_pin(exported, "onnxruntime") == "onnxruntime==1.24.1"
    assert envs._lock_pin(exported, "scikit-learn") == "scikit-learn==1.9.1"
    with pytest.raises(ValueError, match="not in the project's lock"):
        envs._lock_pin(exported, "uvloop")


def test_asgi_servers_get_a_careful_configuration(tmp_path: Path) -> None:
    uvicorn = servers.asgi("uvicorn", tmp_path, "pkg", tmp_path / "venv")
    assert uvicorn.command[:3] == [
        str(tmp_path / "venv" / "bin" / "uvicorn"),
        "--factory",
        "pkg.serving.asgi:create_app",
    ]
    for option in ("httptools", "uvloop", "--no-access-log", "--limit-concurrency", "--timeout-keep-alive"):
        assert option in uvicorn.command
    granian = servers.asgi("granian", tmp_path, "pkg", tmp_path / "venv")
    assert granian.command[-1] == "pkg.serving.asgi:create_app"
    for option in ("asgi", "uvloop", "--http1-header-read-timeout", "--backpressure"):
        assert option in granian.command
    assert granian.command[granian.command.index("--workers") + 1] == "1"
    with pytest.raises(ValueError, match="unknown ASGI server"):
        servers.asgi("hypercorn", tmp_path, "pkg", tmp_path / "venv")


@pytest.fixture
def flaky_server() -> Iterator[int]:
    """A local HTTP server whose every third answer is a 503, to run the real wrk script against."""
    counter = {"n": 0}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            counter["n"] += 1
            self.send_response(503 if counter["n"] % 3 == 0 else 200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.mark.skipif(shutil.which("wrk") is None, reason="needs wrk (Debian package wrk)")
def test_wrk_script_reports_its_figures(tmp_path: Path, flaky_server: int) -> None:
    script = tmp_path / "load.lua"
    script.write_text(load.lua_script("/predict", json.dumps({"instances": [{"x": 1.0}]})))
    figures = load.wrk(f"http://127.0.0.1:{flaky_server}/predict", script, 1, 2, tmp_path / "wrk.log")
    assert figures["requests"] > 0
    assert 0 < figures["non_2xx"] < figures["requests"]
    assert figures["latency_ms"]["p50"] <= figures["latency_ms"]["p99"] <= figures["latency_ms"]["max"]
    assert "Requests/sec" in (tmp_path / "wrk.log").read_text()


# The whole short run, the peers included, takes about two minutes here with a warm uv cache (KServe and MLServer
# add 10 to 60 s, the first time a few hundred MB from PyPI). SERVING_BENCHMARK_PEERS=0 leaves them out.
WITH_PEERS = os.environ.get("SERVING_BENCHMARK_PEERS", "1") != "0"


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("wrk") is None, reason="needs wrk (Debian package wrk)")
def test_serving_benchmark_short_run(tmp_path: Path, record_property: Callable[[str, Any], None]) -> None:
    """A 2-second run of the whole benchmark: every server measured, the same answers, no errors, nothing left; and
    ours with the prediction log against without."""
    names = ["ours", "uvicorn", "granian", "mlflow", *(["kserve", "mlserver"] if WITH_PEERS else [])]
    output = tmp_path / "serving.json"
    result = Steps(record_property)(
        "benchmark",
        [
            sys.executable,
            "-m",
            "tools.serving_benchmark",
            *("--duration", "2", "--warmup", "1", "--starts", "1", "--rows", "5000", "--log-rounds", "2"),
            *("--log-seconds", "1", "--servers", ",".join(names)),
            *("--work", str(tmp_path / "work"), "--output", str(output)),
        ],
        cwd=TEMPLATE,
        timeout=900,
    )
    figures = json.loads(output.read_text())
    assert figures["valid"], figures["problems"]
    assert list(figures["servers"]) == names
    assert set(figures["parity"]) == set(names) - {"ours"}
    for name, check in figures["parity"].items():
        assert check["identical"], (name, check)
        assert check["rows"] == common.PARITY_ROWS, name
    for name in names:
        server = figures["servers"][name]
        load = server["load"]
        assert load["requests"] > 0, name
        assert load["throughput_rps"] > 0, name
        assert 0 < load["latency_ms"]["p50"] <= load["latency_ms"]["p99"], name
        assert load["cpu_us_per_request"] > 0, name
        assert server["cold_start_s"] > 0, name
        assert server["idle_rss_mb"] > 0, name
        assert server["runtime_env_mb"] > 0, name
        assert server["stopped_cleanly"], name
        for pid in server["pids"]:
            assert not procs.group_members(pid), f"{name}: processes of group {pid} are still running"
    for name in ("ours", "uvicorn", "granian"):  # our application, whatever carries it: not one error
        assert figures["servers"][name]["load"]["errors"]["total"] == 0, name
    assert figures["servers"]["mlflow"]["processes"] >= 2, "mlflow models serve runs its server as a child"
    assert figures["servers"]["granian"]["processes"] >= 2, "granian runs its worker as a child"
    envs = {name: figures["servers"][name]["runtime_env"] for name in names}
    assert envs["uvicorn"]["versions"]["uvicorn"], envs["uvicorn"]
    assert "uvicorn" not in envs["ours"]["versions"] and "granian" not in envs["ours"]["versions"]
    log_lines = (tmp_path / "work" / "logs" / "mlflow.log").read_text()
    assert "POST /invocations" not in log_lines, "MLflow's access log should be off"
    for key in ("mlflow", "uvicorn", "granian"):
        assert set(figures["ratios"][key]) >= {"throughput", "latency_p99", "cpu_per_request", "cold_start"}
    assert figures["ratios"]["best_asgi"]["which"]["throughput"] in ("uvicorn", "granian")
    judged = {t["name"]: t for t in figures["targets"]}
    assert list(judged) == [t[0] for t in report.TARGETS]
    assert judged["http_layer"]["value"] is not None
    if WITH_PEERS:
        assert figures["servers"]["mlserver"]["runtime_env"]["versions"]["uvloop"].startswith("0.21")
        assert figures["ratios"]["best_peer"]["which"]["throughput"] in ("mlflow", "kserve", "mlserver")
        assert judged["throughput_peers"]["value"] is not None
    else:
        assert judged["throughput_peers"]["met"] is None
    logging = figures["prediction_log"]
    assert len(logging["round_ratios"]) == 2
    assert logging["off"]["throughput_rps"] > 0
    assert logging["on"]["throughput_rps"] > 0
    assert logging["log"]["files"] >= 1
    assert 0.05 < logging["log"]["share_logged"] < 0.2, logging["log"]  # sampled at 0.1, warm-up included
    assert logging["stopped_cleanly"]
    table = output.with_suffix(".md").read_text()
    assert "| requests/s |" in table
    assert "ours vs the best ASGI server" in table
    assert "Same model" in table
    assert "| figure | logging off | logging on | change | target | met |" in table
    assert "targets missed" in result.stdout or figures["targets_met"]
