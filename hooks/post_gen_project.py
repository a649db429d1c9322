"""Finish the generated repository: put the dataset and its schema in place, register the data with DVC, prune what
the answers turned off, and initialise git so the repo is ready for its first commit.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml  # cookiecutter depends on PyYAML

ANSWERS = json.loads({{ cookiecutter | tojson | tojson }})
RAW = Path("data/raw/data.csv")
SCHEMA = Path("data/schema.yaml")
SAMPLES = Path(".samples")
MAX_CATEGORIES = 200
SLICE_LEVELS = (2, 12)
MAX_SLICE_COLUMNS = 2
POSITIVE_NAMES = ("1", "yes", "true", "y", "positive", "pos")
HEADER = ("# The data contract, inferred from {source} when the project was generated: review it like code.\n"
          "# Ranges are the observed ones; widen them to the valid domain. The prepare stage refuses data that breaks "
          "it.\n")


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def infer_feature(name: str, values: list[str]) -> dict[str, object]:
    """Type, nullability, range or categories of one column, from its values."""
    present = [v for v in values if v]
    feature: dict[str, object] = {"name": name}
    numbers = [_number(v) for v in present]
    if present and all(n is not None for n in numbers):
        floats = [float(n) for n in numbers if n is not None]
        feature["type"] = "integer" if all(n.is_integer() for n in floats) else "number"
        low, high = min(floats), max(floats)
        feature["min"] = int(low) if feature["type"] == "integer" else low
        feature["max"] = int(high) if feature["type"] == "integer" else high
    else:
        categories = sorted(set(present))
        if len(categories) > MAX_CATEGORIES:
            raise SystemExit(f"error: column {name!r} has {len(categories)} distinct text values; the template "
                             f"handles categories with at most {MAX_CATEGORIES} (drop or encode it first)")
        feature["type"] = "category"
        feature["categories"] = categories
    if len(present) < len(values):
        feature["nullable"] = True
    return feature


def infer_target(name: str, values: list[str], task: str) -> dict[str, object]:
    """Labels (and the positive one) of a classification target, or the range of a regression target."""
    if task == "regression":
        target: dict[str, object] = {"name": name, "kind": "regression"}
        if all(float(v) >= 0 for v in values if v):
            target["min"] = 0
        return target
    counts: dict[str, int] = {}
    for value in values:
        if value:
            counts[value] = counts.get(value, 0) + 1
    labels = sorted(counts)
    target = {"name": name, "kind": "classification", "labels": labels}
    if len(labels) == 2:
        named = [label for label in labels if label.lower() in POSITIVE_NAMES]
        target["positive"] = named[0] if named else min(labels, key=lambda label: counts[label])
    return target


def infer_schema(path: Path, target: str, task: str) -> dict[str, object]:
    """A schema for a user's CSV; the prepare stage then holds every later version of the data to it."""
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    columns = {name: [(row.get(name) or "").strip() for row in rows] for name in rows[0]}
    features = [infer_feature(name, values) for name, values in columns.items() if name != target]
    sliceable = [f for f in features if f["type"] == "category"
                 and SLICE_LEVELS[0] <= len(f["categories"]) <= SLICE_LEVELS[1]]  # type: ignore[arg-type]
    for feature in sliceable[:MAX_SLICE_COLUMNS]:
        feature["slice"] = True
    return {"target": infer_target(target, columns[target], task), "features": features}


def place_dataset() -> str:
    """Move the chosen data into data/raw and write its schema; return where it came from."""
    RAW.parent.mkdir(parents=True, exist_ok=True)
    if ANSWERS["dataset"] == "embedded":
        sample = SAMPLES / ANSWERS["task"]
        shutil.copyfile(sample / "data.csv", RAW)
        shutil.copyfile(sample / "schema.yaml", SCHEMA)
        source = f"the embedded {ANSWERS['task']} sample"
    else:
        # Hooks run inside the new project; a relative path is relative to where cookiecutter was started.
        source_path = (Path(os.environ.get("PWD") or os.getcwd()) / Path(ANSWERS["dataset"]).expanduser()).resolve()
        shutil.copyfile(source_path, RAW)
        schema = infer_schema(RAW, ANSWERS["target_column"], ANSWERS["task"])
        SCHEMA.write_text(HEADER.format(source=source_path.name) + yaml.safe_dump(schema, sort_keys=False))
        source = str(source_path)
    shutil.rmtree(SAMPLES)
    return source


def track_with_dvc() -> None:
    """Write what ``dvc add data/raw/data.csv`` writes, so git never sees the data itself."""
    digest = hashlib.md5(RAW.read_bytes(), usedforsecurity=False).hexdigest()
    entry = {"outs": [{"md5": digest, "size": RAW.stat().st_size, "hash": "md5", "path": RAW.name}]}
    RAW.with_name(RAW.name + ".dvc").write_text(yaml.safe_dump(entry, sort_keys=False))
    (RAW.parent / ".gitignore").write_text(f"/{RAW.name}\n")


# What only one deploy target uses: the Deployment path (deploy/base, prod's Argo Rollouts canary) or KServe's
# InferenceService (deploy/kserve and its CRD schema, which test_deploy.py reads).
ONLY_FOR = {
    "kustomize": ("deploy/base", "deploy/overlays/prod/rollout.yaml", "deploy/overlays/prod/analysis-template.yaml"),
    "kserve": ("deploy/kserve", "tests/schemas/kserve-crds.json"),
}


def remove(path: str) -> None:
    """Remove a file or a folder, if it is there."""
    if Path(path).is_dir():
        shutil.rmtree(path)
    else:
        Path(path).unlink(missing_ok=True)


def prune() -> None:
    """Remove what the answers turned off."""
    if not ANSWERS["include_deploy"]:
        shutil.rmtree("deploy", ignore_errors=True)
        shutil.rmtree("tests/schemas", ignore_errors=True)  # the CRD schemas that test_deploy.py reads
        Path("scripts/cluster_secrets.py").unlink(missing_ok=True)  # the cluster's Secrets (make pull-secret, repo-secret)
        Path(".github/workflows/rollback.yml").unlink(missing_ok=True)  # it rolls back an overlay
        return
    for target, paths in ONLY_FOR.items():
        if target != ANSWERS["deploy_target"]:
            for path in paths:
                remove(path)


def init_git() -> None:
    """An empty repository on ``main``, ready for the first commit (skipped if git is not installed)."""
    if shutil.which("git") and not Path(".git").exists():
        subprocess.run(["git", "init", "--quiet", "--initial-branch=main"], check=True)


def main() -> int:
    """Run every step; print what to do next."""
    source = place_dataset()
    track_with_dvc()
    prune()
    init_git()
    print(f"Generated {ANSWERS['project_slug']} with {source}. Next: cd {ANSWERS['project_slug']} && make setup")
    return 0


if __name__ == "__main__":
    sys.exit(main())
