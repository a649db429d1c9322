"""Promotion on a real git repository: promote dev → staging → prod, roll back, read the history, and every refusal.

Each test copies the project's ``deploy/`` into a fresh git repository and runs the CLI there in-process; git is the
record, so the tests check the commits (how many, their messages and author) and the overlay files after each step.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import time
from pathlib import Path

import pytest
import yaml
from conftest import ISOLATION, PROJECT, CliResult, Workspace, git, run

from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.release.promote import ENVIRONMENTS, NOTHING, VERSION_ANNOTATION

A, B, C = (f"sha256:{c * 64}" for c in "abc")
AUTHOR = f"{ISOLATION['GIT_AUTHOR_NAME']} <{ISOLATION['GIT_AUTHOR_EMAIL']}>"

needs_deploy = pytest.mark.skipif(not (PROJECT / "deploy").is_dir(), reason="generated without deploy/")


class Repo(Workspace):
    """A git repository holding a copy of the project's ``deploy/``."""

    def overlay(self, env: str) -> Path:
        return self.root / "deploy" / "overlays" / env / "kustomization.yaml"

    def pinned(self, env: str) -> tuple[str, str]:
        """(digest, model version) that ``env``'s overlay pins."""
        data = yaml.safe_load(self.overlay(env).read_text())
        (image,) = data["images"]
        return image["digest"], data["commonAnnotations"][VERSION_ANNOTATION]

    def commits(self) -> int:
        return int(git(self.root, "rev-list", "--count", "HEAD"))

    def snapshot(self) -> dict[str, str]:
        return {env: self.overlay(env).read_text() for env in ENVIRONMENTS}

    def refused(self, *args: str, because: str) -> CliResult:
        """Run a command that must fail with exit 2 and ``because`` in its one-line message, changing nothing."""
        before, commits = self.snapshot(), self.commits()
        result = self.cli(*args)
        assert result.code == 2, result
        assert because in result.err, result.err
        assert result.err.startswith("error: "), result.err
        assert result.err.count("\n") == 1, result.err
        assert self.snapshot() == before
        assert self.commits() == commits
        return result


def new_repo(root: Path) -> Repo:
    """A fresh git repository at ``root`` whose one commit holds the project's ``deploy/``."""
    shutil.copytree(PROJECT / "deploy", root / "deploy")
    git(root, "init", "--quiet", "--initial-branch=main")
    git(root, "add", "-A")
    git(root, "commit", "--quiet", "--no-verify", "-m", "the deploy files")
    return Repo(root)


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return new_repo(tmp_path / "repo")


def last_commit(repo: Repo) -> tuple[str, str, list[str]]:
    """Author, message and changed files of HEAD."""
    author = git(repo.root, "log", "-1", "--format=%an <%ae>")
    message = git(repo.root, "log", "-1", "--format=%B")
    files = git(repo.root, "show", "--name-only", "--format=", "HEAD").splitlines()
    return author, message, files


def check_commit(repo: Repo, action: str, env: str, digest: str, version: str, previous: str) -> None:
    """HEAD is one promotion: this author, a clear message, only this environment's overlay, two lines changed."""
    author, message, files = last_commit(repo)
    assert author == AUTHOR
    assert message.splitlines()[0] == f"{action} {env}: {digest[:19]} (model {version})"
    for trailer in (
        f"Environment: {env}",
        f"Digest: {digest}",
        f"Model-Version: {version}",
        f"Previous-Digest: {previous}",
    ):
        assert trailer in message.splitlines(), message
    assert files == [f"deploy/overlays/{env}/kustomization.yaml"]
    assert git(repo.root, "show", "--numstat", "--format=", "HEAD").split()[:2] == ["2", "2"]
    assert repo.pinned(env) == (digest, version)
    assert not git(repo.root, "status", "--porcelain")


