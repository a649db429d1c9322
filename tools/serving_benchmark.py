"""Serving benchmark (issue 3, "Speed"): the generated project's server against ``mlflow models serve``, same model;
and what its prediction log costs it (issue 5).

One run, side by side, one server at a time:

1. writes a deterministic 30-feature numeric classification CSV, bakes a project with it (``task=classification``,
   ``model_family=linear``) and runs its pipeline up to ``track`` (``uv sync --frozen``, ``make setup``,
   ``dvc repro track``): ``models/model.onnx`` for our server, and an MLflow run holding the same ONNX model;
2. builds each server's runtime environment in a fresh venv from the shared uv cache and measures it on disk: ours is
   the project's base dependencies only (``uv sync --no-default-groups --no-editable``), MLflow's is the logged
   model's own ``requirements.txt`` (pinned to the project's lock);
3. for each server: starts it ``--starts`` times; cold start = process start to the first 200 from its readiness
   endpoint, polled every 5 ms; idle resident memory = VmRSS summed over the process tree once ready. Then both answer
   the same rows (the same labels and probabilities, or the run is invalid), and ``wrk -t1 -c16 --latency`` posts a
   batch-1 request of a real row: a warm-up, then ``--duration`` seconds measured: requests/s, latency percentiles,
   errors, and the server's CPU time per request (utime + stime of the process and every descendant, from
   ``/proc/<pid>/stat``, over the measured window, divided by the requests wrk completed);
4. the prediction log (issue 5): our server twice more, side by side, one with ``PREDICTION_LOG_DIR`` set at the
   default sample rate and one without, started afresh for each of ``--log-rounds`` rounds of ``--log-seconds`` of
   wrk load on each, in alternating order; each round gives the ratio of the two throughputs, and their median is the
   throughput with the log against without (the cost of logging must stay under 5 %). Paired rounds, fresh
   processes and the median, because that cost is small next to what a busy 2-CPU machine changes between two runs,
   or two starts, of the same server (a few %). Also CPU per request, latency, and the lines the log holds once the
   servers stopped;
5. writes the figures, the ratios and the issues' targets as JSON and Markdown tables (optionally into the README,
   between ``<!-- serving-benchmark:begin -->`` and ``<!-- serving-benchmark:end -->``).

Our server runs from its runtime-only venv (``<venv>/bin/<package> serve``: what the image installs); ``mlflow models
serve --env-manager local`` runs from the project's full venv, which has MLflow and onnxruntime. MLflow is called with
its tensor input (``{"inputs": {graph input: [[values]], ...}}``, built from the ONNX model's inputs): its ONNX flavour
maps a dataframe onto the graph's inputs only in simple cases (one input, or rank-1 inputs named after columns). Every server is started in its own process group and stopped
with it (SIGTERM, then SIGKILL), also when the run fails or is interrupted. Linux only (``/proc``); needs ``wrk``.

    python -m tools.serving_benchmark [--duration 10] [--log-rounds 8] [--log-seconds 3] [--output benchmarks/serving.json]
                                      [--readme README.md] [--check]
    python -m tools.serving_benchmark --render [--output benchmarks/serving.json] [--readme README.md]

Exit status: 0; 1 if the run is invalid (different predictions, errors from our server, non-2xx from MLflow's, an
empty prediction log) or, with ``--check``, a target is missed; 2 if a step failed.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import http.client
import json
import math
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tools.bake import bake
from tools.benchmark import BUILD, ROOT, StepFailed, _descendants, clean_env, describe, machine, measure, write_json

WORK = BUILD / "serving-bench"
OUTPUT = ROOT / "benchmarks" / "serving.json"
README = ROOT / "README.md"
BEGIN, END = "<!-- serving-benchmark:begin -->", "<!-- serving-benchmark:end -->"
TARGET_COLUMN = "outcome"
FEATURES = 30
PARITY_ROWS = 5
POLL_SECONDS = 0.005
READY_TIMEOUT = 180.0
MB = 1e6  # sizes and memory in MB = 10^6 bytes, the unit of the issue's targets
TOLERANCE = 1e-6  # largest difference between the two servers' probabilities (both run the same onnxruntime graph)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
SUMMARY_MARK = "SERVING_BENCHMARK_SUMMARY "
LOG_SAMPLE = 0.1  # the server's default PREDICTION_LOG_SAMPLE: the rate the overhead target is about
LOG_WARMUP = 1  # seconds of load on each server before each round of the prediction log's comparison

# wrk calls done() once at the end: print its exact figures as one JSON line (latencies in microseconds).
_LUA_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%s{"requests": %d, "duration_us": %.0f, "bytes": %.0f, "errors": {"connect": %d, "read": %d, "write": %d, ' ..
    '"timeout": %d, "status": %d}, "latency_us": {"mean": %.1f, "max": %.1f, "p50": %.1f, "p90": %.1f, ' ..
    '"p99": %.1f, "p999": %.1f}}\\n',
    "MARK", summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.timeout, e.status,
    latency.mean, latency.max, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9)))
end
""".replace("MARK", SUMMARY_MARK)


class Interrupted(Exception):
    """SIGTERM or SIGHUP: unwind, so every server is stopped on the way out."""


# --- Data and the baked project ------------------------------------------------------------------------------------


def write_dataset(path: Path, rows: int, seed: int, features: int = FEATURES) -> Path:
    """A numeric binary classification table: ``features`` Gaussian columns, a target that a linear model learns.

    The label is the sign of a fixed random projection plus noise (about 90 % accuracy reachable), so the baked
    project's gate passes. Deterministic for a given seed.
    """
    rng = random.Random(seed)
    weights = [rng.gauss(0, 1) for _ in range(features)]
    scale = 3 / math.sqrt(features)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow([*(f"f{i:02d}" for i in range(features)), TARGET_COLUMN])
        for _ in range(rows):
            x = [round(rng.gauss(0, 1), 4) for _ in range(features)]
            z = scale * sum(w * v for w, v in zip(weights, x, strict=True)) + rng.gauss(0, 1)
            writer.writerow([*x, int(z > 0)])
    return path


