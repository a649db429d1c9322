"""Benchmark a baked project: how its pipeline's time and memory grow with the size of the data.

For each row count in ``params.yaml`` (``benchmark.rows``) the scaling run writes that many synthetic rows with the
project's own ``<package> synth`` command, records them with DVC, and times a forced ``dvc repro`` of the whole
pipeline. It works on a clone of the baked project (``build/bench/<slug>``), so the project the ``pipeline`` stage
measured stays as it was.

Every command is measured in a fresh wrapper process: wall time, and peak memory as the largest maximum resident set
of any process it started (``getrusage(RUSAGE_CHILDREN)``). Per stage, the time comes from when DVC announces each
stage in its output, and the peak memory from sampling ``VmHWM`` of the stage's processes (found with psutil; Linux).
Memory and sizes are in MB = 10^6 bytes (``tools.shared.MB``), machine memory in GB = 10^9 bytes.

Commands (the root ``dvc.yaml`` calls the first two; ``tools.pipeline`` runs the root's other stages)::

    python -m tools.benchmark scaling [--rows 10000 100000] [--project build/churn-model]
    python -m tools.benchmark table [--output benchmarks/results.md]    # Markdown table of the recorded figures
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import yaml

from tools.shared import KIB, MB, descendants, peak_rss_kib

ROOT = Path(__file__).resolve().parents[1]
PARAMS = ROOT / "params.yaml"
BUILD = ROOT / "build"
MANIFEST = BUILD / "bake.json"
LOGS = BUILD / "logs"
PIPELINE_METRICS = ROOT / "metrics" / "pipeline.json"
BENCHMARK_METRICS = ROOT / "metrics" / "benchmark.json"
STAGE_LINE = re.compile(r"^Running stage '([^']+)'")
SAMPLE_SECONDS = 0.2

# Runs COMMAND, then writes its wall time and the rusage of every process it started (ru_maxrss is the largest
# peak RSS among them, in KiB on Linux) to JSON_PATH. A fresh interpreter, so no earlier child is counted.
_WRAPPER = """
import json, resource, subprocess, sys, time
start = time.perf_counter()
code = subprocess.call(sys.argv[2:])
seconds = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
with open(sys.argv[1], "w") as out:
    json.dump({"returncode": code, "seconds": seconds, "maxrss_kb": usage.ru_maxrss,
               "user_seconds": usage.ru_utime, "system_seconds": usage.ru_stime}, out)
sys.exit(code)
"""


class StepError(RuntimeError):
    """A measured command exited non-zero."""


@dataclass
class Measurement:
    """What one measured command took."""

    command: list[str]
    returncode: int
    seconds: float
    peak_mb: float
    cpu_seconds: float
    output: list[str] = field(default_factory=list)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    stage_peak_mb: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """The figures, rounded for a metrics file."""
        figures: dict[str, Any] = {
            "seconds": round(self.seconds, 2),
            "peak_mb": round(self.peak_mb, 1),
            "cpu_seconds": round(self.cpu_seconds, 2),
        }
        if self.stage_seconds:
            figures["stages"] = {
                name: {"seconds": round(seconds, 2), "peak_mb": round(self.stage_peak_mb.get(name, 0.0), 1)}
                for name, seconds in self.stage_seconds.items()
            }
        return figures


def clean_env() -> dict[str, str]:
    """The environment for commands inside a baked project: none of the root's virtualenv or DVC stage variables."""
    env = dict(os.environ)
    root_venv = os.environ.get("VIRTUAL_ENV") or str(ROOT / ".venv")
    # MLFLOW_TRACKING_URI too: benchmark runs go to the project's local store, never to a shared server.
    for name in (
        "VIRTUAL_ENV",
        "UV_PROJECT_ENVIRONMENT",
        "PYTHONHOME",
        "PYTHONPATH",
        "DVC_ROOT",
        "DVC_STAGE",
        "MLFLOW_TRACKING_URI",
    ):
        env.pop(name, None)
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p and not p.startswith(root_venv))
    env["PYTHONUNBUFFERED"] = "1"  # stage output arrives line by line, so its timestamps are right
    env["DVC_NO_ANALYTICS"] = "1"
    env.setdefault("GIT_TERMINAL_PROMPT", "0")
    return env


