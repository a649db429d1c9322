"""The one error base of the package and the exit codes of its command line.

Every command exits with one of three codes, whatever it does:

* ``0``: done (the gate passed, the model is healthy, the promotion is committed);
* ``1``: the answer is no (the gate failed, the monitor says retrain, the probe says roll back, the server is not
  ready): a result a script acts on, not a fault;
* ``2``: an error (bad input or settings, a missing file, an unreachable tracking server, a git state that forbids
  the change): nothing was decided.

A module raises a subclass of :class:`ProjectError` with a message that names the problem; ``main`` catches it once,
prints ``error: <message>`` on one line of stderr and exits with its ``exit_code``. Standard library only: the
serving image has it too.
"""

from __future__ import annotations

DONE = 0
"""The command did what was asked; a question's answer is yes."""
NO = 1
"""The answer is no: the gate failed, retrain, roll back, not ready."""
ERROR = 2
"""Anything else went wrong: bad input, a missing file, an unreachable server. (argparse uses 2 for usage errors.)"""


class ProjectError(Exception):
    """An error the command line reports in one line (``error: <message>``) and exits ``exit_code`` for."""

    exit_code = ERROR

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class AnswerIsNo(ProjectError):  # noqa: N818 (an outcome, not a fault)
    """The question a command asks was answered no (e.g. ``register`` of a model whose gate failed): exit 1."""

    exit_code = NO
