"""The project's one command line: ``{{ cookiecutter.package_name }} <command>``.

DVC stages, tests, the Makefile and the GitHub workflows all call these commands, so what runs in CI can be run
locally, word for word. Each command is declared beside its handler, in the module of its tier (``cli.pipeline``,
``cli.serving``, ``cli.release``, ``cli.monitoring``; see ``cli.registry``). Heavy libraries are imported inside each
handler to keep every call fast, and ``serve`` imports only the serving runtime (numpy, onnxruntime, orjson,
httptools, uvloop): the model image has nothing else.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence

# Imported for their commands, in the order --help lists them.
from {{ cookiecutter.package_name }}.cli import monitoring, pipeline, release, serving  # noqa: F401  (registration)
from {{ cookiecutter.package_name }}.cli.registry import COMMANDS
from {{ cookiecutter.package_name }}.contracts.errors import ERROR, AnswerIsNo, ProjectError

_ORDER = ("pipeline", "serving", "release", "monitoring")

EPILOG = """\
exit status, every command:
  0  done (the gate passed, the model is healthy, the command did what was asked)
  1  the answer is no: the gate failed (gate, register), retrain (monitor), roll back (probe), not ready (healthcheck),
     not trained (fork-notice: a fork's pull request)
  2  an error: bad input or settings, a missing file, an unreachable tracking server or DVC remote; the one line on
     stderr names it

--json (register, monitor, retrain-data, history, probe) prints the result as JSON for scripts."""


def parser() -> argparse.ArgumentParser:
    """The argument parser, one sub-command per lifecycle step."""
    root = argparse.ArgumentParser(
        prog="{{ cookiecutter.package_name }}",
        description=(__doc__ or "").splitlines()[0],
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = root.add_subparsers(dest="command", required=True)
    for name in sorted(COMMANDS, key=lambda n: _ORDER.index(COMMANDS[n].handler.__module__.rsplit(".", 1)[1])):
        COMMANDS[name].add_to(sub)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command and return its exit status: 0 done, 1 the answer is no, 2 an error (see ``EPILOG``).

    Errors are caught here once: a :class:`ProjectError` (and a missing or unreadable file) prints one line naming
    the problem on stderr; anything else is a bug, reported with its traceback, and exits 2 as well, so that a crash
    never reads as "the answer is no".
    """
    args = parser().parse_args(argv)
    try:
        status: int = args.handler(args)
    except AnswerIsNo as exc:
        print(exc, file=sys.stderr)
        return exc.exit_code
    except ProjectError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # a missing file, a permission denied, a refused connection: the message names it
        print(f"error: {exc}", file=sys.stderr)
        return ERROR
    except Exception as exc:  # a bug: its traceback, then one line that cannot pass for a verdict
        traceback.print_exc()
        problem = f"{type(exc).__name__}: {exc}"
        print(f"error: the {args.command} failed unexpectedly: {problem} (traceback above)", file=sys.stderr)
        return ERROR
    return status
