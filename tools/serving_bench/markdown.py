"""The figures as Markdown tables (servers side by side, the targets, the prediction log's cost), and the README."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tools.benchmark import write_json
from tools.serving_bench.common import BLOCK, MB
from tools.serving_bench.report import SYMBOLS, fmt
from tools.shared import replace_block

ORDER = ("ours", "ours-v2", "uvicorn", "granian", "mlflow", "kserve", "mlserver")
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
    header = [f"ours: {titles[name]}" if servers[name]["group"] == "ours" else titles[name] for name in names]
    # ours against the best peer (and, when measured, ours on the v2 infer route), then against the best ASGI server
    versus_columns = {"best_peer": "ours vs the best peer", "v2_best_peer": "ours (v2) vs the best peer"}
    versus_columns = {key: text for key, text in versus_columns.items() if ratios.get(key) or key == "best_peer"}
    versus_columns["best_asgi"] = "ours vs the best ASGI server"
    lines = [
        f"| figure | {' | '.join([*header, *versus_columns.values()])} |",
        "|---|" + "---:|" * (len(names) + len(versus_columns)),
    ]
    for label, keys, digits, ratio, higher in ROWS:
        cells = [fmt(_get(servers[name], keys), digits) for name in names]
        versus = [_versus(ratios.get(key), ratio, higher, titles) for key in versus_columns]
        lines.append(f"| {label} | {' | '.join([*cells, *versus])} |")
    errors = [str(servers[name]["load"]["errors"]["total"]) for name in names]
    lines.append(f"| errors (non-2xx + socket) | {' | '.join(errors)} |{' |' * len(versus_columns)}")
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
        f"{figures['servers'][name]['title']} {check['max_abs_probability_diff']:.1e} "
        f"(tolerance {check['tolerance']:g})"
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
    lines += _budget_table(figures)
    lines += _log_table(figures)
    lines += _hardening_table(figures)
    machine, load = figures["machine"], figures["load_average"]
    starts = "each from one start." if s["starts"] == 1 else f"each the median of {s['starts']} starts."
    processes = ", ".join(f"{server['title']} {server['processes']}" for server in servers.values())
    envs = "; ".join(
        f"{server['title']} {server['runtime_env']['from']}" for name, server in servers.items() if name != "ours-v2"
    )
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
        *_v2_note(servers),
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


def _v2_note(servers: dict[str, Any]) -> list[str]:
    if "ours-v2" not in servers:
        return []
    return [
        (
            f"{servers['ours-v2']['title']}: `POST /v2/models/{{name}}/infer` (the Open Inference Protocol) on the "
            "same server, the same row as JSON tensors, one input per feature, built from the model metadata at "
            "`GET /v2/models/{name}`; its predictions equal those of `/predict`."
        )
    ]


def _rounds_rows(rounds: dict[str, Any], sides: tuple[str, str], target: dict[str, Any]) -> list[str]:
    """The table of two servers compared in paired rounds (``rounds``): their figures, the change, the target."""
    before, after = (rounds[side] for side in sides)
    met = "not measured" if target["met"] is None else ("yes" if target["met"] else "**no**")
    cpu = "–"
    if before["cpu_us_per_request"] is not None and after["cpu_us_per_request"] is not None:
        cpu = f"{after['cpu_us_per_request'] - before['cpu_us_per_request']:+.1f}"
    limit = f"{SYMBOLS[target['op']]} {target['limit']:g}% lost"
    return [
        (
            f"| requests/s | {fmt(before['throughput_rps'], 0)} | {fmt(after['throughput_rps'], 0)} | "
            f"{-rounds['overhead_pct']:+.1f} % | {limit} | {met} |"
        ),
        f"| latency p50, ms | {fmt(before['latency_ms']['p50'], 2)} | {fmt(after['latency_ms']['p50'], 2)} | | | |",
        f"| latency p99, ms | {fmt(before['latency_ms']['p99'], 2)} | {fmt(after['latency_ms']['p99'], 2)} | | | |",
        (
            f"| server CPU per request, µs | {fmt(before['cpu_us_per_request'])} | "
            f"{fmt(after['cpu_us_per_request'])} | {cpu} | | |"
        ),
    ]


def _spread(rounds: dict[str, Any], what: str) -> str:
    """The median of the rounds' ratios, their range, and the ratio over all rounds together."""
    ratios = rounds["round_ratios"]
    return (
        f"{what}: the median of the {len(ratios)} round{'s' if len(ratios) != 1 else ''}' ratios, "
        f"{rounds['throughput_ratio']:.3f} (from "
        f"{min(ratios):.3f} to {max(ratios):.3f}; {rounds['throughput_ratio_all_rounds']:.3f} over all rounds together)"
    )


def _rounds_method(rounds: dict[str, Any]) -> str:
    return (
        f"{rounds['rounds']} round{'s' if rounds['rounds'] != 1 else ''}, each starting both afresh side by side, "
        f"then {rounds.get('warmup_per_run', 1)} s "
        f"of warm-up and {rounds['seconds_per_run']} s measured on each, in alternating order"
    )