def sample_rows(path: Path, count: int) -> list[dict[str, float]]:
    """The first ``count`` rows of the CSV as feature records (the target dropped): real rows for the requests."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        rows = []
        for row in reader:
            rows.append({k: float(v) for k, v in row.items() if k != TARGET_COLUMN})
            if len(rows) == count:
                break
    return rows


def shown(path: Path | str) -> str:
    """A path (or a command word) relative to the repository when inside it, so the committed figures hold no
    machine-specific prefix."""
    text = str(path)
    prefix = str(ROOT) + os.sep
    return text.replace(prefix, "", 1) if text.startswith(prefix) else text


def _mlflow_env(project: Path) -> dict[str, str]:
    env = clean_env()
    env["PATH"] = os.pathsep.join([str(project / ".venv" / "bin"), env["PATH"]])  # mlflow execs `uvicorn` by name
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{project / 'mlflow.db'}"
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"  # no attempts to reach the internet from a closed machine
    return env


def model_artifacts(project: Path, model_uri: str, log: Path) -> Path:
    """The folder of the logged MLflow model (``MLmodel``, ``requirements.txt``, ``model.onnx``)."""
    model_id = model_uri.rsplit("/", 1)[-1]
    found = sorted(project.glob(f"mlruns/*/models/{model_id}/artifacts/requirements.txt"))
    if found:
        return found[0].parent
    target = log.parent / "mlflow-model"  # a remote or unusual artifact store: ask MLflow for a copy
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    command = [str(project / ".venv" / "bin" / "mlflow"), "artifacts", "download", "--artifact-uri", model_uri]
    _run([*command, "--dst-path", str(target)], project, log, env=_mlflow_env(project))
    return next(p.parent for p in target.rglob("requirements.txt"))


def _run(command: Sequence[str], cwd: Path, log: Path, *, env: dict[str, str] | None = None) -> str:
    """Run a short command; its output goes to ``log``; raise StepFailed with its tail if it fails."""
    result = subprocess.run(list(command), cwd=cwd, env=env or clean_env(), capture_output=True, text=True, check=False)
    with log.open("a") as sink:
        sink.write(f"$ (cd {cwd} && {' '.join(command)})\n{result.stdout}{result.stderr}")
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-15:])
        raise StepFailed(f"`{' '.join(command)}` failed in {cwd} (exit {result.returncode}):\n{tail}")
    return result.stdout


# --- Sizes on disk and the process tree in /proc --------------------------------------------------------------------


def disk_usage(path: Path) -> int:
    """Bytes on disk under ``path``, like ``du -s -B1``: allocated blocks, each hard-linked file counted once."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for folder, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            try:
                st = os.lstat(os.path.join(folder, name))
            except OSError:
                continue
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            total += st.st_blocks * 512
    return total + os.lstat(path).st_blocks * 512


def parse_stat(text: str) -> dict[str, int]:
    """The fields of ``/proc/<pid>/stat`` this benchmark uses: ppid, pgrp, and CPU time in clock ticks.

    ``utime``/``stime`` are the process's own (all its threads), ``cutime``/``cstime`` those of its children that
    exited and were waited for. The command name (field 2) may hold spaces and parentheses: split after the last ")".
    """
    fields = text.rsplit(")", 1)[1].split()
    # fields[0] is field 3 of proc(5) (state): field n is fields[n - 3].
    return {
        "ppid": int(fields[1]),
        "pgrp": int(fields[2]),
        "utime": int(fields[11]),
        "stime": int(fields[12]),
        "cutime": int(fields[13]),
        "cstime": int(fields[14]),
    }


def parse_status(text: str) -> dict[str, int]:
    """``VmRSS``, ``VmHWM`` (KiB) and ``Threads`` from ``/proc/<pid>/status`` (0 when absent, e.g. a zombie)."""
    values = {"VmRSS": 0, "VmHWM": 0, "Threads": 0}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in values and rest.split():
            values[key] = int(rest.split()[0])
    return values


def _read(path: str) -> str | None:
    try:
        with open(path) as handle:
            return handle.read()
    except OSError:
        return None


def process_tree(pid: int) -> list[int]:
    """``pid`` and every live descendant."""
    return [pid, *_descendants(pid)]


def tree_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of ``pid`` and all its descendants, those already exited and waited for included."""
    ticks = 0
    for member in process_tree(pid):
        text = _read(f"/proc/{member}/stat")
        if text:
            s = parse_stat(text)
            ticks += s["utime"] + s["stime"] + s["cutime"] + s["cstime"]
    return ticks / CLOCK_TICKS


def tree_memory(pid: int) -> dict[str, float]:
    """Resident memory (MB) and threads of ``pid``'s process tree, summed over its processes."""
    rss = hwm = threads = processes = 0
    for member in process_tree(pid):
        text = _read(f"/proc/{member}/status")
        if text:
            status = parse_status(text)
            rss, hwm, threads = rss + status["VmRSS"], hwm + status["VmHWM"], threads + status["Threads"]
            processes += 1
    return {"rss_mb": rss * 1024 / MB, "hwm_mb": hwm * 1024 / MB, "threads": threads, "processes": processes}


def group_members(pgid: int) -> list[int]:
    """Live processes (zombies excluded) whose process group is ``pgid``."""
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            text = _read(f"/proc/{entry}/stat")
            if text and parse_stat(text)["pgrp"] == pgid and text.rsplit(")", 1)[1].split()[0] != "Z":
                members.append(int(entry))
    return members


