"""Load with wrk: a script that POSTs one body and prints wrk's exact figures as one JSON line, and its parser."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from tools.benchmark import StepError

SUMMARY_MARK = "SERVING_BENCHMARK_SUMMARY "

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


def lua_get(path: str) -> str:
    """A wrk script that GETs ``path`` and prints its summary as one JSON line at the end."""
    return f'wrk.method = "GET"\nwrk.path = "{path}"\n{_LUA_DONE}'


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
        raise StepError(f"`{' '.join(command)}` failed (exit {result.returncode}):\n{result.stderr[-2000:]}")
    return parse_wrk(result.stdout)
