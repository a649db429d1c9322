"""Finish the generated repository: put the dataset and its schema in place, register the data with DVC, prune what
the answers turned off, and initialise git so the repo is ready for its first commit.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import yaml  # cookiecutter depends on PyYAML

ANSWERS = json.loads({{ cookiecutter | tojson | tojson }})
RAW = Path("data/raw/data.csv")
SCHEMA = Path("data/schema.yaml")
SAMPLES = Path(".samples")
MAX_CATEGORIES = 200
SLICE_LEVELS = (2, 12)
MAX_SLICE_COLUMNS = 2
POSITIVE_NAMES = ("1", "yes", "true", "y", "positive", "pos")
TEST_SIZE = 0.2  # params.yaml's data.test_size: a stratified split needs every label in both parts
MIN_IDENTIFIER_ROWS = 20  # fewer rows than this: a column of distinct values is not called an identifier
MOSTLY_DISTINCT = 0.5  # a text column with more distinct values than this share of its rows names things, not kinds
NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")  # what pandas.to_numeric (prepare) reads as a number
BOOLEANS = ({"true", "false"}, {"yes", "no"}, {"y", "n"}, {"t", "f"})
DATE = re.compile(
    r"\d{4}-\d{1,2}-\d{1,2}([T ]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?"
    r"|\d{4}/\d{1,2}/\d{1,2}|\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}|\d{1,2}-[A-Za-z]{3}-\d{2,4}"
    r"|\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?( ?[AaPp][Mm])?"
)
ID_NAME = re.compile(r"(^|[^a-z])id$|^(index|idx|row|rownames|row_?number|unnamed: ?0)$", re.IGNORECASE)
HEADER = ("# The data contract, inferred from {source} when the project was generated: review it like code.\n"
          "# Ranges are the observed ones; widen them to the valid domain. The prepare stage refuses data that breaks "
          "it.\n# csv: how the file is read (its separator; the values that mean \"missing\"). ignored: columns that "
          "are not\n# features, and why. target.missing: drop leaves rows without a label out (counted); refuse "
          "refuses them.\n")


class Refused(Exception):
    """The dataset cannot make a project that runs; the message says why."""


def table_module() -> ModuleType:
    """The project's CSV reader (``contracts/table.py``, standard library only), imported from the rendered source."""
    package = ANSWERS["package_name"]
    for name in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
        del sys.modules[name]  # a module of cookiecutter's environment with the package's name
    sys.path.insert(0, str(Path("src").resolve()))
    try:
        return importlib.import_module(f"{package}.contracts.table")
    finally:
        sys.path.pop(0)


def _numbers(values: list[str]) -> list[float] | None:
    """The values as finite numbers, or None if one is not a number."""
    if not all(NUMBER.fullmatch(v) for v in values):
        return None
    numbers = [float(v) for v in values]
    return numbers if all(math.isfinite(n) for n in numbers) else None


def infer_feature(name: str, values: list[str | None]) -> tuple[dict[str, object] | None, str, str]:
    """A column's feature (None if it is left out), its type in words and what happens to it."""
    present = [v for v in values if v is not None]
    if not present:
        return None, "empty", "left out: every value is missing"
    distinct = set(present)
    unique = len(distinct) == len(values) >= MIN_IDENTIFIER_ROWS
    if len(distinct) == 1 and len(present) == len(values) >= MIN_IDENTIFIER_ROWS:
        return None, "constant", f"left out: the same value ({next(iter(distinct))!r}) in every row"
    feature: dict[str, object] = {"name": name}
    numbers = _numbers(present)
    if numbers is not None:
        kind = "integer" if all(n.is_integer() for n in numbers) else "number"
        low, high = min(numbers), max(numbers)
        named = ID_NAME.search(name) or name.endswith(("Id", "ID"))
        if kind == "integer" and unique and (named or high - low + 1 == len(values)):
            return None, kind, "left out: an identifier (a distinct value per row)"
        feature["type"] = kind
        feature["min"] = int(low) if kind == "integer" else low
        feature["max"] = int(high) if kind == "integer" else high
        what = "feature"
    elif all(DATE.fullmatch(v) for v in present):
        return None, "date/time", "left out: a date or time (add its numeric parts, e.g. year or weekday, as columns)"
    elif unique:
        return None, "text", "left out: an identifier (a distinct value per row)"
    elif len(distinct) > MAX_CATEGORIES:
        return None, "text", f"left out: {len(distinct)} distinct values, more than {MAX_CATEGORIES} categories"
    elif len(present) >= MIN_IDENTIFIER_ROWS and len(distinct) > len(present) * MOSTLY_DISTINCT:
        return None, "text", (f"left out: {len(distinct)} distinct values in {len(present)} rows, an identifier "
                              "rather than a category")
    else:
        feature["type"] = "category"
        feature["categories"] = sorted(distinct)
        lowered = {v.lower() for v in distinct}
        boolean = len(lowered) == len(distinct) == 2 and any(lowered == pair for pair in BOOLEANS)
        kind = "boolean" if boolean else "category"
        what = f"feature: one-hot, {len(distinct)} categor{'y' if len(distinct) == 1 else 'ies'}"
    if len(present) < len(values):
        feature["nullable"] = True
    return feature, kind, what