# --- Servers --------------------------------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def http_request(port: int, method: str, path: str, body: Any = None, timeout: float = 10.0) -> tuple[int, bytes]:
    """One request to 127.0.0.1 (no proxy); returns the status and the body."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        connection.request(method, path, body=data, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def wait_until_ready(
    port: int, path: str, process: subprocess.Popen[bytes], started: float, timeout: float = READY_TIMEOUT
) -> float:
    """Poll ``path`` every 5 ms until it answers 200; return the seconds since ``started`` (a perf_counter value)."""
    deadline = started + timeout
    while True:
        with contextlib.suppress(OSError, http.client.HTTPException):
            if http_request(port, "GET", path, timeout=1.0)[0] == 200:
                return time.perf_counter() - started
        if process.poll() is not None:
            raise StepFailed(f"the server exited with {process.returncode} before {path} answered 200")
        if time.perf_counter() > deadline:
            raise StepFailed(f"{path} did not answer 200 within {timeout:.0f} s")
        time.sleep(POLL_SECONDS)


def stop_process_group(process: subprocess.Popen[bytes], grace: float = 15.0) -> bool:
    """Stop a server started with ``start_new_session=True`` and every process of its group; True if none is left.

    SIGTERM to the group, then SIGKILL after ``grace`` seconds; workers that outlive their leader are killed too.
    """
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(grace)
    deadline = time.monotonic() + grace
    while group_members(process.pid):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            time.sleep(0.1)
            return not group_members(process.pid)
        time.sleep(0.05)
    return True


@dataclass
class Server:
    """How to start one of the two servers, and how to talk to it."""

    name: str
    title: str
    command: list[str]
    env: dict[str, str]
    cwd: Path
    ready_path: str
    predict_path: str
    request: Callable[[list[dict[str, float]]], Any]  # rows -> request document
    answers: Callable[[Any, list[str]], list[tuple[str, list[float]]]]  # response, classes -> (label, probabilities)


@contextlib.contextmanager
def running(server: Server, port: int, log: Path) -> Iterator[tuple[subprocess.Popen[bytes], float]]:
    """Start ``server`` on ``port`` in a new process group; yield it and its cold start; always stop the group."""
    env = {**server.env, "HOST": "127.0.0.1", "PORT": str(port)}
    command = [part.replace("{port}", str(port)) for part in server.command]
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as sink:
        sink.write(f"\n$ (cd {server.cwd} && PORT={port} {' '.join(command)})\n".encode())
        sink.flush()
        started = time.perf_counter()
        process = subprocess.Popen(
            command, cwd=server.cwd, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        try:
            cold = wait_until_ready(port, server.ready_path, process, started)
        except StepFailed as exc:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
            raise StepFailed(f"{server.name}: {exc}; its log ({log}) ends with:\n{tail}") from None
        yield process, cold
    finally:
        if not stop_process_group(process):
            raise StepFailed(f"{server.name}: processes of group {process.pid} survived SIGKILL")


def ours(project: Path, package: str, venv: Path) -> Server:
    """The generated project's server, from its runtime-only venv."""
    return Server(
        name="ours",
        title=f"`{package} serve`",
        command=[str(venv / "bin" / package), "serve"],
        env={
            **{k: v for k, v in clean_env().items() if not k.startswith("PREDICTION_LOG_")},  # logging off
            "MODEL_DIR": str(project / "models"),
        },
        cwd=project,
        ready_path="/readyz",
        predict_path="/predict",
        request=lambda rows: {"instances": rows},
        answers=lambda doc, classes: [
            (str(p["label"]), [float(p["probabilities"][c]) for c in classes]) for p in doc["predictions"]
        ],
    )


_ONNX_INPUTS = """
import json, onnxruntime as ort
session = ort.InferenceSession("models/model.onnx", providers=["CPUExecutionProvider"])
print(json.dumps([{"name": i.name, "shape": [d if isinstance(d, int) else None for d in i.shape], "type": i.type}
                  for i in session.get_inputs()]))
"""


def onnx_inputs(project: Path, log: Path) -> list[dict[str, Any]]:
    """The exported model's graph inputs (name, shape, element type), read with the project's own onnxruntime."""
    inputs: list[dict[str, Any]] = json.loads(
        _run([str(project / ".venv" / "bin" / "python"), "-c", _ONNX_INPUTS], project, log)
    )
    return inputs


def tensor_request(rows: list[dict[str, float]], inputs: list[dict[str, Any]], numeric: list[str]) -> dict[str, Any]:
    """MLflow's tensor input for the ONNX flavour, one array per graph input: ``{"inputs": {name: [[...]], ...}}``.

    An input named after a feature is ``[n, 1]``; any other ``[n, k]`` input with k the number of numeric features
    holds them packed, in the schema's order (how the project's export lays them out, ``runtime.NUMERIC_INPUT``).
    """
    feed: dict[str, list[list[float]]] = {}
    for tensor in inputs:
        name, shape = tensor["name"], tensor["shape"]
        if name in rows[0]:
            feed[name] = [[row[name]] for row in rows]
        elif len(shape) == 2 and shape[1] == len(numeric):
            feed[name] = [[row[feature] for feature in numeric] for row in rows]
        else:
            raise StepFailed(f"cannot fill the ONNX input {name!r} of shape {shape} from the features")
    return {"inputs": feed}


def mlflow(project: Path, run_id: str, inputs: list[dict[str, Any]], numeric: list[str]) -> Server:
    """``mlflow models serve`` of the run's logged ONNX model, from the project's venv (``--env-manager local``)."""
    venv = project / ".venv"
    return Server(
        name="mlflow",
        title="`mlflow models serve`",
        command=[
            str(venv / "bin" / "mlflow"),
            *("models", "serve", "-m", f"runs:/{run_id}/model", "--env-manager", "local"),
            *("-h", "127.0.0.1", "-p", "{port}"),
        ],
        env=_mlflow_env(project),
        cwd=project,
        ready_path="/ping",
        predict_path="/invocations",
        request=lambda rows: tensor_request(rows, inputs, numeric),
        answers=lambda doc, classes: [
            (str(label), [float(p) for p in probabilities])
            for label, probabilities in zip(
                doc["predictions"]["label"], doc["predictions"]["probabilities"], strict=True
            )
        ],
    )


# --- Load with wrk --------------------------------------------------------------------------------------------------


def lua_script(path: str, body: str) -> str:
    """A wrk script that POSTs ``body`` as JSON to ``path`` and prints its summary as one JSON line at the end."""
    level = 0
    while f"]{'=' * level}]" in body:
        level += 1
    quoted = f"[{'=' * level}[{body}]{'=' * level}]"
    return (
        f'wrk.method = "POST"\nwrk.path = "{path}"\nwrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = {quoted}\n{_LUA_DONE}"
    )


def parse_wrk(output: str) -> dict[str, Any]:
    """Figures of one wrk run, from the JSON line the script's ``done()`` prints (see ``lua_script``)."""
    line = next((line for line in output.splitlines() if line.startswith(SUMMARY_MARK)), None)
    if line is None:
        raise ValueError("no summary line in wrk's output (was the script's done() called?)")
    raw = json.loads(line[len(SUMMARY_MARK) :])
    seconds = raw["duration_us"] / 1e6
    errors = raw["errors"]
    socket_errors = errors["connect"] + errors["read"] + errors["write"] + errors["timeout"]
    return {
        "requests": raw["requests"],
        "seconds": round(seconds, 3),
        "throughput_rps": round(raw["requests"] / seconds, 1) if seconds else 0.0,
        "latency_ms": {k: round(v / 1000, 3) for k, v in raw["latency_us"].items()},
        "non_2xx": errors["status"],
        "socket_errors": socket_errors,
        "errors": {**errors, "total": socket_errors + errors["status"]},
    }


def wrk(url: str, script: Path, seconds: int, connections: int, log: Path, threads: int = 1) -> dict[str, Any]:
    """Run wrk against ``url`` for ``seconds``; its output goes to ``log``; return its parsed figures."""
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "5s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=False)
    with log.open("a") as sink:
        sink.write(f"$ {' '.join(command)}\n{result.stdout}{result.stderr}")
    if result.returncode != 0:
        raise StepFailed(f"`{' '.join(command)}` failed (exit {result.returncode}):\n{result.stderr[-2000:]}")
    return parse_wrk(result.stdout)


