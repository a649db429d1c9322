"""Promotion under concurrency, signals and kills: the CLI as real processes on a real git repository.

Fault injection uses the test seam of ``gitops``: ``PROMOTE_TEST_FAULT=<checkpoint>:<SIGNAL>`` makes the process send
itself SIGNAL when it reaches that checkpoint (``gitops.CHECKPOINTS`` lists them in order). After each fault the
repository must be settled: HEAD unchanged with a clean overlay, or moved to a commit with the right content and a
clean overlay once the next command ran; no lock file, no leftover, ``git fsck`` clean.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml
from conftest import PACKAGE, git, run, tool_env
from test_promote import A, B, C, Repo, needs_deploy, new_repo

from {{ cookiecutter.package_name }}.release.gitops import CHECKPOINTS
from {{ cookiecutter.package_name }}.release.promote import ENVIRONMENTS, NOTHING

pytestmark = needs_deploy

DEV = "deploy/overlays/dev/kustomization.yaml"


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return new_repo(tmp_path / "repo")


def digest(i: int) -> str:
    return f"sha256:{i + 1:064x}"


def start(repo: Repo, *args: str, fault: str = "", session: bool = False) -> subprocess.Popen[str]:
    """Start the CLI in ``repo`` as its own process (in a new session, its own process group, with ``session``)."""
    return subprocess.Popen(
        [sys.executable, "-m", PACKAGE, *args],
        cwd=repo.root,
        env=tool_env(**({"PROMOTE_TEST_FAULT": fault} if fault else {})),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=session,
    )


def finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=120)
    return process.returncode, out, err


def wait_for_the_lock(process: subprocess.Popen[str], lock: Path, timeout: float = 60.0) -> None:
    """Return once ``process`` holds ``lock`` open: it waits for it, its signal handlers installed (a slow start on a
    busy machine takes seconds, which a fixed sleep would race)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the process ended with {process.returncode} instead of waiting for {lock}"
        try:
            if any(Path(f.path) == lock for f in psutil.Process(process.pid).open_files()):
                return
        except psutil.Error:
            pass
        time.sleep(0.05)
    raise AssertionError(f"the process did not open {lock} within {timeout} s")


def pinned_at(repo: Repo, commit: str, env: str = "dev") -> str:
    text = git(repo.root, "show", f"{commit}:deploy/overlays/{env}/kustomization.yaml")
    (image,) = yaml.safe_load(text)["images"]
    digest: str = image["digest"]
    return digest


def history(repo: Repo, env: str = "dev") -> list[str]:
    return [d["digest"] for d in json.loads(repo.ok("history", "--env", env, "--json").out)]


def check_history(repo: Repo, env: str = "dev") -> None:
    """Every promotion and rollback commit of ``env`` says what its overlay holds at that commit and held before;
    it changes that overlay alone; a rollback returns to a digest that ran before; ``history`` agrees with git."""
    rel = f"deploy/overlays/{env}/kustomization.yaml"
    commits = git(repo.root, "log", "--reverse", "--format=%H", "--", rel).split()
    ran: list[str] = []
    for commit in commits:
        subject, _, body = git(repo.root, "log", "-1", "--format=%B", commit).partition("\n\n")
        now = pinned_at(repo, commit, env)
        if subject.startswith(("promote ", "roll back ")):
            trailers = dict(line.split(": ", 1) for line in body.splitlines())
            assert (trailers["Environment"], trailers["Digest"]) == (env, now), (subject, body)
            assert trailers["Previous-Digest"] == pinned_at(repo, f"{commit}^", env), (subject, body)
            action = "roll back" if subject.startswith("roll back ") else "promote"
            assert subject.startswith(f"{action} {env}: {now[:19]} (model "), subject
            assert git(repo.root, "show", "--name-only", "--format=", commit).split() == [rel]
            if subject.startswith("roll back "):
                assert now in ran[:-1], f"{subject}: rolled back to a digest that never ran"
        if not ran or ran[-1] != now:
            ran.append(now)
    assert history(repo, env) == [d for d in ran[::-1] if not d.endswith("0" * 64)]


