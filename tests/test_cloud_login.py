"""The generated workflows' cloud login (answer ``cloud``), run in the lab (``tests/gha``) as GitHub runs them: which
jobs ask for an id token, which identity each logs in as, what reaches a job's steps, and what a fork's pull request
gets (nothing). Fast: the baked workflows run against a small repository whose Makefile stands in for the project's
targets (each prints the cloud variables it sees), so no environment is installed and no pipeline runs; the project's
own targets are tested in the baked project (``make fork-notice``: tests/cli/test_cli.py) and by test_workflow_runs.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import bake_into, project_env, run
from gha.lab import Lab, ok
from gha.runner import JobResult, describe

REPOSITORY = "your-org/churn-model"
PR_ROLE = "arn:aws:iam::111122223333:role/churn-model-pr-data"
RELEASE_ROLE = "arn:aws:iam::111122223333:role/churn-model-release"
PR_KEYS = {
    "AWS_ACCESS_KEY_ID": "ASIALABPRDATA",
    "AWS_SECRET_ACCESS_KEY": "pr-secret-value",
    "AWS_SESSION_TOKEN": "pr-st",
}
RELEASE_KEYS = {
    "AWS_ACCESS_KEY_ID": "ASIALABRELEASE",
    "AWS_SECRET_ACCESS_KEY": "release-secret-value",
    "AWS_SESSION_TOKEN": "release-st",
}
AWS_VARS = {"AWS_PR_ROLE_ARN": PR_ROLE, "AWS_ROLE_ARN": RELEASE_ROLE, "AWS_REGION": "eu-west-1"}
LOGIN_ACTIONS = {
    "aws": "aws-actions/configure-aws-credentials",
    "gcp": "google-github-actions/auth",
    "azure": "azure/login",
}
REMOTES = {
    "none": "../churn-model-dvc-remote",
    "aws": "s3://bucket/dvc",
    "gcp": "gs://bucket/dvc",
    "azure": "azure://c/dvc",
}
SEEN = "AWS_|GOOGLE_|CLOUDSDK_|GCLOUD_|GCP_|AZURE_|ACTIONS_ID_TOKEN_"
# Stands in for the project's Makefile: every target prints the cloud variables its step sees (names and values), and
# the targets whose output a workflow reads print what the real ones print.
MAKEFILE = f"""\
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
%:
\t@echo "make $@"; env | grep -E '^({SEEN})' | sort || true
register:
\t@mkdir -p models && echo '{{}}' > models/metadata.json
\t@echo '{{"version": "3"}}'
image:
\t@echo "image: ghcr.io/your-org/churn-model:3"
push-image:
\t@echo "image: ghcr.io/your-org/churn-model"; echo "digest: sha256:{"a" * 64}"
monitor:
\t@mkdir -p reports/monitoring && echo report > reports/monitoring/report.md
\t@echo '{{"retrain": true}}'
pr:
\t@mkdir -p reports && echo "# model report" > reports/report.md
\t@echo "make $@"; env | grep -E '^({SEEN})' | sort || true
fork-notice:
\t@mkdir -p reports && echo "# Not trained: this pull request comes from a fork" > reports/report.md
\t@exit 1
pr-handover:
\trm -rf pr-report && mkdir -p pr-report
\tcp reports/report.md pr-report/report.md
\tprintf '%s\\n' '$(PR_NUMBER)' > pr-report/pr-number
"""


def publish(root: Path, cloud: str) -> Lab:
    """A lab whose repository holds the workflows baked with ``cloud`` and the stand-in Makefile."""
    baked = bake_into(root / "bake", dvc_remote_url=REMOTES[cloud], cloud=cloud)
    project = root / "churn-model"
    shutil.copytree(baked / ".github", project / ".github")
    (project / "Makefile").write_text(MAKEFILE)
    env = project_env()
    run("git init --quiet -b main && git add -A && git commit --quiet -m workflows", cwd=project, env=env)
    lab = Lab(root, env, repository=REPOSITORY)
    lab.github.publish(project)
    for environment in ("dev", "staging", "prod"):
        lab.github.environment(environment, reviewers=False)
    return lab


def pull_request(lab: Lab, head_repository: str, **kwargs: Any) -> dict[str, JobResult]:
    payload = {"pull_request": {"number": 7, "head": {"repo": {"full_name": head_repository}}}}
    sha = lab.github.sha()
    lab.github.git("update-ref", "refs/pull/7/merge", sha)  # GitHub's merge ref of the pull request
    return lab.run("pr-training.yml", "pull_request", ref="refs/pull/7/merge", sha=sha, payload=payload, **kwargs)


def printed(result: JobResult) -> str:
    """Everything a job's steps printed, and the variables they exported."""
    return "\n".join(s.stdout + s.stderr + json.dumps(s.exported) for s in result.steps)


