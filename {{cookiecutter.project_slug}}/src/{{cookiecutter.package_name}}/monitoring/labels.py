"""Ground-truth labels: CSV files joined to the logged predictions on ``(request_id, index)``.

Each file has the columns ``request_id``, optionally ``index`` (0 when absent) and the schema's target; a row with an
empty target is not labelled yet. Labels may cover a subset of the predictions.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

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
        with path.open(newline="", encoding="utf-8", errors="replace") as handle:
            reader = csv.DictReader(handle)
            try:
                columns = reader.fieldnames or []
                if not columns:
                    continue  # an empty file
                if "request_id" not in columns or target not in columns:
                    raise MonitorError(
                        f"{path}: a label file needs the columns request_id and {target} (and optionally index); "
                        f"it has {', '.join(columns)}"
                    )
                for number, row in enumerate(reader, start=2):
                    if not row.get(target):
                        continue  # not labelled yet
                    labels.rows += 1
                    try:
                        request_id = row["request_id"]
                        if not request_id:
                            raise ValueError("no request_id")
                        index = int(row.get("index") or 0)
                        labels.values[(request_id, index)] = parse(row[target])
                    except (ValueError, TypeError) as exc:
                        labels.invalid += 1
                        if len(labels.examples) < EXAMPLES:
                            labels.examples.append(f"{path.name}:{number}: {exc}")
            except csv.Error as exc:
                raise MonitorError(f"{path} is not a readable CSV file: {exc}") from None
    return labels