def assert_settled(repo: Repo) -> None:
    """Git and the files agree: a clean work tree, every overlay as HEAD has it, no lock or leftover, fsck clean."""
    assert not git(repo.root, "status", "--porcelain")
    for env in ENVIRONMENTS:
        shown = run(["git", "show", f"HEAD:deploy/overlays/{env}/kustomization.yaml"], repo.root).stdout
        assert repo.overlay(env).read_text() == shown
    git_dir = repo.root / ".git"
    assert not list(git_dir.rglob("*.lock"))
    assert not (git_dir / "promote-pending").exists()
    assert not [p for p in (repo.root / "deploy").rglob("*") if p.name.startswith(".promote-")]
    fsck = run(["git", "fsck", "--no-dangling"], repo.root, check=False)
    assert fsck.returncode == 0, fsck
    assert not fsck.stdout.strip(), fsck.stdout


# --------------------------------------------------------------------------------------------------------------------
# Concurrency
# --------------------------------------------------------------------------------------------------------------------


def test_eight_concurrent_promotions_each_commit_their_own_digest(repo: Repo) -> None:
    commits = repo.commits()
    processes = [
        start(repo, "promote", "--env", "dev", "--digest", digest(i), "--model-version", str(i)) for i in range(8)
    ]
    results = [finish(p) for p in processes]
    check_history(repo)  # first: no commit names a digest other than the one it pins
    assert_settled(repo)
    assert all(code == 0 for code, _, _ in results), results
    assert repo.commits() == commits + 8
    for i, (_, out, _) in enumerate(results):  # the commit each one reports holds its digest and model version
        commit = out.split(" in commit ")[1].strip()
        assert pinned_at(repo, commit) == digest(i)
        assert f"(model {i})" in git(repo.root, "log", "-1", "--format=%s", commit)
    assert sorted(history(repo)) == sorted(digest(i) for i in range(8))


def test_concurrent_promotions_rollbacks_and_histories_stay_consistent(repo: Repo) -> None:
    repo.ok("promote", "--env", "dev", "--digest", A)
    repo.ok("promote", "--env", "dev", "--digest", B)
    processes = [
        *(start(repo, "promote", "--env", "dev", "--digest", digest(i)) for i in range(3)),
        *(start(repo, "rollback", "--env", "dev") for _ in range(3)),
        *(start(repo, "promote", "--env", "prod", "--digest", digest(10 + i), "--force") for i in range(2)),
        *(start(repo, "history", "--env", "dev", "--json") for _ in range(2)),
    ]
    results = [finish(p) for p in processes]
    check_history(repo, "dev")
    check_history(repo, "prod")
    assert_settled(repo)
    assert all(code == 0 for code, _, _ in results), results
    assert sum(out.startswith("rolled dev back to ") for _, out, _ in results) == 3
    for _, out, _ in results[-2:]:
        assert json.loads(out)  # a reader sees a whole history


def test_a_second_promotion_waits_for_the_lock(repo: Repo) -> None:
    lock = repo.root / ".git" / "promote.flock"
    with lock.open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        head = git(repo.root, "rev-parse", "HEAD")
        process = start(repo, "promote", "--env", "dev", "--digest", A)
        stopped = start(repo, "promote", "--env", "dev", "--digest", B)
        for waiting in (process, stopped):
            wait_for_the_lock(waiting, lock.resolve())
        time.sleep(0.5)
        assert process.poll() is None  # waiting, not racing
        assert stopped.poll() is None
        assert git(repo.root, "rev-parse", "HEAD") == head
        stopped.terminate()  # SIGTERM while waiting: nothing changed
        code, _, err = finish(stopped)
        assert code == 128 + signal.SIGTERM
        assert err == "error: interrupted by SIGTERM: promote dev: nothing changed\n"
    code, out, err = finish(process)
    assert code == 0, err
    assert out.startswith(f"promoted dev to {A}")
    assert_settled(repo)


