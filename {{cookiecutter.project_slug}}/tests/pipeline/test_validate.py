"""Stage ``validate`` and command ``gate``: every limit is checked, a miss says which check and by how much, and
the baseline is the metrics committed on the baseline ref."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import Workspace, commit_all, require_impossible

from {{ cookiecutter.package_name }}.contracts.scoring import HIGHER_IS_BETTER
from {{ cookiecutter.package_name }}.pipeline.config import Params
from {{ cookiecutter.package_name }}.pipeline.validate import failures


def checks_by_name(verdict: dict[str, object]) -> dict[str, dict[str, object]]:
    return {c["name"]: c for c in verdict["checks"]}  # type: ignore[attr-defined, index]


def test_a_good_model_passes(trained: Workspace) -> None:
    verdict = trained.read_json("verdict")
    names = list(checks_by_name(verdict))

    assert verdict["passed"] is True
    assert failures(verdict) == []
    assert {c["status"] for c in verdict["checks"]} <= {"pass", "skip"}
    for metric in trained.params.gate.thresholds:
        assert any(n.startswith(f"{metric} >= ") or n.startswith(f"{metric} <= ") for n in names), metric
    for expected in ("ONNX parity: max difference", "model size (MB)", "latency p99 (ms, batch 1)"):
        assert expected in names
    assert verdict["latency"]["p99_ms"] > 0


def test_gate_command_passes_on_a_passing_verdict(trained: Workspace) -> None:
    result = trained.cli("gate")

    assert result.code == 0
    assert f"gate passed: {len(trained.read_json('verdict')['checks'])} checks" in result.out


def test_an_impossible_threshold_fails_saying_which_check_and_by_how_much(trained: Workspace, tmp_path: Path) -> None:
    ws = trained.copy(tmp_path / "ws")
    name, limit = require_impossible(ws)

    result = ws.ok("validate")

    verdict = ws.read_json("verdict")
    check = checks_by_name(verdict)[name]
    assert verdict["passed"] is False
    assert check["status"] == "fail"
    assert check["limit"] == pytest.approx(limit)
    assert check["margin"] == pytest.approx(-0.5)
    [line] = failures(verdict)
    assert line.startswith(f"{name}: measured ")
    assert "outside the limit by 0.5 " in line
    assert "FAILED" in result.out
    assert f"failed: {line}" in result.out


def test_gate_command_exits_1_on_a_failed_check(trained: Workspace, tmp_path: Path) -> None:
    ws = trained.copy(tmp_path / "ws")
    name, _ = require_impossible(ws)
    ws.ok("validate")

    result = ws.cli("gate")

    assert result.code == 1
    assert f"gate failed: {name}: measured " in result.err
    assert "outside the limit by 0.5" in result.err


def test_unknown_metric_in_thresholds_is_a_config_error(trained: Workspace, tmp_path: Path) -> None:
    ws = trained.copy(tmp_path / "ws")
    ws.set_params({"gate.thresholds.no_such_metric": {"min": 0.5}})

    result = ws.cli("validate")

    assert result.code == 2
    assert "'no_such_metric'" in result.err


def _commit_baseline(ws: Workspace, baseline: dict[str, float]) -> str:
    """Commit ``baseline`` as the metrics on the baseline ref, then put the current metrics back in the worktree."""
    current = ws.path("metrics").read_text()
    ws.git_init()
    ws.path("metrics").write_text(json.dumps(baseline))
    commit = commit_all(ws.root, "baseline")
    ws.path("metrics").write_text(current)
    return commit


def test_regression_against_the_committed_baseline_fails(trained: Workspace, tmp_path: Path) -> None:
    ws = trained.copy(tmp_path / "ws")
    gate = ws.params.gate
    metrics = ws.read_json("metrics")
    # The baseline was better than this change by 0.1 more than each metric may worsen.
    baseline = {
        name: metrics[name] + (1 if HIGHER_IS_BETTER[name] else -1) * (allowed + 0.1)
        for name, allowed in gate.max_regression.items()
    }
    commit = _commit_baseline(ws, baseline)

    ws.ok("validate")

    verdict = ws.read_json("verdict")
    assert verdict["passed"] is False
    assert verdict["baseline"] == {"ref": gate.baseline_ref, "commit": commit, "metrics": pytest.approx(baseline)}
    checks = checks_by_name(verdict)
    for name, allowed in gate.max_regression.items():
        check = checks[f"{name} vs {gate.baseline_ref} (worsening <= {allowed:g})"]
        assert check["status"] == "fail"
        assert check["value"] == pytest.approx(allowed + 0.1)
        assert check["margin"] == pytest.approx(-0.1)
        assert check["detail"] == f"{gate.baseline_ref}: {baseline[name]:.4g}"


def test_matching_the_committed_baseline_passes(trained: Workspace, tmp_path: Path) -> None:
    ws = trained.copy(tmp_path / "ws")
    gate = ws.params.gate
    commit = _commit_baseline(ws, ws.read_json("metrics"))

    ws.ok("validate")

    verdict = ws.read_json("verdict")
    assert verdict["passed"] is True
    assert verdict["baseline"]["commit"] == commit
    for name, allowed in gate.max_regression.items():
        check = checks_by_name(verdict)[f"{name} vs {gate.baseline_ref} (worsening <= {allowed:g})"]
        assert check["status"] == "pass"
        assert check["value"] == pytest.approx(0)


def test_without_a_baseline_ref_the_regression_checks_are_skipped(trained: Workspace, params: Params) -> None:
    verdict = trained.read_json("verdict")  # the trained workspace is not a git repository

    assert verdict["baseline"] == {"ref": params.gate.baseline_ref, "commit": None, "metrics": None}
    regression = [c for c in verdict["checks"] if f" vs {params.gate.baseline_ref} " in c["name"]]
    assert len(regression) == len(params.gate.max_regression)
    assert {c["status"] for c in regression} <= {"skip"}


def test_register_refuses_a_model_that_failed_the_gate(trained: Workspace, tmp_path: Path) -> None:
    ws = trained.copy(tmp_path / "ws")
    require_impossible(ws)
    ws.ok("validate")

    result = ws.cli("register", "--alias", "challenger")

    assert result.code == 1
    assert "the gate failed" in result.err
