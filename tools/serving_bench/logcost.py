"""What the prediction log costs our server (issue 5): the same server with it and without, in paired rounds."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from tools.benchmark import StepFailed
from tools.serving_bench.common import LOG_SAMPLE, LOG_WARMUP
from tools.serving_bench.load import lua_script, wrk
from tools.serving_bench.procs import free_port, group_members, http_request, tree_cpu_seconds
from tools.serving_bench.servers import Server, running


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


def loads_summary(loads: list[dict[str, Any]]) -> dict[str, Any]:
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
    off, on = loads_summary(loads["off"]), loads_summary(loads["on"])
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