class StageSampler(threading.Thread):
    """Samples the peak RSS (``VmHWM``) of the processes running each stage command ``<package> <stage>``."""

    def __init__(self, root_pid: int, package: str | None) -> None:
        super().__init__(daemon=True)
        self.root_pid = root_pid
        self.pattern = re.compile(rf"(?:^|[/\s]){re.escape(package)}\s+(\w+)") if package else None
        self.peak_kb: dict[str, int] = {}
        self.stopped = threading.Event()

    def run(self) -> None:
        """Sample until stopped: each stage's largest ``VmHWM`` so far."""
        if self.pattern is None or not Path("/proc").is_dir():
            return
        while not self.stopped.wait(SAMPLE_SECONDS):
            for process in descendants(self.root_pid):
                try:
                    match = self.pattern.search(" ".join(psutil.Process(process).cmdline()))
                except psutil.Error:
                    continue
                if match:
                    stage = match.group(1)
                    self.peak_kb[stage] = max(self.peak_kb.get(stage, 0), peak_rss_kib(process))


def measure(
    command: Sequence[str],
    cwd: Path,
    *,
    log: Path | None = None,
    echo: bool = True,
    package: str | None = None,
    check: bool = True,
) -> Measurement:
    """Run ``command`` in a fresh wrapper process and measure it (see the module docstring).

    Output goes to ``log`` (and to stdout if ``echo``); lines ``Running stage 'x':`` split the time among DVC stages.
    """
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tmp:
        result_path = Path(tmp.name)
    stamps: list[tuple[float, str]] = []
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-c", _WRAPPER, str(result_path), *command],
        cwd=cwd,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        bufsize=1,
    )
    sampler = StageSampler(process.pid, package)
    sampler.start()
    assert process.stdout is not None
    if log:
        log.parent.mkdir(parents=True, exist_ok=True)
    with open(log or os.devnull, "a") as sink:
        sink.write(f"$ (cd {cwd} && {' '.join(command)})\n")
        for line in process.stdout:
            stamps.append((time.perf_counter(), line.rstrip("\n")))
            sink.write(line)
            if echo:
                print(f"    {line}", end="", flush=True)
    process.wait()
    end = time.perf_counter()
    sampler.stopped.set()
    sampler.join()
    try:
        figures = json.loads(result_path.read_text())
    except (OSError, json.JSONDecodeError):
        figures = {
            "returncode": process.returncode,
            "seconds": end - start,
            "maxrss_kb": 0,
            "user_seconds": 0.0,
            "system_seconds": 0.0,
        }
    finally:
        result_path.unlink(missing_ok=True)
    starts = [(stamp, m.group(1)) for stamp, text in stamps if (m := STAGE_LINE.match(text))]
    stage_seconds = {
        name: (starts[i + 1][0] if i + 1 < len(starts) else end) - stamp for i, (stamp, name) in enumerate(starts)
    }
    result = Measurement(
        command=list(command),
        returncode=figures["returncode"],
        seconds=figures["seconds"],
        peak_mb=figures["maxrss_kb"] * KIB / MB,
        cpu_seconds=figures["user_seconds"] + figures["system_seconds"],
        output=[text for _, text in stamps],
        stage_seconds=stage_seconds,
        stage_peak_mb={name: kb * KIB / MB for name, kb in sampler.peak_kb.items()},
    )
    if check and result.returncode != 0:
        tail = "\n".join(result.output[-15:])
        raise StepError(f"`{' '.join(command)}` failed in {cwd} (exit {result.returncode}):\n{tail}")
    return result


def load_params() -> dict[str, Any]:
    """The root ``params.yaml``."""
    params: dict[str, Any] = yaml.safe_load(PARAMS.read_text())
    return params