@pytest.fixture
def aws(tmp_path: Path) -> Lab:
    lab = publish(tmp_path, "aws")
    # The PR role trusts pull requests of this repository (read-only data); the release role main and its
    # environments (write).
    lab.github.cloud_identity(PR_ROLE, PR_KEYS, subjects=(f"repo:{REPOSITORY}:pull_request",))
    lab.github.cloud_identity(
        RELEASE_ROLE,
        RELEASE_KEYS,
        subjects=(f"repo:{REPOSITORY}:ref:refs/heads/main", f"repo:{REPOSITORY}:environment:*"),
    )
    return lab


def test_a_same_repository_pull_request_trains_as_the_read_only_data_role(aws: Lab) -> None:
    results = pull_request(aws, REPOSITORY, vars=AWS_VARS)
    ok(results, "train")
    (login,) = aws.github.logins()
    assert login == {
        "cloud": "aws",
        "job": "train",
        "run_id": login["run_id"],
        "identity": PR_ROLE,
        "audience": "sts.amazonaws.com",
        "subject": f"repo:{REPOSITORY}:pull_request",
        "id_token": True,
        "granted": True,
    }
    pr = results["train"].step("Reproduce").stdout
    for key, value in {**PR_KEYS, "AWS_REGION": "eu-west-1"}.items():
        assert f"{key}={value}\n" in pr, pr
    assert "ASIALABRELEASE" not in printed(results["train"])
    artifact = aws.github.artifact(aws.runs[-1].run_id, "pr-report-1")
    assert (artifact / "report.md").read_text() == "# model report\n"


def test_a_forks_pull_request_gets_no_credentials_and_posts_the_notice(aws: Lab) -> None:
    """The fork's job has no id token and no login step; no credential reaches it; its notice is the artifact that
    pr-comment posts (same name, same files), and the job fails: nothing was judged."""
    workflow = yaml.safe_load((aws.origin / ".github" / "workflows" / "pr-training.yml").read_text())
    fork_job = workflow["jobs"]["fork"]
    assert fork_job["permissions"] == {"contents": "read"}
    assert not [s for s in fork_job["steps"] if s.get("uses", "").startswith(LOGIN_ACTIONS["aws"])]

    results = pull_request(aws, "someone/churn-model", vars=AWS_VARS, secrets={"MLFLOW_TRACKING_TOKEN": "tok-secret"})
    assert results["train"].skipped
    fork = results["fork"]
    assert fork.failed is not None, describe(results)
    assert fork.failed.name.startswith("Say what was skipped"), describe(results)
    assert aws.github.logins() == [], "a fork's run must not even try to log in"
    seen = printed(fork)
    for value in (*PR_KEYS.values(), *RELEASE_KEYS.values(), "tok-secret", "ACTIONS_ID_TOKEN_REQUEST"):
        assert value not in seen
    artifact = aws.github.artifact(aws.runs[-1].run_id, "pr-report-1")
    assert (artifact / "report.md").read_text().startswith("# Not trained: this pull request comes from a fork")
    assert (artifact / "pr-number").read_text() == "7\n"
    comment = yaml.safe_load((aws.origin / ".github" / "workflows" / "pr-comment.yml").read_text())
    (job,) = comment["jobs"].values()
    (download,) = [s for s in job["steps"] if s.get("uses", "").startswith("actions/download-artifact@")]
    assert download["with"]["name"] == "pr-report-${{ github.event.workflow_run.run_attempt }}"
    # pr-comment posts after any conclusion but a cancelled one: the fork's failed run is posted.
    assert "conclusion != 'cancelled'" in job["if"]


