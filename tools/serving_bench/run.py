"""The run: data, baked project and pipeline, environments, each server measured, the prediction log, the figures."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import tools.serving_bench
from tools.bake import bake
from tools.benchmark import StepError, describe, machine, measure
from tools.serving_bench.common import (
    BEGIN,
    LOG_SAMPLE,
    OUTPUT,
    PARITY_ROWS,
    TARGET_COLUMN,
    WORK,
    StopRequestedError,
    sample_rows,
    shown,
    write_dataset,
)
from tools.serving_bench.envs import runtime_envs
from tools.serving_bench.floor import budgets, measure_floor
from tools.serving_bench.hardening import BASELINE, measure_hardening
from tools.serving_bench.logcost import measure_prediction_log
from tools.serving_bench.markdown import write_outputs
from tools.serving_bench.peers import kserve, mlserver
from tools.serving_bench.report import all_ratios, judge, parity, problems
from tools.serving_bench.servers import Server, asgi, measure_server, mlflow, model_artifacts, onnx_inputs, ours
from tools.serving_bench.v2 import ours_v2

SERVERS = ("ours", "ours-v2", "uvicorn", "granian", "mlflow", "kserve", "mlserver")
SAME_ENV = {"ours-v2": "ours"}  # the same server on another route: the same environment


def bench_answers(data: Path) -> dict[str, str]:
    """The template's answers for the benchmark's project (also those of the server before the hardening)."""
    return {
        "project_name": "Serving Bench",
        "dataset": str(data),
        "target_column": TARGET_COLUMN,
        "task": "classification",
        "model_family": "linear",
    }


def pipeline(work: Path, settings: argparse.Namespace) -> tuple[Path, dict[str, Any], dict[str, float]]:
    """Write the data, bake the project, run its pipeline up to ``track``; return it, its description and timings."""
    log = work / "logs" / "pipeline.log"
    data = write_dataset(work / "data.csv", settings.rows, settings.seed)
    started = time.perf_counter()
    project = bake(work / "projects", bench_answers(data), overwrite=True)
    seconds = {"bake": time.perf_counter() - started}
    for name, command in (
        ("sync", ["uv", "sync", "--frozen"]),
        ("setup", ["make", "setup"]),
        ("repro", ["uv", "run", "--frozen", "dvc", "repro", "track"]),
    ):
        print(f"  {name}: {' '.join(command)}", flush=True)
        seconds[name] = measure(command, project, log=log, echo=False).seconds
    if not (project / "models" / "model.onnx").is_file():
        raise StepError(f"the pipeline did not write {project / 'models' / 'model.onnx'}")
    return project, describe(project), {k: round(v, 1) for k, v in seconds.items()}


def benchmark(settings: argparse.Namespace) -> dict[str, Any]:
    """The whole run; returns the figures (see the package's docstring)."""
    work: Path = settings.work.resolve()
    shutil.rmtree(work, ignore_errors=True)
    (work / "logs").mkdir(parents=True)
    load_before = os.getloadavg()[0]
    cpus = os.cpu_count() or 1
    print(f"serving benchmark in {work} (logs in {work / 'logs'})", flush=True)
    if load_before > cpus / 2:
        print(f"warning: load average {load_before:.1f} on {cpus} CPUs: other work will skew the figures", flush=True)
    phases: dict[str, float] = {}
    clock = time.perf_counter()
    print("1. data, bake, pipeline", flush=True)
    project, about, pipeline_seconds = pipeline(work, settings)
    package = about["package"]
    metadata = json.loads((project / "models" / "metadata.json").read_text())
    run = json.loads((project / "reports" / "mlflow_run.json").read_text())
    artifacts = model_artifacts(project, run["model_uri"], work / "logs" / "pipeline.log")
    names: list[str] = settings.servers
    print(f"2. runtime environments: {', '.join(names)}", flush=True)
    phases["pipeline"], clock = time.perf_counter() - clock, time.perf_counter()
    envs = runtime_envs(project, package, artifacts, work, [name for name in names if name not in SAME_ENV])
    phases["environments"], clock = time.perf_counter() - clock, time.perf_counter()
    rows = sample_rows(work / "data.csv", PARITY_ROWS)
    classes = [str(c) for c in metadata["classes"]]
    inputs = onnx_inputs(project, work / "logs" / "pipeline.log")
    numeric = [feature["name"] for feature in metadata["inputs"] if feature["type"] == "number"]
    venvs = {name: work / "envs" / name for name in envs}
    makers = {
        "ours": lambda: ours(project, package, venvs["ours"]),
        "ours-v2": lambda: ours_v2(project, package, venvs["ours"]),
        "uvicorn": lambda: asgi("uvicorn", project, package, venvs["uvicorn"]),
        "granian": lambda: asgi("granian", project, package, venvs["granian"]),
        "mlflow": lambda: mlflow(project, run["run_id"], inputs, numeric),
        "kserve": lambda: kserve(work, project, venvs["kserve"], inputs, numeric),
        "mlserver": lambda: mlserver(work, project, venvs["mlserver"]),
    }
    servers: dict[str, dict[str, Any]] = {}
    answers: dict[str, list[tuple[str, list[float]]]] = {}
    tolerances: dict[str, float] = {}
    our_server: Server | None = None
    for name in names:
        server = makers[name]()
        our_server = server if name == "ours" else our_server
        print(f"3. {server.name}: {' '.join(server.command)}", flush=True)
        env = envs[SAME_ENV.get(name, name)]
        servers[name] = {**measure_server(server, rows, classes, settings, work), "runtime_env": env}
        servers[name]["runtime_env_mb"] = env["runtime_env_mb"]
        answers[name], tolerances[name] = servers[name].pop("predictions"), server.tolerance
        phases[name], clock = time.perf_counter() - clock, time.perf_counter()
    assert our_server is not None  # "ours" is always in names
    print(f"3. floor: {our_server.name} on GET /healthz, and the model's run in process", flush=True)
    routes = [our_server, *(makers[name]() for name in names if name == "ours-v2")]
    floor = measure_floor(routes, package, venvs["ours"], rows[0], settings, work)
    phases["floor"], clock = time.perf_counter() - clock, time.perf_counter()
    prediction_log = None
    if settings.log_rounds:
        print(
            f"4. prediction log: {our_server.name} with PREDICTION_LOG_DIR (sample {LOG_SAMPLE}) and without",
            flush=True,
        )
        prediction_log = measure_prediction_log(our_server, rows, settings, work)
        phases["prediction_log"], clock = time.perf_counter() - clock, time.perf_counter()
    hardening = None
    if settings.hardening_rounds:
        print(
            f"5. attack protections: {our_server.name} against the server at {settings.hardening_baseline}", flush=True
        )
        baked = bench_answers(work / "data.csv")
        hardening = measure_hardening(our_server, package, rows, classes, settings, baked, work)
        phases["hardening"] = time.perf_counter() - clock
    figures: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "uv run python -m tools.serving_benchmark " + " ".join(settings.argv),
        "machine": machine(),
        "load_average": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
        "settings": {
            "duration": settings.duration,
            "warmup": settings.warmup,
            "connections": settings.connections,
            "wrk_threads": 1,
            "batch": 1,
            "starts": settings.starts,
            "rows": settings.rows,
            "seed": settings.seed,
            "servers": names,
            "log_rounds": settings.log_rounds,
            "log_seconds": settings.log_seconds,
            "log_sample": LOG_SAMPLE,
            "hardening_rounds": settings.hardening_rounds,
            "hardening_seconds": settings.hardening_seconds,
            "hardening_baseline": settings.hardening_baseline,
        },
        "model": {
            "task": about["task"],
            "family": about["model_family"],
            "features": len(metadata["inputs"]),
            "classes": classes,
            "version": metadata.get("version"),
            "onnx_bytes": (project / "models" / "model.onnx").stat().st_size,
            "mlflow_run_id": run["run_id"],
            "mlflow_model_uri": run["model_uri"],
            "onnx_inputs": inputs,
        },
        "project": shown(project),
        "pipeline_seconds": pipeline_seconds,
        "phase_seconds": {name: round(seconds, 1) for name, seconds in phases.items()},
        "image": None,  # the project's `make image` (buildah) is not run here: no image size
        "servers": servers,
        "floor": floor,
        "prediction_log": prediction_log,
        "hardening": hardening,
    }
    figures["parity"] = {
        name: parity(answers["ours"], answers[name], tolerances[name]) for name in names if name != "ours"
    }
    figures["ratios"] = all_ratios(servers)
    figures["targets"] = judge(figures)
    figures["budgets"] = budgets(figures, figures["targets"])
    figures["targets_met"] = all(t["met"] is not False for t in figures["targets"])
    figures["problems"] = problems(figures)
    figures["valid"] = not figures["problems"]
    return figures