def infer_target(name: str, values: list[str | None], task: str) -> tuple[dict[str, object], str]:
    """The target's contract (labels and the positive one, or the range) and what it is, in words."""
    present = [v for v in values if v is not None]
    if len(set(present)) < 2:
        raise Refused(f"target_column {name!r} has fewer than two distinct values")
    if task == "regression":
        numbers = _numbers(present)
        if numbers is None:
            example = next(v for v in present if _numbers([v]) is None)
            raise Refused(f"target_column {name!r} is not numeric, so it cannot be a regression target "
                          f"(e.g. {example!r})")
        target: dict[str, object] = {"name": name, "kind": "regression"}
        if min(numbers) >= 0:
            target["min"] = 0
        return target, f"target: regression, {min(numbers):g} to {max(numbers):g}"
    counts: dict[str, int] = {}
    for value in present:
        counts[value] = counts.get(value, 0) + 1
    labels = sorted(counts)
    test = math.ceil(len(present) * TEST_SIZE)
    rare = [label for label in labels if counts[label] < 2]
    if rare:
        raise Refused(f"target_column {name!r}: label(s) {', '.join(map(repr, rare[:5]))} have a single row; a "
                      "stratified split needs at least 2 of each")
    if test < len(labels) or len(present) - test < len(labels):
        raise Refused(f"target_column {name!r} has {len(labels)} labels and {len(present)} labelled rows: too few "
                      "to put every label in both the training and the test split")
    target = {"name": name, "kind": "classification", "labels": labels}
    if len(labels) == 2:
        named = [label for label in labels if label.lower() in POSITIVE_NAMES]
        target["positive"] = named[0] if named else min(labels, key=lambda label: counts[label])
    shown = ", ".join(labels[:5]) + (", ..." if len(labels) > 5 else "")
    return target, f"target: classification, {len(labels)} labels ({shown})"


def infer_schema(path: Path, target: str, task: str, shown: str = "") -> dict[str, object]:
    """A schema for a user's CSV (``shown`` by that name), read by the project's own reader; print one line per column
    saying what becomes of it."""
    table = table_module()
    try:
        data = table.read(path)
    except table.TableError as exc:
        raise Refused(f"dataset {ANSWERS['dataset']}: {exc.problem}") from None
    if target not in data.columns:
        raise Refused(f"target_column {target!r} is not a column of {ANSWERS['dataset']} "
                      f"(columns: {', '.join(data.columns)})")
    if data.rows == 0:
        raise Refused(f"dataset {ANSWERS['dataset']} has a header but no rows")
    labelled = [i for i, v in enumerate(data.values[target]) if v is not None]  # the rows prepare keeps
    target_schema, target_note = infer_target(target, data.values[target], task)
    lines = [(target, "target", "no", target_note)]
    unlabelled = data.rows - len(labelled)
    if unlabelled:
        lines[0] = (target, "target", "yes", f"{target_note}; {unlabelled} row(s) without a label are left out")
    features: list[dict[str, object]] = []
    ignored: list[dict[str, str]] = []
    for name in data.columns:
        if name == target:
            continue
        column = data.values[name]
        feature, kind, what = infer_feature(name, [column[i] for i in labelled])
        nullable = "yes" if any(column[i] is None for i in labelled) else "no"
        lines.append((name, kind, nullable, what))
        if feature is None:
            ignored.append({"name": name, "reason": what.removeprefix("left out: ")})
        else:
            features.append(feature)
    if not features:
        raise Refused(f"dataset {ANSWERS['dataset']} has no column usable as a feature besides {target!r}")
    sliceable = [f for f in features if f["type"] == "category"
                 and SLICE_LEVELS[0] <= len(f["categories"]) <= SLICE_LEVELS[1]]  # type: ignore[arg-type]
    for feature in sliceable[:MAX_SLICE_COLUMNS]:
        feature["slice"] = True
    markers = ", ".join(repr(m) for m in table.MISSING)
    print(f"{shown or path.name}: {data.rows} rows, separated by {table.describe(data.separator)}; missing values: {markers}")
    width = max(len(name) for name, *_ in lines)
    print(f"  {'column':<{width}}  {'type':<9}  {'nullable':<8}  what happens to it")
    for name, kind, nullable, what in lines:
        print(f"  {name:<{width}}  {kind:<9}  {nullable:<8}  {what}")
    schema: dict[str, object] = {"target": target_schema, "features": features}
    if ignored:
        schema["ignored"] = ignored
    schema["csv"] = {"separator": data.separator, "missing": list(table.MISSING)}
    return schema


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
        schema = infer_schema(RAW, ANSWERS["target_column"], ANSWERS["task"], source_path.name)
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


