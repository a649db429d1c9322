"""The release commands: promotion, rollback, history, the registry alias that follows them, and the probe."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from {{ cookiecutter.package_name }}.cli.registry import arg, command
from {{ cookiecutter.package_name }}.contracts.errors import DONE, NO, ProjectError
from {{ cookiecutter.package_name }}.release.promote import (
    ENVIRONMENTS,  # standard library only at import: the serving image has it too
)

ENV = arg("--env", required=True, choices=ENVIRONMENTS, help="the environment")


@command(
    "promote",
    ENV,
    arg("--digest", required=True, help="the image digest, sha256:<64 hex digits>"),
    arg("--model-version", help="recorded with the digest (default: the one it has upstream)"),
    arg("--force", action="store_true", help="skip the check on the previous environment"),
)
def promote(args: argparse.Namespace) -> int:
    """Pin an image digest in an environment's overlay and commit it (dev, then staging, then prod)."""
    from {{ cookiecutter.package_name }}.release import promote

    outcome = promote.promote(args.env, args.digest, args.model_version, force=args.force)
    print(outcome.message)
    return DONE


@command("rollback", ENV, arg("--to", help="a digest the environment ran before (default: the one before)"))
def rollback(args: argparse.Namespace) -> int:
    """Return an environment to the digest it ran before (or to --to), as one commit."""
    from {{ cookiecutter.package_name }}.release import promote

    outcome = promote.rollback(args.env, args.to)
    print(outcome.message)
    return DONE


@command("history", ENV, arg("--json", action="store_true", help="print JSON instead of a table"))
def history(args: argparse.Namespace) -> int:
    """List the digests an environment ran, newest first, from git log of its overlay."""
    from {{ cookiecutter.package_name }}.release import promote

    deployments = promote.history(args.env)
    if args.json:
        print(json.dumps(promote.history_records(deployments), indent=2))
    else:
        print(promote.history_table(args.env, deployments))
    return DONE


@command("follow-registry", ENV, arg("--json", action="store_true", help="print what was done as JSON"))
def follow_registry(args: argparse.Namespace) -> int:
    """Move the environment's registry alias (prod: @champion) to the model version its overlay runs."""
    from dataclasses import asdict

    from {{ cookiecutter.package_name }}.cli.registry import print_json, settings
    from {{ cookiecutter.package_name }}.release import registry

    params, _ = settings()
    move = registry.follow(args.env, params)
    if args.json:
        print_json({**asdict(move), "message": move.message})
    else:
        print(move.message)
    return DONE


@command(
    "probe",
    arg("--url", required=True, help="the server's base URL, e.g. https://staging.example.com"),
    arg("--metadata", default="models/metadata.json", help="the release's model metadata"),
    arg("--requests", type=int, default=50, help="requests timed for the latency check"),
    arg("--budget-ms", type=float, default=100.0, help="largest p95 latency allowed"),
    arg("--wait", type=float, default=0.0, help="seconds to wait for the version to roll out"),
    arg("--json", action="store_true", help="print the verdict as JSON"),
)
def probe(args: argparse.Namespace) -> int:
    """Check a running server against a release's model: 0 if healthy, 1 if its environment should roll back."""
    from {{ cookiecutter.package_name }}.release import probe

    try:
        metadata = json.loads(Path(args.metadata).read_text())
    except (OSError, ValueError) as exc:
        raise ProjectError(f"cannot read the model metadata {args.metadata}: {exc}") from None
    checks = probe.probe(args.url, metadata, args.requests, args.budget_ms, args.wait)
    print(probe.report(checks, args.json))
    return DONE if all(c.passed for c in checks) else NO
