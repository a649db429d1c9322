"""The window's bounds: ``--since`` and ``--until`` as times in the prediction log's format (strings that sort)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from {{ cookiecutter.package_name }}.contracts.prediction_log import format_time
from {{ cookiecutter.package_name }}.monitoring.errors import MonitorError

DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_time(text: str | None, now: datetime | None = None) -> str | None:
    """A window bound in the log's time format (empty: no bound).

    From ISO 8601 (UTC unless it names a zone; a date is its midnight) or a duration back from now: ``30m``, ``12h``,
    ``7d``, ``2w``.
    """
    if text is None or not text.strip():
        return None
    text = text.strip()
    match = DURATION.match(text)
    if match:
        moment = (now or datetime.now(UTC)) - timedelta(seconds=float(match.group(1)) * SECONDS[match.group(2)])
    else:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise MonitorError(
                f"{text!r} is not a time: give ISO 8601 (2026-11-21T10:00:00Z) or a duration back from now "
                "(30m, 12h, 7d, 2w)"
            ) from None
    return format_time(moment)