# --- One server, measured -------------------------------------------------------------------------------------------


def measure_server(
    server: Server, rows: list[dict[str, float]], classes: list[str], settings: argparse.Namespace, work: Path
) -> dict[str, Any]:
    """Cold starts and idle memory (each start), then predictions for the parity check, then the load run."""
    log, wrk_log = work / "logs" / f"{server.name}.log", work / "logs" / f"{server.name}-wrk.log"
    script = work / f"{server.name}.lua"
    body = json.dumps(server.request(rows[:1]), separators=(",", ":"))
    script.write_text(lua_script(server.predict_path, body))
    colds: list[float] = []
    idle: list[float] = []
    figures: dict[str, Any] = {"title": server.title, "command": [shown(part) for part in server.command], "pids": []}
    for start in range(settings.starts):
        port = free_port()
        with running(server, port, log) as (process, cold):
            figures["pids"].append(process.pid)
            colds.append(cold)
            time.sleep(0.2)  # let the process settle before reading its memory
            memory = tree_memory(process.pid)
            idle.append(memory["rss_mb"])
            print(f"  start {start + 1}: ready in {cold:.3f} s, {memory['rss_mb']:.0f} MB resident", flush=True)
            if start < settings.starts - 1:
                continue
            status, answer = http_request(port, "POST", server.predict_path, server.request(rows))
            if status != 200:
                raise StepFailed(f"{server.name}: {server.predict_path} answered {status}: {answer[:500]!r}")
            figures["predictions"] = server.answers(json.loads(answer), classes)
            url = f"http://127.0.0.1:{port}{server.predict_path}"
            figures["load_average_before_load"] = round(os.getloadavg()[0], 2)
            if settings.warmup:
                wrk(url, script, settings.warmup, settings.connections, wrk_log)
            cpu_before = tree_cpu_seconds(process.pid)
            load = wrk(url, script, settings.duration, settings.connections, wrk_log)
            cpu = tree_cpu_seconds(process.pid) - cpu_before
            after = tree_memory(process.pid)
            load["cpu_seconds"] = round(cpu, 3)
            load["cpu_us_per_request"] = round(cpu / load["requests"] * 1e6, 1) if load["requests"] else None
            load["cpu_cores_busy"] = round(cpu / load["seconds"], 2) if load["seconds"] else None
            figures["load"] = load
            figures["processes"] = after["processes"]
            figures["threads"] = after["threads"]
            figures["rss_after_load_mb"] = round(after["rss_mb"], 1)
            print(
                f"  load: {load['throughput_rps']:,.0f} req/s, p50 {load['latency_ms']['p50']} ms, "
                f"p99 {load['latency_ms']['p99']} ms, {load['errors']['total']} errors, "
                f"{load['cpu_us_per_request']} µs CPU/request",
                flush=True,
            )
    figures["cold_starts_s"] = [round(c, 3) for c in colds]
    figures["cold_start_s"] = round(statistics.median(colds), 3)
    figures["idle_rss_mb"] = round(statistics.median(idle), 1)
    figures["stopped_cleanly"] = not any(group_members(pid) for pid in figures["pids"])
    return figures


# --- The prediction log's cost --------------------------------------------------------------------------------------


def log_contents(directory: Path) -> dict[str, int]:
    """Files, whole lines and bytes of the prediction log under ``directory``."""
    files = lines = size = 0
    for path in sorted(directory.rglob("*.jsonl")):
        data = path.read_bytes()
        files, lines, size = files + 1, lines + data.count(b"\n"), size + len(data)
    return {"files": files, "lines": lines, "bytes": size}


def prometheus_counters(text: str, prefix: str) -> dict[str, float]:
    """The label-less samples whose name starts with ``prefix`` in a Prometheus exposition text."""
    found = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name.startswith(prefix) and "{" not in name and value:
            found[name] = float(value)
    return found


def _loads_summary(loads: list[dict[str, Any]]) -> dict[str, Any]:
    """Several wrk runs on one server as one: throughput over all of them, CPU per request, median latencies."""
    requests = sum(load["requests"] for load in loads)
    seconds = sum(load["seconds"] for load in loads)
    cpu = sum(load["cpu_seconds"] for load in loads)
    return {
        "requests": requests,
        "seconds": round(seconds, 3),
        "throughput_rps": round(requests / seconds, 1) if seconds else 0.0,
        "cpu_us_per_request": round(cpu / requests * 1e6, 1) if requests else None,
        "latency_ms": {
            key: round(statistics.median(load["latency_ms"][key] for load in loads), 3) for key in ("p50", "p99")
        },
        "errors": {"total": sum(load["errors"]["total"] for load in loads)},
        "rounds_rps": [load["throughput_rps"] for load in loads],
    }


