"""Markdown for the reports people read (the pull-request report, the monitoring report): one table layout."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

PASSED = "✅"
"""A result within its limits (a check passed, no drift)."""
FAILED = "❌"
"""A result outside its limits: what asks for action (a failed check, drift, decay)."""
WARNING = "⚠️"
"""Worth a look, but asks for no action by itself (a data-quality problem, a shift below the threshold)."""
NEUTRAL = "➖"
"""No result: skipped, or too little to judge."""
BETTER = "🟢"
"""A change for the better."""
WORSE = "🔴"
"""A change for the worse."""


def change(delta: float, better: bool) -> str:
    """A metric's change: ``0`` when none, else the signed change and whether it is for the better."""
    if abs(delta) < 1e-12:
        return "0"
    return f"{delta:+.4g} {BETTER if better else WORSE}"


def cell(value: Any) -> str:
    """A table cell: a dash for nothing, four significant digits for a float, pipes escaped."""
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|")


def table(header: list[str], rows: list[list[Any]], fmt: Callable[[Any], str] = cell) -> str:
    """A Markdown table, each cell formatted by ``fmt``."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def estimate(value: float, interval: tuple[float, float] | None) -> str:
    """A metric beside its confidence interval, ``0.871 (0.846-0.893)`` (an en dash); the value alone without one."""
    return cell(float(value)) if interval is None else f"{value:.4g} ({interval[0]:.4g}–{interval[1]:.4g})"
