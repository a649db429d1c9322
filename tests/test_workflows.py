"""GitHub workflows pass actionlint and zizmor (offline), pin every action by commit and grant least privilege: the
template's own (.github/workflows) and those of every generated variant.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import bake_into, write_multiclass_csv
from gha.concurrency import Simulation
from test_end_to_end import VARIANTS as E2E_VARIANTS
from test_end_to_end import Variant

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ROOT / "{{cookiecutter.project_slug}}"
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
PINNED = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")
# Generated variants whose workflows differ (deploy files decide the promotion jobs and the rollback workflow).
# Every variant the end-to-end tests bake, plus answers the workflows render (registry, MLflow server) and the KServe
# deploy target (its promotions and rollbacks are the default path's: the same overlays' lines).
VARIANTS = {v.id: v for v in E2E_VARIANTS} | {
    "custom-registry-and-mlflow": Variant(
        "custom-registry-and-mlflow",
        {"image_name": "registry.example.com:5000/team/churn", "mlflow_tracking_uri": "https://mlflow.example.com"},
    ),
    "kserve": Variant("kserve", {"deploy_target": "kserve"}),
    # Each cloud's OIDC login in every job that reaches the remote, MLflow or a bucket (tests/test_cloud_login.py).
    "cloud-aws": Variant("cloud-aws", {"dvc_remote_url": "s3://bucket/dvc", "cloud": "aws"}),
    "cloud-gcp": Variant("cloud-gcp", {"dvc_remote_url": "gs://bucket/dvc", "cloud": "gcp"}),
    "cloud-azure-without-deploy": Variant(
        "cloud-azure-without-deploy",
        {"dvc_remote_url": "azure://container/dvc", "cloud": "azure", "include_deploy": "no"},
    ),
}
GENERATED = ("ci.yml", "pr-training.yml", "pr-comment.yml", "release.yml", "monitor.yml", "template-update.yml")
DEPLOY_JOBS = ("promote-dev", "promote-staging", "promote-prod")


def _tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is not installed in the template's environment (uv sync)"
    return path


def actionlint(workflows: list[Path]) -> str:
    """actionlint's findings ("" when there are none)."""
    result = subprocess.run([_tool("actionlint"), *map(str, workflows)], check=False, capture_output=True, text=True)
    return "" if result.returncode == 0 else result.stdout + result.stderr


def zizmor(folder: Path) -> str:
    """zizmor's findings, offline ("" when there are none)."""
    result = subprocess.run(
        [_tool("zizmor"), "--offline", "--no-progress", str(folder)], check=False, capture_output=True, text=True
    )
    return "" if result.returncode == 0 else result.stdout + result.stderr


def policy_problems(workflow: Path) -> list[str]:
    """What breaks the rules: actions pinned by SHA with a version comment, `permissions: {}` at the top and per job,
    bash (with pipefail) as the default shell, no pull_request_target, deploy jobs never cancelled, checkouts without
    persisted credentials unless they push, artifact names unique per attempt.
    """
    text = workflow.read_text()
    data = yaml.safe_load(text)
    problems = []
    if data.get("permissions") != {}:
        problems.append("top-level permissions must be {} (grant per job)")
    if (data.get("defaults") or {}).get("run", {}).get("shell") != "bash":
        problems.append("defaults.run.shell must be bash (GitHub's default `bash -e {0}` has no pipefail)")
    if "pull_request_target" in text:
        problems.append("pull_request_target is forbidden")
    for line in text.splitlines():
        if re.match(r"^\s*(- )?uses:", line) and not re.search(r"@[0-9a-f]{40}\s+# v\d+\.\d+\.\d+", line):
            problems.append(f"not pinned by SHA with a # vX.Y.Z comment: {line.strip()}")
    for name, job in data["jobs"].items():
        if "permissions" not in job:
            problems.append(f"job {name} declares no permissions")
        writes = (job.get("permissions") or {}).get("contents") == "write"
        for step in job.get("steps", []):
            uses = step.get("uses")
            if uses and not PINNED.match(uses):
                problems.append(f"{name}: {uses} is not pinned to a full commit SHA")
            name_of_artifact = str((step.get("with") or {}).get("name"))
            if uses and uses.startswith("actions/upload-artifact@") and "github.run_attempt" not in name_of_artifact:
                problems.append(f"{name}: artifact names must carry github.run_attempt (re-runs upload again)")
            if uses and uses.startswith("actions/checkout@"):
                persist = (step.get("with") or {}).get("persist-credentials")
                if persist is not False and not (writes and persist is True):
                    problems.append(f"{name}: checkout must set persist-credentials: false (true only to push)")
        if name.startswith(("promote-", "rollback")):
            concurrency = job.get("concurrency") or {}
            if not concurrency.get("group") or concurrency.get("cancel-in-progress") is not False:
                problems.append(f"{name}: a deploy job needs a concurrency group with cancel-in-progress: false")
    return problems


def triggers(data: dict[Any, Any]) -> Any:
    """The `on:` block (YAML 1.1 reads the key `on` as True)."""
    return data["on"] if "on" in data else data[True]