def measure_prediction_log(
    server: Server, rows: list[dict[str, float]], settings: argparse.Namespace, work: Path
) -> dict[str, Any]:
    """Our server with ``PREDICTION_LOG_DIR`` set (default sample rate) against the same server without, interleaved.

    Each round starts both afresh, side by side (the idle one costs nothing), warms each up for ``LOG_WARMUP``
    seconds, loads one then the other (the order alternating between rounds, so a slower moment of the machine
    falls on both) and stops them. Fresh processes each round, because two starts of the very same server differ by
    a few % (memory layout, where the scheduler puts them), which a single pair would carry into the ratio. The
    ratio is the median of the rounds' ratios (with the log over without); each side's figures are over all its
    rounds. The log is counted once the servers stopped (a stopping server writes what it holds).
    """
    directory = work / "prediction-log"
    shutil.rmtree(directory, ignore_errors=True)
    base = replace(server, env={**server.env, "ADMIN_PORT": "off"})  # two side by side: one admin port each is moot
    logging_env = {**base.env, "PREDICTION_LOG_DIR": str(directory), "PREDICTION_LOG_SAMPLE": str(LOG_SAMPLE)}
    configs = {"off": base, "on": replace(base, name="ours-logging", env=logging_env)}
    log, wrk_log = work / "logs" / "prediction-log.log", work / "logs" / "prediction-log-wrk.log"
    script = work / "prediction-log.lua"
    script.write_text(lua_script(server.predict_path, json.dumps(server.request(rows[:1]), separators=(",", ":"))))
    loads: dict[str, list[dict[str, Any]]] = {key: [] for key in configs}
    sent = dict.fromkeys(configs, 0)
    counters: dict[str, float] = {}
    pids: list[int] = []
    load_before = round(os.getloadavg()[0], 2)
    for round_ in range(settings.log_rounds):
        order = ("off", "on") if round_ % 2 == 0 else ("on", "off")
        with contextlib.ExitStack() as stack:
            processes, ports = {}, {}
            for key in order:
                ports[key] = free_port()  # taken by this server before the next one asks for a free port
                processes[key], _ = stack.enter_context(running(configs[key], ports[key], log))
                pids.append(processes[key].pid)
            urls = {key: f"http://127.0.0.1:{port}{server.predict_path}" for key, port in ports.items()}
            for key in order:
                sent[key] += wrk(urls[key], script, LOG_WARMUP, settings.connections, wrk_log)["requests"]
            for key in order:
                cpu_before = tree_cpu_seconds(processes[key].pid)
                load = wrk(urls[key], script, settings.log_seconds, settings.connections, wrk_log)
                load["cpu_seconds"] = tree_cpu_seconds(processes[key].pid) - cpu_before
                sent[key] += load["requests"]
                loads[key].append(load)
            time.sleep(1.5)  # the log hands its lines to its writer thread every second
            status, text = http_request(ports["on"], "GET", "/metrics")
            if status != 200:
                raise StepFailed(f"ours-logging: /metrics answered {status}")
            for name, value in prometheus_counters(text.decode(), "prediction_log_").items():
                counters[name] = counters.get(name, 0) + value
    off, on = _loads_summary(loads["off"]), _loads_summary(loads["on"])
    rounds = [b["throughput_rps"] / a["throughput_rps"] for a, b in zip(loads["off"], loads["on"], strict=True)]
    ratio = statistics.median(rounds)
    contents = log_contents(directory)
    figures = {
        "sample": LOG_SAMPLE,
        "rounds": settings.log_rounds,
        "seconds_per_run": settings.log_seconds,
        "warmup_per_run": LOG_WARMUP,
        "load_average_before_load": load_before,
        "off": off,
        "on": on,
        "throughput_ratio": round(ratio, 4),  # the median of the rounds' ratios
        "overhead_pct": round((1 - ratio) * 100, 2),
        "round_ratios": [round(r, 3) for r in rounds],
        "throughput_ratio_all_rounds": round(on["throughput_rps"] / off["throughput_rps"], 4),
        "log": {
            **contents,
            "requests": sent["on"],
            "share_logged": round(contents["lines"] / sent["on"], 4) if sent["on"] else None,
            "dropped": int(counters.get("prediction_log_dropped_total", 0)),
            "write_errors": int(counters.get("prediction_log_write_errors_total", 0)),
        },
        "stopped_cleanly": not any(group_members(pid) for pid in pids),
    }
    print(
        f"  off: {off['throughput_rps']:,.0f} req/s, on: {on['throughput_rps']:,.0f} req/s "
        f"({figures['overhead_pct']:+.2f} % lost); {contents['lines']:,} lines in {contents['files']} file(s)",
        flush=True,
    )
    return figures


# --- Runtime environments -------------------------------------------------------------------------------------------


def _env_figures(venv: Path) -> dict[str, Any]:
    return {
        "path": shown(venv),
        "runtime_env_mb": round(disk_usage(venv) / MB, 1),
        "packages": len(list(venv.glob("lib/python*/site-packages/*.dist-info"))),
    }


def runtime_envs(project: Path, package: str, artifacts: Path, work: Path) -> dict[str, dict[str, Any]]:
    """Each server's runtime environment in a fresh venv, linked from the shared uv cache, and its size on disk.

    The interpreter itself (outside the venv, the same one for both) is not counted.
    """
    log = work / "logs" / "envs.log"
    envs = work / "envs"
    shutil.rmtree(envs, ignore_errors=True)
    ours_venv, mlflow_venv = envs / "ours", envs / "mlflow"
    env = {**clean_env(), "UV_PROJECT_ENVIRONMENT": str(ours_venv)}
    sync = ["uv", "sync", "--frozen", "--no-dev", "--no-default-groups", "--no-editable"]
    _run(sync, project, log, env=env)
    constraints = work / "constraints.txt"
    export = ["uv", "export", "--frozen", "--all-groups", "--no-hashes", "--no-emit-project", "--no-header"]
    constraints.write_text(_run(export, project, log))
    python = project / ".venv" / "bin" / "python"
    _run(["uv", "venv", "--quiet", "--python", str(python), str(mlflow_venv)], project, log)
    install = ["uv", "pip", "install", "--python", str(mlflow_venv / "bin" / "python")]
    _run([*install, "-r", str(artifacts / "requirements.txt"), "-c", str(constraints)], project, log)
    requirements = (artifacts / "requirements.txt").read_text().splitlines()
    figures = {  # as installed: before anything runs in them and writes bytecode
        "ours": {**_env_figures(ours_venv), "from": "= the project's base dependencies"},
        "mlflow": {
            **_env_figures(mlflow_venv),
            "from": "= the logged model's `requirements.txt`: "
            + ", ".join(r.strip() for r in requirements if r.strip()),
        },
    }
    # Each environment must be enough to serve: what `mlflow models serve --env-manager local` imports, and ours.
    mlflow_check = "import mlflow.pyfunc.scoring_server, onnxruntime, uvicorn"
    _run([str(mlflow_venv / "bin" / "python"), "-B", "-c", mlflow_check], project, log)
    _run([str(ours_venv / "bin" / "python"), "-B", "-c", f"import {package}.serving.server"], project, log)
    return figures


# --- Figures, targets, Markdown ------------------------------------------------------------------------------------


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a and b else None


