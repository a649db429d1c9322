"""The generated workflows against a private DVC remote, run in the lab (``tests/gha``) as GitHub runs them: a
project baked with ``cloud=aws`` whose remote is a bucket of a local S3 server that enforces credentials
(``tests/s3_server.py``, moto with IAM authentication on). The lab's cloud identities hand out the server's users'
keys, as the real login action hands out a role's temporary credentials: the pull requests' role gets the read-only
user's, the release role the read-write user's. The endpoint reaches the jobs as the repository variable
``AWS_ENDPOINT_URL_S3`` (what a team on an S3-compatible server sets): the committed ``.dvc/config`` names only the
bucket.

One baked project and one server for the module: the release pushes what main's model was made from; a
same-repository pull request pulls the private data, trains, and its report is posted; the pull requests' role cannot
write; a fork's pull request gets no credentials and its notice is posted.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import bake_into, project_env, run
from gha.lab import Lab, ok
from gha.runner import JobResult, WorkflowRun, describe
from s3_server import BUCKET, Credentials, S3Server, s3_server
from test_workflow_runs import comment, comments, push_branch, workflow_run_event

# One worker runs the whole module: its project, lab and S3 server are made once (pytest-xdist, --dist loadgroup).
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("private-remote-runs")]

REPOSITORY = "your-org/churn-model"
PREFIX = "churn"
REMOTE = f"s3://{BUCKET}/{PREFIX}"
PR_ROLE = "arn:aws:iam::111122223333:role/churn-model-pr-data"
RELEASE_ROLE = "arn:aws:iam::111122223333:role/churn-model-release"
NO_AWS = ("AWS_", "CI", "GITHUB_ACTIONS")


def no_aws_env(home: Path, credentials: Credentials | None = None) -> dict[str, str]:
    """The project's environment with no AWS credentials or settings from anywhere (an empty home) but ``credentials``.
    The lab's jobs run in it too (no credentials on the runner: only its login step gives a job any)."""
    env = {k: v for k, v in project_env().items() if not k.startswith(NO_AWS)}
    env.update(
        HOME=str(home),
        AWS_CONFIG_FILE=str(home / "no-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(home / "no-aws-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    env.update(credentials.env() if credentials else {})
    return env


@pytest.fixture(scope="module")
def moto_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("moto") / "moto.log"


@pytest.fixture(scope="module")
def s3(moto_log: Path) -> Iterator[S3Server]:
    with s3_server(moto_log) as server:
        yield server


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, s3: S3Server) -> Lab:
    """The developer's project on the private remote: the pipeline run, only the raw data pushed (the team's data),
    committed and published; the release pushes the rest. The pull requests' role trusts pull requests of this
    repository and gets the read-only user's keys; the release role trusts main and gets the read-write user's."""
    root = tmp_path_factory.mktemp("private-remote")
    home = tmp_path_factory.mktemp("home")
    # No promotion jobs: the release's build job is what pushes to the remote.
    project = bake_into(root, cloud="aws", dvc_remote_url=REMOTE, include_deploy="no")
    developer = no_aws_env(home, s3.read_write)
    run(["make", "setup"], cwd=project, env=developer)
    run(["make", "remote", f"URL={REMOTE}", f"ENDPOINT={s3.endpoint}"], cwd=project, env=developer)
    run(["make", "repro"], cwd=project, env=developer)
    run(["uv", "run", "--frozen", "dvc", "push", "data/raw/data.csv.dvc"], cwd=project, env=developer)
    run("git add -A && git commit --quiet --no-verify -m 'Initial commit'", cwd=project, env=developer)
    assert not run(["git", "ls-files", "data/raw/data.csv", ".dvc/config.local"], cwd=project).stdout
    lab = Lab(root, no_aws_env(home), repository=REPOSITORY)
    assert project == lab.origin
    lab.github.publish(project)
    lab.github.cloud_identity(PR_ROLE, s3.read_only.env(), subjects=(f"repo:{REPOSITORY}:pull_request",))
    lab.github.cloud_identity(RELEASE_ROLE, s3.read_write.env(), subjects=(f"repo:{REPOSITORY}:ref:refs/heads/main",))
    return lab


@pytest.fixture(scope="module")
def variables(s3: S3Server) -> dict[str, str]:
    """The repository variables a team on an S3-compatible server sets (README: "Cloud login")."""
    return {
        "AWS_PR_ROLE_ARN": PR_ROLE,
        "AWS_ROLE_ARN": RELEASE_ROLE,
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_S3": s3.endpoint,
    }


def keys(s3: S3Server) -> set[str]:
    listed = s3.client(s3.admin).list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}/")
    return {item["Key"] for item in listed.get("Contents", [])}