def _target(figures: dict[str, Any], name: str) -> dict[str, Any]:
    found = next((t for t in figures["targets"] if t["name"] == name), None)
    return found or {"name": name, "op": "<=", "limit": 0, "met": None}


def _log_table(figures: dict[str, Any]) -> list[str]:
    """The prediction log's cost: our server with it against without (nothing for figures without that run)."""
    logging = figures.get("prediction_log")
    if not logging:
        return []
    log = logging["log"]
    return [
        "",
        (
            f"Prediction log: ours with `PREDICTION_LOG_DIR` set at the default sample rate "
            f"({logging['sample']:.0%} of the requests) against ours without: {_rounds_method(logging)}:"
        ),
        "",
        "| figure | logging off | logging on | change | target | met |",
        "|---|---:|---:|---:|---|---|",
        *_rounds_rows(logging, ("off", "on"), _target(figures, "prediction_log")),
        "",
        (
            f"{_spread(logging, 'Throughput with the log against without')}. "
            f"The log holds {log['lines']:,} lines ({log['bytes'] / MB:.1f} MB in {log['files']} "
            f"file{'s' if log['files'] != 1 else ''}) for {log['requests']:,} requests "
            f"({log['share_logged']:.1%}), {log['dropped']} dropped, {log['write_errors']} write errors."
        ),
    ]


def _budget_table(figures: dict[str, Any]) -> list[str]:
    """What the throughput targets against the best peer allow per request, against ours and the floor."""
    rows, floor = figures.get("budgets") or [], figures.get("floor")
    if not rows or not floor:
        return []
    titles = {name: server["title"] for name, server in figures["servers"].items()}
    first = rows[0]
    lines = [
        "",
        (
            f"What the {first['times']:g}× targets ask, in server CPU per request (one process on one core: "
            f"requests/s = 1 s / CPU per request; the best peer is {titles[first['peer']]}, "
            f"{first['peer_rps']:,.0f} req/s):"
        ),
        "",
        "| route | budget for the target | floor | left above the floor | ours | ours above the floor |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        left = row["budget_us"] - row["floor_us"]
        spent = row["ours_us"] - row["floor_us"]
        lines.append(
            f"| {titles[row['route']]} | {row['budget_us']:g} µs | {row['floor_us']:g} µs (JSON "
            f"{floor['json_us'][row['route']]:g}) | {'**none**' if left <= 0 else f'{left:.1f} µs'} "
            f"| {row['ours_us']:g} µs | {spent:.1f} µs |"
        )
    lines += [
        "",
        (
            f"Floor = the HTTP layer alone, {floor['http_us']:g} µs (`GET {floor['http_path']}` under the same load: "
            f"no body, no JSON, no model; {floor['http_throughput_rps']:,.0f} req/s) + the route's JSON alone "
            f"(`orjson.loads` of the request, `orjson.dumps` of the answer) + the model's run alone, "
            f"{floor['model_run_us']:g} µs (`Model.infer` on one parsed row); in process, the fastest of 7 rounds. "
            "Any server reads the request, parses it, runs the model and writes the answer. What is left above "
            "the floor must pay for everything else a request needs: validating every feature, routing between "
            "models, metrics, building the answer; ours spends the last column on it."
        ),
    ]
    return lines


def _hardening_table(figures: dict[str, Any]) -> list[str]:
    """The attack protections' cost: ours against ours before the hardening (nothing without that run)."""
    rounds = figures.get("hardening")
    if not rounds:
        return []
    base = rounds["baseline"]
    subject = base["subject"] if len(base["subject"]) <= 90 else base["subject"][:89].rstrip(" ,:") + "…"
    low, high = rounds["overhead_pct_range"]
    same = "The two gave the same answers." if rounds["parity"].get("identical") else "**Different answers.**"
    differences = "; ".join(f"{name} {a} there, {b} here" for name, (a, b) in base["runtime_differences"].items())
    return [
        "",
        (
            f"Attack protections: ours against the same project's server before the hardening (the template at "
            f'`{base["commit"][:7]}`, "{subject}", baked and installed in a runtime venv of its own, '
            f"serving the same model), on `/predict`, batch 1: {_rounds_method(rounds)}:"
        ),
        "",
        f"| figure | before the hardening ({base['commit'][:7]}) | now | change | target | met |",
        "|---|---:|---:|---:|---|---|",
        *_rounds_rows(rounds, ("without", "with"), _target(figures, "hardening")),
        "",
        (
            f"{_spread(rounds, 'Throughput now against before')}: throughput lost to the protections "
            f"{rounds['overhead_pct']:+.1f} % (each round's from {low:+.1f} to {high:+.1f} %). {same} Runtime packages "
            f"{'the same' if not differences else 'that differ: ' + differences}. The difference is every commit "
            "since that touched the server: the protections, and the v2 routes beside `/predict`."
        ),
    ]


def write_outputs(figures: dict[str, Any], output: Path, table_path: Path | None, readme: Path | None) -> str:
    """The JSON, the Markdown table and, if asked, the README block; return the table."""
    write_json(output, figures)
    table = markdown(figures)
    target = table_path or output.with_suffix(".md")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(table)
    if readme:
        replace_block(readme, BLOCK, table)
    return table