def test_a_commit_made_meanwhile_by_someone_else_is_kept(repo: Repo) -> None:
    """HEAD moves between the promotion's read and its ref update: the compare-and-swap refuses, nothing changes."""
    process = start(repo, "promote", "--env", "dev", "--digest", A, fault="objects-written:SIGSTOP")
    _, status = os.waitpid(process.pid, os.WUNTRACED)
    assert os.WIFSTOPPED(status)
    git(repo.root, "commit", "--quiet", "--allow-empty", "-m", "someone else's commit")
    theirs = git(repo.root, "rev-parse", "HEAD")
    os.kill(process.pid, signal.SIGCONT)
    code, _, err = finish(process)
    assert code == 2
    assert "HEAD moved while the commit was made, nothing changed: run again" in err
    assert git(repo.root, "rev-parse", "HEAD") == theirs
    assert repo.pinned("dev")[0] == NOTHING
    assert_settled(repo)
    repo.ok("promote", "--env", "dev", "--digest", A)
    assert git(repo.root, "rev-parse", "HEAD^") == theirs


# --------------------------------------------------------------------------------------------------------------------
# Signals and kills at every step
# --------------------------------------------------------------------------------------------------------------------

CRITICAL_FROM = CHECKPOINTS.index("marked")  # SIGINT, SIGTERM and SIGHUP are deferred from here to the end of the sync
LANDED_FROM = CHECKPOINTS.index("ref-updated")
FAULTS = [
    *((checkpoint, signame) for checkpoint in CHECKPOINTS for signame in ("SIGKILL", "SIGTERM")),
    *((checkpoint, signame) for checkpoint in ("objects-written", "ref-updated") for signame in ("SIGINT", "SIGHUP")),
]


@pytest.mark.parametrize(("checkpoint", "signame"), FAULTS)
def test_a_promotion_stopped_at_any_step_lands_whole_or_not_at_all(repo: Repo, checkpoint: str, signame: str) -> None:
    repo.ok("promote", "--env", "dev", "--digest", A, "--model-version", "1")
    head = git(repo.root, "rev-parse", "HEAD")
    entries = set(os.listdir(repo.root / ".git"))
    process = start(
        repo, "promote", "--env", "dev", "--digest", B, "--model-version", "2", fault=f"{checkpoint}:{signame}"
    )
    code, out, err = finish(process)

    at = CHECKPOINTS.index(checkpoint)
    if signame == "SIGKILL":
        assert code == -signal.SIGKILL, (code, err)
        landed = at >= LANDED_FROM
    else:  # stopped with a message that says whether the commit landed; deferred in the critical section
        assert code == 128 + signal.Signals[signame], (code, err)
        landed = at >= CRITICAL_FROM
        said = f"commit {git(repo.root, 'rev-parse', 'HEAD')[:12]} landed and {DEV} matches it"
        assert f"error: interrupted by {signame}: promote dev: " in err
        assert out == ""
        assert (said if landed else "nothing changed") in err, err
        assert_settled(repo)  # nothing to finish: the sync ran before the signal was honoured
    if landed:
        assert git(repo.root, "rev-parse", "HEAD^") == head
        assert pinned_at(repo, "HEAD") == B
        assert git(repo.root, "log", "-1", "--format=%s") == f"promote dev: {B[:19]} (model 2)"
    else:
        assert git(repo.root, "rev-parse", "HEAD") == head
        assert repo.pinned("dev") == (A, "1")
        assert not git(repo.root, "status", "--porcelain")  # the working tree was never touched
    assert set(os.listdir(repo.root / ".git")) - entries <= {"promote-pending"}  # no temporary index or file

    finished = repo.ok("history", "--env", "dev")  # the next command finishes what a SIGKILL cut short
    late = signame == "SIGKILL" and checkpoint in ("ref-updated", "worktree-written")
    assert ("note: finished an interrupted promotion or rollback" in finished.err) == late, finished.err
    assert_settled(repo)
    check_history(repo)
    assert history(repo) == ([B, A] if landed else [A])
    repo.ok("promote", "--env", "dev", "--digest", C)
    assert_settled(repo)


