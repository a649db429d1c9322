"""Stage ``prepare``: data that honours the contract is split deterministically; data that breaks it stops the
pipeline with a message naming the column and the count of bad rows, and nothing is written."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import Workspace

from {{ cookiecutter.package_name }}.pipeline import prepare, synthetic
from {{ cookiecutter.package_name }}.pipeline.schema import DataContractError, Schema

ROWS = 300


def prepared(ws: Workspace) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The train and test tables the stage wrote."""
    return pd.read_parquet(ws.path("train")), pd.read_parquet(ws.path("test"))


def test_valid_data_is_split_and_profiled(workspace: Workspace, schema: Schema) -> None:
    workspace.write_raw(synthetic.frame(schema, ROWS, seed=1))

    result = workspace.ok("prepare")

    train, test = prepared(workspace)
    assert list(train.columns) == schema.columns == list(test.columns)
    assert len(train) + len(test) == ROWS
    assert len(test) == math.ceil(ROWS * workspace.params.data.test_size)
    assert f"prepared {len(train)} train and {len(test)} test rows" in result.out
    for name in schema.numeric:
        assert pd.api.types.is_numeric_dtype(train[name]), name
    profile = workspace.read_json("data_profile")
    assert profile["rows"] == {"raw": ROWS, "unlabelled": 0, "train": len(train), "test": len(test)}
    if schema.target.kind == "classification":
        # stratified: each label keeps its share in the test set, to within one row
        everything = pd.concat([train, test])[schema.target.name].value_counts()
        in_test = test[schema.target.name].value_counts()
        for label, count in everything.items():
            assert abs(in_test.get(label, 0) - count * len(test) / ROWS) <= 1, label
        assert profile["labels"] == {label: int(everything.get(label, 0)) for label in schema.target.labels}


def test_same_seed_gives_identical_splits(tmp_path: Path, schema: Schema) -> None:
    data = synthetic.frame(schema, ROWS, seed=2)
    splits = []
    for name, seed_offset in (("a", 0), ("b", 0), ("c", 1)):
        ws = Workspace.create(tmp_path / name)
        ws.set_params({"data.seed": ws.params.data.seed + seed_offset})
        ws.write_raw(data)
        ws.ok("prepare")
        splits.append(prepared(ws))

    (train_a, test_a), (train_b, test_b), (_, test_c) = splits
    pd.testing.assert_frame_equal(train_a, train_b)
    pd.testing.assert_frame_equal(test_a, test_b)
    assert not test_a.equals(test_c), "another seed should draw another test set"


def test_synth_command_writes_data_that_passes_the_contract(workspace: Workspace, schema: Schema) -> None:
    raw = workspace.path("raw")
    workspace.ok("synth", "--rows", "120", "--seed", "3", "--output", str(raw))

    frame = prepare.validate(prepare.read_raw(raw), schema, raw)

    assert len(frame) == 120
    assert list(frame.columns) == schema.columns


# --------------------------------------------------------------------------------------------------------------------
# Data that breaks the contract
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BadData:
    """Raw CSV text that breaks the contract, and what the error must say about it."""

    text: str
    expected: list[str]  # fragments of the one problem reported


def _csv(frame: pd.DataFrame) -> str:
    text: str = frame.to_csv(index=False)
    return text


def _base(schema: Schema) -> pd.DataFrame:
    return synthetic.frame(schema, ROWS, seed=4).astype(object)


def wrong_type(schema: Schema) -> BadData:
    if not schema.numeric:
        pytest.skip("the schema has no numeric feature")
    column, bad = schema.numeric[0], 7
    frame = _base(schema)
    frame.loc[: bad - 1, column] = "not-a-number"
    return BadData(_csv(frame), [repr(column), f"{bad} row(s) are not", "not-a-number"])


def missing_column(schema: Schema) -> BadData:
    column = schema.features[0].name
    return BadData(_csv(_base(schema).drop(columns=[column])), ["missing column(s)", repr(column)])