def _interrupt(signum: int, frame: Any) -> None:
    raise StopRequestedError(f"stopped by signal {signum}")


def _servers(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = sorted(set(names) - set(SERVERS))
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown servers {unknown}: choose among {', '.join(SERVERS)}")
    return ["ours", *(name for name in SERVERS if name in names and name != "ours")]  # ours first, a fixed order


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark (or, with ``--render``, only rewrite the Markdown from the JSON)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    doc = tools.serving_bench.__doc__ or ""
    parser = argparse.ArgumentParser(
        prog="python -m tools.serving_benchmark",
        description=doc.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds of measured load per server (%(default)s)")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of load before measuring (%(default)s)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (%(default)s)")
    parser.add_argument("--starts", type=int, default=3, help="cold starts per server, median kept (%(default)s)")
    parser.add_argument(
        "--servers",
        type=_servers,
        default=list(SERVERS),
        help="the servers to measure, comma-separated; ours always (default: all, %(default)s)",
    )
    parser.add_argument(
        "--log-rounds", type=int, default=8, help="rounds of the prediction log's comparison, 0 for none (%(default)s)"
    )
    parser.add_argument(
        "--log-seconds", type=int, default=3, help="seconds of load per server and round in it (%(default)s)"
    )
    parser.add_argument(
        "--hardening-rounds",
        type=int,
        default=8,
        help="rounds of the attack protections' cost (ours against ours before them), 0 for none (%(default)s)",
    )
    parser.add_argument(
        "--hardening-seconds", type=int, default=3, help="seconds of load per server and round in it (%(default)s)"
    )
    parser.add_argument(
        "--hardening-baseline",
        default=BASELINE,
        metavar="REF",
        help="git ref of the template whose server is 'before the hardening' (%(default)s)",
    )
    parser.add_argument("--rows", type=int, default=20_000, help="rows of the training CSV (%(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the training CSV (%(default)s)")
    parser.add_argument("--work", type=Path, default=WORK, help="scratch folder, emptied first (%(default)s)")
    parser.add_argument("--output", type=Path, default=OUTPUT, help="figures as JSON (%(default)s)")
    parser.add_argument("--markdown", type=Path, help="the Markdown table (default: the output with .md)")
    parser.add_argument("--readme", type=Path, help=f"also write the table into this file's {BEGIN} block")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target of the issues is missed")
    parser.add_argument("--render", action="store_true", help="only rewrite the Markdown (and README) from --output")
    args = parser.parse_args(argv)
    args.argv = argv
    if (
        min(args.duration, args.starts, args.connections, args.log_seconds, args.hardening_seconds) < 1
        or min(args.warmup, args.log_rounds, args.hardening_rounds) < 0
    ):
        parser.error(
            "--duration, --starts, --connections, --log-seconds and --hardening-seconds must be at least 1, --warmup, "
            "--log-rounds and --hardening-rounds at least 0"
        )

    if args.render:
        figures = json.loads(args.output.read_text())
        if any("group" not in server for server in figures["servers"].values()):
            print(f"error: {args.output} is from an older version of the benchmark: run it again", file=sys.stderr)
            return 2
        print(write_outputs(figures, args.output, args.markdown, args.readme), end="")
        return 0
    if shutil.which("wrk") is None:
        print("error: wrk is not installed (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        figures = benchmark(args)
    except (StepError, StopRequestedError, KeyboardInterrupt) as exc:
        print(f"error: {exc or type(exc).__name__}", file=sys.stderr)
        return 2
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print()
    print(write_outputs(figures, args.output, args.markdown, args.readme), end="")
    for problem in figures["problems"]:
        print(f"error: invalid run: {problem}", file=sys.stderr)
    missed = [t["name"] for t in figures["targets"] if t["met"] is False]
    if missed:
        print(f"targets missed: {', '.join(missed)}", file=sys.stderr if args.check else sys.stdout)
    if figures["problems"] or (args.check and missed):
        return 1
    return 0
