"""Monitoring benchmark (issue 5, "Speed"): the generated project's ``monitor`` on a million logged predictions.

1. bakes the default project (or takes ``--project``, already baked) and runs its pipeline up to the reference profile
   (``uv sync --frozen``, ``make setup``, ``dvc repro profile``);
2. in the project's environment, writes the largest window as the server would log it: rows drawn with replacement
   from the project's raw data (so the window is healthy: no drift, no decay), the exported ONNX model's
   predictions, one JSON line per prediction, 1 ms apart, in files of ``--per-file`` lines (a server's rotated logs);
   and ground-truth labels (the rows' own target) for ``--labelled`` of the requests, one CSV file per log file;
3. for each size in ``--sizes``, the window made of the first files: runs ``<venv>/bin/<package> monitor`` on the
   predictions alone and with the labels (after one warm-up run that fills the bytecode and page caches),
   ``--repeat`` times each, in a fresh process, and keeps the median wall time, the peak resident memory in MB
   (10^6 bytes; ``ru_maxrss`` of the process, ``getrusage(RUSAGE_CHILDREN)`` in a wrapper) and the CPU time
   (user + system);
4. judges the issue's targets (the largest window with labels under ``--max-seconds``; peak memory of the largest
   window within ``--max-memory-growth`` times the smallest's, without labels: memory does not grow with the window)
   and writes the figures as JSON and a Markdown table (optionally into the README, between
   ``<!-- monitor-benchmark:begin -->`` and ``<!-- monitor-benchmark:end -->``).

    python -m tools.monitor_benchmark [--sizes 100000,1000000] [--project build/churn-model] [--readme README.md]
    python -m tools.monitor_benchmark --render [--output benchmarks/monitor.json] [--readme README.md]

Exit status: 0; 1 with ``--check`` when a target is missed; 2 if a step failed (a monitor run exiting 2 included).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tools.bake import bake
from tools.benchmark import BUILD, ROOT, StepError, describe, machine, measure, write_json
from tools.shared import MB, block_markers, replace_block

WORK = BUILD / "monitor-bench"
OUTPUT = ROOT / "benchmarks" / "monitor.json"
BLOCK = "monitor-benchmark"  # the README block the table goes to
BEGIN, END = block_markers(BLOCK)

# Runs inside the baked project's venv: python -c GENERATE package lines per_file labelled seed out
GENERATE = r"""
import importlib, sys
from pathlib import Path

import numpy as np
import pandas as pd

package, lines, per_file, share, seed, out = sys.argv[1], *map(int, sys.argv[2:4]), float(sys.argv[4]), \
    int(sys.argv[5]), Path(sys.argv[6])
modules = {
    name: importlib.import_module(f"{package}.pipeline.{name}") for name in ("config", "prepare", "schema", "synthetic")
}
params = modules["config"].load_params(Path("params.yaml"))
schema = modules["schema"].load_schema(params.paths.schema_)
raw = modules["prepare"].validate(modules["prepare"].read_raw(params.paths.raw), schema, params.paths.raw)
rng = np.random.default_rng(seed)
(out / "predictions").mkdir(parents=True)
(out / "labels").mkdir(parents=True)
start = np.datetime64("2026-11-21T00:00:00", "us")
for k, first in enumerate(range(0, lines, per_file)):
    rows = min(per_file, lines - first)
    frame = raw.iloc[rng.integers(0, len(raw), rows)].reset_index(drop=True)
    prefix = f"r{k:03d}"
    modules["synthetic"].write_log(
        out / "predictions" / f"predictions-{k:03d}.jsonl", frame, schema, params.paths.onnx.parent,
        start=str(start + np.timedelta64(first * 1000, "us")) + "Z", prefix=prefix,
    )
    chosen = np.flatnonzero(rng.random(rows) < share)
    pd.DataFrame(
        {"request_id": [f"{prefix}-{i}" for i in chosen], "index": 0,
         schema.target.name: frame[schema.target.name].to_numpy()[chosen]}
    ).to_csv(out / "labels" / f"labels-{k:03d}.csv", index=False)
    print(f"file {k}: {rows} lines, {len(chosen)} labels", flush=True)
