"""The gate's verdict: one record per check, and the lines that explain a failure.

Kept free of heavy imports so that ``{{ cookiecutter.package_name }} gate`` answers in a fraction of a second.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Check:
    """One check of the gate. ``margin`` is how far inside (>= 0) or outside (< 0) the limit the value is."""

    name: str
    status: str  # "pass" | "fail" | "skip"
    value: float | None
    limit: float | None
    margin: float | None
    detail: str


def failures(verdict: dict[str, Any]) -> list[str]:
    """One line per failed check, saying by how much it missed."""
    lines = []
    for check in verdict["checks"]:
        if check["status"] == "fail":
            value = "n/a" if check["value"] is None else f"{check['value']:.4g}"
            by = "" if check["margin"] is None else f", outside the limit by {abs(check['margin']):.4g}"
            lines.append(f"{check['name']}: measured {value}{by} ({check['detail']})")
    return lines
