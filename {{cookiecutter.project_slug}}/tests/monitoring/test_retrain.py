"""Retraining data: labelled live rows are appended to the raw CSV once, formatted as the raw data, atomically."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.monitoring.retrain import RetrainDataError, append_rows
from {{ cookiecutter.package_name }}.pipeline.prepare import read_raw, validate
from {{ cookiecutter.package_name }}.pipeline.schema import Csv, Ignored, Schema
from {{ cookiecutter.package_name }}.pipeline.synthetic import frame, write_csv


@pytest.fixture
def raw(tmp_path: Path, schema: Schema) -> Path:
    path = tmp_path / "data.csv"
    write_csv(schema, 200, 0, path)
    return path


def test_rows_are_appended_once_and_stay_valid(raw: Path, schema: Schema) -> None:
    before = raw.read_bytes()
    live = frame(schema, 50, seed=1)
    assert append_rows(raw, live, schema) == (50, 0)
    after = raw.read_bytes()
    assert after.startswith(before), "the existing rows are kept as they were"
    assert len(after.splitlines()) == len(before.splitlines()) + 50
    # The grown file still satisfies the data contract, integers written as integers.
    table = validate(read_raw(raw), schema, raw)
    assert len(table) == 250
    # An overlapping window: the rows already added are not added again; new ones are.
    overlap = pd.concat([live.iloc[:20], frame(schema, 10, seed=2)])
    assert append_rows(raw, overlap, schema) == (10, 20)
    assert len(raw.read_bytes().splitlines()) == len(before.splitlines()) + 60
    assert append_rows(raw, live.iloc[:0], schema) == (0, 0)


def test_a_file_with_other_columns_is_refused_untouched(raw: Path, schema: Schema) -> None:
    lines = raw.read_text().splitlines(keepends=True)
    raw.write_text("something,else\n" + "".join(lines[1:]))
    before = raw.read_bytes()
    with pytest.raises(RetrainDataError, match="the schema declares"):
        append_rows(raw, frame(schema, 5, seed=3), schema)
    assert raw.read_bytes() == before


def test_rows_follow_the_files_separator_columns_and_missing_marker(tmp_path: Path, schema: Schema) -> None:
    """A raw file as it came (a byte-order mark, ``;``, ``NA`` for missing, an identifier column the schema ignores)
    grows in its own format, and still reads as valid data."""
    custom = schema.model_copy(update={"csv": Csv(separator=";", missing=["NA", ""]), "ignored": [Ignored(name="id")]})
    path = tmp_path / "data.csv"
    held = frame(custom, 40, seed=0)
    held.insert(0, "id", [f"row-{i}" for i in range(len(held))])
    path.write_text("\ufeff" + held.to_csv(index=False, sep=";", na_rep="NA", lineterminator="\n"))

    assert append_rows(path, frame(custom, 10, seed=1), custom) == (10, 0)

    lines = path.read_text(encoding="utf-8-sig").splitlines()
    assert len(lines) == 1 + 50
    assert all(line.startswith("NA;") for line in lines[-10:]), "the ignored column is missing in the new rows"
    table = validate(read_raw(path, custom.csv.format()), custom, path)
    assert len(table) == 50
    assert list(table.columns) == custom.columns
