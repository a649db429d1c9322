"""The run's figures judged and written: same-model checks, ratios, the issues' targets, Markdown and the README."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from tools.serving_bench.common import TOLERANCE

PEERS = ("mlflow", "kserve", "mlserver")  # the three peers: "the best of the three"
ASGI = ("uvicorn", "granian")
V2 = "ours-v2"  # ours on POST /v2/models/{name}/infer (``v2``)
PREDICT, INFER = "`/predict`", "v2 `…/infer`"
# figure -> (how to read it from a server's figures, True if higher is better)
FIGURES: dict[str, tuple[Callable[[dict[str, Any]], float | None], bool]] = {
    "throughput": (lambda s: s["load"]["throughput_rps"], True),
    "latency_p50": (lambda s: s["load"]["latency_ms"]["p50"], False),
    "latency_p99": (lambda s: s["load"]["latency_ms"]["p99"], False),
    "cpu_per_request": (lambda s: s["load"]["cpu_us_per_request"], False),
    "cold_start": (lambda s: s["cold_start_s"], False),
    "idle_rss": (lambda s: s["idle_rss_mb"], False),
    "runtime_env": (lambda s: s["runtime_env_mb"], False),
}


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a and b else None


def ratios(ours: dict[str, Any], other: dict[str, Any]) -> dict[str, float | None]:
    """How many times better ours is than ``other``: higher throughput, lower everything else."""
    found: dict[str, float | None] = {}
    for name, (read, higher) in FIGURES.items():
        a, b = read(ours), read(other)
        found[name] = _ratio(a, b) if higher else _ratio(b, a)
    return found


def best_of(servers: dict[str, dict[str, Any]], names: tuple[str, ...], ours: str = "ours") -> dict[str, Any] | None:
    """``ours`` against the best of ``names`` in each figure (each may be a different server); None unless all ran."""
    if ours not in servers or any(name not in servers for name in names):
        return None
    found: dict[str, Any] = {"which": {}}
    for figure, (read, higher) in FIGURES.items():
        values: dict[str, float] = {name: value for name in names if (value := read(servers[name]))}
        if not values:
            found[figure], found["which"][figure] = None, None
            continue
        which = (max if higher else min)(values, key=lambda name: values[name])
        mine = read(servers[ours])
        found["which"][figure] = which
        found[figure] = _ratio(mine, values[which]) if higher else _ratio(values[which], mine)
    return found


def all_ratios(servers: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Ours against each other server, against the best of the three peers, and against the best ASGI server.

    And ours on the v2 infer route against the best peer (``v2_best_peer``).
    """
    found: dict[str, Any] = {name: ratios(servers["ours"], s) for name, s in servers.items() if name != "ours"}
    found["best_peer"] = best_of(servers, PEERS)
    found["best_asgi"] = best_of(servers, ASGI)
    found["v2_best_peer"] = best_of(servers, PEERS, ours=V2)
    return found


def _read(*keys: str) -> Callable[[dict[str, Any]], float | None]:
    def read(figures: dict[str, Any]) -> float | None:
        value: Any = figures
        for key in keys:
            if not isinstance(value, dict) or value.get(key) is None:
                return None
            value = value[key]
        return float(value)

    return read