"""


def parse_sizes(text: str) -> list[int]:
    """``"100000,1000000"`` -> ``[100000, 1000000]`` (increasing, positive)."""
    try:
        sizes = sorted({int(part.replace("_", "")) for part in text.split(",") if part.strip()})
    except ValueError:
        raise SystemExit(f"error: --sizes {text!r} is not a list of line counts") from None
    if not sizes or sizes[0] <= 0:
        raise SystemExit(f"error: --sizes {text!r} needs positive line counts")
    return sizes


def pipeline(settings: argparse.Namespace, log: Path) -> tuple[Path, dict[str, float]]:
    """The baked project with its reference profile; seconds of each step (none for a given project)."""
    if settings.project:
        project = settings.project.resolve()
        if not (project / "models" / "reference.json").is_file():
            measure(["uv", "run", "--frozen", "dvc", "repro", "profile"], project, log=log, echo=False)
        return project, {}
    started = time.perf_counter()
    project = bake(settings.work / "projects", {"project_name": "Monitor Bench"}, overwrite=True)
    seconds = {"bake": time.perf_counter() - started}
    for name, command in (
        ("sync", ["uv", "sync", "--frozen"]),
        ("setup", ["make", "setup"]),
        ("repro", ["uv", "run", "--frozen", "dvc", "repro", "profile"]),
    ):
        print(f"  {name}: {' '.join(command)}", flush=True)
        seconds[name] = round(measure(command, project, log=log, echo=False).seconds, 1)
    return project, seconds


def window(logs: Path, files: int, dest: Path) -> Path:
    """A window of the first ``files`` log files (and their labels), hard-linked into ``dest``."""
    for kind, pattern in (("predictions", "predictions-*.jsonl"), ("labels", "labels-*.csv")):
        (dest / kind).mkdir(parents=True, exist_ok=True)
        for path in sorted((logs / kind).glob(pattern))[:files]:
            os.link(path, dest / kind / path.name)
    return dest


def run_monitor(project: Path, package: str, directory: Path, labels: bool, repeat: int, log: Path) -> dict[str, Any]:
    """``monitor`` on one window, ``repeat`` times: the median time, the largest peak memory, the verdict."""
    out = directory / ("out-labels" if labels else "out")
    command = [str(project / ".venv" / "bin" / package), "monitor", "--predictions", str(directory / "predictions")]
    if labels:
        command += ["--labels", str(directory / "labels")]
    command += ["--output", str(out)]
    runs = []
    for _ in range(repeat):
        result = measure(command, project, log=log, echo=False, check=False)
        if result.returncode not in (0, 1):
            tail = "\n".join(result.output[-10:])
            raise StepError(f"`{' '.join(command)}` exited {result.returncode}:\n{tail}")
        runs.append(result)
    verdict = json.loads((out / "verdict.json").read_text())
    seconds = statistics.median(r.seconds for r in runs)
    lines = verdict["window"]["lines"]
    return {
        "labels": labels,
        "lines": lines,
        "in_window": verdict["window"]["in_window"],
        "labelled": verdict["labels"]["joined"],
        "seconds": round(seconds, 2),
        "seconds_each": [round(r.seconds, 2) for r in runs],
        "lines_per_second": round(lines / seconds) if seconds else None,
        "peak_mb": round(max(r.peak_mb for r in runs), 1),
        "cpu_seconds": round(statistics.median(r.cpu_seconds for r in runs), 2),
        "exit": runs[-1].returncode,
        "summary": verdict["summary"],
    }


def judge(figures: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, each with its measured value and whether it is met."""
    runs = figures["runs"]
    sizes = sorted({r["lines"] for r in runs})
    largest, smallest = sizes[-1], sizes[0]
    settings = figures["settings"]
    timed = next(r for r in runs if r["lines"] == largest and r["labels"])
    targets = [
        {
            "name": "time",
            "what": f"{largest:,} lines (with labels) in under {settings['max_seconds']:g} s",
            "measured": f"{timed['seconds']:.1f} s",
            "met": timed["seconds"] < settings["max_seconds"],
        }
    ]
    if smallest < largest:
        small = next(r for r in runs if r["lines"] == smallest and not r["labels"])
        large = next(r for r in runs if r["lines"] == largest and not r["labels"])
        growth = large["peak_mb"] / small["peak_mb"] if small["peak_mb"] else float("inf")
        targets.append(
            {
                "name": "memory",
                "what": (
                    f"peak memory at {largest:,} lines within {settings['max_memory_growth']:g}× "
                    f"that at {smallest:,} (without labels)"
                ),
                "measured": f"{large['peak_mb']:.0f} MB vs {small['peak_mb']:.0f} MB ({growth:.2f}×)",
                "met": growth <= settings["max_memory_growth"],
            }
        )
    return targets


