"""The command registry: each command is declared once, beside its handler, with its arguments.

A command module decorates its handler with :func:`command`, listing the arguments with :func:`arg`; the handler's
docstring's first line is the command's help. Handlers import what they need inside their body, so building the parser
(``--help``, and the serving commands in the image) imports no heavy library. A handler returns an exit code (``DONE``
or ``NO``) or raises a :class:`ProjectError` (or one of the errors ``main`` knows), never prints a traceback.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from {{ cookiecutter.package_name }}.pipeline.config import Params
    from {{ cookiecutter.package_name }}.pipeline.schema import Schema

PROJECT = {{ cookiecutter.project_name | tojson }}

Handler = Callable[[argparse.Namespace], int]


@dataclass(frozen=True)
class Argument:
    """One ``add_argument`` call: its flags and keyword arguments."""

    flags: tuple[str, ...]
    options: dict[str, Any]


@dataclass(frozen=True)
class Command:
    """A sub-command: its name, its one-line help, its arguments and the function that runs it."""

    name: str
    help: str
    arguments: tuple[Argument, ...]
    handler: Handler

    def add_to(self, sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
        """Declare this command on the root parser's sub-parsers."""
        parser = sub.add_parser(self.name, help=self.help)
        parser.set_defaults(handler=self.handler)
        for argument in self.arguments:
            parser.add_argument(*argument.flags, **argument.options)


COMMANDS: dict[str, Command] = {}
"""Every command, in the order ``--help`` lists them (the order the command modules register them)."""


def arg(*flags: str, **options: Any) -> Argument:
    """An argument of a command, as ``argparse.ArgumentParser.add_argument`` takes it."""
    return Argument(flags, options)


def command(name: str, *arguments: Argument) -> Callable[[Handler], Handler]:
    """Register the decorated function as the handler of the command ``name`` (help: its docstring's first line)."""

    def register(handler: Handler) -> Handler:
        if name in COMMANDS:
            raise ValueError(f"the command {name!r} is registered twice")
        summary = (handler.__doc__ or "").strip().splitlines()[0]
        COMMANDS[name] = Command(name, summary, arguments, handler)
        return handler

    return register


JSON = arg("--json", action="store_true", help="print the result as JSON (for scripts) instead of prose")


def print_json(data: object) -> None:
    """Print a command's ``--json`` result: one JSON document on stdout."""
    print(json.dumps(data, indent=2))


def settings() -> tuple[Params, Schema]:
    """``params.yaml`` and the data contract it points at, both validated."""
    from {{ cookiecutter.package_name }}.pipeline.config import PARAMS_FILE, load_params
    from {{ cookiecutter.package_name }}.pipeline.schema import load_schema

    params = load_params(PARAMS_FILE)
    return params, load_schema(params.paths.schema_)