def bad_target(schema: Schema) -> BadData:
    target, bad = schema.target.name, 5
    frame = _base(schema)
    if schema.target.kind == "classification":
        frame.loc[: bad - 1, target] = "never-seen-label"
        return BadData(_csv(frame), [f"target {target!r}", f"{bad} row(s) have labels not in the schema"])
    frame.loc[: bad - 1, target] = "unknown"
    return BadData(_csv(frame), [f"target {target!r}", f"{bad} row(s) are not numbers"])


def all_null(schema: Schema) -> BadData:
    column = schema.features[0].name
    frame = _base(schema)
    frame[column] = None
    return BadData(_csv(frame), [repr(column), f"all {ROWS} row(s) are empty"])


def empty_file(schema: Schema) -> BadData:
    return BadData("", ["the file is empty"])


def header_only(schema: Schema) -> BadData:
    return BadData(",".join(schema.columns) + "\n", ["header but no rows"])


def out_of_range(schema: Schema) -> BadData:
    frame, bad = _base(schema), 4
    for feature in schema.features:
        if feature.numeric and feature.max is not None:
            frame.loc[: bad - 1, feature.name] = feature.max + 1
            return BadData(_csv(frame), [repr(feature.name), f"{bad} row(s) above the maximum {feature.max}"])
        if feature.numeric and feature.min is not None:
            frame.loc[: bad - 1, feature.name] = feature.min - 1
            return BadData(_csv(frame), [repr(feature.name), f"{bad} row(s) below the minimum {feature.min}"])
    pytest.skip("no numeric feature has a declared range")


def unknown_category(schema: Schema) -> BadData:
    if not schema.categorical:
        pytest.skip("the schema has no category feature")
    column, bad = schema.categorical[0], 6
    frame = _base(schema)
    frame.loc[: bad - 1, column] = "no-such-category"
    return BadData(_csv(frame), [repr(column), f"{bad} row(s) have categories not in the schema", "no-such-category"])


def empty_in_required_column(schema: Schema) -> BadData:
    required = [f.name for f in schema.features if not f.nullable]
    if not required:
        pytest.skip("every feature is nullable")
    column, bad = required[0], 3
    frame = _base(schema)
    frame.loc[: bad - 1, column] = None
    return BadData(_csv(frame), [repr(column), f"{bad} row(s) are empty but the column is not nullable"])


BREAKAGES: list[Callable[[Schema], BadData]] = [
    wrong_type,
    missing_column,
    bad_target,
    all_null,
    empty_file,
    header_only,
    out_of_range,
    unknown_category,
    empty_in_required_column,
]


@pytest.mark.parametrize("breakage", BREAKAGES, ids=[b.__name__ for b in BREAKAGES])
def test_bad_data_raises_a_data_contract_error(
    breakage: Callable[[Schema], BadData], workspace: Workspace, schema: Schema
) -> None:
    bad = breakage(schema)
    raw = workspace.write_raw(bad.text)

    with pytest.raises(DataContractError) as caught:
        prepare.validate(prepare.read_raw(raw), schema, raw)

    assert len(caught.value.problems) == 1, caught.value.problems  # exactly the planted problem, nothing else
    for fragment in bad.expected:
        assert fragment in caught.value.problems[0]
    assert str(raw) in str(caught.value)


@pytest.mark.parametrize("breakage", BREAKAGES, ids=[b.__name__ for b in BREAKAGES])
def test_bad_data_fails_the_prepare_command_and_writes_nothing(
    breakage: Callable[[Schema], BadData], workspace: Workspace, schema: Schema
) -> None:
    bad = breakage(schema)
    workspace.write_raw(bad.text)

    result = workspace.cli("prepare")

    assert result.code == 2
    assert result.err.startswith("error: ")
    assert "breaks the data contract" in result.err
    for fragment in bad.expected:
        assert fragment in result.err
    for output in ("train", "test", "data_profile"):
        assert not workspace.path(output).exists(), output
    assert not list(workspace.path("train").parent.glob("*")), "no temporary file may be left behind"