def ratios(servers: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    """How many times better ours is than MLflow's: higher throughput, lower everything else."""
    o, m = servers["ours"], servers["mlflow"]
    return {
        "throughput": _ratio(o["load"]["throughput_rps"], m["load"]["throughput_rps"]),
        "latency_p50": _ratio(m["load"]["latency_ms"]["p50"], o["load"]["latency_ms"]["p50"]),
        "latency_p99": _ratio(m["load"]["latency_ms"]["p99"], o["load"]["latency_ms"]["p99"]),
        "cpu_per_request": _ratio(m["load"]["cpu_us_per_request"], o["load"]["cpu_us_per_request"]),
        "cold_start": _ratio(m["cold_start_s"], o["cold_start_s"]),
        "idle_rss": _ratio(m["idle_rss_mb"], o["idle_rss_mb"]),
        "runtime_env": _ratio(m["runtime_env_mb"], o["runtime_env_mb"]),
    }


# name, what, unit, how to read the value from the figures, comparison, limit
TARGETS: list[tuple[str, str, str, Callable[[dict[str, Any]], float | None], str, float]] = [
    ("throughput", "throughput vs `mlflow models serve`", "×", lambda f: f["ratios"]["throughput"], ">=", 20),
    (
        "cpu_per_request",
        "server CPU per request",
        "µs",
        lambda f: f["servers"]["ours"]["load"]["cpu_us_per_request"],
        "<=",
        40,
    ),
    ("latency_p99", "p99 latency", "ms", lambda f: f["servers"]["ours"]["load"]["latency_ms"]["p99"], "<=", 2),
    (
        "cold_start",
        "cold start (process start to ready)",
        "s",
        lambda f: f["servers"]["ours"]["cold_start_s"],
        "<=",
        0.5,
    ),
    ("runtime_env", "runtime environment", "MB", lambda f: f["servers"]["ours"]["runtime_env_mb"], "<=", 200),
    ("idle_rss", "idle resident memory", "MB", lambda f: f["servers"]["ours"]["idle_rss_mb"], "<=", 100),
    (
        "prediction_log",
        "throughput lost to the prediction log at the default sample rate",
        "%",
        lambda f: (f.get("prediction_log") or {}).get("overhead_pct"),
        "<",
        5,
    ),
]
COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">=": lambda value, limit: value >= limit,
    "<=": lambda value, limit: value <= limit,
    "<": lambda value, limit: value < limit,
}
SYMBOLS = {">=": "≥", "<=": "≤", "<": "<"}


def judge(figures: dict[str, Any]) -> list[dict[str, Any]]:
    """The issues' targets for our server, each with its measured value and whether it is met."""
    judged = []
    for name, what, unit, read, op, limit in TARGETS:
        value = read(figures)
        met = value is not None and COMPARE[op](value, limit)
        judged.append({"name": name, "what": what, "unit": unit, "op": op, "limit": limit, "value": value, "met": met})
    return judged


def parity(a: list[tuple[str, list[float]]], b: list[tuple[str, list[float]]]) -> dict[str, Any]:
    """Whether two servers' answers to the same rows agree: the same labels, probabilities within TOLERANCE."""
    same_labels = len(a) == len(b) and all(x[0] == y[0] for x, y in zip(a, b, strict=False))
    diff = max(
        (abs(p - q) for x, y in zip(a, b, strict=False) for p, q in zip(x[1], y[1], strict=True)), default=math.inf
    )
    return {
        "rows": len(a),
        "same_labels": same_labels,
        "max_abs_probability_diff": diff,
        "tolerance": TOLERANCE,
        "identical": same_labels and diff <= TOLERANCE,
    }


def problems(figures: dict[str, Any]) -> list[str]:
    """Why the run's figures cannot be trusted (empty if they can)."""
    found = []
    if not figures["parity"]["identical"]:
        found.append(f"the two servers answered differently: {figures['parity']}")
    errors = figures["servers"]["ours"]["load"]["errors"]
    if errors["total"]:
        found.append(f"our server had errors under load: {errors}")
    if figures["servers"]["mlflow"]["load"]["non_2xx"]:
        found.append(f"mlflow answered non-2xx under load: {figures['servers']['mlflow']['load']['errors']}")
    for name, server in figures["servers"].items():
        if not server["stopped_cleanly"]:
            found.append(f"{name}: processes were left running")
    logging = figures.get("prediction_log")
    if logging:
        for key in ("off", "on"):
            if logging[key]["errors"]["total"]:
                found.append(f"our server (prediction log {key}) had errors under load: {logging[key]['errors']}")
        if not logging["log"]["lines"]:
            found.append("the prediction log is empty: nothing was logged")
        if logging["log"]["write_errors"]:
            found.append(f"the prediction log had {logging['log']['write_errors']} write errors")
        if not logging["stopped_cleanly"]:
            found.append("the prediction log's servers: processes were left running")
    return found


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, int | float):
        return f"{value:,.{digits}f}"
    return str(value)


def markdown(figures: dict[str, Any]) -> str:
    """The figures as a GitHub-flavoured Markdown table, with each target and whether it is met."""
    o, m, r = figures["servers"]["ours"], figures["servers"]["mlflow"], figures["ratios"]
    targets = {t["name"]: t for t in figures["targets"]}

    def target(name: str) -> list[str]:
        t = targets.get(name)
        if t is None:
            return ["", ""]
        limit = f"{SYMBOLS[t['op']]} {t['limit']:g} {t['unit']}".replace(" ×", "×").replace(" %", "%")
        return [limit, "yes" if t["met"] else "**no**"]

    s = figures["settings"]
    rows = [
        ("requests/s", "throughput_rps", 0, "throughput", "throughput"),
        ("latency p50, ms", "p50", 2, "latency_p50", None),
        ("latency p99, ms", "p99", 2, "latency_p99", "latency_p99"),
        ("server CPU per request, µs", "cpu_us_per_request", 1, "cpu_per_request", "cpu_per_request"),
    ]
    lines = [
        (
            f"#### Serving: batch 1, {s['connections']} connections, {s['duration']} s "
            f"({figures['model']['features']}-feature {figures['model']['family']} {figures['model']['task']}, "
            f"{figures['machine']['cpus']} CPUs)"
        ),
        "",
        f"| figure | ours: {o['title']} | {m['title']} | ours is | target | met |",
        "|---|---:|---:|---:|---|---|",
    ]

    def load_value(server: dict[str, Any], key: str) -> Any:
        load = server["load"]
        return load["latency_ms"][key] if key in load["latency_ms"] else load[key]

    for label, key, digits, ratio, goal in rows:
        lines.append(
            "| "
            + " | ".join(
                [
                    label,
                    _fmt(load_value(o, key), digits),
                    _fmt(load_value(m, key), digits),
                    f"{_fmt(r[ratio], 1)}× {'more' if ratio == 'throughput' else 'less'}",
                    *(target(goal) if goal else ["", ""]),
                ]
            )
            + " |"
        )
    for label, key, digits, ratio in (
        ("cold start (process start to ready), s", "cold_start_s", 3, "cold_start"),
        ("idle resident memory, MB", "idle_rss_mb", 0, "idle_rss"),
        ("runtime environment on disk, MB", "runtime_env_mb", 0, "runtime_env"),
    ):
        lines.append(
            f"| {label} | {_fmt(o[key], digits)} | {_fmt(m[key], digits)} | {_fmt(r[ratio], 1)}× less | "
            + " | ".join(target(ratio))
            + " |"
        )
    lines.append(
        f"| errors (non-2xx + socket) | {o['load']['errors']['total']} | {m['load']['errors']['total']} | | 0 | "
        + ("yes" if o["load"]["errors"]["total"] == 0 else "**no**")
        + " |"
    )
    lines += _log_table(figures, target)
    met = sum(t["met"] for t in figures["targets"])
    p = figures["parity"]
    lines += [
        "",
        f"Targets met: **{met} of {len(figures['targets'])}** (the issues' targets, for one server process). "
        + (
            f"Same model: both servers gave the same labels and probabilities (largest difference "
            f"{p['max_abs_probability_diff']:.1e}) for the same {p['rows']} rows."
            if p["identical"]
            else "**The two servers answered differently: the comparison is invalid.**"
        ),
    ]
    machine_figures, load = figures["machine"], figures["load_average"]
    starts = "both from one start." if s["starts"] == 1 else f"both the median of {s['starts']} starts."
    notes = [
        (
            f"Load: `wrk -t1 -c{s['connections']} -d{s['duration']}s --latency`, one server at a time, after a "
            f"{s['warmup']} s warm-up; every request one real row."
        ),
        (
            f"CPU: utime + stime of the server's processes ({_processes(o)} for ours, {_processes(m)} for MLflow's) "
            "over the measured run, divided by the requests completed."
        ),
        (
            "Cold start: process start to the first 200 from the readiness endpoint (`/readyz`, MLflow's `/ping`), "
            f"polled every 5 ms; idle memory: VmRSS summed over the processes once ready; {starts}"
        ),
        (
            "Environments: fresh venvs linked from the uv cache, the interpreter not counted: ours "
            f"{o['runtime_env']['from']} ({o['runtime_env']['packages']} packages), MLflow's "
            f"{m['runtime_env']['from']} ({m['runtime_env']['packages']} packages)."
        ),
        (
            f"Machine: {machine_figures['cpus']} CPUs ({machine_figures['cpu']}); load average (1 min) "
            f"{load['before']:g} at the start, {o.get('load_average_before_load', '–')} before our load run, "
            f"{m.get('load_average_before_load', '–')} before MLflow's; {figures['date'][:10]}. The serving image "
            "(the project's `make image`) is not built here, so its size is not in this table."
        ),
    ]
    lines += ["", *(f"- {note}" for note in notes)]
    return "\n".join(lines) + "\n"