def test_the_release_and_the_monitor_log_in_as_the_release_role(aws: Lab) -> None:
    results = aws.run("release.yml", "push", vars=AWS_VARS)
    ok(results, "build", "promote-dev", "promote-staging", "promote-prod")
    logins = {login["job"]: login for login in aws.github.logins()}
    assert set(logins) == {"build", "promote-dev", "promote-staging", "promote-prod"}
    assert {login["identity"] for login in logins.values()} == {RELEASE_ROLE}
    assert all(login["granted"] and login["id_token"] for login in logins.values())
    assert logins["build"]["subject"] == f"repo:{REPOSITORY}:ref:refs/heads/main"
    assert logins["promote-prod"]["subject"] == f"repo:{REPOSITORY}:environment:prod"
    assert "AWS_ACCESS_KEY_ID=ASIALABRELEASE\n" in results["build"].step("Fetch main's data").stdout

    monitored = aws.run("monitor.yml", "schedule", vars={**AWS_VARS, "PREDICTION_LOG_URL": "s3://logs/churn"})
    ok(monitored, "monitor", "retrain")
    jobs = [login["job"] for login in aws.github.logins() if login["run_id"] == aws.runs[-1].run_id]
    assert jobs == ["monitor", "retrain"]
    assert "AWS_SESSION_TOKEN=release-st\n" in monitored["retrain"].step("Fetch main's data").stdout


def test_the_pr_role_cannot_be_used_by_the_release(aws: Lab) -> None:
    """The release asks for the release role: with the PR role in its place, the trust (pull requests only) refuses."""
    results = aws.run("release.yml", "push", vars={**AWS_VARS, "AWS_ROLE_ARN": PR_ROLE})
    refused = results["build"].failed
    assert refused is not None, describe(results)
    assert "Not authorized to perform sts:AssumeRoleWithWebIdentity" in refused.stderr
    assert [(login["identity"], login["granted"]) for login in aws.github.logins()] == [(PR_ROLE, False)]


# --- every cloud, statically --------------------------------------------------------------------------------------

# Jobs that reach the DVC remote, MLflow or a bucket, per workflow, and the identity each logs in as.
LOGIN_JOBS = {
    "pr-training.yml": {"train": "pr"},
    "release.yml": {
        "build": "release",
        "promote-dev": "release",
        "promote-staging": "release",
        "promote-prod": "release",
    },
    "monitor.yml": {"monitor": "release", "retrain": "release"},
    "rollback.yml": {"rollback": "release"},
}
INPUTS = {
    ("aws", "pr"): {"role-to-assume": "${{ vars.AWS_PR_ROLE_ARN }}", "aws-region": "${{ vars.AWS_REGION }}"},
    ("aws", "release"): {"role-to-assume": "${{ vars.AWS_ROLE_ARN }}", "aws-region": "${{ vars.AWS_REGION }}"},
    ("gcp", "pr"): {
        "workload_identity_provider": "${{ vars.GCP_WORKLOAD_IDENTITY_PROVIDER }}",
        "service_account": "${{ vars.GCP_PR_SERVICE_ACCOUNT }}",
    },
    ("gcp", "release"): {
        "workload_identity_provider": "${{ vars.GCP_WORKLOAD_IDENTITY_PROVIDER }}",
        "service_account": "${{ vars.GCP_SERVICE_ACCOUNT }}",
    },
    ("azure", "pr"): {
        "client-id": "${{ vars.AZURE_PR_CLIENT_ID }}",
        "tenant-id": "${{ vars.AZURE_TENANT_ID }}",
        "subscription-id": "${{ vars.AZURE_SUBSCRIPTION_ID }}",
    },
    ("azure", "release"): {
        "client-id": "${{ vars.AZURE_CLIENT_ID }}",
        "tenant-id": "${{ vars.AZURE_TENANT_ID }}",
        "subscription-id": "${{ vars.AZURE_SUBSCRIPTION_ID }}",
    },
}
PIN = re.compile(r"^(?P<action>[\w-]+/[\w-]+)@[0-9a-f]{40}$")


