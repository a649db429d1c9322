"""The project's one command line: ``{{ cookiecutter.package_name }} <command>``.

DVC stages, tests, the Makefile and the GitHub workflows all call these commands, so what runs in CI can be run
locally, word for word. Heavy libraries are imported inside each command to keep every call fast, and ``serve``
imports only the serving runtime (numpy, onnxruntime, orjson, httptools, uvloop): the model image has nothing else.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from {{ cookiecutter.package_name }}.pipeline.config import Params
    from {{ cookiecutter.package_name }}.pipeline.schema import Schema

PROJECT = {{ cookiecutter.project_name | tojson }}


def _context() -> tuple[Params, Schema]:
    from {{ cookiecutter.package_name }}.pipeline.config import PARAMS_FILE, load_params
    from {{ cookiecutter.package_name }}.pipeline.schema import load_schema

    params = load_params(PARAMS_FILE)
    return params, load_schema(params.paths.schema_)


def cmd_prepare(args: argparse.Namespace) -> int:
    """Validate the raw data against the schema and split it."""
    from {{ cookiecutter.package_name }}.pipeline import prepare

    params, schema = _context()
    paths = params.paths
    splits = prepare.run(paths.raw, schema, params.data, paths.train, paths.test, paths.data_profile)
    print(f"prepared {len(splits.train)} train and {len(splits.test)} test rows from {paths.raw}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """Fit the model pipeline."""
    import pandas as pd

    from {{ cookiecutter.package_name }}.pipeline import train

    params, schema = _context()
    model = train.fit(pd.read_parquet(params.paths.train), schema, params.train)
    train.save(model, params.paths.model)
    print(f"trained {params.train.model} -> {params.paths.model}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Compute test metrics, slice metrics and plot data."""
    import pandas as pd

    from {{ cookiecutter.package_name }}.pipeline import evaluate, train

    params, schema = _context()
    paths = params.paths
    metrics = evaluate.run(
        train.load(paths.model),
        pd.read_parquet(paths.test),
        schema,
        params.evaluate,
        paths.metrics,
        paths.slices,
        paths.plots,
    )
    print(", ".join(f"{k}={v:.4f}" for k, v in metrics.items()))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Convert to ONNX, check parity, write metadata."""
    import pandas as pd

    from {{ cookiecutter.package_name }}.pipeline import export, lineage, train

    params, schema = _context()
    paths = params.paths
    origin = {"git_commit": lineage.git_commit(), **lineage.data_lineage(paths.raw, {"data.train": paths.train})}
    parity = export.run(
        train.load(paths.model),
        pd.read_parquet(paths.test),
        schema,
        params.export,
        paths.onnx,
        paths.metadata,
        paths.parity,
        origin,
        json.loads(paths.metrics.read_text()),
    )
    print(f"exported {paths.onnx} (parity: {parity})")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    """Run the gate and record its verdict (use `gate` to fail on it)."""
    import pandas as pd

    from {{ cookiecutter.package_name }}.pipeline import validate

    params, schema = _context()
    paths = params.paths
    verdict = validate.run(
        paths.metrics,
        paths.slices,
        paths.parity,
        paths.onnx,
        pd.read_parquet(paths.test),
        schema,
        params.gate,
        params.evaluate.min_slice_size,
        paths.verdict,
    )
    print(f"gate {'passed' if verdict['passed'] else 'FAILED'} -> {paths.verdict}")
    for line in validate.failures(verdict):
        print(f"  failed: {line}")
    return 0


def cmd_gate(args: argparse.Namespace) -> int:
    """Exit 1 when the recorded verdict has a failed check, naming each and by how much."""
    from {{ cookiecutter.package_name }}.contracts.io import read_json
    from {{ cookiecutter.package_name }}.contracts.verdict import failures
    from {{ cookiecutter.package_name }}.pipeline.config import PARAMS_FILE, load_params

    params = load_params(PARAMS_FILE)
    verdict = read_json(params.paths.verdict)
    failed = failures(verdict)
    for line in failed:
        print(f"gate failed: {line}", file=sys.stderr)
    if not failed:
        print(f"gate passed: {len(verdict['checks'])} checks")
    return 1 if failed else 0


def cmd_track(args: argparse.Namespace) -> int:
    """Log the run (params, metrics, ONNX model, lineage) to MLflow."""
    import yaml

    from {{ cookiecutter.package_name }}.pipeline import tracking
    from {{ cookiecutter.package_name }}.pipeline.config import PARAMS_FILE

    params, _ = _context()
    record = tracking.log_run(params, yaml.safe_load(PARAMS_FILE.read_text()), tracking.lineage_tags(params))
    print(f"logged MLflow run {record['run_id']} to {record['tracking_uri']}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Write the Markdown report for the pull request."""
    from {{ cookiecutter.package_name }}.pipeline import report

    params, schema = _context()
    report.run(params, schema, f"{PROJECT}: model report")
    print(f"wrote {params.paths.report}")
    return 0