def markdown(figures: dict[str, Any]) -> str:
    """The figures as a Markdown section: runs, targets, how they were measured."""
    model = figures["model"]
    machine_ = figures["machine"]
    lines = [
        (
            f"#### Monitoring: `{model['package']} monitor` on logged predictions "
            f"({model['features']} features, {model['task']}, {machine_['cpus']} CPUs)"
        ),
        "",
        "| lines | labels joined | seconds | lines/s | peak MB | CPU s | exit |",
        "|---:|---:|---:|---:|---:|---:|---|",
    ]
    for run in figures["runs"]:
        labelled = f"{run['labelled']:,}" if run["labels"] else "–"
        lines.append(
            f"| {run['lines']:,} | {labelled} | {run['seconds']:.1f} | {run['lines_per_second']:,} | "
            f"{run['peak_mb']:.0f} | {run['cpu_seconds']:.1f} | {run['exit']} |"
        )
    lines += ["", "| target | measured | met |", "|---|---|---|"]
    for target in figures["targets"]:
        lines.append(f"| {target['what']} | {target['measured']} | {'yes' if target['met'] else '**no**'} |")
    met = sum(t["met"] for t in figures["targets"])
    settings = figures["settings"]
    window_ = figures["window"]
    last = figures["runs"][-1]
    lines += [
        "",
        f"Targets met: **{met} of {len(figures['targets'])}**. Verdict on the largest window: {last['summary']}",
        "",
        (
            f"- Window: {window_['lines']:,} JSON lines ({window_['mb']:,.0f} MB in {window_['files']} files of "
            f"{settings['per_file']:,} lines), rows drawn with replacement from the project's raw data, predictions of "
            f"its exported ONNX model (written in {window_['seconds']:.0f} s); labels for "
            f"{settings['labelled']:.0%} of the requests, in one CSV file per log file. Each size is the first files."
        ),
        (
            f"- Each run: `{model['package']} monitor --predictions … [--labels …]` from the project's venv, a fresh "
            f"process; median of {settings['repeat']} run(s). Peak memory: `ru_maxrss` of the process "
            "(`getrusage(RUSAGE_CHILDREN)` in a wrapper). CPU: user + system time. One process, one thread: the second "
            "core is idle."
        ),
        (
            f"- Machine: {machine_['cpus']} CPUs ({machine_['cpu']}), {machine_.get('memory_gb')} GB; load average "
            f"(1 min) {figures['load_average']['before']} at the start; {figures['date'][:10]}."
        ),
        "",
    ]
    return "\n".join(lines)


def write_outputs(figures: dict[str, Any], output: Path, readme: Path | None) -> str:
    """The JSON, the Markdown next to it and, if asked, the README block; return the Markdown."""
    write_json(output, figures)
    table = markdown(figures)
    output.with_suffix(".md").write_text(table)
    if readme:
        replace_block(readme, BLOCK, table)
    return table


