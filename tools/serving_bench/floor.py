"""What a throughput target asks of our server, against what it cannot go below on this machine.

Our server is one process on one core (``cpu_cores_busy`` 1.0 under load), so its throughput is one second of CPU
divided by its CPU time per request, and a target of T times the best peer's requests per second leaves a budget of
``1 / (T * peer req/s)`` of CPU per request. Three figures bound it from below, measured on the run's server and model:

- the HTTP layer alone: ``GET /healthz`` under the same wrk load (no body, no JSON, no model), the server's CPU per
  answered request: reading, parsing and answering a request, the event loop and the socket system calls;
- the JSON alone, per route: ``orjson.loads`` of the request the load sends and ``orjson.dumps`` of the answer the
  server gave it, in the server's own runtime venv;
- the model's run alone: ``Model.infer`` on one parsed row (onnxruntime's run and reading its outputs), in process.

In-process figures are the fastest of 7 rounds of CPU time. Their sum is the floor of a prediction on that route
before anything is validated or routed: any server must read the request, parse its JSON, run the model and write the
answer. When the budget is below the floor, no change to the application meets the target: only a faster machine or
slower peers do.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path
from typing import Any

from tools.benchmark import StepError
from tools.serving_bench.load import lua_get, wrk
from tools.serving_bench.procs import http_request, tree_cpu_seconds
from tools.serving_bench.servers import Server, running
from tools.shared import free_port

HTTP_PATH = "/healthz"
ROUTES = {"throughput_peers": "ours", "throughput_peers_v2": "ours-v2"}
"""The throughput targets against the best peer, and the server (route) each is measured on."""

_IN_PROCESS = """
import json, sys, time
from pathlib import Path
import orjson
from {package}.serving.model import Model

def fastest(call):
    rounds = []
    for _ in range(7):
        start = time.process_time()
        for _ in range(2000):
            call()
        rounds.append((time.process_time() - start) / 2000 * 1e6)
    return round(min(rounds), 2)

model = Model(Path(sys.argv[1]))
if not model.self_check():
    sys.exit(f"the model is not ready: {{model.reason}}")
routes = json.loads(sys.argv[2])
batch = model.parse(orjson.loads(routes["ours"][0]))
figures = {{"model_run_us": fastest(lambda: model.infer(batch)), "json_us": {{}}}}
for name, (request, answer) in routes.items():
    request, answer = request.encode(), orjson.loads(answer)
    figures["json_us"][name] = fastest(lambda: (orjson.loads(request), orjson.dumps(answer)))
print(json.dumps(figures))
"""


def measure_floor(
    servers: list[Server], package: str, venv: Path, row: dict[str, float], settings: argparse.Namespace, work: Path
) -> dict[str, Any]:
    """The floor's figures in µs: the HTTP layer under wrk, then in process each route's JSON and the model's run.

    ``servers`` are one process on several routes (``ours`` first): it is started once.
    """
    log = work / "logs" / "floor.log"
    script = work / "floor.lua"
    script.write_text(lua_get(HTTP_PATH))
    exchanges: dict[str, tuple[str, str]] = {}
    port = free_port()
    with running(servers[0], port, log) as (process, _cold):
        for server in servers:
            if server.configure is not None:
                server.configure(port)
            request = json.dumps(server.request([row]), separators=(",", ":"))  # the body the load sends
            status, answer = http_request(port, "POST", server.predict_path, json.loads(request))
            if status != 200:
                raise StepError(f"{server.name}: {server.predict_path} answered {status}: {answer[:500]!r}")
            exchanges[server.name] = request, answer.decode()
        url = f"http://127.0.0.1:{port}{HTTP_PATH}"
        if settings.warmup:
            wrk(url, script, settings.warmup, settings.connections, log)
        before = tree_cpu_seconds(process.pid)
        load = wrk(url, script, settings.duration, settings.connections, log)
        cpu = tree_cpu_seconds(process.pid) - before
    if not load["requests"] or load["errors"]["total"]:
        raise StepError(f"GET {HTTP_PATH} under load: {load['requests']} requests, errors {load['errors']}")
    model_dir = str(servers[0].cwd / "models")
    command = [str(venv / "bin" / "python"), "-c", _IN_PROCESS.format(package=package), model_dir]
    result = subprocess.run([*command, json.dumps(exchanges)], capture_output=True, text=True, timeout=300, check=False)
    if result.returncode != 0:
        raise StepError(f"the in-process measurement failed (exit {result.returncode}): {result.stderr[-2000:]}")
    measured = json.loads(result.stdout)
    http_us, model_us = round(cpu / load["requests"] * 1e6, 1), measured["model_run_us"]
    return {
        "http_path": HTTP_PATH,
        "http_us": http_us,
        "http_throughput_rps": load["throughput_rps"],
        "model_run_us": model_us,
        "json_us": measured["json_us"],
        "floor_us": {name: round(http_us + json_us + model_us, 1) for name, json_us in measured["json_us"].items()},
    }


def budgets(figures: dict[str, Any], targets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per throughput target against the best peer: the CPU per request it allows, ours, and the route's floor."""
    floor, servers = figures.get("floor"), figures["servers"]
    best = figures["ratios"].get("best_peer")
    if not floor or not best:
        return []
    peer = best["which"]["throughput"]
    peer_rps = servers[peer]["load"]["throughput_rps"]
    rows = []
    for target in targets:
        route = ROUTES.get(target["name"])
        if route is None or route not in servers or route not in floor["floor_us"]:
            continue
        budget = round(1e6 / (target["limit"] * peer_rps), 1)
        rows.append(
            {
                "target": target["name"],
                "route": route,
                "peer": peer,
                "peer_rps": peer_rps,
                "times": target["limit"],
                "budget_us": budget,
                "ours_us": servers[route]["load"]["cpu_us_per_request"],
                "floor_us": floor["floor_us"][route],
                "reachable": budget > floor["floor_us"][route],
            }
        )
    return rows
