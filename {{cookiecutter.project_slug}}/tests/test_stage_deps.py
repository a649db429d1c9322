"""Stage dependencies that cannot drift: every module a stage runs is one of its ``deps`` in ``dvc.yaml``.

DVC reruns a stage when one of its dependencies changes, and only then. A module the stage imports but does not list
would change without a rerun: ``dvc status`` would call stale outputs up to date. Here each stage's import closure is
computed from the source (``ast``): its entry module, every module of the package it imports (at the top or inside a
function, not under ``if TYPE_CHECKING``), transitively, and each package ``__init__.py`` on the way that holds more
than a docstring (it runs on import). The closure must equal the stage's Python deps: a missing module is a lineage
hole, an extra one a needless rerun.

A stage's command is ``<package> <command>``: the CLI's handler of that command (``@command("<command>")`` in
``cli/``) calls the stage's module, ``pipeline.<command>`` (see COMMAND_MODULES), and the modules the handler imports
belong to the closure too. The CLI's own files are left out on purpose: they parse arguments, and listing them would
rerun every stage whenever any command changes.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import yaml
from conftest import PROJECT

PACKAGE = "{{ cookiecutter.package_name }}"
SOURCE = PROJECT / "src"
# The module each stage command runs, where it is not ``pipeline.<command>``.
COMMAND_MODULES = {"track": "pipeline.tracking"}


def module_file(dotted: str) -> Path | None:
    """The file of a module of the package (``pkg.a.b`` -> ``src/pkg/a/b.py`` or ``src/pkg/a/b/__init__.py``)."""
    base = SOURCE.joinpath(*dotted.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def module_name(path: Path) -> str:
    parts = path.relative_to(SOURCE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def runtime_imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Import statements that run: everywhere but the body of ``if TYPE_CHECKING:``."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and is_type_checking(node.test):
            for branch in node.orelse:
                visit(branch)
            return
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def imported_modules(tree: ast.AST, package: str) -> set[str]:
    """Dotted names of the package's modules that ``tree`` (code of a module of ``package``) imports when it runs."""
    names: set[str] = set()
    for node in runtime_imports(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
            continue
        if node.level:  # relative: from . import x, from ..a import b
            anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join([*anchor, *([node.module] if node.module else [])])
        else:
            base = node.module or ""
        names.add(base)
        names.update(f"{base}.{alias.name}" for alias in node.names)  # a submodule, when it is one
    return {n for n in names if (n == PACKAGE or n.startswith(PACKAGE + ".")) and module_file(n)}


def runs_code(init: Path) -> bool:
    """Whether a package ``__init__.py`` holds more than a docstring and ``from __future__`` imports."""
    body = ast.parse(init.read_text()).body
    for statement in body:
        is_docstring = isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)
        is_future = isinstance(statement, ast.ImportFrom) and statement.module == "__future__"
        if not (is_docstring or is_future):
            return True
    return False


def closure(*entries: str) -> set[Path]:
    """Every file of the package that running the modules ``entries`` executes."""
    seen: set[str] = set()
    pending = list(entries)
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        parts = name.split(".")
        pending += [".".join(parts[:i]) for i in range(1, len(parts))]  # importing a.b.c runs a and a.b first
        path = module_file(name)
        assert path is not None, name
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        pending += sorted(imported_modules(ast.parse(path.read_text(), str(path)), package) - seen)
    files = {module_file(name) for name in seen}
    return {f for f in files if f is not None and (f.name != "__init__.py" or runs_code(f))}


def handler_imports(command: str) -> set[str]:
    """The package's modules the CLI's handler of ``command`` imports (the function under ``@command(command)``)."""
    for path in sorted((SOURCE / PACKAGE / "cli").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef) and any(_registers(d, command) for d in node.decorator_list):
                return imported_modules(node, f"{PACKAGE}.cli")
    raise AssertionError(f"no @command({command!r}) in cli/: where does the CLI handle it? Teach handler_imports")


def _registers(decorator: ast.expr, command: str) -> bool:
    return (
        isinstance(decorator, ast.Call)
        and isinstance(decorator.func, ast.Name)
        and decorator.func.id == "command"
        and bool(decorator.args)
        and isinstance(decorator.args[0], ast.Constant)
        and decorator.args[0].value == command
    )


def stage_entries(stage: str, cmd: str) -> list[str]:
    """The modules a stage's command runs: ``<package> <command>`` or ``python -m <module> ...``."""
    found = re.fullmatch(rf"python -m ({re.escape(PACKAGE)}\.[\w.]+)(?: .*)?", cmd)
    if found:
        return [found.group(1)]
    found = re.fullmatch(rf"{re.escape(PACKAGE)} ([\w-]+)(?: .*)?", cmd)
    assert found, f"stage {stage}: cannot tell which module `{cmd}` runs: teach stage_entries"
    command = found.group(1)
    module = f"{PACKAGE}.{COMMAND_MODULES.get(command, f'pipeline.{command}')}"
    assert module_file(module), f"stage {stage}: no module {module} for command {command!r}: add it to COMMAND_MODULES"
    return [module, *sorted(handler_imports(command))]


def python_deps(deps: list[str]) -> set[Path]:
    """The stage's deps that are the package's files."""
    files = {(PROJECT / d).resolve() for d in deps}
    return {f for f in files if f.is_relative_to(SOURCE.resolve())}


def test_every_stage_depends_on_exactly_the_modules_it_runs() -> None:
    stages = yaml.safe_load((PROJECT / "dvc.yaml").read_text())["stages"]
    problems = []
    for name, stage in stages.items():
        needed = {p.resolve() for p in closure(*stage_entries(name, stage["cmd"]))}
        listed = python_deps(stage.get("deps", []))
        assert all(p.is_file() for p in listed), f"stage {name}: a dep under src/ is not a file: {sorted(listed)}"
        for path in sorted(needed - listed):
            problems.append(f"stage {name} runs {path.relative_to(PROJECT)} but does not list it in its deps")
        for path in sorted(listed - needed):
            problems.append(f"stage {name} lists {path.relative_to(PROJECT)} but never runs it (needless reruns)")
    assert not problems, "dvc.yaml deps differ from the import graph:\n" + "\n".join(problems)


def test_the_closure_follows_imports_inside_functions_and_skips_type_checking_ones() -> None:
    source = """
from __future__ import annotations
from typing import TYPE_CHECKING
import json
from PKG.contracts import io
if TYPE_CHECKING:
    from PKG.pipeline.config import Params
else:
    from PKG.pipeline import features
def load() -> None:
    from PKG.pipeline import lineage
    import PKG.pipeline.schema
"""
    found = imported_modules(ast.parse(source.replace("PKG", PACKAGE)), f"{PACKAGE}.pipeline")
    expected = {"contracts", "contracts.io", "pipeline", "pipeline.features", "pipeline.lineage", "pipeline.schema"}
    assert found == {f"{PACKAGE}.{name}" for name in expected}
    # a package's __init__ that only documents it runs nothing, and the CLI is not part of a stage's closure
    assert SOURCE / PACKAGE / "__init__.py" in closure(f"{PACKAGE}.pipeline.config")
    assert not any(p.is_relative_to(SOURCE / PACKAGE / "cli") for p in closure(f"{PACKAGE}.pipeline.report"))
