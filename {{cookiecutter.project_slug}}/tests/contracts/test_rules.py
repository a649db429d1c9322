"""The per-value data-contract rules (``contracts.rules``) and the model metadata format (``contracts.metadata``)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from {{ cookiecutter.package_name }}.contracts import metadata, rules
from {{ cookiecutter.package_name }}.contracts.rules import Rule, Violation

AGE = Rule("age", "integer", nullable=False, min=16, max=120)
CHARGES = Rule("charges", "number", nullable=True, min=0.0)
PLAN = Rule("plan", "category", nullable=True, categories=frozenset({"basic", "premium"}))
NUMBERS = [0, 1, 16, 16.0, 120, 121, 15.5, 3.5, -1e300, 1e300, math.inf, -math.inf, 10**400, 2.0**60, -0.0]


@pytest.mark.parametrize("rule", [AGE, CHARGES])
@pytest.mark.parametrize("value", NUMBERS)
def test_number_and_conform_refuse_what_problems_finds_first(rule: Rule, value: float) -> None:
    try:
        found = rules.problems(rule, float(value))
    except OverflowError:
        found = ["finite"]
    with_range: list[str] = []
    try:
        rules.conform(rule, value)
    except Violation as exc:
        with_range.append(exc.problem)
    assert with_range == found[:1]
    without_range = [p for p in found if p in ("finite", "whole")]
    if without_range:
        with pytest.raises(Violation) as refused:
            rules.number(rule, value)
        assert refused.value.problem == without_range[0]
    else:
        assert rules.number(rule, value) == float(value)


@pytest.mark.parametrize(
    ("rule", "value", "problem", "message"),
    [
        (AGE, None, "null", "'age' is null but the feature is not nullable"),
        (AGE, True, "type", "'age' must be a number, got bool True"),
        (AGE, "3", "type", "'age' must be a number, got str '3'"),
        (AGE, 3.5, "whole", "'age' must be a whole number, got 3.5"),
        (PLAN, 3, "type", "'plan' must be a string, got int 3"),
        (Rule("plan", "category"), "", "null", "'plan' is missing but the feature is not nullable"),
    ],
)
def test_a_violation_names_the_feature_and_the_problem(rule: Rule, value: Any, problem: str, message: str) -> None:
    with pytest.raises(Violation) as refused:
        rules.conform(rule, value)
    assert (refused.value.problem, str(refused.value)) == (problem, message)


def test_missing_values_and_categories() -> None:
    assert math.isnan(rules.number(CHARGES, None))
    assert rules.conform(CHARGES, None) is None
    assert type(rules.conform(AGE, 30.0)) is int
    assert rules.category(PLAN, "basic") == ("basic", True)
    assert rules.category(PLAN, "gold") == ("gold", False)  # the server accepts it, and counts it
    assert rules.category(PLAN, "") == rules.category(PLAN, None) == ("", True)
    assert rules.missing(PLAN, "")
    assert rules.missing(AGE, None)
    assert not rules.missing(AGE, 0)
    assert not rules.missing(CHARGES, "")  # a wrong type for a number, not a missing value
    with pytest.raises(Violation, match="category not in the contract"):
        rules.conform(PLAN, "gold")


def test_the_metadata_format_is_checked_when_read(tmp_path: Path) -> None:
    spec = {"name": "age", "type": "integer", "nullable": False, "min": 16, "max": None, "categories": []}
    good: dict[str, Any] = {
        "format": metadata.FORMAT,
        "version": "abc",
        "task": "regression",
        "target": "y",
        "classes": [],
        "positive": None,
        "inputs": [spec],
        "outputs": ["variable"],
        "opset": {"ai.onnx": 17},
        "producer": {},
        "golden": [],
        "metrics": {},
        "lineage": {"git_commit": None},
    }
    path = tmp_path / "metadata.json"
    metadata.write(path, metadata.parse(good, "test"))
    assert metadata.read(path) == good
    assert Rule.of(metadata.read(path)["inputs"][0]) == Rule("age", "integer", min=16)
    for change, problem in [
        ({"format": 1}, "has format 1 but this code reads format 2"),
        ({"task": "ranking"}, "unknown task 'ranking'"),
        ({"golden": None}, "missing or invalid 'golden'"),
        ({"inputs": [{**spec, "type": "text"}]}, "missing or invalid 'inputs'"),
    ]:
        path.write_text(json.dumps({**good, **change}))
        with pytest.raises(metadata.MetadataError, match=problem):
            metadata.read(path)
    path.write_text("{")
    with pytest.raises(metadata.MetadataError, match=f"cannot read the model: {path}"):
        metadata.read(path)
