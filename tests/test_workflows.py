"""The template's own GitHub workflows pass actionlint and zizmor (offline), and pin every action by commit."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
PINNED = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")


def _tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is not installed in the template's environment (uv sync)"
    return path


def test_there_are_workflows() -> None:
    assert WORKFLOWS, "no workflow in .github/workflows"


def test_actionlint() -> None:
    result = subprocess.run([_tool("actionlint"), *map(str, WORKFLOWS)], check=False, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_offline() -> None:
    result = subprocess.run(
        [_tool("zizmor"), "--offline", "--no-progress", str(ROOT / ".github" / "workflows")],
        check=False,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_actions_pinned_and_least_privilege(workflow: Path) -> None:
    data = yaml.safe_load(workflow.read_text())
    assert data.get("permissions") == {}, "top-level permissions must be {} (grant per job)"
    for name, job in data["jobs"].items():
        assert "permissions" in job, f"job {name} declares no permissions"
        for step in job.get("steps", []):
            uses = step.get("uses")
            if uses:
                assert PINNED.match(uses), f"{name}: {uses} is not pinned to a full commit SHA"
    assert "pull_request_target" not in workflow.read_text()
