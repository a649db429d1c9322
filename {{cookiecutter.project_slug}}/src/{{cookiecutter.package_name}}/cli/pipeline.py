"""The pipeline's commands: the DVC stages, the gate, the MLflow registration and synthetic data.

Each stage command reads ``params.yaml`` and the data contract, and the stage takes its paths from ``paths``.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import TypedDict

from {{ cookiecutter.package_name }}.cli.registry import JSON, PROJECT, arg, command, print_json, settings
from {{ cookiecutter.package_name }}.contracts.errors import DONE, NO


@command("prepare")
def prepare(args: argparse.Namespace) -> int:
    """Validate the raw data against the schema and split it."""
    from {{ cookiecutter.package_name }}.pipeline import prepare

    params, schema = settings()
    splits = prepare.run(params, schema)
    print(f"prepared {len(splits.train)} train and {len(splits.test)} test rows from {params.paths.raw}")
    return DONE


@command("train")
def train(args: argparse.Namespace) -> int:
    """Fit the model pipeline."""
    from {{ cookiecutter.package_name }}.pipeline import train

    params, schema = settings()
    train.run(params, schema)
    print(f"trained {params.train.model} -> {params.paths.model}")
    return DONE


@command("evaluate")
def evaluate(args: argparse.Namespace) -> int:
    """Compute test metrics (the model's and a naive baseline's), slice metrics and plot data."""
    from {{ cookiecutter.package_name }}.pipeline import evaluate

    scores = evaluate.run(*settings())
    naive = scores["naive_baseline"]
    print(", ".join(f"{k}={v:.4f}" for k, v in scores["model"].items()))
    print(f"naive baseline {naive['estimator']}: " + ", ".join(f"{k}={v:.4f}" for k, v in naive["metrics"].items()))
    return DONE


@command("export")
def export(args: argparse.Namespace) -> int:
    """Convert to ONNX, check parity, write metadata."""
    from {{ cookiecutter.package_name }}.pipeline import export

    params, schema = settings()
    parity = export.run(params, schema)
    print(f"exported {params.paths.onnx} (parity: {parity})")
    return DONE


@command("profile")
def profile(args: argparse.Namespace) -> int:
    """Store the reference profile (training data, predictions on held-out data, metrics) that `monitor` reads."""
    from {{ cookiecutter.package_name }}.pipeline import profile

    params, schema = settings()
    rows = profile.run(params, schema)["rows"]
    print(f"profiled {rows['train']} training rows and {rows['test']} held-out predictions -> {params.paths.reference}")
    return DONE


@command("validate")
def validate(args: argparse.Namespace) -> int:
    """Run the gate and record its verdict (use `gate` to fail on it)."""
    from {{ cookiecutter.package_name }}.pipeline import validate

    params, schema = settings()
    verdict = validate.run(params, schema)
    print(f"gate {'passed' if verdict['passed'] else 'FAILED'} -> {params.paths.verdict}")
    _print_timings(params.paths.timings)
    for line in validate.failures(verdict):
        print(f"  failed: {line}")
    return DONE


@command("track")
def track(args: argparse.Namespace) -> int:
    """Log the run (params, metrics, ONNX model, lineage) to MLflow."""
    import yaml

    from {{ cookiecutter.package_name }}.pipeline import tracking
    from {{ cookiecutter.package_name }}.pipeline.config import PARAMS_FILE

    params, _ = settings()
    record = tracking.log_run(params, yaml.safe_load(PARAMS_FILE.read_text()), tracking.lineage_tags(params))
    print(f"logged MLflow run {record['run_id']} to {record['tracking_uri']}")
    return DONE


@command("report")
def report(args: argparse.Namespace) -> int:
    """Write the Markdown report for the pull request."""
    from {{ cookiecutter.package_name }}.pipeline import report

    params, schema = settings()
    report.run(params, schema, f"{PROJECT}: model report")
    print(f"wrote {params.paths.report}")
    return DONE


@command("card")
def card(args: argparse.Namespace) -> int:
    """Write the model card from the pipeline's artifacts and the team's sentences."""
    from {{ cookiecutter.package_name }}.pipeline import card
    from {{ cookiecutter.package_name }}.pipeline.config import PARAMS_FILE, load_params

    params = load_params(PARAMS_FILE)  # not settings(): the card does not read the data contract
    card.run(params)
    print(f"wrote {params.paths.card}")
    return DONE


def _print_timings(path: Path) -> None:
    """The latency the gate measured (kept out of the verdict: it differs run to run), when it is here."""
    from {{ cookiecutter.package_name }}.contracts.verdict import describe_timings, read_timings

    timings = read_timings(path)
    if timings is not None:
        print(f"latency measured: {describe_timings(timings)} ({path}, untracked)")


@command("gate")
def gate(args: argparse.Namespace) -> int:
    """Exit 1 when the recorded verdict has a failed check, naming each and by how much."""
    from {{ cookiecutter.package_name }}.contracts.verdict import failures, read
    from {{ cookiecutter.package_name }}.pipeline.config import PARAMS_FILE, load_params

    params = load_params(PARAMS_FILE)
    verdict = read(params.paths.verdict)
    _print_timings(params.paths.timings)
    failed = failures(verdict)
    for line in failed:
        print(f"gate failed: {line}", file=sys.stderr)
    if not failed:
        print(f"gate passed: {len(verdict['checks'])} checks")
    return NO if failed else DONE


@command(
    "fork-notice",
    arg("--pr", type=int, required=True, help="the pull request's number"),
    arg("--head-repository", required=True, help="the fork it comes from (owner/name)"),
    arg("--repository", default={{ cookiecutter.github_repository | tojson }}, help="this repository (owner/name)"),
)
def fork_notice(args: argparse.Namespace) -> int:
    """Write the report of a fork's pull request, which is not trained (no credentials); exit 1: nothing was judged."""
    from {{ cookiecutter.package_name }}.pipeline import fork_notice
    from {{ cookiecutter.package_name }}.pipeline.config import PARAMS_FILE, load_params

    path = fork_notice.write(load_params(PARAMS_FILE).paths.report, args.pr, args.head_repository, args.repository)
    print(
        f"not trained: pull request #{args.pr} comes from the fork {args.head_repository}; wrote {path}",
        file=sys.stderr,
    )
    return NO