@needs_deploy
def test_promote_promote_promote_roll_back_and_history(repo: Repo) -> None:
    start = repo.commits()
    assert all(repo.pinned(env)[0] == NOTHING for env in ENVIRONMENTS)
    assert "nothing was promoted yet" in repo.ok("history", "--env", "prod").out

    out = repo.ok("promote", "--env", "dev", "--digest", A, "--model-version", "7").out
    assert out.startswith(f"promoted dev to {A} (model 7)")
    check_commit(repo, "promote", "dev", A, "7", NOTHING)
    repo.ok("promote", "--env", "staging", "--digest", A)  # the model version comes along from dev
    check_commit(repo, "promote", "staging", A, "7", NOTHING)
    repo.ok("promote", "--env", "prod", "--digest", A)
    check_commit(repo, "promote", "prod", A, "7", NOTHING)
    first_prod = git(repo.root, "rev-parse", "HEAD")

    for env in ENVIRONMENTS:
        repo.ok("promote", "--env", env, "--digest", B, *(["--model-version", "8"] if env == "dev" else []))
        check_commit(repo, "promote", env, B, "8", A)
    second_prod = git(repo.root, "rev-parse", "HEAD")
    assert repo.commits() == start + 6

    out = repo.ok("rollback", "--env", "prod").out
    assert out.startswith(f"rolled prod back to {A} (model 7)")
    check_commit(repo, "roll back", "prod", A, "7", B)
    assert repo.pinned("staging") == (B, "8")
    assert repo.pinned("dev") == (B, "8")
    assert repo.commits() == start + 7
    rollback = git(repo.root, "rev-parse", "HEAD")

    records = json.loads(repo.ok("history", "--env", "prod", "--json").out)
    assert [(r["digest"], r["model_version"], r["commit"]) for r in records] == [
        (A, "7", rollback),
        (B, "8", second_prod),
        (A, "7", first_prod),
    ]
    assert {r["author"] for r in records} == {AUTHOR}
    assert all(r["date"][:4].isdigit() for r in records)
    table = repo.ok("history", "--env", "prod").out.splitlines()
    assert table[0] == "prod: 3 deployment(s), newest first"
    assert table[2].startswith(A)
    assert table[2].endswith("(current)")
    assert rollback[:12] in table[2]
    assert table[3].startswith(B)
    assert AUTHOR in table[3]
    dev = json.loads(repo.ok("history", "--env", "dev", "--json").out)
    assert [r["digest"] for r in dev] == [B, A]


@needs_deploy
def test_promoting_what_already_runs_does_nothing(repo: Repo) -> None:
    repo.ok("promote", "--env", "dev", "--digest", A, "--model-version", "1")
    commits = repo.commits()
    result = repo.ok("promote", "--env", "dev", "--digest", A, "--model-version", "2")
    assert "dev already runs" in result.out
    assert "nothing to do" in result.out
    assert repo.commits() == commits
    assert repo.pinned("dev") == (A, "1")
    assert "nothing to do" in repo.ok("rollback", "--env", "dev", "--to", A).out
    assert repo.commits() == commits


@needs_deploy
@pytest.mark.parametrize(
    ("digest", "because"),
    [
        ("sha256:xyz", "malformed digest 'sha256:xyz'"),
        ("latest", "malformed digest 'latest'"),
        ("sha256:" + "A" * 64, "malformed digest"),  # digests are lowercase hex
        ("sha256:" + "a" * 63, "malformed digest"),
        ("sha512:" + "a" * 64, "malformed digest"),
        ("ghcr.io/x/y@" + A, "malformed digest"),
        (NOTHING, "all-zero digest"),
    ],
)
def test_a_malformed_digest_is_refused(repo: Repo, digest: str, because: str) -> None:
    repo.refused("promote", "--env", "dev", "--digest", digest, because=because)
    repo.refused("rollback", "--env", "dev", "--to", digest, because=because)


@needs_deploy
def test_skipping_an_environment_is_refused_unless_forced(repo: Repo) -> None:
    repo.refused("promote", "--env", "staging", "--digest", A, because="dev runs nothing yet")
    repo.refused("promote", "--env", "prod", "--digest", A, because="staging runs nothing yet")
    repo.ok("promote", "--env", "dev", "--digest", A)
    repo.ok("promote", "--env", "staging", "--digest", A)
    repo.ok("promote", "--env", "dev", "--digest", B)
    # staging runs A: prod may take A, not B (dev's newer digest) nor C (a digest no environment runs)
    repo.refused("promote", "--env", "prod", "--digest", B, because=f"staging runs {A}")
    repo.refused("promote", "--env", "staging", "--digest", C, because=f"dev runs {B}")

    commits = repo.commits()
    out = repo.ok("promote", "--env", "prod", "--digest", C, "--model-version", "hotfix-1", "--force").out
    assert out.startswith(f"promoted prod to {C} (model hotfix-1)")
    check_commit(repo, "promote", "prod", C, "hotfix-1", NOTHING)
    assert repo.commits() == commits + 1
    repo.ok("promote", "--env", "staging", "--digest", B)  # without --force: dev runs B
    assert repo.pinned("staging") == (B, "unknown")


