"""Git plumbing for promotions: a lock, an all-or-nothing commit of one file, and recovery after an interruption.

``git commit`` stages the working file, runs the repository's hooks and holds ``index.lock`` while they run: two
promotions at once commit each other's content, and a process killed on the way leaves the new content uncommitted
and the lock behind. Here a change of one file is built from objects alone (``hash-object``, ``mktree``,
``commit-tree``: no index, no working tree, no hook) and lands with one compare-and-swap of ``HEAD``
(``update-ref HEAD <new> <old>``), so the ref moves or it does not. Only after it moved are the working file and its
index entry brought in line with the commit.

* :func:`session` takes the lock, ``promote.flock`` in the git dir: exclusive for a change, shared to read. A second
  process waits for it (``PROMOTE_LOCK_TIMEOUT`` seconds, 60 by default) and then gives up, naming the lock.
* The critical section (ref update, then the working file and index entry) defers SIGINT, SIGTERM and SIGHUP until it
  ends; they then stop the command with :class:`Interrupted`, whose message says whether the commit landed. Before
  it, a signal stops the command with nothing written but unreachable objects.
* The section starts by writing ``promote-pending`` (old commit, new commit, file) in the git dir and ends by removing
  it. If a SIGKILL or a crash stops a run in between, the next session finishes bringing the file in line with the
  commit, provided nobody changed it since; a file edited by hand is left to its owner.

Test seam: with ``PROMOTE_TEST_FAULT=<checkpoint>:<SIGNAL>`` (e.g. ``ref-updated:SIGKILL``) the process sends itself
SIGNAL when it reaches that checkpoint; :data:`CHECKPOINTS` lists them in order. For tests only.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

from {{ cookiecutter.package_name }}.contracts.errors import ProjectError
from {{ cookiecutter.package_name }}.contracts.git import GitError as GitError  # re-exported: the cli catches it
from {{ cookiecutter.package_name }}.contracts.git import git
from {{ cookiecutter.package_name }}.contracts.io import write_text

LOCK_FILE = "promote.flock"
"""In the git dir; kept between runs (deleting a lock file someone may hold would break the lock)."""
PENDING_FILE = "promote-pending"
LOCK_TIMEOUT_VARIABLE = "PROMOTE_LOCK_TIMEOUT"
LOCK_TIMEOUT = 60.0
FAULT_VARIABLE = "PROMOTE_TEST_FAULT"
CHECKPOINTS = ("locked", "objects-written", "marked", "ref-updated", "worktree-written", "synced", "done")
"""Where the test seam can signal: lock taken; commit built; marker written (critical section from here); HEAD
moved; working file written; index entry updated; critical section over."""
DEFERRED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
IN_PROGRESS = ("MERGE_HEAD", "CHERRY_PICK_HEAD", "REVERT_HEAD", "rebase-merge", "rebase-apply")
TEMP_PREFIX = ".promote-"


class Interrupted(ProjectError):  # noqa: N818
    """A signal stopped a command; the message says what it changed; the exit code is 128 + the signal's number."""

    def __init__(self, signum: int, what: str, state: str) -> None:
        self.signum = signum
        super().__init__(f"interrupted by {signal.Signals(signum).name}: {what}: {state}", exit_code=128 + signum)


def checkpoint(name: str) -> None:
    """The test seam: send this process the signal ``PROMOTE_TEST_FAULT`` names for checkpoint ``name``."""
    fault = os.environ.get(FAULT_VARIABLE)
    if not fault:
        return
    where, _, signame = fault.partition(":")
    if where not in CHECKPOINTS or signame not in signal.Signals.__members__:
        raise GitError(f"{FAULT_VARIABLE}={fault!r}: expected <checkpoint>:<SIGNAL>, checkpoint one of {CHECKPOINTS}")
    if where == name:
        os.kill(os.getpid(), signal.Signals[signame])


def lock_timeout() -> float:
    """Seconds to wait for the lock: ``PROMOTE_LOCK_TIMEOUT``, or 60."""
    value = os.environ.get(LOCK_TIMEOUT_VARIABLE, "")
    try:
        timeout = float(value) if value else LOCK_TIMEOUT
    except ValueError:
        timeout = -1.0
    if not timeout >= 0:
        raise GitError(f"{LOCK_TIMEOUT_VARIABLE}={value!r}: expected a number of seconds")
    return timeout


