"""Markdown for the reports people read (the pull-request report, the monitoring report): one table layout."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


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