def load_manifest() -> dict[str, Any]:
    """What the ``bake`` stage recorded about the baked project."""
    if not MANIFEST.exists():
        raise SystemExit(f"error: {MANIFEST.relative_to(ROOT)} is missing: run `dvc repro bake` first")
    manifest: dict[str, Any] = json.loads(MANIFEST.read_text())
    return manifest


def describe(project: Path) -> dict[str, Any]:
    """Slug, package, task and model family of a baked project, read from its own files."""
    package = next((p.name for p in sorted((project / "src").glob("*")) if (p / "__init__.py").is_file()), None)
    if package is None:
        raise SystemExit(f"error: {project} is not a baked project (no src/<package>/__init__.py)")
    params = yaml.safe_load((project / "params.yaml").read_text())
    schema = yaml.safe_load((project / params["paths"]["schema"]).read_text())
    return {
        "slug": project.name,
        "package": package,
        "task": schema["target"]["kind"],
        "model_family": params["train"]["model"],
    }


def write_json(path: Path, data: Any) -> None:
    """Stable, diffable JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


def machine() -> dict[str, Any]:
    """Where the figures were measured."""
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as handle:  # psutil does not name the CPU model
            cpu = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), cpu)
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu or "unknown",
        "memory_gb": round(psutil.virtual_memory().total / (1000 * MB), 1),
        "system": f"{platform.system()} {platform.release()}",
    }


def _size_mb(path: Path) -> float:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / MB
    return path.stat().st_size / MB if path.exists() else 0.0


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.exists() else None


def clone(source: Path, dest: Path) -> Path:
    """A clean copy of the baked project at its bake commit (the raw data is re-generated, so it is not copied)."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "clone", "--quiet", str(source), str(dest)], check=True)
    return dest


def growth(rows: list[int], figures: list[dict[str, Any]], limit: float) -> dict[str, Any]:
    """Time and memory ratios between consecutive sizes (whole pipeline and per stage), and the verdict.

    Linear growth multiplies the time by the row factor at most (less while fixed start-up costs dominate); the
    verdict allows ``limit`` per 10x the rows, scaled to the actual factor.
    """
    steps: dict[str, Any] = {}
    for i in range(1, len(rows)):
        before, after = figures[i - 1], figures[i]
        factor = rows[i] / rows[i - 1]
        allowed = limit ** math.log10(factor) if factor > 1 else 1.0
        time_ratio = after["seconds"] / before["seconds"]
        stage_ratios = {
            name: round(stage["seconds"] / before["stages"][name]["seconds"], 2)
            for name, stage in after.get("stages", {}).items()
            if before.get("stages", {}).get(name, {}).get("seconds")
        }
        worst = max(stage_ratios, key=stage_ratios.__getitem__, default=None)
        steps[f"{rows[i]}/{rows[i - 1]}"] = {
            "rows": round(factor, 3),
            "time": round(time_ratio, 2),
            "memory": round(after["peak_mb"] / before["peak_mb"], 2),
            "allowed_time": round(allowed, 2),
            "ok": time_ratio <= allowed,
            "stages": stage_ratios,
            "fastest_growing_stage": worst or "n/a",
        }
    linear = all(step["ok"] for step in steps.values())
    return {
        "steps": steps,
        "linear": linear,
        "verdict": "growth no worse than linear" if linear else "growth WORSE than linear",
        "max_time_ratio_per_10x": limit,
    }


