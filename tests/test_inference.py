"""The bake's schema inference (hooks/post_gen_project.py) on CSVs as they circulate, read by the project's own reader
(contracts/table.py): what each column becomes, said in one printed line per column, and what is refused, by name.

Fast: these bake without installing the project's environment (tests/test_real_data.py runs the pipeline on real data).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import bake_into
from cookiecutter.exceptions import FailedHookException

ROWS = 260


def write_visits_csv(path: Path) -> Path:
    """A clinic's export: a byte-order mark, ``;``, ``NA``, an identifier, a date, a yes/no column, quoted text with
    the separator inside, free text of more distinct values than the category cap, and a numeric target with gaps."""
    rng = random.Random(5)
    lines = ["\ufeffpatient_id;visit_date;smoker;clinic;age;bmi;visits;notes;charges"]
    for i in range(ROWS):
        age = rng.randint(18, 90)
        bmi = round(rng.uniform(17, 40), 1)
        visits = rng.randint(0, 12)
        smoker = rng.choice(["yes", "no"])
        clinic = rng.choice(['"Nord; site A"', '"Sud; site B"', "Centre"])
        charges = round(200 + 30 * age + 150 * (smoker == "yes") + rng.gauss(0, 50), 2)
        lines.append(
            ";".join(
                [
                    f"P{i:04d}",
                    f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}",
                    smoker,
                    clinic,
                    "NA" if i % 17 == 0 else str(age),
                    "" if i % 23 == 0 else str(bmi),
                    str(visits),
                    f"note {i % 230}",
                    "NA" if i % 40 == 0 else str(charges),
                ]
            )
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def features_by_name(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {feature["name"]: feature for feature in schema["features"]}


def test_a_csv_as_it_circulates_gets_a_schema_and_a_line_per_column(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    source = write_visits_csv(tmp_path / "inputs" / "visits.csv")
    project = bake_into(tmp_path / "out", dataset=str(source), target_column="charges", task="regression")

    schema = yaml.safe_load((project / "data" / "schema.yaml").read_text())
    assert schema["csv"]["separator"] == ";"
    assert {"", "NA", "NaN", "NULL", "?"} <= set(schema["csv"]["missing"])
    assert schema["target"] == {"name": "charges", "kind": "regression", "min": 0}
    features = features_by_name(schema)
    assert list(features) == ["smoker", "clinic", "age", "bmi", "visits"]
    assert features["smoker"] == {"name": "smoker", "type": "category", "categories": ["no", "yes"], "slice": True}
    assert features["clinic"]["categories"] == ["Centre", "Nord; site A", "Sud; site B"]
    assert features["age"] == {"name": "age", "type": "integer", "min": 18, "max": 90, "nullable": True}
    assert features["bmi"]["type"] == "number"
    assert features["bmi"]["nullable"] is True
    assert features["visits"] == {"name": "visits", "type": "integer", "min": 0, "max": 12}
    ignored = {column["name"]: column["reason"] for column in schema["ignored"]}
    assert list(ignored) == ["patient_id", "visit_date", "notes"]
    assert "identifier" in ignored["patient_id"]
    assert "date" in ignored["visit_date"]
    assert "225 distinct values, more than 200 categories" in ignored["notes"], "counted in the labelled rows"

    out = capfd.readouterr().out
    assert f"visits.csv: {ROWS} rows, separated by semicolon (';')" in out
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ")}
    assert set(lines) >= {"column", "charges", "patient_id", "visit_date", "smoker", "clinic", "age", "bmi", "notes"}
    unlabelled = len(range(0, ROWS, 40))
    assert f"{unlabelled} row(s) without a label are left out" in lines["charges"]
    assert "boolean" in lines["smoker"]
    assert "left out: an identifier" in lines["patient_id"]
    assert "left out: a date" in lines["visit_date"]
    assert lines["age"].split()[1:3] == ["integer", "yes"]
    assert lines["visits"].split()[1:3] == ["integer", "no"]


def bake_lines(tmp_path: Path, name: str, lines: list[str], **answers: str) -> dict[str, Any]:
    """Bake a project from a CSV of these lines and return the schema the bake inferred."""
    source = tmp_path / "inputs" / name
    source.parent.mkdir(parents=True)
    source.write_text("\n".join(lines) + "\n")
    project = bake_into(tmp_path / "out", dataset=str(source), **answers)
    schema: dict[str, Any] = yaml.safe_load((project / "data" / "schema.yaml").read_text())
    return schema


def test_a_numeric_row_number_is_an_identifier_but_a_measure_is_not(tmp_path: Path) -> None:
    rng = random.Random(2)
    lines = ["rownames,income,grade"]
    for i in range(100):
        lines.append(f"{i + 1},{1000 + 7 * i + rng.randint(0, 6)},{rng.choice(['a', 'b'])}")
    schema = bake_lines(tmp_path, "r.csv", lines, target_column="grade")
    assert [f["name"] for f in schema["features"]] == ["income"]
    assert [c["name"] for c in schema["ignored"]] == ["rownames"]


def test_constant_and_name_like_columns_are_left_out_but_a_constant_with_gaps_is_kept(tmp_path: Path) -> None:
    """A column with one value says nothing; a text column of mostly distinct values names things (one-hot of
    hundreds of names would swamp the model); a single value beside missing ones still tells rows apart."""
    rng = random.Random(3)
    lines = ["region,bird,flag,grade,size"]
    for i in range(100):
        bird = f"N{i % 60}A{i % 2}"  # 60 distinct of 100 rows: repeats, yet mostly distinct
        lines.append(f"Anvers,{bird},{'yes' if i % 3 else 'NA'},{rng.choice(['a', 'b'])},{rng.random():.3f}")
    schema = bake_lines(tmp_path, "birds.csv", lines, target_column="grade")
    assert [f["name"] for f in schema["features"]] == ["flag", "size"]
    assert schema["features"][0] == {"name": "flag", "type": "category", "categories": ["yes"], "nullable": True}
    reasons = {c["name"]: c["reason"] for c in schema["ignored"]}
    assert reasons == {
        "region": "the same value ('Anvers') in every row",
        "bird": "60 distinct values in 100 rows, an identifier rather than a category",
    }


@pytest.mark.parametrize(
    ("text", "answers", "phrase"),
    [
        ("a;b;y\n1,5;2;x\n2,5;3;z\n", {"target_column": "y"}, "column 'a' holds numbers written with a decimal comma"),
        ("a,b;c,y\n1,2;3,x\n", {"target_column": "y"}, "cannot tell the separator"),
        ("", {"target_column": "y"}, "is empty"),
        ("x,y\n", {"target_column": "y"}, "has a header but no rows"),
        ("x,y\n1,a\n2,a\n", {"target_column": "y"}, "target_column 'y' has fewer than two distinct values"),
        ("x,y\n1,NA\n2,3\n", {"target_column": "y"}, "target_column 'y' has fewer than two distinct values"),
        ("x,y\n1,a\n2,b\n3,b\n4,b\n", {"target_column": "y"}, "label(s) 'a' have a single row"),
        ("x,y\n1,a\n2,b\n", {"target_column": "z"}, "target_column 'z' is not a column of"),
        ("x,y\n1,a\n2,b\n", {"target_column": "y", "task": "regression"}, "target_column 'y' is not numeric"),
    ],
    ids=[
        "decimal-comma",
        "ambiguous",
        "empty",
        "header-only",
        "one-label",
        "one-label-and-NA",
        "single-row-label",
        "no-target",
        "text-regression-target",
    ],
)
def test_a_dataset_that_cannot_run_is_refused_by_name(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], text: str, answers: dict[str, str], phrase: str
) -> None:
    source = tmp_path / "inputs" / "data.csv"
    source.parent.mkdir(parents=True)
    source.write_text(text)
    with pytest.raises(FailedHookException):
        bake_into(tmp_path / "out", dataset=str(source), **answers)
    problems = [line for line in capfd.readouterr().err.splitlines() if line.startswith("  - ")]
    assert len(problems) == 1
    assert phrase in problems[0]
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