@pytest.mark.parametrize("cloud", ["none", "aws", "gcp", "azure"])
def test_each_cloud_logs_in_where_it_must_and_only_there(tmp_path: Path, cloud: str) -> None:
    workflows = bake_into(tmp_path, dvc_remote_url=REMOTES[cloud], cloud=cloud) / ".github" / "workflows"
    for path in sorted(workflows.glob("*.yml")):
        text = path.read_text()
        data = yaml.safe_load(text)
        for name, job in data["jobs"].items():
            logins = [s for s in job.get("steps", []) if any(a in s.get("uses", "") for a in LOGIN_ACTIONS.values())]
            role = LOGIN_JOBS.get(path.name, {}).get(name)
            id_token = (job.get("permissions") or {}).get("id-token")
            if cloud == "none" or role is None:
                assert logins == [], f"{path.name}/{name} logs in"
                signs = path.name == "release.yml" and name == "build"  # keyless signing and provenance
                assert id_token == ("write" if signs else None), f"{path.name}/{name}: id-token {id_token}"
                continue
            (login,) = logins
            match = PIN.match(login["uses"])
            assert match, login["uses"]
            assert match["action"] == LOGIN_ACTIONS[cloud]
            assert login["with"] == INPUTS[cloud, role], f"{path.name}/{name}"
            assert id_token == "write", f"{path.name}/{name}"
            steps = [s.get("uses", "") for s in job["steps"]]
            assert steps.index(login["uses"]) > next(
                i for i, u in enumerate(steps) if u.startswith("actions/checkout@")
            ), "log in after the checkout (google-github-actions/auth writes into the workspace)"
    training = yaml.safe_load((workflows / "pr-training.yml").read_text())["jobs"]
    if cloud == "none":
        assert list(training) == ["train"]
        assert "if" not in training["train"]
    else:
        assert training["train"]["if"] == "github.event.pull_request.head.repo.full_name == github.repository"
        assert training["fork"]["if"] == "github.event.pull_request.head.repo.full_name != github.repository"
        assert training["fork"]["permissions"] == {"contents": "read"}


def test_an_s3_compatible_endpoint_reaches_only_the_jobs_that_log_in(aws: Lab) -> None:
    """The variable AWS_ENDPOINT_URL_S3 (a team on MinIO, Ceph, R2...) is exported after the login, never to a fork."""
    endpoint = "https://s3.storage.internal:9000"
    results = pull_request(aws, REPOSITORY, vars={**AWS_VARS, "AWS_ENDPOINT_URL_S3": endpoint})
    ok(results, "train")
    assert f"AWS_ENDPOINT_URL_S3={endpoint}\n" in results["train"].step("Reproduce").stdout
    fork = pull_request(aws, "someone/churn-model", vars={**AWS_VARS, "AWS_ENDPOINT_URL_S3": endpoint})["fork"]
    assert [s.name for s in fork.steps if not s.skipped and s.uses is None]
    assert not [s.name for s in fork.steps if "AWS_ENDPOINT_URL_S3" in s.env]
    # Unset (AWS itself): the step is skipped and nothing is exported.
    plain = pull_request(aws, REPOSITORY, vars=AWS_VARS)["train"]
    assert plain.step("Point S3 at the endpoint").skipped
    assert "AWS_ENDPOINT_URL_S3" not in printed(plain)