def scaling(rows: list[int], seed: int, limit: float, project: Path, *, echo: bool = True) -> dict[str, Any]:
    """Run the pipeline at each size on a clone of ``project``; return the figures."""
    about = describe(project)
    package = about["package"]
    bench = clone(project, BUILD / "bench" / project.name)
    log = LOGS / "benchmark.log"
    log.unlink(missing_ok=True)
    print(f"scaling run on {bench.relative_to(ROOT)}; output in {log.relative_to(ROOT)}", flush=True)
    sync = measure(["uv", "sync", "--frozen"], bench, log=log, echo=False)
    results: dict[str, Any] = {}
    for count in rows:
        print(f"\n== {count:,} rows", flush=True)
        synth = measure(
            [
                "uv",
                "run",
                "--frozen",
                package,
                "synth",
                "--rows",
                str(count),
                "--seed",
                str(seed),
                "--output",
                "data/raw/data.csv",
            ],
            bench,
            log=log,
            echo=echo,
        )
        commit = measure(
            ["uv", "run", "--frozen", "dvc", "commit", "--force", "--quiet", "data/raw/data.csv.dvc"],
            bench,
            log=log,
            echo=echo,
        )
        load_before = os.getloadavg()[0]
        repro = measure(
            ["uv", "run", "--frozen", "dvc", "repro", "--force"],
            bench,
            log=log,
            echo=echo,
            package=package,
            check=False,
        )
        load_after = os.getloadavg()[0]
        if repro.returncode != 0:
            tail = "\n".join(repro.output[-20:])
            raise StepError(f"`dvc repro --force` failed at {count} rows (exit {repro.returncode}):\n{tail}")
        verdict = _read_json(bench / "reports" / "gate.json") or {}
        metrics = (_read_json(bench / "metrics" / "metrics.json") or {}).get("model") or {}
        timings = _read_json(bench / "reports" / "timings.json") or {}  # the gate's measured latency (untracked)
        failed = [c["name"] for c in verdict.get("checks", []) if c.get("status") == "fail"]
        results[str(count)] = {
            **repro.summary(),
            "synth_seconds": round(synth.seconds, 2),
            "synth_peak_mb": round(synth.peak_mb, 1),
            "dvc_commit_seconds": round(commit.seconds, 2),
            "load_average": {"before": round(load_before, 2), "after": round(load_after, 2)},
            "gate_passed": bool(verdict.get("passed")),
            "gate_failed_checks": "; ".join(failed) or "none",
            "latency_p99_ms": round(float(timings.get("p99_ms", 0.0)), 3),
            "metrics": {k: round(v, 4) for k, v in metrics.items() if isinstance(v, int | float)},
            "sizes_mb": {
                "raw_csv": round(_size_mb(bench / "data" / "raw" / "data.csv"), 2),
                "model_joblib": round(_size_mb(bench / "models" / "model.joblib"), 2),
                "model_onnx": round(_size_mb(bench / "models" / "model.onnx"), 2),
                "plots_in_git": round(_size_mb(bench / "plots"), 3),
                "metrics_in_git": round(_size_mb(bench / "metrics"), 3),
                "report": round(_size_mb(bench / "reports" / "report.md"), 3),
            },
        }
        print(
            f"== {count:,} rows: {repro.seconds:.1f} s, peak {repro.peak_mb:.0f} MB, "
            f"gate {'passed' if verdict.get('passed') else 'FAILED'}",
            flush=True,
        )
    return {
        "project": about,
        "machine": machine(),
        "seed": seed,
        "sync_seconds": round(sync.seconds, 2),
        "rows": results,
        "growth": growth(rows, [results[str(n)] for n in rows], limit),
    }


# --- Markdown -----------------------------------------------------------------------------------------------------


