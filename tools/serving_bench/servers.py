"""The servers measured, and how one is measured: cold starts, idle memory, the answers it gives, and wrk's load.

Three groups: ``ours`` (``<package> serve``: the hand-written HTTP layer), ``asgi`` (the very same application objects
behind a well-kept ASGI server, ``serving/asgi.py``: uvicorn with httptools and uvloop, granian), and ``peer`` (other
model servers on the same model: ``mlflow models serve`` here, KServe and MLServer in ``peers``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from subprocess import Popen
from typing import Any

from tools.benchmark import StepError, clean_env
from tools.serving_bench.common import TOLERANCE, run_step, shown
from tools.serving_bench.load import lua_script, wrk
from tools.serving_bench.procs import http_request, tree_cpu_seconds, tree_memory, wait_until_ready
from tools.shared import free_port, group_members, stop_process_group

Answers = list[tuple[str, list[float]]]  # per row: the label and the probabilities in the order of the classes

# The ASGI servers' settings: what a careful deployment sets (no access log, a cap on concurrency, a keep-alive and a
# header-read timeout), one worker process on uvloop like ours.
UVICORN_OPTIONS = [
    *("--http", "httptools", "--loop", "uvloop", "--lifespan", "on", "--no-access-log"),
    *("--limit-concurrency", "1000", "--timeout-keep-alive", "5", "--backlog", "1024", "--log-level", "warning"),
]
GRANIAN_OPTIONS = [
    *("--interface", "asgi", "--loop", "uvloop", "--http", "1", "--workers", "1", "--no-ws", "--no-access-log"),
    *("--http1-header-read-timeout", "10000", "--backpressure", "1000", "--backlog", "1024", "--log-level", "warning"),
]


@dataclass
class Server:
    """How to start one server, and how to talk to it."""

    name: str
    title: str
    group: str  # "ours", "asgi" or "peer"
    command: list[str]
    env: dict[str, str]
    cwd: Path
    ready_path: str
    predict_path: str
    request: Callable[[list[dict[str, float]]], Any]  # rows -> request document
    answers: Callable[[Any, list[str]], Answers]  # response, classes -> (label, probabilities) per row
    tolerance: float = TOLERANCE  # largest difference from our probabilities that still is the same model
    spare_ports: tuple[str, ...] = ()  # environment variables given a free port of their own at each start
    # Called with the port once the server is ready, before its first request: reads what its requests need from it.
    configure: Callable[[int], None] | None = None


@contextlib.contextmanager
def running(server: Server, port: int, log: Path) -> Iterator[tuple[Popen[bytes], float]]:
    """Start ``server`` on ``port`` in a new process group; yield it and its cold start; always stop the group.

    ``{port}`` in the command and in the environment's values is the port.
    """
    env = {**server.env, "HOST": "127.0.0.1", "PORT": str(port)}
    env = {k: v.replace("{port}", str(port)) for k, v in env.items()}
    env.update({name: str(free_port()) for name in server.spare_ports})
    command = [part.replace("{port}", str(port)) for part in server.command]
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as sink:
        sink.write(f"\n$ (cd {server.cwd} && PORT={port} {' '.join(command)})\n".encode())
        sink.flush()
        started = time.perf_counter()
        process = Popen(command, cwd=server.cwd, env=env, stdout=sink, stderr=sink, start_new_session=True)
    try:
        try:
            cold = wait_until_ready(port, server.ready_path, process, started)
        except StepError as exc:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
            raise StepError(f"{server.name}: {exc}; its log ({log}) ends with:\n{tail}") from None
        yield process, cold
    finally:
        if not stop_process_group(process):
            raise StepError(f"{server.name}: processes of group {process.pid} survived SIGKILL")


def _ours_env(project: Path) -> dict[str, str]:
    return {
        **{k: v for k, v in clean_env().items() if not k.startswith("PREDICTION_LOG_")},  # logging off
        "MODEL_DIR": str(project / "models"),
        "ADMIN_PORT": "off",  # the ASGI app has no admin API: none of the three listens on a second port
    }


def _our_answers(doc: Any, classes: list[str]) -> Answers:
    return [(str(p["label"]), [float(p["probabilities"][c]) for c in classes]) for p in doc["predictions"]]


def ours(project: Path, package: str, venv: Path) -> Server:
    """The generated project's server, from its runtime-only venv."""
    return Server(
        name="ours",
        title=f"`{package} serve`",
        group="ours",
        command=[str(venv / "bin" / package), "serve"],
        env=_ours_env(project),
        cwd=project,
        ready_path="/readyz",
        predict_path="/predict",
        request=lambda rows: {"instances": rows},
        answers=_our_answers,
    )


