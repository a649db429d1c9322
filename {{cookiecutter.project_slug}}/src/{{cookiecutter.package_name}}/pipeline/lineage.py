"""Where an artifact came from: the git commit, the DVC hashes of the data, and the baseline ref's committed files."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml

from {{ cookiecutter.package_name }}.contracts.git import git_or_none
from {{ cookiecutter.package_name }}.contracts.io import md5


def git_commit() -> str | None:
    """The checked-out commit, or None outside a repository or before the first commit."""
    return git_or_none("rev-parse", "HEAD")


def git_dirty(outputs: Iterable[Path] = ()) -> bool:
    """Whether tracked files differ from the checked-out commit, ``dvc.lock`` and the pipeline's ``outputs`` aside.

    A pipeline run rewrites those itself, so only a change to the code, settings or data pointers counts.
    """
    excluded = [f":(exclude){path.as_posix()}" for path in (Path("dvc.lock"), *outputs)]
    return bool(git_or_none("status", "--porcelain", "--untracked-files=no", "--", ".", *excluded))


def resolve_ref(ref: str) -> str | None:
    """The commit a ref names, trying ``origin/<ref>`` too (CI checkouts often lack local branches)."""
    for candidate in (ref, f"origin/{ref}"):
        sha = git_or_none("rev-parse", "--verify", "--quiet", candidate + "^{commit}")
        if sha:
            return sha
    return None


def show_at(commit: str, path: Path) -> str | None:
    """The text of ``path`` as committed in ``commit``, or None where it did not exist."""
    return git_or_none("show", f"{commit}:{path.as_posix()}")


def _parsed_at(commit: str | None, path: Path, parse: Callable[[str], Any]) -> Any:
    text = show_at(commit, path) if commit else None
    try:
        return parse(text) if text else None
    except (ValueError, yaml.YAMLError):  # JSONDecodeError is a ValueError
        return None


def json_at(commit: str | None, path: Path) -> Any:
    """A JSON file as committed in ``commit`` (None if absent or unreadable)."""
    return _parsed_at(commit, path, json.loads)


def yaml_at(commit: str | None, path: Path) -> Any:
    """A YAML file as committed in ``commit`` (None if absent or unreadable)."""
    return _parsed_at(commit, path, yaml.safe_load)


def dvc_out(dvc_file: dict[str, Any] | None) -> dict[str, Any] | None:
    """The first output entry (md5, size, path) of a parsed ``.dvc`` file."""
    outs = (dvc_file or {}).get("outs") or []
    return outs[0] if outs else None


def data_lineage(raw: Path, files: dict[str, Path]) -> dict[str, str]:
    """DVC hashes of the raw data (from its ``.dvc`` file) and MD5s of derived files, keyed for MLflow tags."""
    tags: dict[str, str] = {}
    dvc_file = raw.with_name(raw.name + ".dvc")
    if dvc_file.exists():
        out = dvc_out(yaml.safe_load(dvc_file.read_text()))
        if out:
            tags["data.raw.dvc_md5"] = str(out.get("md5"))
    tags["data.raw.path"] = raw.as_posix()
    tags["data.raw.md5"] = md5(raw)
    for key, path in files.items():
        if path.exists():
            tags[f"{key}.md5"] = md5(path)
    return tags
