"""What the prediction log costs our server (issue 5).

The same server with it and without, in paired rounds (``rounds``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tools.benchmark import StepError
from tools.serving_bench.common import LOG_SAMPLE
from tools.serving_bench.procs import http_request
from tools.serving_bench.rounds import compare, paired_rounds
from tools.serving_bench.servers import Server


def log_contents(directory: Path) -> dict[str, int]:
    """Files, whole lines and bytes of the prediction log under ``directory``."""
    files = lines = size = 0
    for path in sorted(directory.rglob("*.jsonl")):
        data = path.read_bytes()
        files, lines, size = files + 1, lines + data.count(b"\n"), size + len(data)
    return {"files": files, "lines": lines, "bytes": size}


def prometheus_counters(text: str, prefix: str) -> dict[str, float]:
    """The label-less samples whose name starts with ``prefix`` in a Prometheus exposition text.

    The text is parsed by prometheus_client's parser.
    """
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith(prefix) and not sample.labels
    }


def measure_prediction_log(
    server: Server, rows: list[dict[str, float]], settings: argparse.Namespace, work: Path
) -> dict[str, Any]:
    """Our server with ``PREDICTION_LOG_DIR`` set (default sample rate) against the same server without.

    In paired rounds (``rounds``). The log is counted once the servers stopped (a stopping server writes what it holds),
    and its counters are read from each round's logging server before it stops.
    """
    directory = work / "prediction-log"
    shutil.rmtree(directory, ignore_errors=True)
    base = replace(server, env={**server.env, "ADMIN_PORT": "off"})  # two side by side: one admin port each is moot
    logging_env = {**base.env, "PREDICTION_LOG_DIR": str(directory), "PREDICTION_LOG_SAMPLE": str(LOG_SAMPLE)}
    counters: dict[str, float] = {}

    def read_counters(round_: int, ports: dict[str, int]) -> None:
        time.sleep(1.5)  # the log hands its lines to its writer thread every second
        status, text = http_request(ports["on"], "GET", "/metrics")
        if status != 200:
            raise StepError(f"ours-logging: /metrics answered {status}")
        for name, value in prometheus_counters(text.decode(), "prediction_log_").items():
            counters[name] = counters.get(name, 0) + value

    result = paired_rounds(
        {"off": base, "on": replace(base, name="ours-logging", env=logging_env)},
        json.dumps(server.request(rows[:1]), separators=(",", ":")),
        rounds=settings.log_rounds,
        seconds=settings.log_seconds,
        connections=settings.connections,
        work=work,
        label="prediction-log",
        after_round=read_counters,
    )
    contents = log_contents(directory)
    sent = result.sent["on"]
    figures = {
        "sample": LOG_SAMPLE,
        **compare(result, settings.log_seconds),
        "log": {
            **contents,
            "requests": sent,
            "share_logged": round(contents["lines"] / sent, 4) if sent else None,
            "dropped": int(counters.get("prediction_log_dropped_total", 0)),
            "write_errors": int(counters.get("prediction_log_write_errors_total", 0)),
        },
    }
    off, on = figures["off"], figures["on"]
    print(
        f"  off: {off['throughput_rps']:,.0f} req/s, on: {on['throughput_rps']:,.0f} req/s "
        f"({figures['overhead_pct']:+.2f} % lost); {contents['lines']:,} lines in {contents['files']} file(s)",
        flush=True,
    )
    return figures
