"""Reading the prediction log: its files, and the well-formed lines of a window in chunks, the rest counted.

A line that is not JSON, is cut short (a killed process) or does not follow the log's format
(:mod:`~{{ cookiecutter.package_name }}.contracts.prediction_log`) is *malformed*: counted, shown, and left out of every
statistic. Lines before ``--since`` or from ``--until`` on are counted apart.
"""

from __future__ import annotations

import contextlib
import gc
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict, cast

import orjson

from {{ cookiecutter.package_name }}.contracts.prediction_log import LogLine, Parsed, is_time
from {{ cookiecutter.package_name }}.monitoring.errors import MonitorError

CHUNK = 20_000
"""Lines parsed before their values are counted in one vectorised step."""
MALFORMED_EXAMPLES = 5
MAX_DISTINCT = 1000
"""Distinct unseen categories, unknown keys or model versions counted by name; the rest are counted together."""


class MalformedLine(TypedDict):
    """A malformed line shown in the report."""

    file: str
    line: int
    problem: str
    text: str


class WindowSummary(TypedDict):
    """The window's section of the verdict."""

    since: str | None
    until: str | None
    files: int
    lines: int
    malformed: int
    malformed_examples: list[MalformedLine]
    before_since: int
    after_until: int
    in_window: int
    first: str | None
    last: str | None
    model_versions: dict[str, int]


def log_files(directory: Path) -> list[Path]:
    """Every ``*.jsonl`` file under ``directory``, in name order."""
    if not directory.is_dir():
        raise MonitorError(f"the prediction log directory {directory} does not exist")
    files = sorted(p for p in directory.rglob("*.jsonl") if p.is_file())
    if not files:
        raise MonitorError(f"no prediction log (*.jsonl) under {directory}")
    return files


@dataclass
class Window:
    """What reading the log found, before any statistic."""

    since: str | None
    until: str | None
    files: int = 0
    lines: int = 0
    malformed: int = 0
    malformed_examples: list[MalformedLine] = field(default_factory=list)
    before: int = 0
    after: int = 0
    rows: int = 0
    first: str | None = None
    last: str | None = None
    versions: Counter[str] = field(default_factory=Counter)

    def bad_line(self, path: Path, number: int, raw: bytes, problem: str) -> None:
        """Count a malformed line and keep the first few as examples."""
        self.malformed += 1
        if len(self.malformed_examples) < MALFORMED_EXAMPLES:
            text = raw.decode("utf-8", "replace").rstrip("\n")
            shown = text if len(text) <= 80 else text[:77] + "..."
            self.malformed_examples.append({"file": path.name, "line": number, "problem": problem, "text": shown})

    def note(self, records: list[LogLine]) -> list[str]:
        """Count a chunk of the window's lines, their times and model versions; return their versions."""
        times = [r["time"] for r in records]
        first, last = min(times), max(times)
        self.first = first if self.first is None else min(self.first, first)
        self.last = last if self.last is None else max(self.last, last)
        self.rows += len(records)
        versions = [v if type(v) is str else repr(v)[:40] for v in (r.get("model_version") for r in records)]
        count(self.versions, versions)
        return versions

    def summary(self) -> WindowSummary:
        """The window's section of the verdict."""
        return {
            "since": self.since,
            "until": self.until,
            "files": self.files,
            "lines": self.lines,
            "malformed": self.malformed,
            "malformed_examples": self.malformed_examples,
            "before_since": self.before,
            "after_until": self.after,
            "in_window": self.rows,
            "first": self.first,
            "last": self.last,
            "model_versions": dict(self.versions.most_common()),
        }


def count(counter: Counter[str], values: list[str]) -> None:
    """Count ``values``, by name for the first ``MAX_DISTINCT`` distinct ones and as "(others)" beyond."""
    counter.update(values)
    if len(counter) > MAX_DISTINCT:
        kept = dict(counter.most_common(MAX_DISTINCT - 1))
        others = sum(counter.values()) - sum(kept.values())
        counter.clear()
        counter.update(kept)
        counter["(others)"] += others


def chunks(
    files: list[Path], window: Window, parse: Callable[[object], Parsed | None]
) -> Iterator[tuple[list[LogLine], list[Parsed]]]:
    """Well-formed lines of the window, a chunk at a time, with their parsed predictions; counts the rest.

    A yielded line has a time in the log's format, an ``inputs`` object and a prediction ``parse`` accepts; its other
    keys are as logged (readers check them).
    """
    since, until = window.since, window.until
    loads, decode_error = orjson.loads, orjson.JSONDecodeError
    records: list[LogLine] = []
    predictions: list[Parsed] = []
    for path in files:
        window.files += 1
        lines = before = after = 0
        with path.open("rb") as handle:
            for number, raw in enumerate(handle, start=1):
                if not raw.strip():
                    continue
                lines += 1
                try:
                    record = loads(raw)
                except decode_error:
                    cut = not raw.endswith(b"\n")
                    window.bad_line(path, number, raw, "truncated" if cut else "not valid JSON")
                    continue
                if type(record) is not dict:
                    window.bad_line(path, number, raw, "not a JSON object")
                    continue
                moment = record.get("time")
                if not is_time(moment):
                    window.bad_line(path, number, raw, "no time in the log's format")
                    continue
                if since is not None and moment < since:
                    before += 1
                    continue
                if until is not None and moment >= until:
                    after += 1
                    continue
                if type(record.get("inputs")) is not dict:
                    window.bad_line(path, number, raw, "no inputs object")
                    continue
                prediction = parse(record.get("prediction"))
                if prediction is None:
                    window.bad_line(path, number, raw, "no prediction in the log's format")
                    continue
                records.append(cast(LogLine, record))
                predictions.append(prediction)
                if len(records) >= CHUNK:
                    window.lines += lines
                    lines = 0
                    yield records, predictions
                    records, predictions = [], []
        window.lines += lines
        window.before += before
        window.after += after
    if records:
        yield records, predictions


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while a window is read.

    Parsed lines hold no reference cycles, and its passes over the millions of short-lived objects a window makes
    would double the time.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