def test_a_rollback_killed_after_its_commit_is_finished_by_the_next_promotion(repo: Repo) -> None:
    repo.ok("promote", "--env", "dev", "--digest", A)
    repo.ok("promote", "--env", "dev", "--digest", B)
    code, _, _ = finish(start(repo, "rollback", "--env", "dev", fault="ref-updated:SIGKILL"))
    assert code == -signal.SIGKILL
    assert pinned_at(repo, "HEAD") == A
    assert repo.pinned("dev")[0] == B  # the working file lags behind the commit
    result = repo.ok("promote", "--env", "dev", "--digest", C)
    assert f"finished an interrupted promotion or rollback: {DEV} now matches commit" in result.err
    assert history(repo) == [C, A, B, A]
    check_history(repo)
    assert_settled(repo)


def test_a_commit_whose_index_update_fails_is_finished_later(repo: Repo) -> None:
    """Another git command holds index.lock after HEAD moved: the command says so, the next one finishes."""
    process = start(repo, "promote", "--env", "dev", "--digest", A, fault="ref-updated:SIGSTOP")
    _, status = os.waitpid(process.pid, os.WUNTRACED)
    assert os.WIFSTOPPED(status)
    (repo.root / ".git" / "index.lock").write_text("")
    os.kill(process.pid, signal.SIGCONT)
    code, _, err = finish(process)
    assert code == 2
    assert f"landed, but the index entry of {DEV} was not updated" in err
    assert "the next promote, rollback or history updates it" in err
    assert pinned_at(repo, "HEAD") == A
    (repo.root / ".git" / "index.lock").unlink()
    assert "note: finished an interrupted" in repo.ok("history", "--env", "dev").err
    assert_settled(repo)


# --------------------------------------------------------------------------------------------------------------------
# Git hooks: a promotion runs none, so a slow hook is no window for a signal
# --------------------------------------------------------------------------------------------------------------------


def stop_once_a_hook_runs(repo: Repo, process: subprocess.Popen[str], signum: int) -> tuple[int, str, str]:
    """Let ``process`` finish; if a hook starts first, signal its process group (as a cancelled CI job would)."""
    deadline = time.monotonic() + 60
    while process.poll() is None and not list(repo.root.parent.glob("*-ran")) and time.monotonic() < deadline:
        time.sleep(0.05)
    if process.poll() is None:
        os.killpg(process.pid, signum)
    return finish(process)


def install_hook(repo: Repo, name: str) -> None:
    hook = repo.root / ".git" / "hooks" / name
    hook.write_text(f"#!/bin/sh\ntouch '{repo.root.parent}/{name}-ran'\nsleep 20\n")
    hook.chmod(0o755)


def test_ctrl_c_during_a_post_commit_hook_never_undoes_the_commit(repo: Repo) -> None:
    install_hook(repo, "post-commit")
    code, _, err = stop_once_a_hook_runs(
        repo, start(repo, "promote", "--env", "dev", "--digest", A, session=True), signal.SIGINT
    )
    assert pinned_at(repo, "HEAD") == repo.pinned("dev")[0]  # git and the working tree agree
    assert_settled(repo)
    assert code == 0, err
    assert not list(repo.root.parent.glob("*-ran"))


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
def test_a_kill_during_a_pre_commit_hook_leaves_no_lock_and_no_stray_digest(repo: Repo, signum: int) -> None:
    install_hook(repo, "pre-commit")
    code, _, err = stop_once_a_hook_runs(
        repo, start(repo, "promote", "--env", "dev", "--digest", A, session=True), signum
    )
    assert_settled(repo)
    assert code == 0, err
    assert pinned_at(repo, "HEAD") == A
    assert not list(repo.root.parent.glob("*-ran"))