def benchmark(settings: argparse.Namespace) -> dict[str, Any]:
    """The whole run; returns the figures (see the module docstring)."""
    # As the Makefiles do: with bytecode caching off, every run would compile scipy and scikit-learn from source again.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    work: Path = settings.work.resolve()
    shutil.rmtree(work, ignore_errors=True)
    (work / "logs").mkdir(parents=True)
    log = work / "logs" / "benchmark.log"
    load_before = os.getloadavg()[0]
    print(f"monitor benchmark in {work} (log: {log})", flush=True)
    print("1. project and reference profile", flush=True)
    project, pipeline_seconds = pipeline(settings, log)
    about = describe(project)
    package = about["package"]
    largest = settings.sizes[-1]
    per_file = min(settings.per_file, settings.sizes[0])
    if any(size % per_file for size in settings.sizes):
        raise SystemExit(f"error: every size must be a multiple of --per-file {per_file}")
    print(f"2. writing {largest:,} logged predictions", flush=True)
    logs = work / "window"
    python = str(project / ".venv" / "bin" / "python")
    command = [python, "-c", GENERATE, package, str(largest), str(per_file), str(settings.labelled), "0", str(logs)]
    written = measure(command, project, log=log, echo=False)
    size = sum(p.stat().st_size for p in (logs / "predictions").iterdir())
    runs = []
    directories = [window(logs, lines // per_file, work / f"window-{lines}") for lines in settings.sizes]
    print("3. a warm-up run (not measured): the bytecode and page caches", flush=True)
    run_monitor(project, package, directories[0], True, 1, log)
    for lines, directory in zip(settings.sizes, directories, strict=True):
        for labels in (False, True):
            print(f"4. monitor: {lines:,} lines{' with labels' if labels else ''}", flush=True)
            run = run_monitor(project, package, directory, labels, settings.repeat, log)
            print(f"   {run['seconds']:.1f} s, {run['peak_mb']:.0f} MB, exit {run['exit']}", flush=True)
            runs.append(run)
    reference = json.loads((project / "models" / "reference.json").read_text())
    figures: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "uv run python -m tools.monitor_benchmark " + " ".join(settings.argv),
        "machine": machine(),
        "load_average": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
        "settings": {
            "sizes": settings.sizes,
            "per_file": per_file,
            "labelled": settings.labelled,
            "repeat": settings.repeat,
            "max_seconds": settings.max_seconds,
            "max_memory_growth": settings.max_memory_growth,
        },
        "model": {
            "package": package,
            "task": about["task"],
            "family": about["model_family"],
            "features": len(reference["features"]),
            "version": reference["model_version"],
        },
        "project": str(project),
        "pipeline_seconds": pipeline_seconds,
        "window": {
            "lines": largest,
            "files": len(list((logs / "predictions").iterdir())),
            "mb": round(size / MB, 1),
            "seconds": round(written.seconds, 1),
        },
        "runs": runs,
    }
    figures["targets"] = judge(figures)
    figures["targets_met"] = all(t["met"] for t in figures["targets"])
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark (or ``--render`` its last figures) and write them."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="python -m tools.monitor_benchmark",
        description=__doc__.splitlines()[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--sizes", type=parse_sizes, default=[100_000, 1_000_000], help="window sizes, in lines")
    parser.add_argument("--per-file", type=int, default=100_000, help="lines per log file (%(default)s)")
    parser.add_argument("--labelled", type=float, default=0.1, help="share of requests with a label (%(default)s)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per window, median kept (%(default)s)")
    parser.add_argument("--project", type=Path, help="an already baked project (default: bake the default one)")
    parser.add_argument("--work", type=Path, default=WORK, help="scratch folder, emptied first (%(default)s)")
    parser.add_argument("--output", type=Path, default=OUTPUT, help="figures as JSON (%(default)s), .md beside it")
    parser.add_argument("--readme", type=Path, help=f"also write the table into this file's {BEGIN} block")
    parser.add_argument("--max-seconds", type=float, default=30.0, help="time target, largest window (%(default)s)")
    parser.add_argument("--max-memory-growth", type=float, default=1.25, help="memory target (%(default)s×)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--render", action="store_true", help="only rewrite the Markdown (and README) from --output")
    settings = parser.parse_args(argv)
    settings.argv = argv
    if settings.render:
        figures = json.loads(settings.output.read_text())
    else:
        try:
            figures = benchmark(settings)
        except StepError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    print(write_outputs(figures, settings.output, settings.readme))
    missed = [t["what"] for t in figures["targets"] if not t["met"]]
    if missed:
        print(f"targets missed: {'; '.join(missed)}", file=sys.stderr)
    return 1 if settings.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