def _log_table(figures: dict[str, Any], target: Callable[[str], list[str]]) -> list[str]:
    """The prediction log's cost: our server with it against without (nothing for figures without that run)."""
    logging = figures.get("prediction_log")
    if not logging:
        return []
    off, on, log = logging["off"], logging["on"], logging["log"]
    rounds = logging["round_ratios"]
    limit, met = target("prediction_log")
    lines = [
        "",
        (
            f"Prediction log: ours with `PREDICTION_LOG_DIR` set at the default sample rate "
            f"({logging['sample']:.0%} of the requests) against ours without: {logging['rounds']} rounds, each "
            f"starting both afresh side by side, then {logging.get('warmup_per_run', 1)} s of warm-up and "
            f"{logging['seconds_per_run']} s measured on each, in alternating order:"
        ),
        "",
        "| figure | logging off | logging on | change | target | met |",
        "|---|---:|---:|---:|---|---|",
        (
            f"| requests/s | {_fmt(off['throughput_rps'], 0)} | {_fmt(on['throughput_rps'], 0)} | "
            f"{-logging['overhead_pct']:+.1f} % | {limit} lost | {met} |"
        ),
        f"| latency p50, ms | {_fmt(off['latency_ms']['p50'], 2)} | {_fmt(on['latency_ms']['p50'], 2)} | | | |",
        f"| latency p99, ms | {_fmt(off['latency_ms']['p99'], 2)} | {_fmt(on['latency_ms']['p99'], 2)} | | | |",
        (
            f"| server CPU per request, µs | {_fmt(off['cpu_us_per_request'])} | {_fmt(on['cpu_us_per_request'])} | "
            f"{on['cpu_us_per_request'] - off['cpu_us_per_request']:+.1f} | | |"
        ),
        "",
        (
            f"Throughput with the log against without: the median of the {len(rounds)} rounds' ratios, "
            f"{logging['throughput_ratio']:.3f} (from {min(rounds):.3f} to {max(rounds):.3f}; "
            f"{logging['throughput_ratio_all_rounds']:.3f} over all rounds together). "
            f"The log holds {log['lines']:,} lines ({log['bytes'] / MB:.1f} MB in {log['files']} "
            f"file{'s' if log['files'] != 1 else ''}) for {log['requests']:,} requests "
            f"({log['share_logged']:.1%}), {log['dropped']} dropped, {log['write_errors']} write errors."
        ),
    ]
    return lines


def _processes(server: dict[str, Any]) -> str:
    count = server["processes"]
    return f"{count} process" if count == 1 else f"{count} processes"


def update_readme(readme: Path, table: str) -> None:
    """Replace the block between the serving-benchmark markers in ``readme`` with ``table``."""
    text = readme.read_text()
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise SystemExit(f"error: {readme} has no {BEGIN} ... {END} block to fill")
    readme.write_text(text[: start + len(BEGIN)] + "\n" + table + text[end:])


def write_outputs(figures: dict[str, Any], output: Path, table_path: Path | None, readme: Path | None) -> str:
    """The JSON, the Markdown table and, if asked, the README block; return the table."""
    write_json(output, figures)
    table = markdown(figures)
    target = table_path or output.with_suffix(".md")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(table)
    if readme:
        update_readme(readme, table)
    return table


# --- The run --------------------------------------------------------------------------------------------------------


def pipeline(work: Path, settings: argparse.Namespace) -> tuple[Path, dict[str, Any], dict[str, float]]:
    """Write the data, bake the project, run its pipeline up to ``track``; return it, its description and timings."""
    log = work / "logs" / "pipeline.log"
    data = write_dataset(work / "data.csv", settings.rows, settings.seed)
    started = time.perf_counter()
    project = bake(
        work / "projects",
        {
            "project_name": "Serving Bench",
            "dataset": str(data),
            "target_column": TARGET_COLUMN,
            "task": "classification",
            "model_family": "linear",
        },
        overwrite=True,
    )
    seconds = {"bake": time.perf_counter() - started}
    for name, command in (
        ("sync", ["uv", "sync", "--frozen"]),
        ("setup", ["make", "setup"]),
        ("repro", ["uv", "run", "--frozen", "dvc", "repro", "track"]),
    ):
        print(f"  {name}: {' '.join(command)}", flush=True)
        seconds[name] = measure(command, project, log=log, echo=False).seconds
    if not (project / "models" / "model.onnx").is_file():
        raise StepFailed(f"the pipeline did not write {project / 'models' / 'model.onnx'}")
    return project, describe(project), {k: round(v, 1) for k, v in seconds.items()}


