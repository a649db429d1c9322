"""Shared helpers of the template's tests: bake a project into a temporary folder, run its commands, make CSVs.

Every baked project uses the one default uv cache, so the locked environment is downloaded once per machine and each
later ``uv sync --frozen`` only links files.
"""

from __future__ import annotations

import csv
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

# The template's own tools are a plain folder at the repository root, not an installed package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tools.bake import TEMPLATE, bake

PROJECT_TEMPLATE = TEMPLATE / "{{cookiecutter.project_slug}}"
ROOT_VENV = TEMPLATE / ".venv"
# `uv run` exports the path of the uv running it; put that one first on PATH, so a baked project's `uv` (its
# Makefile, its pre-commit hooks) is the same binary and never a shim that depends on the current directory.
UV = os.environ.get("UV") or shutil.which("uv") or "uv"
TAIL_LINES = 60
# The cookiecutter command of the environment running the tests (the README's way to bake).
COOKIECUTTER = (sys.executable, "-m", "cookiecutter")
# A baked project's own commands, from its locked environment.
UV_RUN = (UV, "run", "--frozen")


def project_env(**extra: str) -> dict[str, str]:
    """The environment a baked project's commands run in: the user's, minus the template's own virtualenv and the
    variables of the pytest running this suite, plus a git identity for commits.
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST_", "VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "PYTHONPATH"))
    }
    root_bin = str(ROOT_VENV / "bin")
    path = [p for p in env.get("PATH", "").split(os.pathsep) if p and p != root_bin]
    env["PATH"] = os.pathsep.join([str(Path(UV).parent), *path]) if os.sep in UV else os.pathsep.join(path)
    env.update(
        GIT_AUTHOR_NAME="Template Test",
        GIT_AUTHOR_EMAIL="template-test@example.com",
        GIT_COMMITTER_NAME="Template Test",
        GIT_COMMITTER_EMAIL="template-test@example.com",
        GIT_CONFIG_NOSYSTEM="1",
        NO_COLOR="1",
        PRE_COMMIT_COLOR="never",
        UV_NO_PROGRESS="1",
    )
    env.update(extra)
    return env


def _tail(text: str, lines: int = TAIL_LINES) -> str:
    kept = text.rstrip().splitlines()[-lines:]
    return "\n".join(kept) if kept else "(empty)"


def run(
    cmd: Sequence[str] | str,
    cwd: Path,
    *,
    check: bool = True,
    timeout: float = 900,
    ok_codes: Sequence[int] = (0,),
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command (a string goes through bash) and fail the test with its output's tail if it fails."""
    shell = isinstance(cmd, str)
    args: Any = ["bash", "-eo", "pipefail", "-c", cmd] if shell else list(cmd)
    shown = cmd if shell else " ".join(cmd)
    started = time.monotonic()
    try:
        result = subprocess.run(
            args,
            cwd=cwd,
            env=env or project_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else exc.stderr or ""
        pytest.fail(
            f"`{shown}` timed out after {timeout:.0f}s in {cwd}\n--- stdout (tail) ---\n{_tail(out)}\n"
            f"--- stderr (tail) ---\n{_tail(err)}",
            pytrace=False,
        )
    if check and result.returncode not in ok_codes:
        pytest.fail(
            f"`{shown}` exited {result.returncode} after {time.monotonic() - started:.0f}s in {cwd}\n"
            f"--- stdout (tail) ---\n{_tail(result.stdout)}\n--- stderr (tail) ---\n{_tail(result.stderr)}",
            pytrace=False,
        )
    return result


class Steps:
    """Run a test's commands (as ``run``), timing each and recording it on the test: the suite prints the table."""

    def __init__(self, record_property: Callable[[str, Any], None]) -> None:
        self.record = record_property

    def __call__(self, name: str, *args: Any, **kwargs: Any) -> Any:
        started = time.monotonic()
        try:
            return run(*args, **kwargs)
        finally:
            self.record(f"step:{name}", round(time.monotonic() - started, 1))


def bake_into(output_dir: Path, **answers: Any) -> Path:
    """Bake the template with ``answers`` into ``output_dir``; return the generated project."""
    return bake(output_dir, answers)


def text_files(root: Path) -> Iterator[tuple[Path, str]]:
    """Every UTF-8 text file under ``root`` (dotfiles included, ``.git`` excluded) with its content."""
    for path in sorted(root.rglob("*")):
        if ".git" in path.relative_to(root).parts[:1] or not path.is_file():
            continue
        data = path.read_bytes()
        if b"\0" in data:
            continue
        try:
            yield path, data.decode("utf-8")
        except UnicodeDecodeError:
            continue


# --- CSVs written by the tests (never shipped): small, deterministic, with a signal strong enough to pass the gate.

MULTICLASS_LABELS = ("alpha", "beta", "gamma")


def write_multiclass_csv(path: Path, rows: int = 1200, seed: int = 7) -> Path:
    """Three classes, numeric and categorical features, missing values in both kinds of column."""
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["length_cm", "width_cm", "stems", "colour", "soil", "species"])
        for _ in range(rows):
            species = rng.choice(MULTICLASS_LABELS)
            k = MULTICLASS_LABELS.index(species)
            length = round(2.0 + 2.5 * k + rng.gauss(0, 0.5), 2)
            width = round(max(0.1, 1.0 + 0.8 * k + rng.gauss(0, 0.4)), 2)
            stems = rng.randint(1, 4) + k
            colour = ("red", "green", "blue")[k] if rng.random() < 0.8 else rng.choice(["red", "green", "blue"])
            soil = rng.choice(["clay", "sand", "loam"])
            writer.writerow(
                [
                    "" if rng.random() < 0.05 else length,
                    width,
                    stems,
                    "" if rng.random() < 0.05 else colour,
                    soil,
                    species,
                ]
            )
    return path