@needs_deploy
def test_uncommitted_changes_to_the_overlay_are_refused(repo: Repo) -> None:
    edited = repo.overlay("dev").read_text() + "# a local edit\n"
    repo.overlay("dev").write_text(edited)
    path = "deploy/overlays/dev/kustomization.yaml"
    result = repo.refused("promote", "--env", "dev", "--digest", A, because=f"{path} has uncommitted changes")
    assert f"`git checkout -- {path}` discards them" in result.err  # how to discard; never "commit them"
    assert "commit them" not in result.err
    assert repo.overlay("dev").read_text() == edited  # the edit is still there
    repo.refused("rollback", "--env", "dev", because="uncommitted changes")
    git(repo.root, "add", "-A")  # staged but not committed is still uncommitted
    result = repo.refused("promote", "--env", "dev", "--digest", A, because="uncommitted changes")
    assert f"`git checkout HEAD -- {path}` discards them" in result.err  # staged: from HEAD, not from the index
    repo.ok("promote", "--env", "prod", "--digest", A, "--force")  # another environment's overlay is clean
    assert git(repo.root, "status", "--porcelain") == f"M  {path}"
    git(repo.root, "checkout", "HEAD", "--", path)
    repo.ok("promote", "--env", "dev", "--digest", A)


@needs_deploy
def test_a_hand_made_revert_is_refused_not_taken_for_an_interrupted_promotion(repo: Repo) -> None:
    """The overlay as it was before HEAD's promotion, with no interrupted run on record, is someone's edit."""
    repo.ok("promote", "--env", "dev", "--digest", A)
    path = "deploy/overlays/dev/kustomization.yaml"
    git(repo.root, "checkout", "HEAD^", "--", path)
    for command in (["history", "--env", "dev"], ["promote", "--env", "staging", "--digest", A]):
        repo.cli(*command)
        assert git(repo.root, "status", "--porcelain") == f"M  {path}"  # left alone
    repo.refused("promote", "--env", "dev", "--digest", B, because=f"`git checkout HEAD -- {path}` discards them")


@needs_deploy
def test_rollback_needs_an_earlier_deployment(repo: Repo) -> None:
    repo.refused("rollback", "--env", "prod", because="prod has no earlier deployment to roll back to")
    repo.ok("promote", "--env", "dev", "--digest", A)
    repo.refused("rollback", "--env", "dev", because="dev has no earlier deployment")


@needs_deploy
def test_rollback_to_a_named_digest_only_if_it_ran_there(repo: Repo) -> None:
    for digest, version in ((A, "1"), (B, "2"), (C, "3")):
        repo.ok("promote", "--env", "dev", "--digest", digest, "--model-version", version)
    repo.ok("promote", "--env", "staging", "--digest", C)
    repo.refused("rollback", "--env", "staging", "--to", A, because=f"{A} never ran in staging")
    repo.refused("rollback", "--env", "dev", "--to", f"sha256:{'d' * 64}", because="never ran in dev")
    repo.ok("rollback", "--env", "dev", "--to", A)
    check_commit(repo, "roll back", "dev", A, "1", C)
    repo.ok("rollback", "--env", "dev")  # the one before the current: C
    check_commit(repo, "roll back", "dev", C, "3", A)


@needs_deploy
def test_git_hooks_do_not_run(repo: Repo) -> None:
    """The commit is made with plumbing: a slow or failing hook neither delays nor refuses a promotion."""
    hooks = repo.root / ".git" / "hooks"
    for name in ("pre-commit", "prepare-commit-msg", "commit-msg", "post-commit"):
        (hooks / name).write_text(f"#!/bin/sh\ntouch '{repo.root.parent}/{name}-ran'\nsleep 30\nexit 1\n")
        (hooks / name).chmod(0o755)
    started = time.monotonic()
    repo.ok("promote", "--env", "dev", "--digest", A)
    assert time.monotonic() - started < 10
    check_commit(repo, "promote", "dev", A, "unknown", NOTHING)
    assert not list(repo.root.parent.glob("*-ran"))