def benchmark(settings: argparse.Namespace) -> dict[str, Any]:
    """The whole run; returns the figures (see the module docstring)."""
    work: Path = settings.work.resolve()
    shutil.rmtree(work, ignore_errors=True)
    (work / "logs").mkdir(parents=True)
    load_before = os.getloadavg()[0]
    cpus = os.cpu_count() or 1
    print(f"serving benchmark in {work} (logs in {work / 'logs'})", flush=True)
    if load_before > cpus / 2:
        print(f"warning: load average {load_before:.1f} on {cpus} CPUs: other work will skew the figures", flush=True)
    phases: dict[str, float] = {}
    clock = time.perf_counter()
    print("1. data, bake, pipeline", flush=True)
    project, about, pipeline_seconds = pipeline(work, settings)
    package = about["package"]
    metadata = json.loads((project / "models" / "metadata.json").read_text())
    run = json.loads((project / "reports" / "mlflow_run.json").read_text())
    artifacts = model_artifacts(project, run["model_uri"], work / "logs" / "pipeline.log")
    print("2. runtime environments", flush=True)
    phases["pipeline"], clock = time.perf_counter() - clock, time.perf_counter()
    envs = runtime_envs(project, package, artifacts, work)
    phases["environments"], clock = time.perf_counter() - clock, time.perf_counter()
    rows = sample_rows(work / "data.csv", PARITY_ROWS)
    classes = [str(c) for c in metadata["classes"]]
    inputs = onnx_inputs(project, work / "logs" / "pipeline.log")
    numeric = [feature["name"] for feature in metadata["inputs"] if feature["type"] == "number"]
    servers: dict[str, dict[str, Any]] = {}
    our_server = ours(project, package, work / "envs" / "ours")
    for server in (our_server, mlflow(project, run["run_id"], inputs, numeric)):
        print(f"3. {server.name}: {' '.join(server.command)}", flush=True)
        servers[server.name] = {
            **measure_server(server, rows, classes, settings, work),
            "runtime_env": envs[server.name],
        }
        servers[server.name]["runtime_env_mb"] = envs[server.name]["runtime_env_mb"]
        phases[server.name], clock = time.perf_counter() - clock, time.perf_counter()
    print(f"4. prediction log: {our_server.name} with PREDICTION_LOG_DIR (sample {LOG_SAMPLE}) and without", flush=True)
    prediction_log = measure_prediction_log(our_server, rows, settings, work)
    phases["prediction_log"] = time.perf_counter() - clock
    figures: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "uv run python -m tools.serving_benchmark " + " ".join(settings.argv),
        "machine": machine(),
        "load_average": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
        "settings": {
            "duration": settings.duration,
            "warmup": settings.warmup,
            "connections": settings.connections,
            "wrk_threads": 1,
            "batch": 1,
            "starts": settings.starts,
            "rows": settings.rows,
            "seed": settings.seed,
            "log_rounds": settings.log_rounds,
            "log_seconds": settings.log_seconds,
            "log_sample": LOG_SAMPLE,
        },
        "model": {
            "task": about["task"],
            "family": about["model_family"],
            "features": len(metadata["inputs"]),
            "classes": classes,
            "version": metadata.get("version"),
            "onnx_bytes": (project / "models" / "model.onnx").stat().st_size,
            "mlflow_run_id": run["run_id"],
            "mlflow_model_uri": run["model_uri"],
            "onnx_inputs": inputs,
        },
        "project": shown(project),
        "pipeline_seconds": pipeline_seconds,
        "phase_seconds": {name: round(seconds, 1) for name, seconds in phases.items()},
        "image": None,  # the project's `make image` (buildah) is not run here: no image size
        "servers": servers,
        "prediction_log": prediction_log,
    }
    figures["parity"] = parity(servers["ours"].pop("predictions"), servers["mlflow"].pop("predictions"))
    figures["ratios"] = ratios(servers)
    figures["targets"] = judge(figures)
    figures["targets_met"] = all(t["met"] for t in figures["targets"])
    figures["problems"] = problems(figures)
    figures["valid"] = not figures["problems"]
    return figures


def _interrupt(signum: int, frame: Any) -> None:
    raise Interrupted(f"stopped by signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark (or, with ``--render``, only rewrite the Markdown from the JSON)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="python -m tools.serving_benchmark",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds of measured load per server (%(default)s)")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of load before measuring (%(default)s)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (%(default)s)")
    parser.add_argument("--starts", type=int, default=3, help="cold starts per server, median kept (%(default)s)")
    parser.add_argument(
        "--log-rounds", type=int, default=8, help="rounds of the prediction log's comparison (%(default)s)"
    )
    parser.add_argument(
        "--log-seconds", type=int, default=3, help="seconds of load per server and round in it (%(default)s)"
    )
    parser.add_argument("--rows", type=int, default=20_000, help="rows of the training CSV (%(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the training CSV (%(default)s)")
    parser.add_argument("--work", type=Path, default=WORK, help="scratch folder, emptied first (%(default)s)")
    parser.add_argument("--output", type=Path, default=OUTPUT, help="figures as JSON (%(default)s)")
    parser.add_argument("--markdown", type=Path, help="the Markdown table (default: the output with .md)")
    parser.add_argument("--readme", type=Path, help=f"also write the table into this file's {BEGIN} block")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target of the issues is missed")
    parser.add_argument("--render", action="store_true", help="only rewrite the Markdown (and README) from --output")
    args = parser.parse_args(argv)
    args.argv = argv
    if min(args.duration, args.starts, args.connections, args.log_rounds, args.log_seconds) < 1 or args.warmup < 0:
        parser.error(
            "--duration, --starts, --connections, --log-rounds and --log-seconds must be at least 1, --warmup at least 0"
        )

    if args.render:
        figures = json.loads(args.output.read_text())
        print(write_outputs(figures, args.output, args.markdown, args.readme), end="")
        return 0
    if shutil.which("wrk") is None:
        print("error: wrk is not installed (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        figures = benchmark(args)
    except (StepFailed, Interrupted, KeyboardInterrupt) as exc:
        print(f"error: {exc or type(exc).__name__}", file=sys.stderr)
        return 2
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print()
    print(write_outputs(figures, args.output, args.markdown, args.readme), end="")
    for problem in figures["problems"]:
        print(f"error: invalid run: {problem}", file=sys.stderr)
    missed = [t["name"] for t in figures["targets"] if not t["met"]]
    if missed:
        print(f"targets missed: {', '.join(missed)}", file=sys.stderr if args.check else sys.stdout)
    if figures["problems"] or (args.check and missed):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