def asgi(kind: str, project: Path, package: str, venv: Path) -> Server:
    """Our application (``<package>.serving.asgi``) on ``kind``: ``uvicorn`` or ``granian``, from ``venv``."""
    target = f"{package}.serving.asgi:create_app"
    if kind == "uvicorn":
        command = [str(venv / "bin" / "uvicorn"), "--factory", target, "--host", "127.0.0.1", "--port", "{port}"]
        command += UVICORN_OPTIONS
    elif kind == "granian":
        command = [str(venv / "bin" / "granian"), "--factory", "--host", "127.0.0.1", "--port", "{port}"]
        command += [*GRANIAN_OPTIONS, target]
    else:
        raise ValueError(f"unknown ASGI server {kind!r}: uvicorn or granian")
    return Server(
        name=kind,
        title=f"{kind} + ASGI",
        group="asgi",
        command=command,
        env=_ours_env(project),
        cwd=project,
        ready_path="/readyz",
        predict_path="/predict",
        request=lambda rows: {"instances": rows},
        answers=_our_answers,
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
        run_step([str(project / ".venv" / "bin" / "python"), "-c", _ONNX_INPUTS], project, log)
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
            raise StepError(f"cannot fill the ONNX input {name!r} of shape {shape} from the features")
    return {"inputs": feed}


def mlflow_env(project: Path) -> dict[str, str]:
    """The environment ``mlflow`` commands run in: the project's tracking store, no telemetry."""
    env = clean_env()
    env["PATH"] = os.pathsep.join([str(project / ".venv" / "bin"), env["PATH"]])  # mlflow execs `uvicorn` by name
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{project / 'mlflow.db'}"
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"  # no attempts to reach the internet from a closed machine
    env["UVICORN_ACCESS_LOG"] = "false"  # the scoring server's uvicorn: no log line per request, like the others
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
    run_step([*command, "--dst-path", str(target)], project, log, env=mlflow_env(project))
    return next(p.parent for p in target.rglob("requirements.txt"))


def mlflow(project: Path, run_id: str, inputs: list[dict[str, Any]], numeric: list[str]) -> Server:
    """``mlflow models serve`` of the run's logged ONNX model, from the project's venv (``--env-manager local``)."""
    venv = project / ".venv"
    return Server(
        name="mlflow",
        title="`mlflow models serve`",
        group="peer",
        command=[
            str(venv / "bin" / "mlflow"),
            *("models", "serve", "-m", f"runs:/{run_id}/model", "--env-manager", "local"),
            *("-h", "127.0.0.1", "-p", "{port}"),
        ],
        env=mlflow_env(project),
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


def measure_server(
    server: Server, rows: list[dict[str, float]], classes: list[str], settings: argparse.Namespace, work: Path
) -> dict[str, Any]:
    """Cold starts and idle memory (each start), then predictions for the parity check, then the load run."""
    log, wrk_log = work / "logs" / f"{server.name}.log", work / "logs" / f"{server.name}-wrk.log"
    script = work / f"{server.name}.lua"
    colds: list[float] = []
    idle: list[float] = []
    figures: dict[str, Any] = {
        "title": server.title,
        "group": server.group,
        "command": [shown(part) for part in server.command],
        "pids": [],
    }
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
            if server.configure is not None:
                server.configure(port)
            script.write_text(
                lua_script(server.predict_path, json.dumps(server.request(rows[:1]), separators=(",", ":")))
            )
            status, answer = http_request(port, "POST", server.predict_path, server.request(rows))
            if status != 200:
                raise StepError(f"{server.name}: {server.predict_path} answered {status}: {answer[:500]!r}")
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
