"""Stage ``prepare``: check the raw data against the contract, then split it deterministically.

The raw CSV is read by the project's one reader (``contracts.table``) with the schema's separator and missing-value
markers. Rows without a label are left out and counted (the schema's ``target.missing: drop``), or refused
(``refuse``); columns the schema ignores are dropped. Every problem is collected before anything is written, and the
error names each column and how many rows break it. Outputs are written only when the whole table passes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.model_selection import train_test_split

from {{ cookiecutter.package_name }}.contracts import rules
from {{ cookiecutter.package_name }}.contracts.io import atomic_path, md5, write_json
from {{ cookiecutter.package_name }}.contracts.rules import Problem, Rule
from {{ cookiecutter.package_name }}.contracts.table import Format, TableError, read
from {{ cookiecutter.package_name }}.pipeline.config import DataParams, Params
from {{ cookiecutter.package_name }}.pipeline.schema import DataContractError, Feature, Schema

EXAMPLES = 3


@dataclass(frozen=True)
class Split:
    """The prepared train and test tables."""

    train: pd.DataFrame
    test: pd.DataFrame


def _examples(values: pd.Series) -> str:
    shown = ", ".join(repr(v) for v in values.drop_duplicates().head(EXAMPLES))
    return f" (e.g. {shown})"


def read_raw(path: Path, fmt: Format | None = None) -> pd.DataFrame:
    """Read a CSV as text (``None`` where missing), so that type problems are found by validation, not guessed away.

    ``fmt`` is the schema's ``csv:`` (``Schema.csv.format()``); without it, a comma and the default markers.
    """
    fmt = fmt or Format()
    try:
        table = read(path, fmt.separator, fmt.missing)
    except FileNotFoundError:
        raise DataContractError(path, ["the file does not exist (run `dvc pull`?)"]) from None
    except TableError as exc:
        raise DataContractError(path, [exc.problem]) from None
    return pd.DataFrame(table.values, columns=table.columns, dtype=object)


def _check_numeric(rule: Rule, text: pd.Series) -> tuple[pd.Series, list[str]]:
    """The column parsed as numbers, and every break of ``rule`` (``contracts.rules``) with its row count."""
    name = rule.name
    problems: list[str] = []
    values = pd.to_numeric(text, errors="coerce")
    unparsable = text.notna() & values.isna()
    if unparsable.any():
        what = "integers" if rule.type == "integer" else "numbers"
        problems.append(f"column {name!r}: {int(unparsable.sum())} row(s) are not {what}{_examples(text[unparsable])}")
    parsed = values[values.notna()]
    broken: dict[Problem, list[float]] = {}
    for value in parsed.unique():  # each distinct value checked once
        for problem in rules.problems(rule, float(value)):
            broken.setdefault(problem, []).append(value)
    for problem in ("whole", "finite", "below", "above"):
        if problem in broken:
            rows = values.isin(broken[problem])
            problems.append(f"column {name!r}: {int(rows.sum())} row(s) {_phrase(problem, rule, text[rows])}")
    return values, problems


def _phrase(problem: Problem, rule: Rule, examples: pd.Series) -> str:
    """How rows break ``rule``, with examples (none for infinite values)."""
    if problem == "finite":
        return "are infinite"
    if problem == "whole":
        return f"are not whole numbers{_examples(examples)}"
    if problem == "below":
        return f"below the minimum {rule.min}{_examples(examples)}"
    return f"above the maximum {rule.max}{_examples(examples)}"


def _check_feature(feature: Feature, text: pd.Series) -> tuple[pd.Series, list[str]]:
    problems: list[str] = []
    nulls = text.isna()
    if nulls.all():
        return text, [f"column {feature.name!r}: all {len(text)} row(s) are empty"]
    rule = feature.rule()
    if nulls.any() and not rule.nullable:
        problems.append(f"column {feature.name!r}: {int(nulls.sum())} row(s) are empty but the column is not nullable")
    if rule.numeric:
        values, found = _check_numeric(rule, text)
        return values, problems + found
    known = {value: rules.category(rule, value)[1] for value in text[~nulls].unique()}
    unknown = text.map(known).eq(False)
    if unknown.any():
        problems.append(
            f"column {feature.name!r}: {int(unknown.sum())} row(s) have categories not in the schema"
            f"{_examples(text[unknown])}"
        )
    return text, problems


def _check_target(schema: Schema, text: pd.Series) -> tuple[pd.Series, list[str]]:
    target = schema.target
    nulls = text.isna()
    problems = []
    if nulls.any():
        problems.append(
            f"target {target.name!r}: {int(nulls.sum())} row(s) have no label (the schema's target.missing is "
            "refuse; drop leaves such rows out)"
        )
    if target.kind == "regression":
        values, found = _check_numeric(Rule(target.name, "number", min=target.min, max=target.max), text)
        return values, problems + [f"target {p.removeprefix('column ')}" for p in found]
    unseen = text.notna() & ~text.isin(target.labels)
    if unseen.any():
        problems.append(
            f"target {target.name!r}: {int(unseen.sum())} row(s) have labels not in the schema{_examples(text[unseen])}"
        )
    return text, problems


def labelled(raw: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """``raw`` without the rows that have no label, if the schema says to drop them (``target.missing: drop``)."""
    name = schema.target.name
    if schema.target.missing == "refuse" or name not in raw.columns:
        return raw
    return raw[raw[name].notna()].reset_index(drop=True)


def validate(raw: pd.DataFrame, schema: Schema, source: Path) -> pd.DataFrame:
    """Check ``raw`` (text, ``None`` where missing) against ``schema``; return it typed, or raise with every problem.

    Ignored columns are dropped, and rows without a label too unless the schema refuses them (``labelled``).
    """
    missing = [c for c in schema.columns if c not in raw.columns]
    extra = [c for c in raw.columns if c not in schema.columns and c not in schema.ignored_columns]
    problems = []
    if missing:
        problems.append(f"missing column(s): {', '.join(map(repr, missing))}")
    if extra:
        problems.append(f"column(s) not in the schema: {', '.join(map(repr, extra))} (declare or drop them)")
    if problems:
        raise DataContractError(source, problems)
    if raw.empty:
        raise DataContractError(source, ["the file has a header but no rows"])
    raw = labelled(raw, schema)
    if raw.empty:
        raise DataContractError(source, [f"target {schema.target.name!r}: no row has a label"])
    typed: dict[str, Any] = {}
    for feature in schema.features:
        typed[feature.name], found = _check_feature(feature, raw[feature.name])
        problems += found
    typed[schema.target.name], found = _check_target(schema, raw[schema.target.name])
    problems += found
    if problems:
        raise DataContractError(source, problems)
    return pd.DataFrame(typed, columns=schema.columns)


def split(frame: pd.DataFrame, schema: Schema, params: DataParams) -> Split:
    """Deterministic split, stratified by label for classification."""
    stratify = None
    if schema.target.kind == "classification":
        stratify = frame[schema.target.name]
        counts = stratify.value_counts()
        rare = counts[counts < 2]
        if not rare.empty:
            raise DataContractError(
                Path("(split)"),
                [f"label {label!r} has only {n} row: a stratified split needs 2" for label, n in rare.items()],
            )
    try:
        train, test = train_test_split(frame, test_size=params.test_size, random_state=params.seed, stratify=stratify)
    except ValueError as exc:
        raise DataContractError(Path("(split)"), [f"cannot split {len(frame)} row(s): {exc}"]) from None
    return Split(train.reset_index(drop=True), test.reset_index(drop=True))


def profile(frame: pd.DataFrame, splits: Split, schema: Schema, raw: Path, rows: int | None = None) -> dict[str, Any]:
    """A small, committed summary of the data, so the report can show what changed against the baseline.

    ``rows`` is the raw file's count of rows; the ones ``frame`` does not hold had no label (``unlabelled``).
    """
    rows = len(frame) if rows is None else rows
    summary: dict[str, Any] = {
        "raw_md5": md5(raw),
        "rows": {"raw": rows, "unlabelled": rows - len(frame), "train": len(splits.train), "test": len(splits.test)},
        "nulls": {c: int(n) for c, n in frame.isna().sum().items() if n},
    }
    if schema.target.kind == "classification":
        counts = frame[schema.target.name].value_counts()
        summary["labels"] = {label: int(counts.get(label, 0)) for label in schema.target.labels}
    else:
        values = frame[schema.target.name]
        summary["target"] = {
            "mean": float(values.mean()),
            "std": float(values.std()),
            "min": float(values.min()),
            "max": float(values.max()),
        }
    return summary


def run(params: Params, schema: Schema) -> Split:
    """Validate ``paths.raw``, split it, write ``paths.train``, ``paths.test``, ``paths.data_profile`` (all or none)."""
    paths = params.paths
    raw = read_raw(paths.raw, schema.csv.format())
    frame = validate(raw, schema, paths.raw)
    splits = split(frame, schema, params.data)
    with atomic_path(paths.train) as train_tmp, atomic_path(paths.test) as test_tmp:
        splits.train.to_parquet(train_tmp, index=False)
        splits.test.to_parquet(test_tmp, index=False)
    write_json(paths.data_profile, profile(frame, splits, schema, paths.raw, len(raw)))
    return splits