@needs_deploy
def test_a_held_index_lock_is_refused_with_nothing_changed(repo: Repo) -> None:
    (repo.root / ".git" / "index.lock").write_text("")
    repo.refused("promote", "--env", "dev", "--digest", A, because="index.lock exists: another git command is running")
    (repo.root / ".git" / "index.lock").unlink()
    repo.ok("promote", "--env", "dev", "--digest", A)


@needs_deploy
def test_a_held_lock_makes_a_command_wait_then_give_up_naming_it(repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMOTE_LOCK_TIMEOUT", "0.3")
    lock = (repo.root / ".git").resolve() / "promote.flock"
    with lock.open("a") as held:
        fcntl.flock(held, fcntl.LOCK_SH)  # a history running
        assert "nothing was promoted yet" in repo.ok("history", "--env", "dev").out  # readers share the lock
        started = time.monotonic()
        result = repo.refused("promote", "--env", "dev", "--digest", A, because=f"holds the lock {lock}")
        assert time.monotonic() - started >= 0.3
        assert "gave up after 0.3 s (PROMOTE_LOCK_TIMEOUT sets the wait)" in result.err
        fcntl.flock(held, fcntl.LOCK_EX)  # a promotion running
        repo.refused("history", "--env", "dev", because=f"another promote, rollback or history holds the lock {lock}")
    repo.ok("promote", "--env", "dev", "--digest", A)
    monkeypatch.setenv("PROMOTE_LOCK_TIMEOUT", "soon")
    repo.refused("history", "--env", "dev", because="PROMOTE_LOCK_TIMEOUT='soon': expected a number of seconds")


@needs_deploy
def test_comments_survive_and_an_overlay_without_a_digest_is_refused(repo: Repo) -> None:
    text = repo.overlay("dev").read_text()
    repo.overlay("dev").write_text(text.replace(f"digest: {NOTHING}", f"digest: {NOTHING}  # the CLI keeps this"))
    git(repo.root, "commit", "--quiet", "-am", "a comment")
    repo.ok("promote", "--env", "dev", "--digest", A)
    assert f"    digest: {A}  # the CLI keeps this\n" in repo.overlay("dev").read_text()
    assert repo.overlay("dev").read_text().replace(A, NOTHING).replace('"unknown"', '"none"') == text.replace(
        f"digest: {NOTHING}", f"digest: {NOTHING}  # the CLI keeps this"
    )

    repo.overlay("staging").write_text(repo.overlay("staging").read_text().replace(f"digest: {NOTHING}", "newTag: v1"))
    git(repo.root, "commit", "--quiet", "-am", "a tag instead of a digest")
    repo.refused(
        "promote", "--env", "staging", "--digest", A, because="no `images:` entry for model-server with a digest"
    )


def test_outside_git_and_without_deploy_files(tmp_path: Path) -> None:
    empty = Repo(tmp_path)
    result = empty.cli("history", "--env", "dev")
    assert result.code == 2
    assert "deploy/ is absent" in result.err
    assert "include_deploy=no" in result.err
    (tmp_path / "deploy" / "overlays" / "dev").mkdir(parents=True)
    (tmp_path / "deploy" / "overlays" / "dev" / "kustomization.yaml").write_text(
        f"images:\n  - name: model-server\n    digest: {NOTHING}\n"
    )
    result = empty.cli("promote", "--env", "dev", "--digest", A)
    assert result.code == 2
    assert "not in a git repository" in result.err


@pytest.mark.parametrize(
    "args",
    [
        ["promote", "--env", "qa", "--digest", A],  # not an environment
        ["promote", "--env", "dev"],  # no digest
        ["rollback"],  # no environment
    ],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2


@needs_deploy
def test_make_targets_call_the_cli(repo: Repo) -> None:
    make = ["make", "--dry-run", "-f", PROJECT / "Makefile"]
    dry = run([*make, "promote", "ENV=dev", f"DIGEST={A}", "FORCE=1"], repo.root)
    assert f"promote --env 'dev' --digest '{A}'" in dry.stdout
    assert "--force" in dry.stdout
    dry = run([*make, "rollback", "ENV=prod", f"TO={B}"], repo.root)
    assert f"rollback --env 'prod' --to '{B}'" in dry.stdout
    assert (
        "history --env 'prod'"
        in run(["make", "-n", "-f", PROJECT / "Makefile", "history", "ENV=prod"], repo.root).stdout
    )