class Registered(TypedDict):
    """``register --json``: the new version; ``stand_in`` says which run was registered if not the recorded one."""

    name: str
    version: str
    alias: str
    run_id: str
    stand_in: str | None


@command(
    "register",
    arg("--alias", default="challenger", help="alias to point at the new version"),
    arg("--allow-failed-gate", action="store_true", help="register even if the gate failed"),
    JSON,
)
def register(args: argparse.Namespace) -> int:
    """Register the tracked model in the MLflow registry and set an alias on the new version."""
    import yaml

    from {{ cookiecutter.package_name }}.pipeline import tracking
    from {{ cookiecutter.package_name }}.pipeline.config import PARAMS_FILE, load_params

    params = load_params(PARAMS_FILE)
    raw_params = yaml.safe_load(PARAMS_FILE.read_text())
    # MLflow prints links to runs it logs on stdout (the stand-in run, with an HTTP tracking server): with --json,
    # stdout carries the JSON document only.
    with contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext():
        result = tracking.register(params, raw_params, args.alias, allow_failed_gate=args.allow_failed_gate)
    if args.json:  # the release workflow reads the version from this
        r = result
        print_json(Registered(name=r.name, version=r.version, alias=r.alias, run_id=r.run_id, stand_in=r.stand_in))
        return DONE
    if result.stand_in:
        print(result.stand_in)
    print(f"registered {result.name} version {result.version} as @{result.alias}")
    return DONE


@command(
    "synth",
    arg("--rows", type=int, required=True),
    arg("--seed", type=int, default=0),
    arg("--output", required=True),
)
def synth(args: argparse.Namespace) -> int:
    """Write synthetic rows that satisfy the schema (for tests and benchmarks)."""
    from {{ cookiecutter.package_name }}.pipeline import synthetic

    _, schema = settings()
    synthetic.write_csv(schema, args.rows, args.seed, Path(args.output))
    print(f"wrote {args.rows} rows to {args.output}")
    return DONE


@command(
    "check-remote",
    arg("--deadline", type=float, default=10.0, help="seconds to wait for the remote to answer"),
)
def check_remote(args: argparse.Namespace) -> int:
    """Check in seconds that the default DVC remote answers from here, with these credentials (before pull or push)."""
    from {{ cookiecutter.package_name }}.pipeline import remote

    print(f"ok: {remote.check(deadline_s=args.deadline)}")
    return DONE


@command(
    "remote",
    arg("--url", required=True, help="the remote's URL: s3://bucket/prefix, gs://..., azure://..., ssh://..., a path"),
    arg("--endpoint", help="an S3- or GCS-compatible server's URL, kept in .dvc/config.local (private)"),
    arg("--name", help="the remote's name (default: the current default remote's, or 'storage')"),
)
def set_remote(args: argparse.Namespace) -> int:
    """Make a URL the default DVC remote (`dvc remote add -d -f`), its endpoint in .dvc/config.local."""
    from {{ cookiecutter.package_name }}.pipeline import remote

    for line in remote.configure(args.url, args.endpoint or None, args.name or None):
        print(line)
    return DONE