def write_regression_csv(path: Path, rows: int = 1000, seed: int = 11) -> Path:
    """A numeric target, a nullable numeric feature and a categorical one."""
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["size", "floors", "district", "price"])
        for _ in range(rows):
            size = round(rng.uniform(20, 200), 1)
            floors = rng.randint(1, 3)
            district = rng.choice(["old-town", "harbour", "hills"])
            price = 50 + 3 * size + 20 * floors + {"old-town": 80, "harbour": 40, "hills": 0}[district]
            writer.writerow(["" if rng.random() < 0.05 else size, floors, district, round(price + rng.gauss(0, 15), 1)])
    return path


def write_binary_csv(path: Path, labels: tuple[str, str], counts: tuple[int, int]) -> Path:
    """Two labels, with ``counts[i]`` rows of ``labels[i]``."""
    rng = random.Random(3)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["score", "plan", "outcome"])
        for label, count in zip(labels, counts, strict=True):
            for _ in range(count):
                writer.writerow([round(rng.uniform(0, 1), 3), rng.choice(["basic", "pro"]), label])
    return path


@pytest.fixture(scope="session", autouse=True)
def _cookiecutter_config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep cookiecutter's replay files of the tests out of the user's home."""
    home = tmp_path_factory.mktemp("cookiecutter")
    config = home / "config.yaml"
    config.write_text(f"cookiecutters_dir: {home / 'templates'}\nreplay_dir: {home / 'replay'}\n")
    previous = os.environ.get("COOKIECUTTER_CONFIG")
    os.environ["COOKIECUTTER_CONFIG"] = str(config)
    yield
    if previous is None:
        os.environ.pop("COOKIECUTTER_CONFIG", None)
    else:
        os.environ["COOKIECUTTER_CONFIG"] = previous


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Spread the slow end-to-end runs over the pytest-xdist workers, each starting with its share of them.

    With the work-stealing scheduler (below) worker k first receives the k-th contiguous part of this order, so
    part k holds every n-th slow test, then its share of the fast ones; idle workers then steal what is left.
    """
    workers = max(1, int(getattr(config, "workerinput", {}).get("workercount", 1)))
    slow = [item for item in items if item.get_closest_marker("slow")]
    fast = [item for item in items if not item.get_closest_marker("slow")]
    ordered: list[pytest.Item] = []
    for k in range(workers):
        ordered += slow[k::workers] + fast[k * len(fast) // workers : (k + 1) * len(fast) // workers]
    items[:] = ordered


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Work stealing instead of xdist's default "load" chunks, which would queue every slow run on one worker."""
    if config.getoption("dist", "load") != "load":
        return None
    from xdist.scheduler import WorkStealingScheduling

    return WorkStealingScheduling(config, log)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print how long each step of the slow end-to-end runs took, and the figures they measured (both recorded
    with ``record_property``: ``step:<name>`` in seconds, ``figure:<name>`` as text).
    """
    lines = []
    for report in terminalreporter.stats.get("passed", []) + terminalreporter.stats.get("failed", []):
        if getattr(report, "when", "") != "call":
            continue
        steps = [(k[len("step:") :], v) for k, v in report.user_properties if k.startswith("step:")]
        figures = [f"{k[len('figure:') :]} {v}" for k, v in report.user_properties if k.startswith("figure:")]
        if steps:
            lines.append(
                f"{report.nodeid.split('::')[-1]}: {report.duration:.0f}s = "
                + ", ".join(f"{name} {seconds:.0f}s" for name, seconds in steps)
                + (f" ({', '.join(figures)})" if figures else "")
            )
    if lines:
        terminalreporter.section("end-to-end step times")
        for line in sorted(lines):
            terminalreporter.write_line(line)
