"""The package's shape: one layer per runtime tier (import-linter), contracts from the standard library only, small
modules. `make lint` runs the same import-linter contracts; these tests also prove they can fail."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import {{ cookiecutter.package_name }} as package

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = Path(package.__file__).parent
LINT_IMPORTS = str(Path(sys.executable).with_name("lint-imports"))
MAX_LINES = 400
TIERS = ("cli", "monitoring", "release", "pipeline", "serving", "contracts")


def _lint_imports(project: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(project / "src")}
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache"], cwd=project, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def _copy(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    shutil.copytree(ROOT / "src", project / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", project)
    return project


def test_the_package_is_one_folder_per_tier_and_nothing_else() -> None:
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"}
    modules = {p.name for p in PACKAGE.glob("*.py")}
    assert folders == set(TIERS)
    assert modules <= {"__init__.py", "__main__.py"}


def test_the_layers_hold() -> None:
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout


INJECTED = {
    "contracts/io.py": ("import numpy", "{{ cookiecutter.package_name }}.contracts.io -> numpy"),
    "serving/model.py": ("import pandas", "{{ cookiecutter.package_name }}.serving.model -> pandas"),
    "pipeline/prepare.py": (
        "from {{ cookiecutter.package_name }}.release import promote",
        "{{ cookiecutter.package_name }}.pipeline.prepare -> {{ cookiecutter.package_name }}.release.promote",
    ),
}


def test_an_import_across_the_layers_breaks_the_contract_it_crosses(tmp_path: Path) -> None:
    project = _copy(tmp_path)
    for module, (line, _) in INJECTED.items():
        target = project / "src" / "{{ cookiecutter.package_name }}" / module
        target.write_text(target.read_text() + f"\n{line}  # noqa\n")
    result = _lint_imports(project)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "0 kept, 3 broken" in result.stdout, result.stdout
    report = result.stdout.split("Broken contracts", 1)[1]
    for _, chain in INJECTED.values():
        assert chain in report, (chain, report)


def test_contracts_import_only_the_standard_library_and_the_contracts() -> None:
    outside: list[str] = []
    for path in sorted((PACKAGE / "contracts").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and node.level == 0
                else []
            )
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and name.split(".")[:2] != [package.__name__, "contracts"]:
                    outside.append(f"{path.relative_to(PACKAGE)}: {name}")
    assert not outside, outside


def test_every_module_is_at_most_400_lines() -> None:
    lengths = {str(p.relative_to(PACKAGE)): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    assert lengths, PACKAGE
    assert {name: n for name, n in lengths.items() if n > MAX_LINES} == {}
