"""The DVC remote of a baked project, against real things: the local default, and a private S3 server that enforces
credentials (``tests/s3_server.py``, moto with IAM authentication on).

- ``make check-remote`` fails in seconds naming the remote and what to do: a local path on a CI runner, no
  credentials, credentials the server refuses; a read-only user passes.
- ``make remote URL=… ENDPOINT=…`` makes the URL the default remote and keeps the endpoint in ``.dvc/config.local``.
- ``make pr`` twice on an unchanged commit leaves a clean work tree: nothing measured in time lands in a tracked output.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import bake_into, project_env, run
from s3_server import BUCKET, Credentials, S3Server, s3_server

PACKAGE = "churn_model"
QUICK_S = 10  # "fails in seconds": the command's own deadline is 10 s, and a refusal comes back well within it
NO_AWS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "CI", "GITHUB_ACTIONS")

# One worker runs the whole module: its baked project and S3 server are made once (pytest-xdist, --dist loadgroup).
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("remote")]


def env_for(home: Path, credentials: Credentials | None = None, **extra: str) -> dict[str, str]:
    """The project's environment with no AWS credentials from anywhere (an empty home) but ``credentials``."""
    env = {k: v for k, v in project_env().items() if k not in NO_AWS}
    env.update(
        HOME=str(home),
        AWS_CONFIG_FILE=str(home / "no-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(home / "no-aws-credentials"),
        AWS_EC2_METADATA_DISABLED="true",  # no instance metadata lookup: "no credentials" is known at once
    )
    env.update(credentials.env() if credentials else {})
    env.update(extra)
    return env


def check_remote(project: Path, env: dict[str, str]) -> tuple[int, str, float]:
    """``make check-remote``: its exit code, its output and how long it took."""
    started = time.monotonic()
    result = run(["make", "check-remote"], project, env=env, check=False, timeout=120)
    return result.returncode, result.stdout + result.stderr, time.monotonic() - started


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("remote")
    found = bake_into(root)
    run(["make", "setup"], found, env=project_env())
    return found


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with s3_server(tmp_path_factory.mktemp("moto") / "moto.log") as server:
        yield server


def test_the_default_local_remote_fails_in_seconds_on_ci_naming_it(project: Path, home: Path) -> None:
    remote = (project.parent / f"{project.name}-dvc-remote").resolve()
    assert not remote.exists()

    code, out, seconds = check_remote(project, env_for(home, CI="true"))

    assert code == 2, out
    assert f"error: DVC remote 'storage' ({remote})" in out
    assert "out of CI's reach" in out
    assert "`make remote URL=<url> [ENDPOINT=<url>]`" in out
    assert seconds < QUICK_S, seconds

    # Locally the same folder is fine (`make push` creates it), and so is an existing one in CI (a self-hosted disk).
    code, out, _ = check_remote(project, env_for(home))
    assert code == 0, out
    assert "not created yet" in out
    remote.mkdir()
    try:
        code, out, _ = check_remote(project, env_for(home, GITHUB_ACTIONS="true"))
        assert code == 0, out
        assert "is a local folder" in out
    finally:
        remote.rmdir()


@pytest.fixture(scope="module")
def on_s3(project: Path, home: Path, s3: S3Server) -> Path:
    """The project with the private bucket as its default remote, set by ``make remote``."""
    run(["make", "remote", f"URL=s3://{BUCKET}/dvc", f"ENDPOINT={s3.endpoint}"], project, env=env_for(home))
    return project


def dvc_config(project: Path, level: str, key: str) -> str | None:
    """A setting of one level of DVC's config (``--project``: .dvc/config, ``--local``: .dvc/config.local)."""
    result = run(["uv", "run", "--frozen", "dvc", "config", level, key], project, check=False)
    return result.stdout.strip() if result.returncode == 0 else None


def test_make_remote_sets_the_default_and_keeps_the_endpoint_private(on_s3: Path, s3: S3Server) -> None:
    assert dvc_config(on_s3, "--project", "core.remote") == "storage"
    assert dvc_config(on_s3, "--project", "remote.storage.url") == f"s3://{BUCKET}/dvc"
    assert dvc_config(on_s3, "--project", "remote.storage.endpointurl") is None
    assert dvc_config(on_s3, "--local", "remote.storage.endpointurl") == s3.endpoint
    run(["git", "check-ignore", "--quiet", ".dvc/config.local"], on_s3)  # never committed


def test_no_credentials_are_named_in_seconds(on_s3: Path, home: Path) -> None:
    code, out, seconds = check_remote(on_s3, env_for(home))

    assert code == 2, out
    assert f"error: DVC remote 'storage' (s3://{BUCKET}/dvc): no credentials were found" in out
    assert "AWS_ACCESS_KEY_ID" in out
    assert "in CI, the job's cloud login" in out
    assert seconds < QUICK_S, seconds


def test_an_unknown_key_is_refused_by_name(on_s3: Path, home: Path, s3: S3Server) -> None:
    code, out, seconds = check_remote(on_s3, env_for(home, s3.unknown))

    assert code == 2, out
    assert f"error: DVC remote 'storage' (s3://{BUCKET}/dvc) refused the credentials" in out
    assert "Access Key Id you provided does not exist" in out
    assert s3.unknown.secret_access_key not in out
    assert seconds < QUICK_S, seconds


def test_a_read_only_user_passes_and_a_missing_bucket_is_named(on_s3: Path, home: Path, s3: S3Server) -> None:
    code, out, _ = check_remote(on_s3, env_for(home, s3.read_only))
    assert code == 0, out
    assert f"ok: DVC remote 'storage' (s3://{BUCKET}/dvc) answers and is empty" in out

    s3.client(s3.read_write).put_object(Bucket=BUCKET, Key="dvc/files/md5/00/probe", Body=b"x")
    code, out, _ = check_remote(on_s3, env_for(home, s3.read_only))
    assert code == 0, out
    assert "lists 1 entry at its root" in out

    run(["make", "remote", "URL=s3://no-such-bucket/dvc", f"ENDPOINT={s3.endpoint}"], on_s3, env=env_for(home))
    try:
        code, out, _ = check_remote(on_s3, env_for(home, s3.read_only))
    finally:
        run(["make", "remote", f"URL=s3://{BUCKET}/dvc", f"ENDPOINT={s3.endpoint}"], on_s3, env=env_for(home))
    assert code == 2, out
    assert "the bucket (or container) 'no-such-bucket' does not exist" in out


def test_a_host_that_never_answers_fails_at_the_deadline(on_s3: Path, home: Path, s3: S3Server) -> None:
    with socket.socket() as silent:  # accepts connections (the kernel's backlog) and never answers a byte
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}"
        run(["make", "remote", f"URL=s3://{BUCKET}/dvc", f"ENDPOINT={endpoint}"], on_s3, env=env_for(home))
        try:
            started = time.monotonic()
            result = run(
                ["uv", "run", "--frozen", PACKAGE, "check-remote", "--deadline", "3"],
                on_s3,
                env=env_for(home, s3.read_only),
                check=False,
                timeout=60,
            )
            seconds = time.monotonic() - started
        finally:
            run(["make", "remote", f"URL=s3://{BUCKET}/dvc", f"ENDPOINT={s3.endpoint}"], on_s3, env=env_for(home))
    assert result.returncode == 2, result
    assert f"error: DVC remote 'storage' (s3://{BUCKET}/dvc) did not answer within 3 s" in result.stderr
    assert seconds < QUICK_S, seconds


