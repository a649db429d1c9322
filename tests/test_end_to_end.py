"""Bake a matrix of projects and run each one's own workflow, as a user would on day one.

Six full runs cover both tasks x every model family; the user-CSV (multiclass, categorical and missing values) and
the no-deploy answers ride along on two of them. Each run: ``uv sync --frozen``, first commit, ``make setup``, every
pre-commit hook, ``dvc repro`` end to end, a second ``dvc repro`` that must do nothing, then the project's tests.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import (
    MULTICLASS_LABELS,
    PROJECT_TEMPLATE,
    UV,
    UV_RUN,
    Steps,
    bake_into,
    project_env,
    write_multiclass_csv,
)


@dataclass(frozen=True)
class Variant:
    """One baked project of the matrix."""

    id: str
    answers: dict[str, str] = field(default_factory=dict)
    user_csv: bool = False
    # The project's load test runs its full 60 s on the default project; the other variants only check that a switch
    # and a rollback under load fail nothing, in less time.
    load_test_seconds: int = 15
    # The attack suite (two minutes of hostile clients) runs where the server is the default project's; the server's
    # HTTP layer is the same in every variant, only the model differs.
    attacks: bool = False


VARIANTS = [
    Variant("classification-random_forest-default", load_test_seconds=60, attacks=True),
    Variant("classification-linear", {"model_family": "linear", "license": "Apache-2.0"}),
    Variant(
        "classification-gradient_boosting-user_multiclass_csv",
        {"model_family": "gradient_boosting", "project_name": "Plant Species"},
        user_csv=True,
    ),
    Variant("regression-linear", {"task": "regression", "model_family": "linear", "license": "Proprietary"}),
    Variant(
        "regression-random_forest-no_deploy",
        {"task": "regression", "model_family": "random_forest", "include_deploy": "no"},
    ),
    Variant("regression-gradient_boosting", {"task": "regression", "model_family": "gradient_boosting"}),
]


@pytest.mark.slow
@pytest.mark.parametrize("variant", VARIANTS, ids=[v.id for v in VARIANTS])
def test_baked_project_workflow(tmp_path: Path, variant: Variant, record_property: Callable[[str, Any], None]) -> None:
    answers = dict(variant.answers)
    if variant.user_csv:
        source = write_multiclass_csv(tmp_path / "inputs" / "plants.csv")
        answers.update(dataset=str(source), target_column="species")
    project = bake_into(tmp_path / "out", **answers)
    step = Steps(record_property)

    step("sync", [UV, "sync", "--frozen"], cwd=project)
    step("commit", "git add -A && git commit --quiet --no-verify -m 'Bake the project from the template'", cwd=project)
    step("setup", ["make", "setup"], cwd=project)
    assert (project / ".git" / "hooks" / "pre-commit").is_file(), "make setup installs the git hook"
    step("pre-commit", [*UV_RUN, "pre-commit", "run", "--all-files", "--show-diff-on-failure"], cwd=project)

    step("repro", [*UV_RUN, "dvc", "repro"], cwd=project)
    for output in ("reports/report.md", "reports/gate.json", "models/model.onnx"):
        assert (project / output).is_file(), f"dvc repro did not write {output}"
        assert (project / output).stat().st_size > 0, f"{output} is empty"
    verdict = json.loads((project / "reports" / "gate.json").read_text())
    assert isinstance(verdict["passed"], bool)
    assert verdict["checks"], "the gate recorded no check"
    assert any(" beats the naive baseline by " in c["name"] for c in verdict["checks"]), "no naive-baseline check"
    if not variant.user_csv:  # the embedded samples: every family learns enough to pass the default gate
        assert verdict["passed"], [c for c in verdict["checks"] if c["status"] == "fail"]
    schema = yaml.safe_load((project / "data" / "schema.yaml").read_text())
    assert schema["target"]["kind"] == answers.get("task", "classification")
    if variant.user_csv:
        assert schema["target"]["labels"] == list(MULTICLASS_LABELS)
    assert (project / "deploy").is_dir() == (
        answers.get("include_deploy", "yes") == "yes" and (PROJECT_TEMPLATE / "deploy").is_dir()
    )

    again = step("repro-again", [*UV_RUN, "dvc", "repro"], cwd=project)
    # only tracking-target, which runs on every repro by design (it records the tracking URI, which DVC cannot see)
    reran = re.findall(r"Running stage '([\w-]+)'", again.stdout)
    assert reran == ["tracking-target"], f"the second dvc repro ran stages:\n{again.stdout}"

    tests = step(
        "project-tests",
        [
            *UV_RUN,
            "pytest",
            "-n",
            "2",
            "-q",
            "-p",
            "no:cacheprovider",
            *([] if variant.attacks else ["-m", "not attack"]),
        ],
        cwd=project,
        check=False,
        env=project_env(LOAD_TEST_SECONDS=str(variant.load_test_seconds)),
    )
    if tests.returncode == 5:
        pytest.fail(
            f"the baked project collected no tests:\n{tests.stdout[-2000:]}",
            pytrace=False,
        )
    if tests.returncode != 0:
        pytest.fail(
            f"the baked project's tests failed (exit {tests.returncode}):\n{tests.stdout[-6000:]}\n"
            f"{tests.stderr[-2000:]}",
            pytrace=False,
        )
