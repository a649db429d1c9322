"""The gate's verdict: one record per check, and the lines that explain a failure.

Kept free of heavy imports so that ``{{ cookiecutter.package_name }} gate`` answers in a fraction of a second.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

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


def failures(verdict: dict[str, Any]) -> list[str]:
    """One line per failed check, saying by how much it missed."""
    lines = []
    for check in verdict["checks"]:
        if check["status"] == "fail":
            value = "n/a" if check["value"] is None else f"{check['value']:.4g}"
            by = "" if check["margin"] is None else f", outside the limit by {abs(check['margin']):.4g}"
            lines.append(f"{check['name']}: measured {value}{by} ({check['detail']})")
    return lines
