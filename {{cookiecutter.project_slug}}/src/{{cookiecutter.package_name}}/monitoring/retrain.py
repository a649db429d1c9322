"""Retraining data: the labelled live rows of a monitoring window, added to the raw data as its next version.

The monitor workflow's retraining pull request runs it (``retrain-data``); ``dvc add`` then records the grown file as
the data's next DVC version, and the pipeline retrains on it. Rows are appended to the CSV in the schema's column
order, formatted as the raw data is (integers without a decimal point, nulls empty). A row whose line the file already
holds, such as one an earlier retraining added from an overlapping window, is not added again.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pandas as pd

from {{ cookiecutter.package_name }}.contracts.errors import ProjectError
from {{ cookiecutter.package_name }}.contracts.io import atomic_path
from {{ cookiecutter.package_name }}.pipeline.schema import Schema


class RetrainDataError(ProjectError, ValueError):
    """The raw data cannot take the new rows."""


def _key(line: bytes) -> bytes:
    """A short digest of one CSV line, line ending excluded: the file's lines are remembered by these."""
    return hashlib.blake2b(line.rstrip(b"\r\n"), digest_size=16).digest()


def csv_lines(rows: pd.DataFrame, schema: Schema) -> list[str]:
    """``rows`` as CSV lines (no header) in the schema's column order, integers written as integers."""
    frame = rows.loc[:, schema.columns].copy()
    for feature in schema.features:
        if feature.type == "integer":
            frame[feature.name] = pd.to_numeric(frame[feature.name]).round().astype("Int64")
    text: str = frame.to_csv(index=False, header=False, lineterminator="\n")
    return text.splitlines(keepends=True)


def append_rows(raw: Path, rows: pd.DataFrame, schema: Schema) -> tuple[int, int]:
    """Append ``rows`` to the CSV ``raw`` (atomically), skipping lines it already has: ``(added, already there)``."""
    seen: set[bytes] = set()
    with raw.open("rb") as handle:
        header = handle.readline().rstrip(b"\r\n").decode()
        if header.split(",") != schema.columns:
            raise RetrainDataError(f"{raw} has the columns {header!r}, the schema declares {','.join(schema.columns)}")
        ends_with_newline = True
        for held in handle:
            seen.add(_key(held))
            ends_with_newline = held.endswith(b"\n")
    new: list[str] = []
    for line in csv_lines(rows, schema):
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