def cmd_profile(args: argparse.Namespace) -> int:
    """Store the reference profile (training data, predictions on held-out data, metrics) that `monitor` reads."""
    import pandas as pd

    from {{ cookiecutter.package_name }}.pipeline import profile

    params, schema = _context()
    paths = params.paths
    reference = profile.run(
        pd.read_parquet(paths.train),
        pd.read_parquet(paths.test),
        schema,
        paths.onnx,
        paths.metadata,
        paths.metrics,
        params.monitor,
        paths.reference,
    )
    rows = reference["rows"]
    print(f"profiled {rows['train']} training rows and {rows['test']} held-out predictions -> {paths.reference}")
    return 0


def cmd_monitor(args: argparse.Namespace) -> int:
    """Drift, decay and data quality of logged predictions: 0 healthy, 1 retrain, 2 usage or input error."""
    from {{ cookiecutter.package_name }}.monitoring import monitor
    from {{ cookiecutter.package_name }}.pipeline.config import ConfigError

    try:
        params, schema = _context()
        output = Path(args.output) if args.output else params.paths.monitor
        verdict = monitor.run(
            Path(args.predictions),
            Path(args.labels) if args.labels else None,
            schema,
            params.monitor,
            params.paths.reference,
            output,
            args.since,
            args.until,
            f"{PROJECT}: monitoring report",
        )
    except (monitor.MonitorError, ConfigError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception:  # exit 1 means "retrain": a crash must not look like one
        traceback.print_exc()
        print("error: the monitor failed (traceback above)", file=sys.stderr)
        return 2
    print(verdict["summary"])
    print(f"wrote {output / 'report.md'} and {output / 'verdict.json'}")
    return 1 if verdict["retrain"] else 0


def cmd_retrain_data(args: argparse.Namespace) -> int:
    """Add a window's labelled live rows to the raw data and print how many (`added N ...`, N may be 0)."""
    from {{ cookiecutter.package_name }}.monitoring import monitor, retrain
    from {{ cookiecutter.package_name }}.pipeline.config import ConfigError

    try:
        params, schema = _context()
        rows = monitor.labelled_frame(Path(args.predictions), Path(args.labels), schema, args.since, args.until)
        added, known = retrain.append_rows(params.paths.raw, rows, schema)
    except (monitor.MonitorError, retrain.RetrainDataError, ConfigError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"added {added} labelled rows to {params.paths.raw} ({known} of the window's {len(rows)} already there)")
    return 0


def cmd_register(args: argparse.Namespace) -> int:
    """Register the tracked model in the MLflow registry and set an alias on the new version."""
    import yaml

    from {{ cookiecutter.package_name }}.pipeline import tracking
    from {{ cookiecutter.package_name }}.pipeline.config import PARAMS_FILE, load_params

    params = load_params(PARAMS_FILE)
    raw_params = yaml.safe_load(PARAMS_FILE.read_text())
    result = tracking.register(params, raw_params, args.alias, allow_failed_gate=args.allow_failed_gate)
    if result.stand_in:
        print(result.stand_in)
    # The release workflow reads this line with sed: keep its words.
    print(f"registered {result.name} version {result.version} as @{result.alias}")
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    """Write synthetic rows that satisfy the schema (for tests and benchmarks)."""
    from {{ cookiecutter.package_name }}.pipeline import synthetic

    _, schema = _context()
    synthetic.write_csv(schema, args.rows, args.seed, Path(args.output))
    print(f"wrote {args.rows} rows to {args.output}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the exported ONNX model over HTTP (settings from the environment: see serving.settings)."""
    from {{ cookiecutter.package_name }}.serving.server import run
    from {{ cookiecutter.package_name }}.serving.settings import Settings, SettingsError

    try:
        settings = Settings.from_env(model_dir=Path(args.model_dir) if args.model_dir else None)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return run(settings)


def cmd_healthcheck(args: argparse.Namespace) -> int:
    """Exit 0 if the server on HOST:PORT is ready (the image's HEALTHCHECK; no HTTP client in the image)."""
    import urllib.request

    from {{ cookiecutter.package_name }}.serving.settings import Settings, SettingsError

    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    host = "127.0.0.1" if settings.host in ("", "0.0.0.0", "::") else settings.host
    if ":" in host:  # an IPv6 address
        host = "[" + host + "]"
    url = f"http://{host}:{settings.port}/readyz"
    try:
        with urllib.request.urlopen(url, timeout=args.timeout) as response:
            return 0 if response.status == 200 else 1
    except OSError as exc:  # refused, timed out, or an HTTP error status such as 503
        print(f"not ready: {url}: {exc}", file=sys.stderr)
        return 1


def cmd_promote(args: argparse.Namespace) -> int:
    """Pin an image digest in an environment's overlay and commit it (dev, then staging, then prod)."""
    from {{ cookiecutter.package_name }}.release import promote

    outcome = promote.promote(args.env, args.digest, args.model_version, force=args.force)
    print(outcome.message)
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    """Return an environment to the digest it ran before (or to --to), as one commit."""
    from {{ cookiecutter.package_name }}.release import promote

    outcome = promote.rollback(args.env, args.to)
    print(outcome.message)
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    """List the digests an environment ran, newest first, from git log of its overlay."""
    from {{ cookiecutter.package_name }}.release import promote

    deployments = promote.history(args.env)
    if args.json:
        print(json.dumps(promote.history_records(deployments), indent=2))
    else:
        print(promote.history_table(args.env, deployments))
    return 0


def cmd_probe(args: argparse.Namespace) -> int:
    """Check a running server against a release's model: 0 if healthy, 1 if its environment should roll back."""
    from {{ cookiecutter.package_name }}.release import probe

    try:
        metadata = json.loads(Path(args.metadata).read_text())
    except (OSError, ValueError) as exc:
        print(f"error: cannot read the model metadata {args.metadata}: {exc}", file=sys.stderr)
        return 2
    checks = probe.probe(args.url, metadata, args.requests, args.budget_ms, args.wait)
    print(probe.report(checks, args.json))
    return 0 if all(c.passed for c in checks) else 1


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "prepare": cmd_prepare,
    "train": cmd_train,
    "evaluate": cmd_evaluate,
    "export": cmd_export,
    "profile": cmd_profile,
    "validate": cmd_validate,
    "track": cmd_track,
    "report": cmd_report,
    "gate": cmd_gate,
    "register": cmd_register,
    "synth": cmd_synth,
    "serve": cmd_serve,
    "healthcheck": cmd_healthcheck,
    "promote": cmd_promote,
    "rollback": cmd_rollback,
    "history": cmd_history,
    "probe": cmd_probe,
    "monitor": cmd_monitor,
    "retrain-data": cmd_retrain_data,
}


SERVING_COMMANDS = ("serve", "healthcheck", "probe")
"""The commands the serving image runs: they import nothing beyond the serving runtime."""


def parser() -> argparse.ArgumentParser:
    """The argument parser, one sub-command per lifecycle step."""
    from {{ cookiecutter.package_name }}.release.promote import (
        ENVIRONMENTS,  # standard library only at import: the serving image has it too
    )

    root = argparse.ArgumentParser(prog="{{ cookiecutter.package_name }}", description=__doc__.splitlines()[0])
    sub = root.add_subparsers(dest="command", required=True)
    for name, func in COMMANDS.items():
        command = sub.add_parser(name, help=(func.__doc__ or "").splitlines()[0])
        command.set_defaults(func=func)
        if name == "register":
            command.add_argument("--alias", default="challenger", help="alias to point at the new version")
            command.add_argument("--allow-failed-gate", action="store_true", help="register even if the gate failed")
        if name == "synth":
            command.add_argument("--rows", type=int, required=True)
            command.add_argument("--seed", type=int, default=0)
            command.add_argument("--output", required=True)
        if name == "serve":
            command.add_argument("--model-dir", help="directory with model.onnx and metadata.json (default: MODEL_DIR)")
        if name == "probe":
            command.add_argument("--url", required=True, help="the server's base URL, e.g. https://staging.example.com")
            command.add_argument("--metadata", default="models/metadata.json", help="the release's model metadata")
            command.add_argument("--requests", type=int, default=50, help="requests timed for the latency check")
            command.add_argument("--budget-ms", type=float, default=100.0, help="largest p95 latency allowed")
            command.add_argument("--wait", type=float, default=0.0, help="seconds to wait for the version to roll out")
            command.add_argument("--json", action="store_true", help="print the verdict as JSON")
        if name == "monitor":
            command.add_argument("--predictions", required=True, help="directory of prediction logs (*.jsonl)")
            command.add_argument("--labels", help="directory of ground-truth labels (*.csv: request_id, index, target)")
            command.add_argument("--since", help="window start: ISO 8601 (UTC by default) or a duration back: 7d, 12h")
            command.add_argument("--until", help="window end (excluded), same forms as --since")
            command.add_argument("--output", help="directory for report.md and verdict.json (default: paths.monitor)")
        if name == "retrain-data":
            command.add_argument("--predictions", required=True, help="directory of prediction logs (*.jsonl)")
            command.add_argument("--labels", required=True, help="directory of ground-truth labels (*.csv)")
            command.add_argument("--since", help="window start: ISO 8601 (UTC by default) or a duration back: 7d, 12h")
            command.add_argument("--until", help="window end (excluded), same forms as --since")
        if name == "healthcheck":
            command.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for /readyz")
        if name in ("promote", "rollback", "history"):
            command.add_argument("--env", required=True, choices=ENVIRONMENTS, help="the environment")
        if name == "promote":
            command.add_argument("--digest", required=True, help="the image digest, sha256:<64 hex digits>")
            command.add_argument("--model-version", help="recorded with the digest (default: the one it has upstream)")
            command.add_argument("--force", action="store_true", help="skip the check on the previous environment")
        if name == "rollback":
            command.add_argument("--to", help="a digest the environment ran before (default: the one before)")
        if name == "history":
            command.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return root


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; known errors print one clear message and exit 1 (2 for usage errors)."""
    args = parser().parse_args(argv)
    if args.command in SERVING_COMMANDS:  # the serving image has no pydantic or yaml: the errors below need them
        status: int = args.func(args)
        return status
    from {{ cookiecutter.package_name }}.pipeline.config import ConfigError
    from {{ cookiecutter.package_name }}.pipeline.schema import DataContractError
    from {{ cookiecutter.package_name }}.pipeline.tracking_server import TrackingError
    from {{ cookiecutter.package_name }}.release.gitops import GitError, Interrupted
    from {{ cookiecutter.package_name }}.release.promote import PromotionError

    try:
        status = args.func(args)
        return status
    except Interrupted as exc:  # a signal stopped promote, rollback or history: the message says what landed
        print(f"error: {exc}", file=sys.stderr)
        return 128 + exc.signum
    except (
        ConfigError,
        DataContractError,
        PromotionError,
        GitError,
        TrackingError,
        PermissionError,
        FileNotFoundError,
    ) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