@contextlib.contextmanager
def _flock(path: Path, *, exclusive: bool, timeout: float) -> Iterator[None]:
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise GitError(f"cannot open the promotion lock {path}: {exc.strerror}") from None
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise GitError(
                        f"another promote, rollback or history holds the lock {path}: gave up after {timeout:g} s "
                        f"({LOCK_TIMEOUT_VARIABLE} sets the wait)"
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # releases the lock; a killed process's lock is released by the kernel


class Session:
    """One command under the lock: its repository, and what a signal would interrupt."""

    def __init__(self, top: Path, git_dir: Path, what: str) -> None:
        self.top = top
        self.git_dir = git_dir
        self.what = what
        self.state = "nothing changed"
        self._deferring = False
        self._pending: int | None = None

    def run(self, *args: str, stdin: str | None = None) -> str:
        """git, run at the top of the work tree (paths are relative to it)."""
        return git(*args, cwd=self.top, stdin=stdin)

    def rel(self, path: Path) -> str:
        """``path`` relative to the top of the work tree, as git names it."""
        full = path.parent.resolve() / path.name
        try:
            return full.relative_to(self.top).as_posix()
        except ValueError:
            raise GitError(f"{path} is outside the git work tree {self.top}") from None

    def head(self) -> str:
        """The commit HEAD names."""
        return self.run("rev-parse", "--verify", "HEAD^{commit}").strip()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._deferring:
            self._pending = self._pending or signum
            return
        raise Interrupted(signum, self.what, self.state)

    @contextlib.contextmanager
    def _critical(self) -> Iterator[None]:
        """Defer SIGINT, SIGTERM and SIGHUP (in git's child processes too: they inherit the mask) until the end."""
        self._deferring = True
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, DEFERRED)
        try:
            yield
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)  # a pending signal reaches _on_signal, deferred
            self._deferring = False
            if self._pending is not None:
                signum, self._pending = self._pending, None
                raise Interrupted(signum, self.what, self.state)

    # ----------------------------------------------------------------------------------------------------------------
    # The commit
    # ----------------------------------------------------------------------------------------------------------------

    def commit_file(self, rel: str, text: str, subject: str, body: str, parent: str) -> str:
        """Commit ``text`` as file ``rel`` on top of ``parent``, which HEAD must still name; returns the commit.

        Either HEAD moves or nothing changes but unreachable objects. Once it moved, the working file and its index
        entry are brought in line with the commit.
        """
        for name in IN_PROGRESS:
            if (self.git_dir / name).exists():
                raise GitError(f"a merge, cherry-pick, revert or rebase is in progress ({name}): finish it first")
        if (self.git_dir / "index.lock").exists():
            raise GitError(
                f"{self.git_dir / 'index.lock'} exists: another git command is running here (if none is, a crashed "
                "one left it: remove it)"
            )
        listed = self.run("ls-tree", "-z", "--full-tree", parent, "--", rel).rstrip("\0")
        if listed.split("\t", 1)[-1] != rel or listed.split(" ")[1:2] != ["blob"]:
            raise GitError(f"{rel} is not a file in commit {parent[:12]}")
        mode = listed.split(" ", 1)[0]
        blob = self.run("hash-object", "-w", f"--path={rel}", "--stdin", stdin=text).strip()
        tree = self._tree_with(parent + "^{tree}", rel.split("/"), f"{mode} blob {blob}")
        commit = self.run("commit-tree", tree, "-p", parent, "-m", subject, "-m", body).strip()
        checkpoint("objects-written")
        pending = self.git_dir / PENDING_FILE
        with self._critical():
            write_text(pending, f"{parent} {commit} {rel}\n", keep_mode=True, temp_prefix=TEMP_PREFIX)
            checkpoint("marked")
            try:
                self.run("update-ref", "-m", f"commit: {subject}", "HEAD", commit, parent)
            except GitError as exc:
                pending.unlink(missing_ok=True)
                if self.head() != parent:
                    raise GitError("HEAD moved while the commit was made, nothing changed: run again") from None
                raise GitError(f"the commit did not land, nothing changed: {exc}") from None
            self.state = (
                f"commit {commit[:12]} landed; the next promote, rollback or history brings {rel} in line with it"
            )
            checkpoint("ref-updated")
            self._sync(rel, text, commit)
            checkpoint("synced")
            pending.unlink()
            self.state = f"commit {commit[:12]} landed and {rel} matches it"
        checkpoint("done")
        return commit

    def _tree_with(self, tree: str, parts: list[str], entry: str) -> str:
        """The id of ``tree`` with the entry at path ``parts`` replaced by ``entry`` (``<mode> blob <id>``)."""
        name, rest = parts[0], parts[1:]
        entries = self.run("ls-tree", "-z", "--full-tree", tree).split("\0")[:-1]
        for i, line in enumerate(entries):
            meta, _, entry_name = line.partition("\t")
            if entry_name == name:
                if rest:
                    mode, _, subtree = meta.split(" ")
                    entries[i] = f"{mode} tree {self._tree_with(subtree, rest, entry)}\t{name}"
                else:
                    entries[i] = f"{entry}\t{name}"
                break
        else:
            raise GitError(f"{name} is not in tree {tree}")
        return self.run("mktree", "-z", "--missing", stdin="\0".join(entries) + "\0").strip()

    def _sync(self, rel: str, text: str, commit: str) -> None:
        """Write the working file, then its index entry (this one step takes the user's ``index.lock``)."""
        write_text(self.top / rel, text, keep_mode=True, temp_prefix=TEMP_PREFIX)
        checkpoint("worktree-written")
        for attempt in range(10):  # another git command may hold index.lock for a moment
            try:
                self.run("update-index", "--", rel)
                return
            except GitError as exc:
                if attempt == 9:
                    raise GitError(
                        f"commit {commit[:12]} landed, but the index entry of {rel} was not updated ({exc}); the "
                        "next promote, rollback or history updates it"
                    ) from None
                time.sleep(0.1)

    # ----------------------------------------------------------------------------------------------------------------
    # Recovery
    # ----------------------------------------------------------------------------------------------------------------

    def _blob(self, spec: str) -> str | None:
        with contextlib.suppress(GitError):
            return self.run("rev-parse", "--verify", "--quiet", spec).strip()
        return None

    def finish_interrupted(self) -> str | None:
        """Finish the change a killed run left; returns what was done, if anything.

        If its commit landed and the file is still either its old or its new content (in the work tree and in the
        index), both are brought in line with the commit; a file changed since is left to its owner.
        """
        for stray in self.git_dir.glob(f"{TEMP_PREFIX}*"):  # a marker write a SIGKILL cut short
            stray.unlink(missing_ok=True)
        pending = self.git_dir / PENDING_FILE
        try:
            old, new, rel = pending.read_text(encoding="utf-8").rstrip("\n").split(" ", 2)
        except FileNotFoundError:
            return None
        except ValueError:
            pending.unlink()
            return None
        note = None
        if self.head() == new and self._blob(f"{new}^") == old:
            committed = self._blob(f"{new}:{rel}")
            worktree = None
            with contextlib.suppress(GitError):
                worktree = self.run("hash-object", "--", rel).strip()
            staged = self.run("ls-files", "--stage", "--", rel).split()
            index = staged[1] if len(staged) == 4 else None
            unchanged_since = {worktree, index} <= {self._blob(f"{old}:{rel}"), committed}
            if unchanged_since and {worktree, index} != {committed}:
                self.state = f"{rel} was brought in line with commit {new[:12]} (left behind by an interrupted run)"
                with self._critical():
                    self._sync(rel, self.run("cat-file", "--filters", f"{new}:{rel}"), new)
                    pending.unlink()
                note = f"finished an interrupted promotion or rollback: {rel} now matches commit {new[:12]}"
        pending.unlink(missing_ok=True)
        for stray in (self.top / rel).parent.glob(f"{TEMP_PREFIX}*"):  # a working-file write cut short
            stray.unlink(missing_ok=True)
        return note


@contextlib.contextmanager
def _handled(current: Session) -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP raise :class:`Interrupted` (signal handlers belong to the main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in DEFERRED}
    for signum in DEFERRED:
        signal.signal(signum, current._on_signal)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)


@contextlib.contextmanager
def session(what: str, *, change: bool) -> Iterator[Session]:
    """Run ``what`` under the lock: exclusive to ``change`` the repository, shared to read it.

    An exclusive session first finishes what an interrupted run left; so does a reading one when there is something
    to finish.
    """
    try:
        top, git_dir = git("rev-parse", "--show-toplevel", "--absolute-git-dir").splitlines()
        git("rev-parse", "--verify", "--quiet", "HEAD^{commit}")
    except (GitError, ValueError):
        raise GitError("not in a git repository with a commit: git is the record of what runs where") from None
    current = Session(Path(top), Path(git_dir), what)
    exclusive = change or (current.git_dir / PENDING_FILE).exists()
    with _handled(current), _flock(current.git_dir / LOCK_FILE, exclusive=exclusive, timeout=lock_timeout()):
        checkpoint("locked")
        if exclusive and (note := current.finish_interrupted()):
            print(f"note: {note}", file=sys.stderr)
        yield current
