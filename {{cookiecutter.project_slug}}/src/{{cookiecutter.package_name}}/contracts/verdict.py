"""The gate's verdict (``reports/gate.json``): one record per check, and the lines that explain a failure.

Written by the ``validate`` stage; read by ``gate``, ``register``, the ``track`` and ``report`` stages. Standard
library only, so that ``{{ cookiecutter.package_name }} gate`` answers in a fraction of a second.

The verdict holds nothing measured in time: the same inputs give the same bytes, so a rerun leaves ``dvc.lock`` as it
was. The latency check keeps its pass or fail there; the figures it measured (:class:`Timings`) go to
``paths.timings``, a file neither git nor DVC tracks, which ``gate``, the report and the MLflow run read if it is there.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal, TypedDict, cast

from {{ cookiecutter.package_name }}.contracts.errors import ProjectError
from {{ cookiecutter.package_name }}.contracts.io import write_json

Status = Literal["pass", "fail", "skip"]


@dataclass(frozen=True)
class Check:
    """One check: of the gate (a measured ``value`` against a ``limit``) or of a running server (``probe``).

    ``margin`` is how far inside (>= 0) or outside (< 0) the limit the value is; checks that measure nothing against
    a limit (``probe``'s) leave ``value``, ``limit`` and ``margin`` None.
    """

    name: str
    status: Status
    value: float | None = None
    limit: float | None = None
    margin: float | None = None
    detail: str = ""

    @classmethod
    def of(cls, name: str, passed: bool, detail: str) -> Check:
        """A check that passed or failed, with nothing measured against a limit."""
        return cls(name, "pass" if passed else "fail", detail=detail)

    @property
    def passed(self) -> bool:
        """Whether the check passed (a skipped check did not)."""
        return self.status == "pass"


class CheckRecord(TypedDict):
    """A :class:`Check` as the verdict file holds it."""

    name: str
    status: Status
    value: float | None
    limit: float | None
    margin: float | None
    detail: str


class Baseline(TypedDict):
    """What the change was compared with: the ref, the commit it resolved to, and its committed metrics."""

    ref: str
    commit: str | None
    metrics: dict[str, float] | None


class Verdict(TypedDict):
    """The gate's verdict: passed when no check failed."""

    passed: bool
    checks: list[CheckRecord]
    baseline: Baseline


class Timings(TypedDict):
    """What the latency check measured (``paths.timings``, untracked): in milliseconds, one prediction of batch 1."""

    p50_ms: float
    p99_ms: float
    runs: int


class VerdictError(ProjectError):
    """A verdict file that is missing or is not one this code writes: the message names the file and the problem."""


def verdict(checks: list[Check], baseline: Baseline) -> Verdict:
    """The verdict of these checks (passed when none failed)."""
    records = [cast(CheckRecord, asdict(c)) for c in checks]
    return {"passed": all(c.status != "fail" for c in checks), "checks": records, "baseline": baseline}


def write(path: Path, verdict: Verdict) -> None:
    """Write the verdict (stable, sorted JSON, written atomically)."""
    write_json(path, verdict)


def read(path: Path) -> Verdict:
    """The verdict in ``path``, or a :class:`VerdictError` naming the file and what is wrong with it."""
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise VerdictError(f"cannot read the gate's verdict {path}: {exc} (run `dvc repro validate`)") from None
    missing = [key for key in Verdict.__annotations__ if not isinstance(document, dict) or key not in document]
    if missing:
        raise VerdictError(f"{path} is not a gate verdict: no {', '.join(missing)} (run `dvc repro validate`)")
    broken = [
        i
        for i, c in enumerate(document["checks"])
        if not isinstance(c, dict) or set(c) != set(CheckRecord.__annotations__)
    ]
    if broken:
        raise VerdictError(f"{path}: check(s) {broken} do not have the keys {sorted(CheckRecord.__annotations__)}")
    return cast(Verdict, document)


def read_timings(path: Path) -> Timings | None:
    """The latency figures of the last ``validate`` run here, or None.

    None when there are none (a fresh clone, or a verdict DVC restored from its cache) or the file is not one this code
    writes.
    """
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(document, dict) or set(document) != set(Timings.__annotations__):
        return None
    return cast(Timings, document)


def describe_timings(timings: Timings) -> str:
    """One line: the latency figures measured."""
    return f"p50 {timings['p50_ms']:.3f} ms, p99 {timings['p99_ms']:.3f} ms over {timings['runs']} runs (batch 1)"


def failures(verdict: Verdict) -> list[str]:
    """One line per failed check: its name, the measured value, the limit and by how much it missed."""
    lines = []
    for check in verdict["checks"]:
        if check["status"] == "fail":
            value = "n/a" if check["value"] is None else f"{check['value']:.4g}"
            limit = "" if check["limit"] is None else f" (limit {check['limit']:.4g})"
            by = "" if check["margin"] is None else f", outside the limit by {abs(check['margin']):.4g}"
            lines.append(f"{check['name']}: measured {value}{limit}{by} ({check['detail']})")
    return lines