def _num(value: Any, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "**no**"
    if isinstance(value, int | float):
        return f"{value:,.{digits}f}"
    return str(value)


def _row(cells: Sequence[Any]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _pipeline_table(pipeline: dict[str, Any]) -> list[str]:
    project, steps, noop = pipeline["project"], pipeline["steps"], pipeline["noop"]
    title = (
        f"#### From `cookiecutter` to a validated model and report ({project['task']}, "
        f"{project['model_family']}, {project['rows']:,} rows)"
    )
    lines = [title, "", _row(["step", "seconds", "peak MB"]), "|---|---:|---:|"]
    lines += [
        _row([name, _num(steps[name]["seconds"]), _num(steps[name].get("peak_mb"), 0)])
        for name in ("bake", "sync", "setup", "repro")
    ]
    lines += [
        _row(["**total**", f"**{_num(pipeline['total_seconds'])}**", ""]),
        _row([f"no-op `dvc repro` (median of {noop['repeats']})", _num(noop["seconds"], 2), ""]),
        "",
        f"{pipeline['gate']['summary'].capitalize()}. Test metrics: "
        + ", ".join(f"{k} {v:.3f}" for k, v in sorted(pipeline["metrics"].items()))
        + f". Load average during the run: {pipeline['load_average']['before']:g} → "
        + f"{pipeline['load_average']['after']:g} on {pipeline['machine']['cpus']} CPUs.",
    ]
    stages = steps["repro"].get("stages") or {}
    if stages:
        lines += [
            "",
            _row(["`dvc repro` stage", *stages]),
            "|---|" + "---:|" * len(stages),
            _row(["seconds", *(_num(s["seconds"]) for s in stages.values())]),
            _row(["peak MB", *(_num(s["peak_mb"], 0) for s in stages.values())]),
        ]
    return lines


def _fastest(step: dict[str, Any]) -> str:
    name = step["fastest_growing_stage"]
    return f"{name} {step['stages'][name]:.2f}×" if name in step["stages"] else "–"


def _benchmark_table(benchmark: dict[str, Any]) -> list[str]:
    sizes = benchmark["rows"]
    names: list[str] = []
    for figures in sizes.values():
        names += [s for s in figures.get("stages", {}) if s not in names]
    m = benchmark["machine"]
    lines = [
        f"#### Scaling: forced `dvc repro` on synthetic data ({m['cpus']} CPUs, {m['memory_gb']} GB, {m['cpu']})",
        "",
        _row(["rows", "`dvc repro` s", "peak MB", *(f"{s} s" for s in names), "gate"]),
        "|" + "---:|" * (len(names) + 3) + "---|",
    ]
    for count, figures in sizes.items():
        stages = figures.get("stages", {})
        gate = "pass" if figures["gate_passed"] else f"**fail**: {figures['gate_failed_checks']}"
        lines.append(
            _row(
                [
                    f"{int(count):,}",
                    _num(figures["seconds"]),
                    _num(figures["peak_mb"], 0),
                    *(_num(stages.get(s, {}).get("seconds")) for s in names),
                    gate,
                ]
            )
        )
    lines += [
        "",
        "Peak memory of each stage's process (MB = 10^6 bytes, sampled `VmHWM`):",
        "",
        _row(["rows", *names]),
        "|" + "---:|" * (len(names) + 1),
    ]
    for count, figures in sizes.items():
        stages = figures.get("stages", {})
        lines.append(_row([f"{int(count):,}", *(_num(stages.get(s, {}).get("peak_mb"), 0) for s in names)]))
    lines += ["", _row(["step", "rows", "time", "peak memory", "fastest-growing stage"]), "|---|---:|---:|---:|---|"]
    for step, figures in benchmark["growth"]["steps"].items():
        lines.append(
            _row(
                [
                    step,
                    f"{figures['rows']:g}×",
                    f"{figures['time']:.2f}×",
                    f"{figures['memory']:.2f}×",
                    _fastest(figures),
                ]
            )
        )
    growth_figures = benchmark["growth"]
    verdict = (
        f"Verdict: **{growth_figures['verdict']}** (allowed: at most "
        f"{growth_figures['max_time_ratio_per_10x']:g}× the time per 10× the rows)."
    )
    loads = [f["load_average"]["after"] for f in sizes.values() if "load_average" in f]
    note = f" Load average at the end of each run: {', '.join(f'{x:g}' for x in loads)}." if loads else ""
    lines += ["", verdict + note]
    return lines


def table(pipeline: dict[str, Any] | None, benchmark: dict[str, Any] | None) -> str:
    """The recorded figures as GitHub-flavoured Markdown."""
    parts = []
    if pipeline:
        parts += _pipeline_table(pipeline)
    if benchmark:
        parts += ["", *_benchmark_table(benchmark)] if parts else _benchmark_table(benchmark)
    return "\n".join(parts) + "\n"


def _at_ref(ref: str, path: Path) -> Any:
    """A committed JSON file at ``ref`` (None if the ref or the file is missing)."""
    for candidate in (f"origin/{ref}", ref):
        shown = subprocess.run(
            ["git", "show", f"{candidate}:{path.relative_to(ROOT).as_posix()}"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        if shown.returncode == 0:
            return json.loads(shown.stdout)
    return None


def headline(pipeline: dict[str, Any] | None, benchmark: dict[str, Any] | None) -> dict[str, float | None]:
    """The figures a reviewer of a template change compares: speed, memory, and the baked model's metrics."""
    figures: dict[str, float | None] = {}
    if pipeline:
        figures["scaffold to model + report (s)"] = pipeline.get("total_seconds")
        figures["no-op dvc repro (s)"] = (pipeline.get("noop") or {}).get("seconds")
        figures["gate passed"] = float(bool((pipeline.get("gate") or {}).get("passed")))
        figures.update({f"model {k}": v for k, v in (pipeline.get("metrics") or {}).items()})
    for rows, run in ((benchmark or {}).get("rows") or {}).items():
        figures[f"{int(rows):,} rows: dvc repro (s)"] = run.get("seconds")
        figures[f"{int(rows):,} rows: peak MB"] = run.get("peak_mb")
    return figures


def report(base: str) -> str:
    """Markdown for the template's pull requests: headline figures against ``base``, then the full tables."""
    pipeline, benchmark = _read_json(PIPELINE_METRICS), _read_json(BENCHMARK_METRICS)
    now = headline(pipeline, benchmark)
    then = headline(_at_ref(base, PIPELINE_METRICS), _at_ref(base, BENCHMARK_METRICS))
    lines = [
        "## Template pipeline: bake → run → benchmark",
        "",
        f"| figure | {base} | this change | change |",
        "|---|---:|---:|---:|",
    ]
    for name, value in now.items():
        old = then.get(name)
        change = "–" if value is None or old is None else f"{value - old:+.4g}"
        lines.append(_row([name, _num(old, 3), _num(value, 3), change]))
    return "\n".join(lines) + "\n\n" + table(pipeline, benchmark)


# --- Command line --------------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command."""
    parser = argparse.ArgumentParser(
        prog="python -m tools.benchmark",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Figures go to metrics/*.json (DVC metrics) and benchmarks/results.md.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("scaling", help="time a forced `dvc repro` of the baked project at each data size")
    run.add_argument("--rows", type=int, nargs="+", help="row counts (default: benchmark.rows in params.yaml)")
    run.add_argument("--seed", type=int, help="synthetic data seed (default: benchmark.seed)")
    run.add_argument("--project", type=Path, help="any baked project to copy (default: the one in build/bake.json)")
    run.add_argument("--output", type=Path, default=BENCHMARK_METRICS, help="metrics file (%(default)s)")
    run.add_argument("--quiet", action="store_true", help="do not echo the pipeline's output")
    show = sub.add_parser("table", help="print the recorded figures as Markdown")
    show.add_argument("--output", type=Path, help="also write the Markdown to this file")
    review = sub.add_parser("report", help="Markdown comparing the recorded figures with a base ref, for PRs")
    review.add_argument("--base", default="main", help="ref to compare with (origin/<base> first; %(default)s)")
    review.add_argument("--output", type=Path, required=True, help="where to write the Markdown")
    args = parser.parse_args(argv)

    if args.command == "report":
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(report(args.base))
        return 0
    if args.command == "table":
        text = table(_read_json(PIPELINE_METRICS), _read_json(BENCHMARK_METRICS))
        print(text, end="")
        if args.output:
            args.output.parent.mkdir(parents=True, exist_ok=True)
            args.output.write_text(text)
        return 0

    settings = load_params()["benchmark"]
    rows = args.rows or list(settings["rows"])
    if rows != sorted(rows) or len(set(rows)) != len(rows):
        raise SystemExit("error: row counts must be increasing")
    project = (args.project or ROOT / load_manifest()["project"]).resolve()
    try:
        figures = scaling(
            rows,
            settings["seed"] if args.seed is None else args.seed,
            float(settings["max_growth"]),
            project,
            echo=not args.quiet,
        )
    except StepError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    write_json(args.output, figures)
    print()
    print(table(None, figures), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