def test_make_pr_twice_on_an_unchanged_commit_leaves_a_clean_tree(tmp_path: Path) -> None:
    """The gate's measured latency goes to an untracked file, so a second ``make pr`` rewrites nothing tracked."""
    project = bake_into(tmp_path)
    env = project_env()
    (tmp_path / f"{project.name}-dvc-remote").mkdir()  # the default local remote: there, so CI=true passes too
    run(["make", "setup"], project, env=env)
    run("git add -A && git commit --quiet --no-verify -m 'the project'", project, env=env)
    run(["git", "switch", "--quiet", "-c", "change"], project, env=env)  # main stays the baseline the gate reads
    run(["make", "pr"], project, env=env, timeout=1200)
    run("git add -A && git commit --quiet --no-verify -m 'make pr'", project, env=env)

    run(["make", "pr"], project, env=env, timeout=1200)

    assert run(["git", "status", "--porcelain", "--untracked-files=all"], project).stdout == ""
    verdict = json.loads((project / "reports" / "gate.json").read_text())
    assert "latency" not in verdict
    timings = json.loads((project / "reports" / "timings.json").read_text())
    assert timings["p99_ms"] > 0  # measured again, kept out of git and DVC
    run(["git", "check-ignore", "--quiet", "reports/timings.json"], project)
