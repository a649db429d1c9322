"""The gate's verdict file: written and read in one place, and a file that is not one is refused naming the problem."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.contracts import verdict
from {{ cookiecutter.package_name }}.contracts.errors import ERROR
from {{ cookiecutter.package_name }}.contracts.verdict import Check, VerdictError

BASELINE: verdict.Baseline = {"ref": "main", "commit": None, "metrics": None}


def test_a_verdict_reads_back_as_written(tmp_path: Path) -> None:
    checks = [Check("roc_auc", "pass", 0.9, 0.75, 0.15, "above"), Check.of("parity", False, "differs")]
    written = verdict.verdict(checks, BASELINE)
    verdict.write(tmp_path / "gate.json", written)
    read = verdict.read(tmp_path / "gate.json")
    assert read == written
    assert read["passed"] is False
    assert verdict.failures(read) == ["parity: measured n/a (differs)"]


def test_no_failed_check_passes_and_a_skipped_one_does_not_fail(tmp_path: Path) -> None:
    result = verdict.verdict([Check("a", "pass"), Check("b", "skip")], BASELINE)
    assert result["passed"] is True
    assert verdict.failures(result) == []


@pytest.mark.parametrize(
    ("content", "named"),
    [
        (None, "No such file"),
        ("{not json", "cannot read the gate's verdict"),
        ("[]", "no passed, checks, baseline"),
        ('{"passed": true, "checks": []}', "no baseline"),
        (
            json.dumps({"passed": True, "checks": [{"name": "x"}], "baseline": {}}),
            "check(s) [0] do not have the keys",
        ),
    ],
)
def test_a_file_that_is_not_a_verdict_is_refused_naming_why(tmp_path: Path, content: str | None, named: str) -> None:
    path = tmp_path / "gate.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(VerdictError) as raised:
        verdict.read(path)
    assert named in str(raised.value)
    assert str(path) in str(raised.value)
    assert raised.value.exit_code == ERROR


def test_timings_read_back_and_anything_else_reads_as_none(tmp_path: Path) -> None:
    path = tmp_path / "timings.json"
    assert verdict.read_timings(path) is None
    path.write_text(json.dumps({"p50_ms": 0.5, "p99_ms": 2.0, "runs": 300}))
    timings = verdict.read_timings(path)
    assert timings == {"p50_ms": 0.5, "p99_ms": 2.0, "runs": 300}
    assert verdict.describe_timings(timings) == "p50 0.500 ms, p99 2.000 ms over 300 runs (batch 1)"
    path.write_text(json.dumps({"p99_ms": 2.0}))
    assert verdict.read_timings(path) is None
