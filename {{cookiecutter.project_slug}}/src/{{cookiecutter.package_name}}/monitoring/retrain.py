"""Retraining data: the labelled live rows of a monitoring window, added to the raw data as its next version.

The monitor workflow's retraining pull request runs it (``retrain-data``); ``dvc add`` then records the grown file as
the data's next DVC version, and the pipeline retrains on it. Rows are appended to the CSV in the file's column order,
formatted as the raw data is (``contracts.table``: the schema's separator, integers without a decimal point, nulls as
the first missing-value marker, the columns the schema ignores left empty). A row whose line the file already holds,
such as one an earlier retraining added from an overlapping window, is not added again.
"""

from __future__ import annotations

import csv
import hashlib
import shutil
from pathlib import Path

import pandas as pd

from {{ cookiecutter.package_name }}.contracts.errors import ProjectError
from {{ cookiecutter.package_name }}.contracts.io import atomic_path
from {{ cookiecutter.package_name }}.contracts.table import describe
from {{ cookiecutter.package_name }}.pipeline.schema import Schema


class RetrainDataError(ProjectError, ValueError):
    """The raw data cannot take the new rows."""


def _key(line: bytes) -> bytes:
    """A short digest of one CSV line, line ending excluded: the file's lines are remembered by these."""
    return hashlib.blake2b(line.rstrip(b"\r\n"), digest_size=16).digest()


def csv_lines(rows: pd.DataFrame, schema: Schema, columns: list[str] | None = None) -> list[str]:
    """``rows`` as CSV lines (no header) in the order of ``columns`` (the schema's by default).

    Integers are written as integers; a column of ``columns`` that ``rows`` lacks (one the schema ignores) is missing.
    """
    fmt = schema.csv.format()
    frame = rows.reindex(columns=columns or schema.columns)
    for feature in schema.features:
        if feature.type == "integer":
            frame[feature.name] = pd.to_numeric(frame[feature.name]).round().astype("Int64")
    text: str = frame.to_csv(index=False, header=False, sep=fmt.separator, na_rep=fmt.null_text, lineterminator="\n")
    return text.splitlines(keepends=True)


def _header(raw: Path, line: bytes, schema: Schema) -> list[str]:
    """The raw file's column names: the schema's, and maybe some it ignores, in any order."""
    separator = schema.csv.separator
    (names,) = csv.reader([line.decode("utf-8-sig").rstrip("\r\n")], delimiter=separator)
    columns = [name.strip() for name in names]
    allowed = set(schema.columns) | set(schema.ignored_columns)
    if not set(schema.columns) <= set(columns) or not set(columns) <= allowed:
        raise RetrainDataError(
            f"{raw} has the columns {', '.join(columns)} (split by {describe(separator)}), the schema declares "
            f"{', '.join(schema.columns)}"
        )
    return columns


def append_rows(raw: Path, rows: pd.DataFrame, schema: Schema) -> tuple[int, int]:
    """Append ``rows`` to the CSV ``raw`` (atomically), skipping lines it already has: ``(added, already there)``."""
    seen: set[bytes] = set()
    with raw.open("rb") as handle:
        columns = _header(raw, handle.readline(), schema)
        ends_with_newline = True
        for held in handle:
            seen.add(_key(held))
            ends_with_newline = held.endswith(b"\n")
    new: list[str] = []
    for line in csv_lines(rows, schema, columns):
        key = _key(line.encode())
        if key not in seen:
            seen.add(key)
            new.append(line)
    if new:
        with atomic_path(raw) as tmp:
            shutil.copyfile(raw, tmp)
            with tmp.open("ab") as out:
                out.write(b"" if ends_with_newline else b"\n")
                out.write("".join(new).encode())
    return len(new), len(rows) - len(new)