# name, what, unit, how to read the value from the figures, comparison, limit
TARGETS: list[tuple[str, str, str, Callable[[dict[str, Any]], float | None], str, float]] = [
    (
        "throughput",
        "throughput vs `mlflow models serve` (issue 3)",
        "×",
        _read("ratios", "mlflow", "throughput"),
        ">=",
        20,
    ),
    *(
        (
            f"throughput_peers{suffix}",
            f"throughput vs the best of MLflow, KServe and MLServer, {route} (issue 11)",
            "×",
            _read("ratios", ratios, "throughput"),
            ">=",
            15,
        )
        for suffix, route, ratios in (("", PREDICT, "best_peer"), ("_v2", INFER, "v2_best_peer"))
    ),
    (
        "http_layer",
        "throughput vs the best ASGI server on the same application (issue 11: keep the hand-written layer)",
        "×",
        _read("ratios", "best_asgi", "throughput"),
        ">=",
        1.5,
    ),
    *(
        (
            f"cpu_per_request{suffix}",
            f"server CPU per request, {route}",
            "µs",
            _read(*keys, "cpu_us_per_request"),
            "<=",
            40,
        )
        for suffix, route, keys in (("", PREDICT, ("servers", "ours", "load")), ("_v2", INFER, ("servers", V2, "load")))
    ),
    *(
        (f"latency_p99{suffix}", f"p99 latency, {route}", "ms", _read(*keys, "latency_ms", "p99"), "<=", 2)
        for suffix, route, keys in (("", PREDICT, ("servers", "ours", "load")), ("_v2", INFER, ("servers", V2, "load")))
    ),
    ("cold_start", "cold start (process start to ready)", "s", _read("servers", "ours", "cold_start_s"), "<=", 0.5),
    ("runtime_env", "runtime environment", "MB", _read("servers", "ours", "runtime_env_mb"), "<=", 200),
    ("idle_rss", "idle resident memory", "MB", _read("servers", "ours", "idle_rss_mb"), "<=", 100),
    (
        "prediction_log",
        "throughput lost to the prediction log at the default sample rate",
        "%",
        _read("prediction_log", "overhead_pct"),
        "<",
        5,
    ),
    (
        "hardening",
        "throughput lost to the attack protections (vs the server before the hardening, `/predict`; issue 11)",
        "%",
        _read("hardening", "overhead_pct"),
        "<=",
        10,
    ),
]
COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">=": lambda value, limit: value >= limit,
    "<=": lambda value, limit: value <= limit,
    "<": lambda value, limit: value < limit,
}
SYMBOLS = {">=": "≥", "<=": "≤", "<": "<"}


def judge(figures: dict[str, Any]) -> list[dict[str, Any]]:
    """The issues' targets for our server, each with its value and whether it is met (None: not measured)."""
    judged = []
    for name, what, unit, read, op, limit in TARGETS:
        value = read(figures)
        met = None if value is None else COMPARE[op](value, limit)
        judged.append({"name": name, "what": what, "unit": unit, "op": op, "limit": limit, "value": value, "met": met})
    return judged


def parity(
    a: list[tuple[str, list[float]]], b: list[tuple[str, list[float]]], tolerance: float = TOLERANCE
) -> dict[str, Any]:
    """Whether two servers' answers to the same rows agree: the same labels, probabilities within ``tolerance``."""
    same_labels = len(a) == len(b) and all(x[0] == y[0] for x, y in zip(a, b, strict=False))
    diff = max(
        (abs(p - q) for x, y in zip(a, b, strict=False) for p, q in zip(x[1], y[1], strict=True)), default=math.inf
    )
    return {
        "rows": len(a),
        "same_labels": same_labels,
        "max_abs_probability_diff": diff,
        "tolerance": tolerance,
        "identical": same_labels and diff <= tolerance,
    }


def problems(figures: dict[str, Any]) -> list[str]:
    """Why the run's figures cannot be trusted (empty if they can)."""
    found = []
    for name, check in figures["parity"].items():
        if not check["identical"]:
            found.append(f"{name} answered differently from ours: {check}")
    for name, server in figures["servers"].items():
        errors = server["load"]["errors"]
        if server["group"] in ("ours", "asgi") and errors["total"]:  # our application: no error is acceptable
            found.append(f"{name} had errors under load: {errors}")
        elif server["load"]["non_2xx"]:
            found.append(f"{name} answered non-2xx under load: {errors}")
        if not server["stopped_cleanly"]:
            found.append(f"{name}: processes were left running")
    for block, what, sides in (
        ("prediction_log", "the prediction log", ("off", "on")),
        ("hardening", "the attack protections' cost", ("without", "with")),
    ):
        rounds = figures.get(block)
        if not rounds:
            continue
        for key in sides:
            if rounds[key]["errors"]["total"]:
                found.append(f"our server ({what}: {key}) had errors under load: {rounds[key]['errors']}")
        if not rounds["stopped_cleanly"]:
            found.append(f"{what}'s servers: processes were left running")
    logging = figures.get("prediction_log")
    if logging:
        if not logging["log"]["lines"]:
            found.append("the prediction log is empty: nothing was logged")
        if logging["log"]["write_errors"]:
            found.append(f"the prediction log had {logging['log']['write_errors']} write errors")
    hardening = figures.get("hardening")
    if hardening and not hardening["parity"].get("identical"):
        found.append(f"the server before the hardening answered differently from ours: {hardening['parity']}")
    return found


def fmt(value: Any, digits: int = 1) -> str:
    """A figure for a table: thousands separated, an en dash when absent."""
    if value is None:
        return "–"
    if isinstance(value, int | float):
        return f"{value:,.{digits}f}"
    return str(value)