def cache_key(md5: str) -> str:
    """Where DVC 3 keeps an object of this hash in the remote."""
    return f"{PREFIX}/files/md5/{md5[:2]}/{md5[2:]}"


def logins_of(lab: Lab, run_id: int) -> list[tuple[str, str, bool]]:
    return [(x["job"], x["identity"], x["granted"]) for x in lab.github.logins() if x["run_id"] == run_id]


def credential_values(s3: S3Server) -> list[str]:
    users = (s3.admin, s3.read_only, s3.read_write)
    return [value for user in users for value in (user.access_key_id, user.secret_access_key)]


def printed(result: JobResult) -> str:
    return "\n".join(s.stdout + s.stderr for s in result.steps)


def test_the_release_pushes_what_mains_model_was_made_from(lab: Lab, s3: S3Server, variables: dict[str, str]) -> None:
    raw = yaml.safe_load((lab.origin / "data" / "raw" / "data.csv.dvc").read_text())["outs"][0]["md5"]
    assert keys(s3) == {cache_key(raw)}, "before the release the remote holds the raw data only"

    release = lab.workflow("release.yml", "push", vars=variables)
    results = release.run()
    ok(results, "build")
    build = results["build"]
    assert logins_of(lab, release.run_id) == [("build", RELEASE_ROLE, True)]
    checked = build.step("Check that the DVC remote answers")
    assert f"ok: DVC remote 'storage' ({REMOTE}) lists" in checked.stdout, checked.stdout
    assert build.step("Point S3 at the endpoint").exported == {"AWS_ENDPOINT_URL_S3": s3.endpoint}

    # What the release reproduced is in the bucket: DVC, reading the bucket with the read-only keys, finds the build's
    # workspace and the remote in sync (every cached output: data, splits, model, reports).
    pushed = build.step("Push the data and artifacts")
    assert re.search(r"^\d+ files pushed$", pushed.stdout, re.MULTILINE), pushed.stdout
    assert build.workspace is not None
    reader = {**lab.env, **s3.read_only.env(), "AWS_ENDPOINT_URL_S3": s3.endpoint}
    status = run(["uv", "run", "--frozen", "dvc", "status", "--cloud", "--json"], cwd=build.workspace, env=reader)
    assert json.loads(status.stdout) == {}, status.stdout
    model = next(
        out["md5"]
        for stage in yaml.safe_load((build.workspace / "dvc.lock").read_text())["stages"].values()
        for out in stage.get("outs", [])
        if out["path"].endswith(".onnx")
    )
    assert cache_key(model) in keys(s3)


@pytest.fixture(scope="module")
def same_repository_pr(lab: Lab, moto_log: Path, variables: dict[str, str]) -> tuple[WorkflowRun, str, list[str]]:
    """Pull request 7 from a branch of the repository, trained once: its run, head commit, and the requests the S3
    server logged meanwhile."""
    sha = push_branch(lab, "better-model", "Try a change", refs=("refs/pull/7/merge",))
    lab.github.open_pull(7, "better-model", sha)
    payload = {"pull_request": {"number": 7, "head": {"repo": {"full_name": REPOSITORY}}}}
    seen_before = len(moto_log.read_text().splitlines())
    training = lab.workflow(
        "pr-training.yml", "pull_request", ref="refs/pull/7/merge", sha=sha, payload=payload, vars=variables
    )
    training.run()
    return training, sha, moto_log.read_text().splitlines()[seen_before:]


