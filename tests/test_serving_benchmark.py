"""The serving benchmark (``tools/serving_bench/``): its parsing and figures, fast; and one short real run, slow."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from conftest import Steps

from tools.bake import TEMPLATE
from tools.serving_bench import (
    common,
    envs,
    floor,
    hardening,
    load,
    logcost,
    markdown,
    peers,
    procs,
    report,
    rounds,
    run,
    servers,
    v2,
)
from tools.shared import group_members, replace_block

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


def test_prometheus_counters_reads_only_the_label_less_samples_asked_for() -> None:
    # The shape of the server's /metrics: labelled counters, a histogram, then the prediction log's plain counters.
    text = (
        "# HELP model_requests_total HTTP requests answered.\n# TYPE model_requests_total counter\n"
        'model_requests_total{model_version="abc",endpoint="/predict",status="200"} 12\n'
        "# HELP model_request_duration_seconds Time.\n# TYPE model_request_duration_seconds histogram\n"
        'model_request_duration_seconds_bucket{model_version="abc",endpoint="/predict",le="+Inf"} 12\n'
        'model_request_duration_seconds_sum{model_version="abc",endpoint="/predict"} 0.5\n'
        'model_request_duration_seconds_count{model_version="abc",endpoint="/predict"} 12\n'
        "# HELP prediction_log_lines_total Lines written.\n# TYPE prediction_log_lines_total counter\n"
        "prediction_log_lines_total 600\n"
        "# HELP prediction_log_dropped_total Lines dropped.\n# TYPE prediction_log_dropped_total counter\n"
        "prediction_log_dropped_total 3\n"
    )
    assert logcost.prometheus_counters(text, "prediction_log_") == {
        "prediction_log_lines_total": 600,
        "prediction_log_dropped_total": 3,
    }
    assert logcost.prometheus_counters(text, "model_") == {}


def test_process_tree_figures_of_this_process() -> None:
    deadline = time.process_time() + 0.05
    while time.process_time() < deadline:  # burn a little CPU so the tick counters move
        pass
    assert procs.tree_cpu_seconds(os.getpid()) > 0
    memory = procs.tree_memory(os.getpid())
    assert memory["rss_mb"] > 1  # MB = 10^6 bytes: a Python interpreter holds more than that
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
    with pytest.raises(common.StepError, match="cannot fill"):
        servers.tensor_request(rows, [{"name": "other", "shape": [None, 5]}], ["a", "b"])


def _rounds_figures(keys: tuple[str, str], rps: tuple[float, float], cpu: tuple[float, float]) -> dict[str, Any]:
    """What ``rounds.compare`` makes of two rounds of each side at these figures."""

    def side(rps: float, cpu: float) -> dict[str, Any]:
        load = {"requests": int(rps * 10), "seconds": 10.0, "cpu_seconds": cpu * rps * 10 / 1e6}
        return {**load, "throughput_rps": rps, "latency_ms": {"p50": 0.5, "p99": 1.0}, "errors": {"total": 0}}

    loads = {key: [side(r, c), side(r, c)] for key, r, c in zip(keys, rps, cpu, strict=True)}
    return rounds.compare(rounds.Rounds(*keys, loads=loads), seconds=10)


def _log_figures(off_rps: float, on_rps: float) -> dict[str, Any]:
    return {
        "sample": 0.1,
        **_rounds_figures(("off", "on"), (off_rps, on_rps), (30.0, 31.0)),
        "log": {
            "files": 1,
            "lines": 6_000,
            "bytes": 2_400_000,
            "requests": 60_000,
            "share_logged": 0.1,
            "dropped": 0,
            "write_errors": 0,
        },
    }


def _hardening_figures(without_rps: float, with_rps: float) -> dict[str, Any]:
    baseline = {"ref": "b7b716b", "commit": "b7b716b" + "0" * 33, "subject": "Server: one module per job"}
    return {
        "baseline": {**baseline, "runtime_differences": {}},
        **_rounds_figures(("without", "with"), (without_rps, with_rps), (28.0, 30.0)),
        "parity": report.parity([("1", [0.25, 0.75])], [("1", [0.25, 0.75])]),
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
    v2: tuple[float, float, float] = (27_000, 33.0, 1.6),  # requests/s, CPU µs per request, p99 ms
    unhardened_rps: float = 31_000,
) -> dict[str, Any]:
    measured = {
        "ours": _server("`pkg serve`", "ours", ours_rps, cpu_us, p99, 0.2, 60.0, 150.0),
        "ours-v2": _server("`pkg serve`, v2 `…/infer`", "ours", *v2, 0.2, 60.0, 150.0),
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
        "parity": {
            name: report.parity(same, same, 0.0 if name == "ours-v2" else 1e-6) for name in measured if name != "ours"
        },
        "prediction_log": _log_figures(ours_rps, logged_rps),
        "hardening": _hardening_figures(unhardened_rps, ours_rps),
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
    assert met["ratios"]["v2_best_peer"]["throughput"] == 18.0  # ours on the v2 route against KServe's 1,500
    assert all(t["met"] for t in met["targets"]), met["targets"]
    assert met["prediction_log"]["overhead_pct"] == 1.0
    assert met["hardening"]["overhead_pct"] == 3.23  # 30,000 against 31,000 before the hardening
    missed = _figures(
        ours_rps=15_000,
        cpu_us=41.0,
        p99=2.5,
        logged_rps=14_250,  # 5 % lost: not under 5 %
        v2=(20_000, 40.5, 2.1),
        unhardened_rps=16_700,  # 10.2 % lost: over 10 %
    )
    assert {t["name"] for t in missed["targets"] if not t["met"]} == {
        "throughput",
        "throughput_peers",
        "throughput_peers_v2",
        "http_layer",
        "cpu_per_request",
        "cpu_per_request_v2",
        "latency_p99",
        "latency_p99_v2",
        "prediction_log",
        "hardening",
    }
    judged = {t["name"]: t for t in missed["targets"]}
    assert judged["throughput_peers_v2"]["value"] == 13.33
    assert judged["hardening"]["value"] == 10.18


def test_targets_of_servers_not_run_are_not_measured() -> None:
    figures = _figures(peers=False)
    assert figures["ratios"]["best_peer"] is None  # "the best of the three" needs the three
    judged = {t["name"]: t for t in figures["targets"]}
    assert judged["throughput_peers"]["met"] is None
    assert judged["throughput_peers"]["value"] is None
    assert judged["throughput"]["met"] is True
    del figures["servers"]["uvicorn"], figures["servers"]["granian"]
    figures["ratios"] = report.all_ratios(figures["servers"])
    del figures["servers"]["ours-v2"], figures["hardening"]
    figures["ratios"] = report.all_ratios(figures["servers"])
    assert {t["name"] for t in report.judge(figures) if t["met"] is None} == {
        "throughput_peers",
        "throughput_peers_v2",
        "http_layer",
        "cpu_per_request_v2",
        "latency_p99_v2",
        "hardening",
    }


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
    figures["parity"]["ours-v2"] = report.parity([("a", [0.5, 0.5])], [("a", [0.5, 0.5 + 1e-9])], 0.0)
    figures["hardening"]["without"]["errors"] = {"total": 4}
    figures["hardening"]["parity"] = report.parity([("a", [1.0])], [("a", [0.9])])
    found = report.problems(figures)
    assert len(found) == 6, found
    assert any(p.startswith("granian had errors under load") for p in found)
    assert any(p.startswith("mlserver answered non-2xx") for p in found)
    assert any(p.startswith("mlflow answered differently from ours") for p in found)
    assert any(p.startswith("ours-v2 answered differently from ours") for p in found)  # v2 must equal /predict
    assert any(p.startswith("our server (the attack protections' cost: without) had errors") for p in found)
    assert any(p.startswith("the server before the hardening answered differently") for p in found)


def test_markdown_tables_and_readme_block(tmp_path: Path) -> None:
    figures = _figures(ours_rps=15_000, logged_rps=14_850)
    table = markdown.markdown(figures)
    header = (
        "| figure | ours: `pkg serve` | ours: `pkg serve`, v2 `…/infer` | uvicorn + ASGI | granian + ASGI "
        "| `mlflow models serve` | KServe ModelServer | MLServer | ours vs the best peer | ours (v2) vs the best peer "
        "| ours vs the best ASGI server |"
    )
    assert header in table
    assert (
        "| requests/s | 15,000 | 27,000 | 12,000 | 10,800 | 1,000 | 1,500 | 600 | 10.0× more (KServe ModelServer) "
        "| 18.0× more (KServe ModelServer) | 1.2× more (uvicorn + ASGI) |" in table
    )
    assert "| errors (non-2xx + socket) | 0 | 0 | 0 | 0 | 0 | 0 | 0 | | | |" in table
    assert (
        "| cold start (process start to ready), s | 0.200 | 0.200 | 0.400 | 0.500 | 4.000 | 3.000 | 20.000 |" in table
    )
    assert "| throughput vs `mlflow models serve` (issue 3) | 15.00× | ≥ 20× | **no** |" in table
    assert (
        "| throughput vs the best of MLflow, KServe and MLServer, `/predict` (issue 11) | 10.00× | ≥ 15× | **no** |"
        in table
    )
    assert (
        "| throughput vs the best of MLflow, KServe and MLServer, v2 `…/infer` (issue 11) | 18.00× | ≥ 15× | yes |"
        in table
    )
    assert "| p99 latency, v2 `…/infer` | 1.60 ms | ≤ 2 ms | yes |" in table
    assert "| cold start (process start to ready) | 0.20 s | ≤ 0.5 s | yes |" in table
    assert "| requests/s | 15,000 | 14,850 | -1.0 % | < 5% lost | yes |" in table
    assert "| server CPU per request, µs | 30.0 | 31.0 | +1.0 | | |" in table
    assert "the median of the 2 rounds' ratios, 0.990 (from 0.990 to 0.990; 0.990 over all rounds together)" in table
    assert "6,000 lines (2.4 MB in 1 file) for 60,000 requests (10.0%), 0 dropped" in table
    # the hardening's cost: 15,000 now against 31,000 before
    assert "| figure | before the hardening (b7b716b) | now | change | target | met |" in table
    assert "| requests/s | 31,000 | 15,000 | -51.6 % | ≤ 10% lost | **no** |" in table
    assert "| server CPU per request, µs | 28.0 | 30.0 | +2.0 | | |" in table
    assert (
        "throughput lost to the protections +51.6 % (each round's from +51.6 to +51.6 %). "
        "The two gave the same answers." in table
    )
    assert "`POST /v2/models/{name}/infer` (the Open Inference Protocol) on the same server" in table
    assert "Targets met: **9 of 13** measured" in table
    assert "Same model: every server gave our labels" in table
    del figures["prediction_log"], figures["hardening"]  # figures of a run without them: no such tables
    del figures["servers"]["ours-v2"], figures["parity"]["ours-v2"]
    figures["ratios"] = report.all_ratios(figures["servers"])
    figures["targets"] = report.judge(figures)
    text = markdown.markdown(figures)
    assert "logging off" not in text
    assert "before the hardening (" not in text
    assert "ours (v2) vs the best peer" not in text
    assert "| throughput lost to the prediction log at the default sample rate | – | < 5 % | not measured |" in text
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\nbefore\n\n{common.BEGIN}\nold table\n{common.END}\n\nafter\n")
    replace_block(readme, common.BLOCK, table)
    replace_block(readme, common.BLOCK, table)  # idempotent
    assert readme.read_text() == f"# Title\n\nbefore\n\n{common.BEGIN}\n{table}{common.END}\n\nafter\n"
    readme.write_text("# no markers\n")
    with pytest.raises(SystemExit, match="no"):
        replace_block(readme, common.BLOCK, table)


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
    with pytest.raises(common.StepError, match="not predict_proba"):
        peers.mlserver_answers({"outputs": [{"name": "predict", "data": [1, 0]}]}, ["0", "1"])


def test_v2_request_follows_the_model_metadata() -> None:
    rows = [{"a": 1.0, "b": 2.0, "c": 3.0}, {"a": 4.0, "b": 5.0, "c": 6.0}]
    metadata = {
        "name": "pkg",
        "inputs": [
            {"name": "b", "datatype": "FP32", "shape": [-1]},
            {"name": "c", "datatype": "INT64", "shape": [-1]},
            {"name": "a", "datatype": "BYTES", "shape": [-1]},
        ],
        "classes": ["yes", "no"],
    }
    assert v2.v2_request(rows, metadata) == {
        "inputs": [
            {"name": "b", "datatype": "FP32", "shape": [2], "data": [2.0, 5.0]},
            {"name": "c", "datatype": "INT64", "shape": [2], "data": [3, 6]},
            {"name": "a", "datatype": "BYTES", "shape": [2], "data": ["1.0", "4.0"]},
        ]
    }
    with pytest.raises(common.StepError, match="input 'd' that the rows do not have"):
        v2.v2_request(rows, {"inputs": [{"name": "d", "datatype": "FP32"}]})
    response = {
        "id": "x",
        "outputs": [
            {"name": "label", "datatype": "BYTES", "shape": [2], "data": ["no", "yes"]},
            {"name": "probabilities", "datatype": "FP32", "shape": [2, 2], "data": [0.2, 0.8, 0.7, 0.3]},
        ],
    }
    # the metadata's classes are yes, no; the answers are in the order asked for
    assert v2.v2_answers(response, ["no", "yes"], metadata) == [("no", [0.8, 0.2]), ("yes", [0.3, 0.7])]
    with pytest.raises(common.StepError, match="not label and probabilities"):
        v2.v2_answers({"outputs": response["outputs"][:1]}, ["no", "yes"], metadata)
    with pytest.raises(common.StepError, match="classes"):
        v2.v2_answers(response, ["0", "1"], metadata)


def test_paired_rounds_cost_is_the_median_with_its_spread() -> None:
    def load(rps: float) -> dict[str, Any]:
        return {
            "requests": int(rps),
            "seconds": 1.0,
            "cpu_seconds": rps * 30e-6,
            "throughput_rps": rps,
            "latency_ms": {"p50": 0.5, "p99": 1.0},
            "errors": {"total": 0},
        }

    loads = {"before": [load(1000), load(1000), load(1000)], "after": [load(900), load(950), load(1000)]}
    figures = rounds.compare(rounds.Rounds("before", "after", loads=loads), seconds=1)
    assert figures["round_ratios"] == [0.9, 0.95, 1.0]
    assert figures["throughput_ratio"] == 0.95
    assert figures["overhead_pct"] == 5.0
    assert figures["overhead_pct_range"] == [0.0, 10.0]
    assert figures["before"]["throughput_rps"] == 1000.0
    assert figures["after"]["throughput_rps"] == 950.0
    assert figures["throughput_ratio_all_rounds"] == 0.95


def test_the_baseline_takes_the_benchmarks_answers_or_says_which_not() -> None:
    assert hardening.unknown_answers('{"task": ["classification"], "project_name": "x"}', {"task": "regression"}) == []
    assert hardening.unknown_answers('{"task": ["classification"]}', {"deploy_target": "kserve", "task": "x"}) == [
        "deploy_target"
    ]


@pytest.mark.skipif(
    subprocess.run(["git", "cat-file", "-e", f"{hardening.BASELINE}^{{commit}}"], cwd=TEMPLATE, check=False).returncode
    != 0,
    reason=f"needs the template's history ({hardening.BASELINE})",
)
def test_the_default_baseline_bakes_the_server_before_the_hardening(tmp_path: Path) -> None:
    """The template at BASELINE bakes with its own tools.bake: the server split in modules, not yet hardened."""
    data = common.write_dataset(tmp_path / "data.csv", rows=200, seed=0)
    project, about = hardening.bake_at(hardening.BASELINE, run.bench_answers(data), tmp_path, tmp_path / "bake.log")
    assert about["commit"].startswith(hardening.BASELINE)
    assert "one module per job" in about["subject"]
    serving = project / "src" / "serving_bench" / "serving"
    assert (serving / "protocol.py").is_file()
    assert not (serving / "http.py").exists()
    assert not (serving / "limits.py").exists()
    assert not (serving / "v2.py").exists()
    current = TEMPLATE / "{{cookiecutter.project_slug}}" / "src" / "{{cookiecutter.package_name}}" / "serving"
    assert (current / "limits.py").is_file()
    with pytest.raises(common.StepError, match=r"unknown revision|Needed a single revision|failed"):
        hardening.bake_at("no-such-ref-anywhere", run.bench_answers(data), tmp_path, tmp_path / "bake.log")


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
    """A 2-second run of the whole benchmark: every server measured (ours on /predict and on the v2 infer route), the
    same answers, no errors, nothing left; ours with the prediction log against without, and against ours before the
    hardening (one round each)."""
    names = ["ours", "ours-v2", "uvicorn", "granian", "mlflow", *(["kserve", "mlserver"] if WITH_PEERS else [])]
    output = tmp_path / "serving.json"
    result = Steps(record_property)(
        "benchmark",
        [
            sys.executable,
            "-m",
            "tools.serving_benchmark",
            *("--duration", "2", "--warmup", "1", "--starts", "1", "--rows", "5000", "--log-rounds", "2"),
            *("--log-seconds", "1", "--hardening-rounds", "1", "--hardening-seconds", "1"),
            *("--servers", ",".join(names)),
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
            assert not group_members(pid), f"{name}: processes of group {pid} are still running"
    assert figures["parity"]["ours-v2"]["max_abs_probability_diff"] == 0.0, "v2 infer must equal /predict"
    assert figures["servers"]["ours-v2"]["command"] == figures["servers"]["ours"]["command"]
    assert "v2_best_peer" in figures["ratios"]
    for name in ("ours", "ours-v2", "uvicorn", "granian"):  # our application, whatever carries it: not one error
        assert figures["servers"][name]["load"]["errors"]["total"] == 0, name
    assert figures["servers"]["mlflow"]["processes"] >= 2, "mlflow models serve runs its server as a child"
    assert figures["servers"]["granian"]["processes"] >= 2, "granian runs its worker as a child"
    envs = {name: figures["servers"][name]["runtime_env"] for name in names}
    assert envs["uvicorn"]["versions"]["uvicorn"], envs["uvicorn"]
    assert "uvicorn" not in envs["ours"]["versions"]
    assert "granian" not in envs["ours"]["versions"]
    log_lines = (tmp_path / "work" / "logs" / "mlflow.log").read_text()
    assert "POST /invocations" not in log_lines, "MLflow's access log should be off"
    for key in ("mlflow", "uvicorn", "granian"):
        assert set(figures["ratios"][key]) >= {"throughput", "latency_p99", "cpu_per_request", "cold_start"}
    assert figures["ratios"]["best_asgi"]["which"]["throughput"] in ("uvicorn", "granian")
    judged = {t["name"]: t for t in figures["targets"]}
    assert list(judged) == [t[0] for t in report.TARGETS]
    assert judged["http_layer"]["value"] is not None
    bounds = figures["floor"]  # the HTTP layer alone costs less than a prediction, and the model's run is part of it
    assert 0 < bounds["http_us"] < figures["servers"]["ours"]["load"]["cpu_us_per_request"]
    assert 0 < bounds["model_run_us"] < bounds["floor_us"]["ours"] < bounds["floor_us"]["ours-v2"]
    assert 0 < bounds["json_us"]["ours"] < bounds["json_us"]["ours-v2"]  # thirty tensors are more JSON than a row
    if WITH_PEERS:
        assert {row["route"] for row in figures["budgets"]} == {"ours", "ours-v2"}
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
    hardened = figures["hardening"]
    assert hardened["baseline"]["commit"].startswith(hardening.BASELINE)
    assert len(hardened["round_ratios"]) == 1
    assert hardened["without"]["throughput_rps"] > 0
    assert hardened["with"]["throughput_rps"] > 0
    assert hardened["without"]["errors"]["total"] == 0
    assert hardened["with"]["errors"]["total"] == 0
    assert hardened["parity"]["identical"]
    assert hardened["parity"]["rows"] == common.PARITY_ROWS
    assert hardened["overhead_pct_range"][0] == hardened["overhead_pct"] == hardened["overhead_pct_range"][1]
    assert hardened["stopped_cleanly"]
    assert judged["hardening"]["value"] == hardened["overhead_pct"]
    assert judged["latency_p99_v2"]["value"] == figures["servers"]["ours-v2"]["load"]["latency_ms"]["p99"]
    table = output.with_suffix(".md").read_text()
    assert "| requests/s |" in table
    assert "ours vs the best ASGI server" in table
    assert "Same model" in table
    assert "| figure | logging off | logging on | change | target | met |" in table
    assert f"| figure | before the hardening ({hardening.BASELINE}) | now | change | target | met |" in table
    assert "targets missed" in result.stdout or figures["targets_met"]


def test_budgets_set_each_throughput_target_against_the_floor() -> None:
    figures = _figures(ours_rps=15_000, cpu_us=44.0, v2=(9_000, 90.0, 2.5))
    figures["floor"] = {
        "http_path": "/healthz",
        "http_us": 14.0,
        "http_throughput_rps": 50_000,
        "model_run_us": 6.0,
        "json_us": {"ours": 2.0, "ours-v2": 8.0},
        "floor_us": {"ours": 22.0, "ours-v2": 28.0},
    }
    rows = {row["route"]: row for row in floor.budgets(figures, figures["targets"])}
    # KServe's 1,500 req/s is the best peer's: 15 times that is 22,500 req/s, 44.4 µs of one core per request
    assert rows["ours"] == {
        "target": "throughput_peers",
        "route": "ours",
        "peer": "kserve",
        "peer_rps": 1_500,
        "times": 15,
        "budget_us": 44.4,
        "ours_us": 44.0,
        "floor_us": 22.0,
        "reachable": True,
    }
    figures["servers"]["kserve"]["load"]["throughput_rps"] = 4_000  # 15 times: 60,000 req/s: 16.7 µs, below the floor
    figures["ratios"] = report.all_ratios(figures["servers"])
    rows = {row["route"]: row for row in floor.budgets(figures, figures["targets"])}
    assert rows["ours"]["budget_us"] == 16.7
    assert not rows["ours"]["reachable"]
    assert not rows["ours-v2"]["reachable"]
    figures["budgets"] = list(rows.values())
    table = markdown.markdown(figures)
    assert "| `pkg serve` | 16.7 µs | 22 µs (JSON 2) | **none** | 44 µs | 22.0 µs |" in table
    assert "| `pkg serve`, v2 `…/infer` | 16.7 µs | 28 µs (JSON 8) | **none** | 90 µs | 62.0 µs |" in table
    assert "Floor = the HTTP layer alone, 14 µs (`GET /healthz` under the same load" in table
    del figures["floor"]  # a run without the floor: no budgets, no table
    assert floor.budgets(figures, figures["targets"]) == []


def test_lua_get_script() -> None:
    script = load.lua_get("/healthz")
    assert 'wrk.method = "GET"' in script
    assert 'wrk.path = "/healthz"' in script
    assert "wrk.body" not in script
    assert "done = function(summary, latency, requests)" in script
