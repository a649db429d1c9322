"""Bake the template with given answers: the one function the tests, the benchmark and the root pipeline share.

Usage: ``python -m tools.bake OUTPUT_DIR [key=value ...]`` (answers default to ``cookiecutter.json``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from cookiecutter.main import cookiecutter

TEMPLATE = Path(__file__).resolve().parents[1]


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
