"""The stages of the template's own pipeline (root ``dvc.yaml``): bake the template, then run what it generated.

    python -m tools.pipeline fingerprint   # hash the template folder into build/template.json (DVC cannot see it)
    python -m tools.pipeline bake          # bake params.yaml's answers into build/<slug>, git init + first commit
    python -m tools.pipeline run           # uv sync, make setup, dvc repro, gate, no-op repro -> metrics/pipeline.json

Why a fingerprint: the template folder holds its own ``.dvc/``, so DVC treats it as a sub-repository and hashes it as
an empty directory; a stage that depends on it directly would never rerun. The ``template`` stage (always run, it
takes a fraction of a second) writes the hash of every file in it, and ``bake`` depends on that file instead.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tools.bake import bake
from tools.benchmark import (
    BUILD,
    LOGS,
    MANIFEST,
    PIPELINE_METRICS,
    ROOT,
    Measurement,
    StepError,
    describe,
    load_manifest,
    load_params,
    machine,
    measure,
    write_json,
)

TEMPLATE_DIR = ROOT / "{{cookiecutter.project_slug}}"
FINGERPRINT = BUILD / "template.json"
# Never part of what the template renders on purpose: caches a tool may leave in the folder.
SKIPPED = {"__pycache__", ".venv", ".ruff_cache", ".mypy_cache", ".pytest_cache", ".hypothesis"}


def fingerprint() -> dict[str, Any]:
    """SHA-256 over the path and content of every file in the template folder."""
    digest = hashlib.sha256()
    count = 0
    for path in sorted(TEMPLATE_DIR.rglob("*")):
        relative = path.relative_to(TEMPLATE_DIR)
        if path.is_dir() or SKIPPED.intersection(relative.parts) or path.suffix == ".pyc":
            continue
        digest.update(relative.as_posix().encode() + b"\0")
        digest.update(os.readlink(path).encode() if path.is_symlink() else path.read_bytes())
        digest.update(b"\0")
        count += 1
    return {"folder": TEMPLATE_DIR.name, "files": count, "sha256": digest.hexdigest()}


def _git(project: Path, *args: str) -> str:
    identity = {"user.name": "Template Pipeline", "user.email": "template-pipeline@example.com"}
    config = [arg for key, value in identity.items() for arg in ("-c", f"{key}={value}")]
    result = subprocess.run(["git", *config, *args], cwd=project, check=True, capture_output=True, text=True)
    return result.stdout.strip()


def bake_project(answers: dict[str, Any]) -> dict[str, Any]:
    """Bake into ``build/<slug>`` (replacing an earlier one) and commit; return the manifest."""
    staging = BUILD / ".staging"
    shutil.rmtree(staging, ignore_errors=True)
    start = time.perf_counter()
    baked = bake(staging, answers)
    bake_seconds = time.perf_counter() - start
    project = BUILD / baked.name
    shutil.rmtree(project, ignore_errors=True)
    baked.rename(project)
    shutil.rmtree(staging)
    start = time.perf_counter()
    if not (project / ".git").exists():
        _git(project, "init", "--quiet", "--initial-branch=main")
    _git(project, "add", "--all")
    _git(project, "commit", "--quiet", "--no-verify", "-m", f"Bake {project.name} from the template")
    commit_seconds = time.perf_counter() - start
    with (project / "data" / "raw" / "data.csv").open() as handle:
        rows = sum(1 for _ in handle) - 1
    return {
        **describe(project),
        "project": project.relative_to(ROOT).as_posix(),
        "answers": answers,
        "rows": rows,
        "files": len(_git(project, "ls-files").splitlines()),
        "commit": _git(project, "rev-parse", "HEAD"),
        "bake_seconds": round(bake_seconds, 2),
        "git_commit_seconds": round(commit_seconds, 2),
    }


def cmd_fingerprint() -> int:
    """Stage ``template``."""
    figures = fingerprint()
    write_json(FINGERPRINT, figures)
    print(f"template folder: {figures['files']} files, sha256 {figures['sha256'][:16]}")
    return 0


def cmd_bake() -> int:
    """Stage ``bake``."""
    answers = dict(load_params()["bake"]["answers"] or {})
    manifest = {**bake_project(answers), "template": fingerprint()}
    write_json(MANIFEST, manifest)
    print(
        f"baked {manifest['project']} ({manifest['task']}, {manifest['model_family']}, {manifest['rows']} rows) in "
        f"{manifest['bake_seconds']} s; commit {manifest['commit'][:12]}"
    )
    return 0


def _pristine(project: Path, manifest: dict[str, Any]) -> bool:
    """Whether the project is exactly as baked (nothing installed or run in it yet)."""
    if not project.is_dir() or (project / ".venv").exists() or (project / "dvc.lock").exists():
        return False
    try:
        return _git(project, "rev-parse", "HEAD") == manifest["commit"] and not _git(project, "status", "--porcelain")
    except subprocess.CalledProcessError:
        return False


def _uv_summary(step: Measurement) -> str:
    words = ("Resolved", "Prepared", "Installed", "Uninstalled", "Audited", "Checked", "Downloading")
    return "; ".join(line.strip() for line in step.output if line.strip().startswith(words))


def run_pipeline(repeats: int) -> dict[str, Any]:
    """From the freshly baked project to a validated model and its report, each step measured."""
    manifest = load_manifest()
    project = ROOT / manifest["project"]
    package = manifest["package"]
    rebaked = False
    if not _pristine(project, manifest):
        # Already set up by an earlier run of this stage: bake again so the figures start from scratch.
        print(f"{manifest['project']} is not as baked: baking it again", flush=True)
        manifest = {**manifest, **bake_project(manifest["answers"])}
        rebaked = True
    log = LOGS / "pipeline.log"
    log.unlink(missing_ok=True)
    load_before = os.getloadavg()[0]
    steps: dict[str, Measurement] = {}
    for name, command in (
        ("sync", ["uv", "sync", "--frozen"]),
        ("setup", ["make", "setup"]),
        ("repro", ["uv", "run", "--frozen", "dvc", "repro"]),
    ):
        print(f"== {name}: {' '.join(command)}", flush=True)
        steps[name] = measure(command, project, log=log, package=package)
        print(f"== {name}: {steps[name].seconds:.1f} s", flush=True)
    gate = measure(["uv", "run", "--frozen", package, "gate"], project, log=log, check=False)
    noop_runs = [
        measure(["uv", "run", "--frozen", "dvc", "repro"], project, log=log, package=package) for _ in range(repeats)
    ]
    load_after = os.getloadavg()[0]
    # The project's stage tracking-target runs on every `dvc repro` by design (DVC cannot see the environment's
    # MLFLOW_TRACKING_URI otherwise): a no-op repro runs it and nothing else.
    reran = sorted({name for run in noop_runs for name in run.stage_seconds} - {"tracking-target"})
    up_to_date = not reran and all(run.returncode == 0 for run in noop_runs)
    metrics = json.loads((project / "metrics" / "metrics.json").read_text())["model"]  # the naive baseline's beside it
    total = manifest["bake_seconds"] + manifest["git_commit_seconds"] + sum(s.seconds for s in steps.values())
    return {
        "project": {k: manifest[k] for k in ("slug", "package", "task", "model_family", "rows", "commit")},
        "rebaked": rebaked,
        "steps": {
            "bake": {
                "seconds": round(manifest["bake_seconds"] + manifest["git_commit_seconds"], 2),
                "cookiecutter_seconds": manifest["bake_seconds"],
                "git_commit_seconds": manifest["git_commit_seconds"],
            },
            "sync": {**steps["sync"].summary(), "uv": _uv_summary(steps["sync"])},
            "setup": steps["setup"].summary(),
            "repro": steps["repro"].summary(),
        },
        "total_seconds": round(total, 2),
        "gate": {
            "passed": gate.returncode == 0,
            "seconds": round(gate.seconds, 2),
            "summary": "; ".join(line for line in gate.output if line.startswith("gate ")) or "no output",
        },
        "noop": {
            "seconds": round(statistics.median(run.seconds for run in noop_runs), 2),
            "runs": {str(i + 1): round(run.seconds, 2) for i, run in enumerate(noop_runs)},
            "repeats": repeats,
            "up_to_date": up_to_date,
            "stages_rerun": ", ".join(reran) or "none",
        },
        "metrics": {k: round(v, 4) for k, v in metrics.items() if isinstance(v, int | float)},
        "machine": machine(),
        "load_average": {"before": round(load_before, 2), "after": round(load_after, 2)},
    }


def cmd_run() -> int:
    """Stage ``pipeline``."""
    repeats = int(load_params()["benchmark"]["noop_repeats"])
    try:
        figures = run_pipeline(repeats)
    except StepError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    write_json(PIPELINE_METRICS, figures)
    print(
        f"\nscaffold -> validated model + report: {figures['total_seconds']} s "
        f"(bake {figures['steps']['bake']['seconds']}, sync {figures['steps']['sync']['seconds']}, "
        f"setup {figures['steps']['setup']['seconds']}, repro {figures['steps']['repro']['seconds']}); "
        f"no-op repro {figures['noop']['seconds']} s; gate {'passed' if figures['gate']['passed'] else 'FAILED'}"
    )
    problems = []
    if not figures["gate"]["passed"]:
        problems.append(f"the baked project's gate failed: {figures['gate']['summary']}")
    if not figures["noop"]["up_to_date"]:
        problems.append(
            f"a second `dvc repro` in the baked project was not a no-op (reran: {figures['noop']['stages_rerun']})"
        )
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    return 1 if problems else 0


COMMANDS = {"fingerprint": cmd_fingerprint, "bake": cmd_bake, "run": cmd_run}


def main(argv: list[str]) -> int:
    """Run one stage."""
    if argv in (["-h"], ["--help"]):
        print(__doc__)
        return 0
    if len(argv) != 1 or argv[0] not in COMMANDS:
        print(f"usage: python -m tools.pipeline {{{','.join(COMMANDS)}}}", file=sys.stderr)
        return 2
    return COMMANDS[argv[0]]()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