# What a template update (cruft update, make template-update) never touches: files the team owns after the bake.
# data/: the data (its DVC pointer and .gitignore) and the data contract (schema.yaml, reviewed like code); dvc.lock:
# the pipeline's record, written by `dvc repro` only. Everything else is merged: a change of the team's and one of the
# template's in the same lines makes a conflict (.rej files), never a silent overwrite.
CRUFT_SKIP = ["data", "dvc.lock", ".cruft.json"]


def git(*args: str, cwd: str) -> str | None:
    """``git args`` in ``cwd``: its output, or None when git is missing or fails (not a git checkout)."""
    if not shutil.which("git"):
        return None
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 else None


def record_template() -> None:
    """Write ``.cruft.json`` as ``cruft create`` does: the template's source and commit, and the answers, so that
    ``cruft check`` and ``make template-update`` (cruft update) can bring the template's later changes."""
    repo_dir = str(Path(ANSWERS.get("_repo_dir") or ".").resolve())
    given = str(ANSWERS.get("_template") or repo_dir)
    local = Path(given).expanduser()
    if not local.is_absolute():
        local = Path(os.environ.get("PWD") or os.getcwd()) / local
    # A local folder is recorded by its absolute path; a URL (or gh: abbreviation) by the clone's origin URL.
    source = str(local.resolve()) if local.is_dir() else (git("remote", "get-url", "origin", cwd=repo_dir) or given)
    commit = git("rev-parse", "HEAD", cwd=repo_dir)
    if commit is None:
        print(f"note: the template ({source}) is not a git checkout: .cruft.json records no commit, so `make "
              "template-check` and `make template-update` cannot compare versions (link it with `cruft link`)")
    elif git("status", "--porcelain", "--untracked-files=no", cwd=repo_dir):
        print(f"note: the template has uncommitted changes: .cruft.json records its last commit ({commit[:12]}), "
              "which this project does not match exactly")
    # The context as cruft writes it (cookiecutter.json's order, its private keys too), so its first update only
    # changes the commit.
    keys = [k for k in json.loads((Path(repo_dir) / "cookiecutter.json").read_text(encoding="utf-8")) if k in ANSWERS]
    answers = {k: ANSWERS[k] for k in keys if k != "__prompts__"}
    state = {
        "template": source,
        "commit": commit,
        "checkout": ANSWERS.get("_checkout") or None,
        "context": {"cookiecutter": {**answers, "_template": source, "_commit": commit}},
        "directory": None,
        "skip": CRUFT_SKIP,
    }
    Path(".cruft.json").write_text(json.dumps(state, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def init_git() -> None:
    """An empty repository on ``main``, ready for the first commit (skipped if git is not installed)."""
    if shutil.which("git") and not Path(".git").exists():
        subprocess.run(["git", "init", "--quiet", "--initial-branch=main"], check=True)


def main() -> int:
    """Run every step; print what to do next."""
    if "_commit" in ANSWERS:
        # cruft renders the template twice (the project's commit and the newest) and applies the difference: the data
        # and git are the project's own, so only what the answers turned off is removed.
        shutil.rmtree(SAMPLES, ignore_errors=True)
        prune()
        return 0
    try:
        source = place_dataset()
    except Refused as exc:
        print("error: the dataset cannot make a project that runs:", file=sys.stderr)
        print(f"  - {exc}", file=sys.stderr)
        return 1
    track_with_dvc()
    prune()
    record_template()
    init_git()
    print(f"Generated {ANSWERS['project_slug']} with {source}. Next: cd {ANSWERS['project_slug']} && make setup")
    return 0


if __name__ == "__main__":
    sys.exit(main())
