"""Bake the template with given answers: the one function the tests, the benchmark and the root pipeline share.

Usage: ``python -m tools.bake OUTPUT_DIR [key=value ...]`` (answers default to ``cookiecutter.json``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from cookiecutter.main import cookiecutter

TEMPLATE = Path(__file__).resolve().parents[1]
# Every answer's default and the allowed values of each choice answer (a list, the first one the default): the one
# place they are written. The pre-generation hook reads the same file (hooks/pre_gen_project.py: CHOICES).
CONTEXT_FILE = TEMPLATE / "cookiecutter.json"


def template_context() -> dict[str, Any]:
    """``cookiecutter.json`` as cookiecutter reads it."""
    context: dict[str, Any] = json.loads(CONTEXT_FILE.read_text(encoding="utf-8"))
    return context


def choices() -> dict[str, tuple[str, ...]]:
    """The allowed values of each choice answer (``task``, ``model_family``, ...), the default first."""
    return {
        key: tuple(str(v) for v in values)
        for key, values in template_context().items()
        if isinstance(values, list) and not key.startswith("_")
    }


def bake(output_dir: Path, answers: dict[str, Any] | None = None, *, overwrite: bool = False) -> Path:
    """Render the template into ``output_dir`` without prompting; return the generated project's path."""
    output_dir.mkdir(parents=True, exist_ok=True)
    answers = dict(answers or {})
    if answers.get("dataset", "embedded") != "embedded":
        answers["dataset"] = str(Path(answers["dataset"]).expanduser().resolve())
    project = cookiecutter(
        str(TEMPLATE),
        no_input=True,
        extra_context=answers,
        output_dir=str(output_dir),
        overwrite_if_exists=overwrite,
        accept_hooks=True,
    )
    return Path(project)


def parse_answers(pairs: list[str]) -> dict[str, str]:
    """``["task=regression", ...]`` -> ``{"task": "regression", ...}``."""
    answers = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"error: answer {pair!r} is not key=value")
        answers[key] = value
    return answers


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    print(bake(Path(sys.argv[1]), parse_answers(sys.argv[2:]), overwrite=True))
