"""The prediction log's line: what the server (and ``synthetic.write_log``) writes and the monitor reads.

One JSON object per predicted instance, keys in this order::

    {"time": "2026-11-21T10:00:00.123456Z", "request_id": "…", "index": 0, "model_version": "…",
     "inputs": {"feature": value or null, …},
     "prediction": {"label": "…", "probabilities": {"class": p, …}} or {"value": number}}

``time`` is UTC with microseconds, so times compare as strings; labels join on ``(request_id, index)``. Standard
library only: the writers encode a line with orjson, the reader decodes it, and both go through this module.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypedDict, TypeGuard

SECOND_FORMAT = "%Y-%m-%dT%H:%M:%S."
TIME_FORMAT = SECOND_FORMAT + "%fZ"
"""``time``'s format (``datetime.strftime``)."""
TIME_LENGTH = len("2026-11-21T10:00:00.123456Z")


class ClassPrediction(TypedDict):
    """A classifier's answer for one instance."""

    label: str
    probabilities: dict[str, float]


class ValuePrediction(TypedDict):
    """A regressor's answer for one instance."""

    value: float


class LogLine(TypedDict):
    """One line of the prediction log (the key order is the file's)."""

    time: str
    request_id: str
    index: int
    model_version: str
    inputs: dict[str, object]
    prediction: ClassPrediction | ValuePrediction


Parsed = tuple[str, list[float]] | float
"""A logged prediction as the monitor uses it: ``(label, probabilities in class order)`` or the predicted value."""


def line(
    time: str,
    request_id: str,
    index: int,
    model_version: str,
    inputs: dict[str, object],
    prediction: ClassPrediction | ValuePrediction,
) -> LogLine:
    """A line of the log, ready to encode as JSON (one object, keys in the file's order)."""
    return {
        "time": time,
        "request_id": request_id,
        "index": index,
        "model_version": model_version,
        "inputs": inputs,
        "prediction": prediction,
    }


def format_time(moment: datetime) -> str:
    """``moment`` in the log's time format (converted to UTC; a naive time is taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime(TIME_FORMAT)


class Stamp:
    """Times in the log's format from ``time.time_ns()``, the date and time part formatted once per second."""

    __slots__ = ("prefix", "second")

    def __init__(self) -> None:
        """Nothing formatted yet."""
        self.second = -1
        self.prefix = ""

    def __call__(self, ns: int) -> str:
        """``ns`` (nanoseconds since the epoch, ``time.time_ns()``) as ``2026-11-21T10:00:00.123456Z``."""
        second, rest = divmod(ns, 1_000_000_000)
        if second != self.second:
            self.second, self.prefix = second, time.strftime(SECOND_FORMAT, time.gmtime(second))
        return f"{self.prefix}{rest // 1000:06d}Z"


def is_time(value: object) -> TypeGuard[str]:
    """Whether ``value`` is a time in the log's format, as far as the reader checks (length and trailing ``Z``)."""
    return type(value) is str and len(value) == TIME_LENGTH and value[-1] == "Z"


def join_key(record: LogLine) -> tuple[str, int]:
    """The ``(request_id, index)`` labels join on (an index that is not an integer joins nothing: -1)."""
    index = record.get("index", 0)
    return str(record.get("request_id")), index if type(index) is int else -1


def prediction_parser(task: str, classes: list[str]) -> Callable[[object], Parsed | None]:
    """A function that checks a line's decoded ``prediction`` and returns it parsed, or None if it breaks the format."""
    if task == "classification":

        def classified(pred: object) -> Parsed | None:
            try:
                label, probabilities = pred["label"], pred["probabilities"]  # type: ignore[index]
                row = [probabilities[c] for c in classes]
            except (KeyError, TypeError):
                return None
            if type(label) is not str or not all(type(p) is float or type(p) is int for p in row):
                return None
            return label, row

        return classified

    def regressed(pred: object) -> Parsed | None:
        try:
            value = pred["value"]  # type: ignore[index]
        except (KeyError, TypeError):
            return None
        return float(value) if type(value) is float or type(value) is int else None

    return regressed