def test_every_problem_is_reported_at_once(workspace: Workspace, schema: Schema) -> None:
    frame = _base(schema)
    frame.loc[:1, schema.target.name] = "unknown" if schema.target.kind == "regression" else "never-seen-label"
    first = schema.features[0]
    frame.loc[:2, first.name] = "no-such-category" if not first.numeric else "not-a-number"
    workspace.write_raw(_csv(frame))

    with pytest.raises(DataContractError) as caught, contextlib.chdir(workspace.root):
        prepare.run(workspace.params, schema)

    assert len(caught.value.problems) == 2
    assert any(repr(first.name) in p and "3 row(s)" in p for p in caught.value.problems)
    assert any(repr(schema.target.name) in p and "2 row(s)" in p for p in caught.value.problems)


# --------------------------------------------------------------------------------------------------------------------
# Data as it circulates: the schema's csv settings, rows without a label, columns the schema ignores
# --------------------------------------------------------------------------------------------------------------------


def edit_schema(ws: Workspace, **changes: object) -> Schema:
    """Change top-level sections of the workspace's ``data/schema.yaml`` (``target`` is merged, not replaced)."""
    path = ws.path("schema_")
    data = yaml.safe_load(path.read_text())
    for key, value in changes.items():
        data[key] = data[key] | value if key == "target" and isinstance(value, dict) else value
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return ws.schema


def test_rows_without_a_label_are_left_out_and_counted(workspace: Workspace, schema: Schema) -> None:
    frame = _base(schema)
    unlabelled = [3, 10, 11, 200]
    frame.loc[unlabelled, schema.target.name] = None
    workspace.write_raw(frame.to_csv(index=False, na_rep="NA"))

    result = workspace.ok("prepare")

    train, test = prepared(workspace)
    assert len(train) + len(test) == ROWS - len(unlabelled)
    assert train[schema.target.name].notna().all()
    assert test[schema.target.name].notna().all()
    assert workspace.read_json("data_profile")["rows"] == {
        "raw": ROWS,
        "unlabelled": len(unlabelled),
        "train": len(train),
        "test": len(test),
    }
    assert f"prepared {len(train)} train and {len(test)} test rows" in result.out


def test_a_strict_schema_refuses_rows_without_a_label(workspace: Workspace) -> None:
    schema = edit_schema(workspace, target={"missing": "refuse"})
    frame = _base(schema)
    frame.loc[:1, schema.target.name] = None
    workspace.write_raw(_csv(frame))

    result = workspace.cli("prepare")

    assert result.code == 2
    assert f"target {schema.target.name!r}: 2 row(s) have no label" in result.err
    assert not workspace.path("data_profile").exists()


def test_the_schemas_separator_markers_and_ignored_columns_are_honoured(workspace: Workspace) -> None:
    schema = edit_schema(
        workspace,
        csv={"separator": ";", "missing": ["-", ""]},
        ignored=[{"name": "visit_date", "reason": "a date"}, {"name": "row_id", "reason": "an identifier"}],
    )
    frame = _base(schema)
    frame.insert(0, "row_id", range(ROWS))
    frame["visit_date"] = "2026-11-29"
    nullable = next((f.name for f in schema.features if f.nullable), None)
    if nullable is not None:
        frame.loc[:4, nullable] = None
    workspace.write_raw("\ufeff" + frame.to_csv(index=False, sep=";", na_rep="-"))

    workspace.ok("prepare")

    train, test = prepared(workspace)
    assert list(train.columns) == schema.columns, "ignored columns are dropped"
    if nullable is not None:
        assert pd.concat([train, test])[nullable].isna().sum() >= 5, "'-' is this schema's missing-value marker"


def test_a_decimal_comma_is_refused_with_a_hint(workspace: Workspace, schema: Schema) -> None:
    if not [f for f in schema.features if f.type == "number"]:
        pytest.skip("the schema has no number feature")
    column = next(f.name for f in schema.features if f.type == "number")
    edit_schema(workspace, csv={"separator": ";"})
    frame = _base(schema)
    frame[column] = [f"{v:.2f}".replace(".", ",") for v in pd.to_numeric(frame[column]).fillna(1.0)]
    workspace.write_raw(frame.to_csv(index=False, sep=";"))

    result = workspace.cli("prepare")

    assert result.code == 2
    assert f"column {column!r} holds numbers written with a decimal comma" in result.err
    assert "decimal point" in result.err
