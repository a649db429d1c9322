"""Check the answers before cookiecutter creates the project folder (a Jinja extension of this template).

cookiecutter creates the project folder from ``project_slug`` before the pre-generation hook runs: a slug too long
for the file system fails there with a raw OSError, an empty one names the output folder itself, and one holding '/'
creates parent folders that cookiecutter does not remove when the hook refuses. So ``cookiecutter.json`` ends with
``"__answers_checked"``, which calls ``check_answers(cookiecutter)``: cookiecutter renders it right after the other
answers (prompted, ``--no-input`` or ``extra_context``), and this function runs the pre-generation hook on them then,
with the hook's own messages. The hook runs again before generation, which also covers a replay file's answers (not
rendered, so not checked here; a replay file may even lack ``_extensions``, hence the ``is defined`` guard).

cookiecutter imports this module from the template's folder (``_extensions`` in ``cookiecutter.json``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cookiecutter.hooks import run_script_with_context
from jinja2 import Environment
from jinja2.ext import Extension

TEMPLATE = Path(__file__).resolve().parent
HOOK = TEMPLATE / "hooks" / "pre_gen_project.py"
# The answers the hook checks: every public key of cookiecutter.json.
ANSWER_KEYS = {k for k in json.loads((TEMPLATE / "cookiecutter.json").read_text(encoding="utf-8")) if k[0] != "_"}


def check_answers(answers: Mapping[str, Any]) -> str:
    """Run the pre-generation hook on ``answers`` (raises FailedHookException when it refuses them); return "".

    With a replay file cookiecutter renders only the keys the file lacks: then the answers are not all here, and the
    pre-generation hook checks the replayed ones.
    """
    if not answers.keys() >= ANSWER_KEYS:
        return ""
    context = {"cookiecutter": {**answers, "_repo_dir": str(TEMPLATE)}}
    run_script_with_context(str(HOOK), os.getcwd(), context)
    return ""


class AnswerGuard(Extension):
    """Adds the ``check_answers`` function to the templates' globals."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.globals["check_answers"] = check_answers
