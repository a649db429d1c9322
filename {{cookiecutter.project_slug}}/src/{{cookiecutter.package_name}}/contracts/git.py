"""Running git: one way for every tier (the pipeline's lineage, the release's promotions). Standard library only.

``git`` raises :class:`GitError` with git's own words; ``git_or_none`` is for questions whose answer may not exist
(no repository, no commit yet, a path absent at a commit). Optional locks are off, so reading (``git status``
refreshing the index) never takes the user's ``index.lock``.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from {{ cookiecutter.package_name }}.contracts.errors import ProjectError


class GitError(ProjectError):
    """A git operation that failed, or a repository state that forbids one: the message names it."""


def git(*args: str, cwd: Path | None = None, stdin: str | None = None) -> str:
    """Run git and return its output; a failure is a :class:`GitError` with git's own words."""
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}
    try:
        result = subprocess.run(
            ["git", *args],
            cwd=cwd,
            input=stdin,
            env=env,
            capture_output=True,
            check=False,
            encoding="utf-8",
            errors="surrogateescape",
        )
    except FileNotFoundError:
        raise GitError("git is not installed") from None
    if result.returncode != 0:
        said = " ".join((result.stderr.strip() or result.stdout.strip()).split())
        raise GitError(f"git {args[0]} failed: {said}")
    return result.stdout


def git_or_none(*args: str, cwd: Path | None = None) -> str | None:
    """The output of git without surrounding whitespace, or None when git fails or is not installed."""
    try:
        return git(*args, cwd=cwd).strip()
    except GitError:
        return None
