"""Two servers compared in paired rounds.

The method of both costs the benchmark measures on our server: what its prediction log costs (``logcost``) and what its
attack protections cost (``hardening``).

Each round starts both servers afresh, side by side (the idle one costs nothing), warms each up for ``LOG_WARMUP``
seconds, loads one then the other (the order alternating between rounds, so a slower moment of the machine falls on
both) and stops them. Fresh processes each round, because two starts of the very same server differ by a few %
(memory layout, where the scheduler puts them), which a single pair would carry into the ratio. The ratio is the
median of the rounds' ratios (the candidate's throughput over the reference's), its spread their lowest and highest;
each side's figures are over all its rounds.
"""

from __future__ import annotations

import contextlib
import os
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.serving_bench.common import LOG_WARMUP
from tools.serving_bench.load import lua_script, wrk
from tools.serving_bench.procs import tree_cpu_seconds
from tools.serving_bench.servers import Server, running
from tools.shared import free_port, group_members

# Called once both servers of a round were loaded, still running: the round's index and each side's port.
AfterRound = Callable[[int, dict[str, int]], None]


@dataclass
class Rounds:
    """What the rounds measured: per side, one wrk run per round (with the server's CPU seconds over it)."""

    reference: str
    candidate: str
    loads: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    sent: dict[str, int] = field(default_factory=dict)  # requests answered, warm-ups included
    pids: list[int] = field(default_factory=list)
    load_average_before: float = 0.0


def paired_rounds(
    sides: dict[str, Server],
    body: str,
    *,
    rounds: int,
    seconds: int,
    connections: int,
    work: Path,
    label: str,
    after_round: AfterRound | None = None,
) -> Rounds:
    """Load the two servers of ``sides`` (the reference first, then the candidate) in ``rounds`` paired rounds.

    Both are posted ``body`` on their own ``predict_path``; their logs go to ``work/logs/<label>*.log``.
    """
    if len(sides) != 2:
        raise ValueError(f"paired rounds compare two servers, not {len(sides)}")
    reference, candidate = sides
    result = Rounds(reference, candidate, {key: [] for key in sides}, dict.fromkeys(sides, 0))
    log, wrk_log = work / "logs" / f"{label}.log", work / "logs" / f"{label}-wrk.log"
    scripts = {}
    for key, server in sides.items():
        scripts[key] = work / f"{label}-{key}.lua"
        scripts[key].write_text(lua_script(server.predict_path, body))
    result.load_average_before = round(os.getloadavg()[0], 2)
    for round_ in range(rounds):
        order = (reference, candidate) if round_ % 2 == 0 else (candidate, reference)
        with contextlib.ExitStack() as stack:
            processes, ports = {}, {}
            for key in order:
                ports[key] = free_port()  # taken by this server before the next one asks for a free port
                processes[key], _ = stack.enter_context(running(sides[key], ports[key], log))
                result.pids.append(processes[key].pid)
            urls = {key: f"http://127.0.0.1:{port}{sides[key].predict_path}" for key, port in ports.items()}
            for key in order:
                result.sent[key] += wrk(urls[key], scripts[key], LOG_WARMUP, connections, wrk_log)["requests"]
            for key in order:
                cpu_before = tree_cpu_seconds(processes[key].pid)
                load = wrk(urls[key], scripts[key], seconds, connections, wrk_log)
                load["cpu_seconds"] = tree_cpu_seconds(processes[key].pid) - cpu_before
                result.sent[key] += load["requests"]
                result.loads[key].append(load)
            if after_round is not None:
                after_round(round_, ports)
    return result


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


def compare(result: Rounds, seconds: int) -> dict[str, Any]:
    """The rounds' figures.

    Each side's summary (under its key), the median ratio and the cost it means, with the rounds' spread
    (``overhead_pct_range``: the lowest and highest cost of a round).
    """
    reference, candidate = result.loads[result.reference], result.loads[result.candidate]
    ratios = [b["throughput_rps"] / a["throughput_rps"] for a, b in zip(reference, candidate, strict=True)]
    ratio = statistics.median(ratios)
    before, after = loads_summary(reference), loads_summary(candidate)
    return {
        "rounds": len(ratios),
        "seconds_per_run": seconds,
        "warmup_per_run": LOG_WARMUP,
        "load_average_before_load": result.load_average_before,
        result.reference: before,
        result.candidate: after,
        "throughput_ratio": round(ratio, 4),  # the median of the rounds' ratios
        "overhead_pct": round((1 - ratio) * 100, 2),
        "overhead_pct_range": [round((1 - max(ratios)) * 100, 2), round((1 - min(ratios)) * 100, 2)],
        "round_ratios": [round(r, 3) for r in ratios],
        "throughput_ratio_all_rounds": round(after["throughput_rps"] / before["throughput_rps"], 4),
        "stopped_cleanly": not any(group_members(pid) for pid in result.pids),
    }