def test_there_are_workflows() -> None:
    assert WORKFLOWS, "no workflow in .github/workflows"


def test_actionlint() -> None:
    assert not actionlint(WORKFLOWS)


def test_zizmor_offline() -> None:
    assert not zizmor(ROOT / ".github" / "workflows")


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_actions_pinned_and_least_privilege(workflow: Path) -> None:
    assert not policy_problems(workflow)


# --- The generated project's workflows ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The .github/workflows folder of each variant, baked once (no environment installed)."""
    root = tmp_path_factory.mktemp("workflow-variants")
    folders = {}
    for name, variant in VARIANTS.items():
        answers = dict(variant.answers)
        if variant.user_csv:
            answers.update(dataset=str(write_multiclass_csv(root / "plants.csv")), target_column="species")
        folders[name] = bake_into(root / name, **answers) / ".github" / "workflows"
    return folders


def cloud(variant: str) -> str:
    """The cloud the variant's workflows log in to (none unless the variant names one)."""
    return VARIANTS[variant].answers.get("cloud", "none")


def has_deploy(variant: str) -> bool:
    """Whether the variant was baked with deploy files (and so promotes and rolls back)."""
    return VARIANTS[variant].answers.get("include_deploy", "yes") == "yes"


@pytest.mark.parametrize("variant", VARIANTS)
def test_generated_workflows_lint_clean(generated: dict[str, Path], variant: str) -> None:
    folder = generated[variant]
    workflows = sorted(folder.glob("*.yml"))
    names = {p.name for p in workflows}
    assert set(GENERATED) <= names
    assert ("rollback.yml" in names) == has_deploy(variant)
    assert not actionlint(workflows)
    assert not zizmor(folder)
    assert not {p.name: policy_problems(p) for p in workflows if policy_problems(p)}


@pytest.mark.parametrize("variant", VARIANTS)
def test_generated_release_and_rollback_rules(generated: dict[str, Path], variant: str) -> None:
    release = yaml.safe_load((generated[variant] / "release.yml").read_text())
    jobs = release["jobs"]
    assert "concurrency" not in release, "a run-wide group would hold every merge while prod waits for review"
    assert jobs["build"]["if"] == "github.ref == 'refs/heads/main'"
    assert jobs["build"]["concurrency"] == {"group": "release-build", "cancel-in-progress": False}
    assert jobs["build"]["permissions"] == {
        "contents": "read",
        "packages": "write",
        "id-token": "write",
        "attestations": "write",
    }
    if not has_deploy(variant):
        assert list(jobs) == ["build"], "without deploy files there is nothing to promote"
        return
    assert list(jobs) == ["build", *DEPLOY_JOBS]
    for job in DEPLOY_JOBS:
        env = job.removeprefix("promote-")
        assert jobs[job]["environment"] == env
        assert jobs[job]["concurrency"]["group"] == f"deploy-{env}"
        assert jobs[job]["permissions"]["contents"] == "write"
        # An id token only to log in to the cloud (make follow-registry reaches MLflow).
        assert jobs[job]["permissions"].get("id-token") == (None if cloud(variant) == "none" else "write")
        promote = [s["run"] for s in jobs[job]["steps"] if "make promote" in s.get("run", "")]
        assert len(promote) == 1
        assert "make push-main" in promote[0]
        assert "make image" not in promote[0]
    assert jobs["promote-prod"]["needs"] == ["build", "promote-staging"]
    staging = [s.get("run", "") for s in jobs["promote-staging"]["steps"]]
    smoke_at, promote_at, probe_at = (
        next(i for i, r in enumerate(staging) if w in r) for w in ("make smoke", "make promote", "make probe")
    )
    assert smoke_at < promote_at < probe_at, "smoke test, then promote, then check the release in staging"
    assert "make rollback ENV=staging" in staging[probe_at]
    rollback = yaml.safe_load((generated[variant] / "rollback.yml").read_text())
    assert set(triggers(rollback)) == {"workflow_dispatch"}
    assert rollback["jobs"]["rollback"]["concurrency"]["cancel-in-progress"] is False
    # Jobs that roll back read the overlay's history: a shallow checkout has none.
    for job in (rollback["jobs"]["rollback"], jobs["promote-staging"]):
        (checkout,) = [s for s in job["steps"] if s.get("uses", "").startswith("actions/checkout@")]
        assert checkout["with"]["fetch-depth"] == 0


@pytest.mark.parametrize("variant", ["classification-random_forest-default"])
def test_generated_release_keeps_merges_moving_while_prod_waits(generated: dict[str, Path], variant: str) -> None:
    """Three merges while the first release waits for prod's reviewers (GitHub's concurrency rules, simulated):
    every merge is built or replaced by a newer waiting build, and the newest reaches dev and staging at once.
    """
    states = Simulation(generated[variant] / "release.yml").play({1: 0, 2: 5, 3: 6, 4: 7}, until=30)
    assert states[1] == {
        "build": "done",
        "promote-dev": "done",
        "promote-staging": "done",
        "promote-prod": "awaiting-review",
    }
    newest = states[4]
    assert newest["build"] == newest["promote-dev"] == newest["promote-staging"] == "done", states
    assert newest["promote-prod"] == "pending"  # behind the release waiting for review, the only one kept waiting
    for run in (2, 3):  # older merges: built and promoted, or their waiting jobs replaced by a newer release's
        assert states[run]["build"] in ("done", "cancelled"), states
        assert states[run]["promote-prod"] in ("cancelled", "skipped"), states