def test_a_same_repository_pull_request_pulls_the_private_data_trains_and_is_reported(
    lab: Lab, same_repository_pr: tuple[WorkflowRun, str, list[str]]
) -> None:
    training, sha, requests = same_repository_pr
    ok(training.results, "train")
    train = training.results["train"]
    assert logins_of(lab, training.run_id) == [("train", PR_ROLE, True)]
    pr = train.step("Reproduce, judge against main")
    assert f"ok: DVC remote 'storage' ({REMOTE}) lists" in pr.stdout, pr.stdout

    # The raw data is in no checkout (DVC tracks it): the job read it from the bucket, signed with the PR role's keys.
    raw = yaml.safe_load((lab.origin / "data" / "raw" / "data.csv.dvc").read_text())["outs"][0]["md5"]
    assert train.workspace is not None
    pulled = train.workspace / "data" / "raw" / "data.csv"
    assert pulled.read_bytes() == (lab.origin / "data" / "raw" / "data.csv").read_bytes()
    assert any(f'"GET /{BUCKET}/{cache_key(raw)} ' in line for line in requests), "\n".join(requests[-20:])

    # The report compares with main and is posted by the trusted comment workflow.
    report = (train.workspace / "reports" / "report.md").read_text()
    assert "gate" in report.lower()
    assert (lab.github.artifact(training.run_id, "pr-report-1") / "report.md").read_text() == report
    head = {"repository": REPOSITORY, "branch": "better-model", "sha": sha}
    ok(comment(lab, workflow_run_event(training.run_id, head, [7])), "comment")
    assert [c["body"] for c in comments(lab, 7)] == [report]


def test_the_pull_requests_role_cannot_write(
    lab: Lab, s3: S3Server, same_repository_pr: tuple[WorkflowRun, str, list[str]]
) -> None:
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as refused:
        s3.client(s3.read_only).put_object(Bucket=BUCKET, Key=f"{PREFIX}/files/md5/00/forged", Body=b"x")
    assert refused.value.response["Error"]["Code"] == "AccessDenied"

    # DVC in the pull request's workspace, with exactly what its login gave the job, cannot push a new file.
    train = same_repository_pr[0].results["train"]
    assert train.workspace is not None
    given: dict[str, str] = {}
    for step in train.steps:
        given.update(step.exported)
    assert given["AWS_ACCESS_KEY_ID"] == s3.read_only.access_key_id
    (train.workspace / "data" / "forged.csv").write_text("a,b\n1,2\n")
    env = {**lab.env, **given}
    run(["uv", "run", "--frozen", "dvc", "add", "data/forged.csv"], cwd=train.workspace, env=env)
    before = keys(s3)
    pushed = subprocess.run(
        ["uv", "run", "--frozen", "dvc", "push", "data/forged.csv.dvc"],
        cwd=train.workspace,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert pushed.returncode != 0, pushed.stdout
    assert "AccessDenied" in pushed.stderr, pushed.stderr
    assert keys(s3) == before


def test_a_forks_pull_request_gets_no_credentials_and_its_notice_is_posted(
    lab: Lab, s3: S3Server, variables: dict[str, str]
) -> None:
    sha = push_branch(lab, "fork-patch", "A fork's change", refs=("refs/pull/8/merge",))
    lab.github.open_pull(8, "patch-1", sha, head_repository="forker/churn-model")
    payload: dict[str, Any] = {"pull_request": {"number": 8, "head": {"repo": {"full_name": "forker/churn-model"}}}}

    training = lab.workflow(
        "pr-training.yml", "pull_request", ref="refs/pull/8/merge", sha=sha, payload=payload, vars=variables
    )
    results = training.run()
    assert results["train"].skipped
    fork = results["fork"]
    assert fork.failed is not None, describe(results)
    assert fork.failed.name.startswith("Say what was skipped"), describe(results)
    assert logins_of(lab, training.run_id) == [], "a fork's run must not even try to log in"

    # No credential in any step's environment or output: neither a key of the server's users nor an id token.
    ran = [s for s in fork.steps if not s.skipped]
    assert [s for s in ran if s.uses is None], "the fork job ran no shell step"
    for step in ran:
        assert not [k for k in step.env if k.startswith(("AWS_ACCESS_KEY", "AWS_SECRET", "AWS_SESSION", "ACTIONS_ID"))]
        assert not step.exported
    seen = printed(fork) + "\n".join(str(s.env) for s in ran)
    for value in credential_values(s3):
        assert value not in seen

    notice = (lab.github.artifact(training.run_id, "pr-report-1") / "report.md").read_text()
    assert notice.startswith("# Not trained: this pull request comes from a fork")
    head = {"repository": "forker/churn-model", "branch": "patch-1", "sha": sha}
    ok(comment(lab, workflow_run_event(training.run_id, head, [], conclusion="failure")), "comment")
    assert [c["body"] for c in comments(lab, 8)] == [notice]
