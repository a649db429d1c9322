"""Ground-truth labels: CSV files joined to the logged predictions on ``(request_id, index)``.

Each file has the columns ``request_id``, optionally ``index`` (0 when absent) and the schema's target; a row whose
target is missing is not labelled yet. Files are read by the project's CSV reader (``contracts.table``) with the
schema's separator and missing-value markers. Labels may cover a subset of the predictions.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from {{ cookiecutter.package_name }}.contracts.table import TableError, read
from {{ cookiecutter.package_name }}.monitoring.errors import MonitorError
from {{ cookiecutter.package_name }}.monitoring.series import EXAMPLES
from {{ cookiecutter.package_name }}.pipeline.schema import Schema

Truth = str | float
"""A label: a class of the schema (classification) or a finite number (regression)."""


@dataclass
class Labels:
    """Ground truth by ``(request_id, index)``, and what reading it found."""

    values: dict[tuple[str, int], Truth] = field(default_factory=dict)
    files: int = 0
    rows: int = 0
    invalid: int = 0
    examples: list[str] = field(default_factory=list)


def _label_parser(schema: Schema) -> Callable[[str], Truth]:
    target = schema.target
    if target.kind == "classification":
        known = set(target.labels)

        def label(text: str) -> Truth:
            if text not in known:
                raise ValueError(f"{text!r} is not a label of the schema")
            return text

        return label

    def value(text: str) -> Truth:
        number = float(text)
        if not math.isfinite(number):
            raise ValueError(f"{text!r} is not a finite number")
        return number

    return value


def read_labels(directory: Path | None, schema: Schema) -> Labels:
    """Every ``*.csv`` under ``directory``: ``request_id``, optional ``index`` (0) and the target column."""
    labels = Labels()
    if directory is None:
        return labels
    if not directory.is_dir():
        raise MonitorError(f"the labels directory {directory} does not exist")
    target = schema.target.name
    parse = _label_parser(schema)
    for path in sorted(p for p in directory.rglob("*.csv") if p.is_file()):
        labels.files += 1
        if path.stat().st_size == 0:
            continue  # an empty file
        try:
            table = read(path, schema.csv.separator, schema.csv.missing)
        except TableError as exc:
            raise MonitorError(f"{path} is not a readable CSV file: {exc.problem}") from None
        if "request_id" not in table.columns or target not in table.columns:
            raise MonitorError(
                f"{path}: a label file needs the columns request_id and {target} (and optionally index); "
                f"it has {', '.join(table.columns)}"
            )
        ids, truths = table.values["request_id"], table.values[target]
        indexes: list[str | None] = table.values.get("index") or [None] * table.rows
        for row, (request_id, index, truth) in enumerate(zip(ids, indexes, truths, strict=True)):
            if truth is None:
                continue  # not labelled yet
            labels.rows += 1
            try:
                if request_id is None:
                    raise ValueError("no request_id")
                labels.values[(request_id, int(index or 0))] = parse(truth)
            except ValueError as exc:
                labels.invalid += 1
                if len(labels.examples) < EXAMPLES:
                    labels.examples.append(f"{path.name}: row {row + 1}: {exc}")
    return labels