@pytest.mark.parametrize("variant", VARIANTS)
def test_generated_pr_workflows_are_fork_safe(generated: dict[str, Path], variant: str) -> None:
    training = yaml.safe_load((generated[variant] / "pr-training.yml").read_text())
    assert set(triggers(training)) == {"pull_request"}
    train = training["jobs"]["train"]
    if cloud(variant) == "none":
        assert list(training["jobs"]) == ["train"]
        assert train["permissions"] == {"contents": "read"}
    else:  # same-repository pull requests log in as the read-only data identity; a fork's job gets no id token
        assert list(training["jobs"]) == ["train", "fork"]
        assert train["permissions"] == {"contents": "read", "id-token": "write"}
        assert train["if"] == "github.event.pull_request.head.repo.full_name == github.repository"
        assert training["jobs"]["fork"]["permissions"] == {"contents": "read"}
    assert "secrets." not in (generated[variant] / "pr-training.yml").read_text()
    comment_text = (generated[variant] / "pr-comment.yml").read_text()
    comment = yaml.safe_load(comment_text)
    assert triggers(comment)["workflow_run"]["workflows"] == [training["name"]]
    (job,) = comment["jobs"].values()
    # The trusted job checks out the default branch only (no ref: the workflow_run event's ref is the default
    # branch), keeps no token, and reads the artifact outside the checkout.
    (checkout,) = [s for s in job["steps"] if s.get("uses", "").startswith("actions/checkout@")]
    assert checkout["with"] == {"persist-credentials": False}
    (download,) = [s for s in job["steps"] if s.get("uses", "").startswith("actions/download-artifact@")]
    assert download["with"]["path"].startswith("${{ runner.temp }}")
    (setup,) = [s for s in job["steps"] if s.get("uses", "").startswith("iterative/setup-cml@")]
    assert re.fullmatch(r"\d+\.\d+\.\d+", str(setup["with"]["version"])), "pin the CML release"
    assert [s["run"] for s in job["steps"] if "run" in s] == ['make post-report REPORT_DIR="$REPORT_DIR"']


def test_post_report_script_is_shared_verbatim(generated: dict[str, Path]) -> None:
    """The template's own comment workflow runs the generated project's script: baking must not change it."""
    source = (PROJECT / "scripts" / "post-report.sh").read_text()
    baked = (generated["classification-random_forest-default"].parents[1] / "scripts" / "post-report.sh").read_text()
    assert baked == source


@pytest.mark.parametrize("variant", VARIANTS)
def test_generated_monitor_workflow_rules(generated: dict[str, Path], variant: str) -> None:
    monitor = yaml.safe_load((generated[variant] / "monitor.yml").read_text())
    assert set(triggers(monitor)) == {"schedule", "workflow_dispatch"}
    assert monitor["concurrency"] == {"group": "monitor", "cancel-in-progress": False}
    jobs = monitor["jobs"]
    assert list(jobs) == ["monitor", "retrain"]
    # Least privilege: only the retraining job writes code, only the monitor job writes issues.
    login = {} if cloud(variant) == "none" else {"id-token": "write"}  # an id token only to log in to the cloud
    assert jobs["monitor"]["permissions"] == {"contents": "read", "issues": "write", **login}
    assert jobs["retrain"]["permissions"] == {"contents": "write", "pull-requests": "write", **login}
    assert jobs["retrain"]["needs"] == ["monitor"]
    assert jobs["retrain"]["if"] == "needs.monitor.outputs.retrain == 'true'"
    runs = [s.get("run", "") for job in jobs.values() for s in job["steps"]]
    assert any("make monitor" in r for r in runs)
    assert any("make retrain-pr" in r for r in runs)


@pytest.mark.parametrize("variant", VARIANTS)
def test_generated_template_update_workflow_rules(generated: dict[str, Path], variant: str) -> None:
    workflow = yaml.safe_load((generated[variant] / "template-update.yml").read_text())
    assert set(triggers(workflow)) == {"schedule", "workflow_dispatch"}
    assert workflow["concurrency"] == {"group": "template-update", "cancel-in-progress": False}
    (job,) = workflow["jobs"].values()
    # It pushes one branch and opens one pull request; it reaches no cloud, so it asks for no id token.
    assert job["permissions"] == {"contents": "write", "pull-requests": "write"}
    steps = job["steps"]
    # The release App's token opens the pull request (so its checks run) and may push workflow changes.
    app = next(s for s in steps if s.get("uses", "").startswith("actions/create-github-app-token@"))
    assert app["with"]["permission-workflows"] == "write"
    checkout = next(s for s in steps if s.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"]["token"] == "${{ steps.app-token.outputs.token || github.token }}"
    runs = [s["run"] for s in steps if "run" in s]
    assert len(runs) == 1
    assert runs[0].rstrip().endswith("make template-pr")
