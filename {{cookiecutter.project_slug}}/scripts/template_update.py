"""Keep the project up with its template (cruft, with what this template needs).

``check`` says whether the template moved since ``.cruft.json``'s commit; ``update`` applies the template's changes
since then (cruft update) to the working tree.

cruft renders the template twice (the recorded commit and the newest) with the recorded answers and applies the
difference. This template needs two things plain ``cruft`` does not give it: its ``_extensions`` (answer_guard.py)
importable from the template's folder, and that folder's path as ``_repo_dir`` for its pre-generation hook, as
``cookiecutter`` gives them. Run by ``make template-check`` / ``make template-update`` (which pin cruft).

Exit status: 0 up to date / updated cleanly; 1 behind the template (check) or conflicts to resolve (update); 2 refused
(a dirty working tree, no .cruft.json, no commit recorded).
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cruft._commands import check, update
from cruft._commands.utils import generate

updating = importlib.import_module("cruft._commands.update")  # the module (the package exports the function)

PROJECT = Path()
CRUFT_FILE = PROJECT / ".cruft.json"


def _with_template_dir(original: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """Wrap cruft's context generation: the template's folder on the import path and in the context."""

    def generate_context(url: str, commit: str, template_dir: Path, **kwargs: Any) -> dict[str, Any]:
        sys.path.insert(0, str(template_dir))
        sys.modules.pop("answer_guard", None)  # the extension of the commit being rendered, not the previous one
        try:
            context = original(url, commit, template_dir, **kwargs)
        finally:
            sys.path.remove(str(template_dir))
        context["cookiecutter"]["_repo_dir"] = str(template_dir)
        return context

    return generate_context


def _three_way_or_reject(diff: str, project: Path, allow_untracked_files: bool) -> None:
    """Apply the update with a three-way merge; if it conflicts, undo it and apply it hunk by hunk instead.

    So each conflict is a ``.rej`` file beside an untouched file rather than conflict markers (cruft keeps those).
    """
    merged = subprocess.run(["git", "apply", "-3"], input=diff.encode(), cwd=project, capture_output=True, check=False)
    if merged.returncode == 0:
        return
    subprocess.run(["git", "reset", "--quiet", "--hard", "HEAD"], cwd=project, check=True)
    subprocess.run(["git", "clean", "--quiet", "-fd"], cwd=project, check=True)  # the tree was clean: only the update's
    updating._apply_patch_with_rejections(diff, project)


# The template's hooks: a re-render for an update, without the data (the dataset file of the bake need not exist).
os.environ["TEMPLATE_UPDATE"] = "1"
generate.generate_cookiecutter_context = _with_template_dir(generate.generate_cookiecutter_context)  # type: ignore[assignment]
updating._apply_three_way_patch = _three_way_or_reject


def git(*args: str) -> str:
    """``git args`` in the project: its output."""
    return subprocess.run(["git", *args], cwd=PROJECT, capture_output=True, text=True, check=True).stdout


def state() -> dict[str, Any]:
    """``.cruft.json``, or exit 2 naming what is missing."""
    if not CRUFT_FILE.is_file():
        print(
            "error: no .cruft.json: this project does not record its template (bake it again, or `cruft link URL`)",
            file=sys.stderr,
        )
        raise SystemExit(2)
    recorded: dict[str, Any] = json.loads(CRUFT_FILE.read_text(encoding="utf-8"))
    if not recorded.get("commit"):
        print(
            f"error: .cruft.json records no commit of {recorded.get('template')}: the template was not a git "
            "checkout when the project was baked; `cruft link` it to a commit",
            file=sys.stderr,
        )
        raise SystemExit(2)
    return recorded


def run_check() -> int:
    """0 when the project is at the template's newest commit, 1 when it is behind."""
    recorded = state()
    print(f"template: {recorded['template']} (project at {recorded['commit'][:12]})")
    return 0 if check(project_dir=PROJECT) else 1


def conflicts() -> list[str]:
    """The update's rejected hunks (``*.rej``) and unmerged paths."""
    untracked = git("ls-files", "--others", "--exclude-standard").splitlines()
    unmerged = git("diff", "--name-only", "--diff-filter=U").splitlines()
    return sorted({*[p for p in untracked if p.endswith(".rej")], *unmerged})


def run_update() -> int:
    """Apply the template's changes to the working tree; 1 (and the files to resolve) when some did not apply."""
    recorded = state()
    if git("status", "--porcelain"):
        print(
            "error: the working tree has changes: commit or stash them first, so the template's update is the only "
            "change to review (git status lists them)",
            file=sys.stderr,
        )
        return 2
    if not update(project_dir=PROJECT, skip_apply_ask=True, allow_untracked_files=False):
        return 2
    newest = json.loads(CRUFT_FILE.read_text(encoding="utf-8"))
    newest["context"]["cookiecutter"].pop("_repo_dir", None)  # cruft's temporary clone: gone already
    CRUFT_FILE.write_text(json.dumps(newest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    rejected = conflicts()
    if rejected:
        print(
            f"error: the template's update ({recorded['commit'][:12]} -> {newest['commit'][:12]}) conflicts with "
            "this project's changes in the lines of these files; the rest is applied:",
            file=sys.stderr,
        )
        for path in rejected:
            print(f"  {path}", file=sys.stderr)
        print(
            "Resolve each .rej file's hunks by hand and delete it, then commit; or drop the whole update with "
            "`git checkout -- . && git clean -fd`.",
            file=sys.stderr,
        )
        return 1
    if newest["commit"] != recorded["commit"]:
        print(f"updated to the template's {newest['commit'][:12]}: review `git diff`, run the tests, commit")
    return 0


def main(argv: list[str]) -> int:
    """``check`` or ``update``."""
    commands = {"check": run_check, "update": run_update}
    if len(argv) != 1 or argv[0] not in commands:
        print(f"usage: {Path(__file__).name} check|update", file=sys.stderr)
        return 2
    return commands[argv[0]]()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
