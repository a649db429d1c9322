"""The figures as Markdown tables (servers side by side, the targets, the prediction log's cost), and the README."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tools.benchmark import write_json
from tools.serving_bench.common import BEGIN, END, MB
from tools.serving_bench.report import SYMBOLS, fmt

ORDER = ("ours", "uvicorn", "granian", "mlflow", "kserve", "mlserver")
# label, how to read it from a server's figures, digits, the ratio's name, True if higher is better
ROWS: list[tuple[str, tuple[str, ...], int, str, bool]] = [
    ("requests/s", ("load", "throughput_rps"), 0, "throughput", True),
    ("latency p50, ms", ("load", "latency_ms", "p50"), 2, "latency_p50", False),
    ("latency p99, ms", ("load", "latency_ms", "p99"), 2, "latency_p99", False),
    ("server CPU per request, µs", ("load", "cpu_us_per_request"), 1, "cpu_per_request", False),
    ("cold start (process start to ready), s", ("cold_start_s",), 3, "cold_start", False),
    ("idle resident memory, MB", ("idle_rss_mb",), 0, "idle_rss", False),
    ("runtime environment on disk, MB", ("runtime_env_mb",), 0, "runtime_env", False),
]


def _get(server: dict[str, Any], keys: tuple[str, ...]) -> Any:
    value: Any = server
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _versus(best: dict[str, Any] | None, ratio: str, higher: bool, titles: dict[str, str]) -> str:
    if not best or best.get(ratio) is None:
        return "–"
    which = best["which"][ratio]
    return f"{fmt(best[ratio], 1)}× {'more' if higher else 'less'} ({titles.get(which, which)})"


def _servers_table(figures: dict[str, Any]) -> list[str]:
    servers = figures["servers"]
    names = [name for name in ORDER if name in servers] + [name for name in servers if name not in ORDER]
    titles = {name: servers[name]["title"] for name in names}
    ratios = figures["ratios"]
    header = [f"ours: {titles['ours']}", *(titles[name] for name in names[1:])]
    lines = [
        f"| figure | {' | '.join(header)} | ours vs the best peer | ours vs the best ASGI server |",
        "|---|" + "---:|" * (len(names) + 2),
    ]
    for label, keys, digits, ratio, higher in ROWS:
        cells = [fmt(_get(servers[name], keys), digits) for name in names]
        versus = [_versus(ratios.get(key), ratio, higher, titles) for key in ("best_peer", "best_asgi")]
        lines.append(f"| {label} | {' | '.join([*cells, *versus])} |")
    errors = [str(servers[name]["load"]["errors"]["total"]) for name in names]
    lines.append(f"| errors (non-2xx + socket) | {' | '.join(errors)} | | |")
    return lines


def _targets_table(figures: dict[str, Any]) -> list[str]:
    lines = ["| target (ours) | value | limit | met |", "|---|---:|---|---|"]
    for t in figures["targets"]:
        unit = t["unit"]
        value = "–" if t["value"] is None else f"{t['value']:,.2f}{'×' if unit == '×' else ' ' + unit}"
        limit = f"{SYMBOLS[t['op']]} {t['limit']:g}{'×' if unit == '×' else ' ' + unit}"
        met = "not measured" if t["met"] is None else ("yes" if t["met"] else "**no**")
        lines.append(f"| {t['what']} | {value} | {limit} | {met} |")
    return lines


def _parity_line(figures: dict[str, Any]) -> str:
    checks = figures["parity"]
    if not all(check["identical"] for check in checks.values()):
        wrong = ", ".join(name for name, check in checks.items() if not check["identical"])
        return f"**Different answers from ours ({wrong}): the comparison is invalid.**"
    rows = max((check["rows"] for check in checks.values()), default=0)
    parts = [
        f"{figures['servers'][name]['title']} {check['max_abs_probability_diff']:.1e} (tolerance {check['tolerance']:g})"
        for name, check in checks.items()
    ]
    return (
        f"Same model: every server gave our labels for the same {rows} rows, and our probabilities within a "
        f"tolerance (largest difference: {'; '.join(parts)}; MLServer runs the scikit-learn pipeline in float64, the "
        "others its ONNX export in float32)."
    )


def markdown(figures: dict[str, Any]) -> str:
    """The figures as GitHub-flavoured Markdown tables, with each target and whether it is met."""
    s, model, servers = figures["settings"], figures["model"], figures["servers"]
    met = [t for t in figures["targets"] if t["met"] is not None]
    lines = [
        (
            f"#### Serving: batch 1, {s['connections']} connections, {s['duration']} s "
            f"({model['features']}-feature {model['family']} {model['task']}, {figures['machine']['cpus']} CPUs)"
        ),
        "",
        *_servers_table(figures),
        "",
        *_targets_table(figures),
        "",
        (
            f"Targets met: **{sum(bool(t['met']) for t in met)} of {len(met)}** measured (the issues' targets, for "
            f"one server process). {_parity_line(figures)}"
        ),
    ]
    lines += _log_table(figures)
    machine, load = figures["machine"], figures["load_average"]
    starts = "each from one start." if s["starts"] == 1 else f"each the median of {s['starts']} starts."
    processes = ", ".join(f"{server['title']} {server['processes']}" for server in servers.values())
    envs = "; ".join(f"{server['title']} {server['runtime_env']['from']}" for server in servers.values())
    loads = ", ".join(f"{server.get('load_average_before_load', '–')}" for server in servers.values())
    notes = [
        (
            f"Load: `wrk -t1 -c{s['connections']} -d{s['duration']}s --latency`, one server at a time, after a "
            f"{s['warmup']} s warm-up; every request one real row."
        ),
        f"CPU: utime + stime of the server's processes ({processes}) over the measured run, per request completed.",
        (
            "Cold start: process start to the first 200 from the readiness endpoint (ours and the ASGI servers "
            "`/readyz`, MLflow `/ping`, KServe `/v1/models/model`, MLServer `/v2/models/model/ready`), polled every "
            f"5 ms; idle memory: VmRSS summed over the processes once ready; {starts}"
        ),
        (
            "The ASGI servers run `serving/asgi.py`: the very same `App` and `Routes` as ours, one worker on uvloop; "
            "commands in `benchmarks/serving.json` (`servers.<name>.command`). Ours and they run without the admin "
            "API; peers as `tools/serving_bench/peers.py` describes."
        ),
        f"Environments: fresh venvs linked from the uv cache, the interpreter not counted: {envs}.",
        (
            f"Machine: {machine['cpus']} CPUs ({machine['cpu']}); load average (1 min) {load['before']:g} at the "
            f"start, before each load run: {loads}; {figures['date'][:10]}. The serving image (the project's `make "
            "image`) is not built here, so its size is not in this table."
        ),
    ]
    lines += ["", *(f"- {note}" for note in notes)]
    return "\n".join(lines) + "\n"


def _log_table(figures: dict[str, Any]) -> list[str]:
    """The prediction log's cost: our server with it against without (nothing for figures without that run)."""
    logging = figures.get("prediction_log")
    if not logging:
        return []
    off, on, log = logging["off"], logging["on"], logging["log"]
    rounds = logging["round_ratios"]
    target = next(t for t in figures["targets"] if t["name"] == "prediction_log")
    met = "yes" if target["met"] else "**no**"
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
            f"| requests/s | {fmt(off['throughput_rps'], 0)} | {fmt(on['throughput_rps'], 0)} | "
            f"{-logging['overhead_pct']:+.1f} % | {SYMBOLS[target['op']]} {target['limit']:g}% lost | {met} |"
        ),
        f"| latency p50, ms | {fmt(off['latency_ms']['p50'], 2)} | {fmt(on['latency_ms']['p50'], 2)} | | | |",
        f"| latency p99, ms | {fmt(off['latency_ms']['p99'], 2)} | {fmt(on['latency_ms']['p99'], 2)} | | | |",
        (
            f"| server CPU per request, µs | {fmt(off['cpu_us_per_request'])} | {fmt(on['cpu_us_per_request'])} | "
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
