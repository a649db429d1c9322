"""Command ``monitor``: drift, decay and data quality of a window of logged predictions, against the reference profile.

**Input.** The prediction log: a directory of JSON-lines files (``*.jsonl``, read recursively), one line per predicted
instance::

    {"time": "2026-11-21T10:00:00.123456Z", "request_id": "…", "index": 0, "model_version": "…",
     "inputs": {"feature": value or null, …},
     "prediction": {"label": "…", "probabilities": {"class": p, …}} or {"value": number}}

``time`` is UTC with microseconds, so a window (``--since``, ``--until``) is a string comparison. A line that is not
JSON, is cut short (a killed process) or does not follow this format is *malformed*: counted, shown, and left out of
every statistic. Wrong values inside ``inputs`` (types, unknown or missing keys) are data-quality problems of the
live inputs. Ground-truth labels, optional, are CSV files (``request_id``, optional ``index`` defaulting to 0, and
the schema's target column), joined on ``(request_id, index)``; they may cover a subset of the predictions.

**Streaming, bounded memory.** Files are read line by line and processed in chunks: per numeric series the exact
count in each of the profile's bins and a seeded bottom-k sample (a uniform sample of at most ``sample_size``
values), per category series the count of each value. Memory does not grow with the window, only with the labels.

**Drift.** Each feature is tested against the training data, and the predictions against the model's predictions on
held-out data: numbers with the two-sample Kolmogorov-Smirnov test (``scipy.stats.ks_2samp``, window sample vs the
profile's sample), categories and predicted classes with the chi-squared test of homogeneity
(``scipy.stats.chi2_contingency``, window counts vs training counts); nulls are left to the quality checks. The
population stability index, ``PSI = Σ (w - r) ln(w / r)`` over the bins (categories) with proportions floored at
``1e-4``, measures how large the shift is. The rule: a series drifted when its test rejects at ``alpha / m``, ``m``
being the number of tests run on the window (Bonferroni: the chance of any false alarm in a window is at most
``alpha``), **and** its PSI is at least ``psi_threshold`` (a huge window makes any tiny difference significant; the
PSI demands one that matters). A series with fewer than ``min_window`` values is not judged.

**Decay.** With at least ``min_labels`` labelled predictions of the profiled model version, the task's metrics (as
the ``evaluate`` stage computes them) are compared with its test-set metrics; a metric worse by more than its
``max_drop`` has decayed.

**Verdict.** ``verdict.json`` and ``report.md`` in the output directory, written atomically; ``retrain`` is drift or
decay. Data-quality problems are reported but do not ask for retraining (a broken client is fixed, not learned).
"""

from __future__ import annotations

import contextlib
import csv
import gc
import math
import operator
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from {{ cookiecutter.package_name }}.contracts import markdown
from {{ cookiecutter.package_name }}.contracts.io import write_json, write_text
from {{ cookiecutter.package_name }}.pipeline.config import MonitorParams
from {{ cookiecutter.package_name }}.pipeline.schema import Schema

if TYPE_CHECKING:
    import pandas as pd

TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
TIME_LENGTH = len("2026-11-21T10:00:00.123456Z")
CHUNK = 20_000
"""Lines parsed before their values are counted in one vectorised step."""
EXAMPLES = 3
MALFORMED_EXAMPLES = 5
MAX_DISTINCT = 1000
"""Distinct unseen categories, unknown keys or model versions counted by name; the rest are counted together."""
PSI_EPSILON = 1e-4
PROFILE_FORMAT = 1
"""The reference profile's layout this code reads (``profile.FORMAT``, repeated here so that the monitor does not
import pandas and onnxruntime)."""
DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
RESULT = {
    "ok": "✅ ok",
    "drift": "❌ **drift**",
    "small": "⚠️ shifted, PSI below the threshold",
    "insufficient": "➖ too few values",
    "skipped": "➖ skipped",
    "decay": "❌ **decay**",
    "missing": "➖ no reference value",
}


class MonitorError(ValueError):
    """A usage or input problem (missing directory, no reference profile, bad time): the command exits 2."""


class _Missing:
    """A feature absent from a line's inputs."""

    def __repr__(self) -> str:
        return "(missing)"


MISSING: Any = _Missing()


@dataclass(frozen=True)
class _Unhashable:
    """A JSON array or object where a category was expected (counted as a wrong type)."""

    kind: str

    def __repr__(self) -> str:
        return f"<{self.kind}>"


# --------------------------------------------------------------------------------------------------------------------
# Inputs: times, log files, labels
# --------------------------------------------------------------------------------------------------------------------


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
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime(TIME_FORMAT)


def log_files(directory: Path) -> list[Path]:
    """Every ``*.jsonl`` file under ``directory``, in name order."""
    if not directory.is_dir():
        raise MonitorError(f"the prediction log directory {directory} does not exist")
    files = sorted(p for p in directory.rglob("*.jsonl") if p.is_file())
    if not files:
        raise MonitorError(f"no prediction log (*.jsonl) under {directory}")
    return files


@dataclass
class Labels:
    """Ground truth by ``(request_id, index)``, and what reading it found."""

    values: dict[tuple[str, int], Any] = field(default_factory=dict)
    files: int = 0
    rows: int = 0
    invalid: int = 0
    examples: list[str] = field(default_factory=list)


def _label_parser(schema: Schema) -> Callable[[str], Any]:
    target = schema.target
    if target.kind == "classification":
        known = set(target.labels)

        def label(text: str) -> Any:
            if text not in known:
                raise ValueError(f"{text!r} is not a label of the schema")
            return text

        return label

    def value(text: str) -> Any:
        number = float(text)
        if not math.isfinite(number):
            raise ValueError(f"{text!r} is not a finite number")
        return number

    return value


def read_labels(directory: Path | None, schema: Schema) -> Labels:
    """Every ``*.csv`` under ``directory``: ``request_id``, optional ``index`` (0) and the target column."""
    labels = Labels()
    if directory is None:
        return labels
    if not directory.is_dir():
        raise MonitorError(f"the labels directory {directory} does not exist")
    target = schema.target.name
    parse = _label_parser(schema)
    for path in sorted(p for p in directory.rglob("*.csv") if p.is_file()):
        labels.files += 1
        with path.open(newline="", encoding="utf-8", errors="replace") as handle:
            reader = csv.DictReader(handle)
            try:
                columns = reader.fieldnames or []
                if not columns:
                    continue  # an empty file
                if "request_id" not in columns or target not in columns:
                    raise MonitorError(
                        f"{path}: a label file needs the columns request_id and {target} (and optionally index); "
                        f"it has {', '.join(columns)}"
                    )
                for number, row in enumerate(reader, start=2):
                    if not row.get(target):
                        continue  # not labelled yet
                    labels.rows += 1
                    try:
                        request_id = row["request_id"]
                        if not request_id:
                            raise ValueError("no request_id")
                        index = int(row.get("index") or 0)
                        labels.values[(request_id, index)] = parse(row[target])
                    except (ValueError, TypeError) as exc:
                        labels.invalid += 1
                        if len(labels.examples) < EXAMPLES:
                            labels.examples.append(f"{path.name}:{number}: {exc}")
            except csv.Error as exc:
                raise MonitorError(f"{path} is not a readable CSV file: {exc}") from None
    return labels


# --------------------------------------------------------------------------------------------------------------------
# Reading the log: well-formed lines in the window, in chunks
# --------------------------------------------------------------------------------------------------------------------


@dataclass
class Window:
    """What reading the log found, before any statistic."""

    since: str | None
    until: str | None
    files: int = 0
    lines: int = 0
    malformed: int = 0
    malformed_examples: list[dict[str, Any]] = field(default_factory=list)
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

    def summary(self) -> dict[str, Any]:
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


Prediction = tuple[str, list[float]] | float
"""A parsed prediction: ``(label, probabilities in class order)`` or the predicted value."""


def prediction_parser(task: str, classes: list[str]) -> Callable[[Any], Prediction | None]:
    """A function that checks a logged ``prediction`` and returns it parsed, or None if it breaks the format."""
    if task == "classification":

        def classified(pred: Any) -> Prediction | None:
            try:
                label, probabilities = pred["label"], pred["probabilities"]
                row = [probabilities[c] for c in classes]
            except (KeyError, TypeError):
                return None
            if type(label) is not str or not all(type(p) is float or type(p) is int for p in row):
                return None
            return label, row

        return classified

    def regressed(pred: Any) -> Prediction | None:
        try:
            value = pred["value"]
        except (KeyError, TypeError):
            return None
        return float(value) if type(value) is float or type(value) is int else None

    return regressed


def chunks(
    files: list[Path], window: Window, parse: Callable[[Any], Prediction | None]
) -> Iterator[tuple[list[dict[str, Any]], list[Prediction]]]:
    """Well-formed lines of the window, a chunk at a time, with their parsed predictions; counts the rest."""
    since, until = window.since, window.until
    loads, decode_error = orjson.loads, orjson.JSONDecodeError
    records: list[dict[str, Any]] = []
    predictions: list[Prediction] = []
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
                if type(moment) is not str or len(moment) != TIME_LENGTH or moment[-1] != "Z":
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
                records.append(record)
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


def _note_times(window: Window, records: list[dict[str, Any]]) -> None:
    times = [r["time"] for r in records]
    first, last = min(times), max(times)
    window.first = first if window.first is None else min(window.first, first)
    window.last = last if window.last is None else max(window.last, last)
    window.rows += len(records)


def _count(counter: Counter[str], values: list[str]) -> None:
    """Count ``values``, by name for the first ``MAX_DISTINCT`` distinct ones and as "(others)" beyond."""
    counter.update(values)
    if len(counter) > MAX_DISTINCT:
        kept = dict(counter.most_common(MAX_DISTINCT - 1))
        others = sum(counter.values()) - sum(kept.values())
        counter.clear()
        counter.update(kept)
        counter["(others)"] += others


def _versions(records: list[dict[str, Any]]) -> list[Any]:
    versions = [r.get("model_version") for r in records]
    return [v if type(v) is str else repr(v)[:40] for v in versions]


# --------------------------------------------------------------------------------------------------------------------
# Statistics of one series, streamed
# --------------------------------------------------------------------------------------------------------------------


def _example(examples: list[str], value: Any) -> None:
    if len(examples) < EXAMPLES:
        shown = repr(value)
        examples.append(shown if len(shown) <= 40 else shown[:37] + "...")


class Sample:
    """A uniform sample of at most ``size`` values of a stream: the values with the ``size`` smallest random keys."""

    def __init__(self, size: int, rng: np.random.Generator) -> None:
        self.size = size
        self.rng = rng
        self.keys = np.empty(0)
        self.values = np.empty(0)

    def add(self, values: np.ndarray) -> None:
        """Offer ``values`` to the sample."""
        if values.size == 0:
            return
        keys = self.rng.random(values.size)
        if self.keys.size >= self.size:  # full: only keys below the largest kept one can enter
            keep = keys < self.keys.max()
            keys, values = keys[keep], values[keep]
        keys = np.concatenate([self.keys, keys])
        values = np.concatenate([self.values, values])
        if keys.size > self.size:
            chosen = np.argpartition(keys, self.size - 1)[: self.size]
            keys, values = keys[chosen], values[chosen]
        self.keys, self.values = keys, values


class NumericSeries:
    """A numeric feature (or the predictions' score or value) in the window."""

    def __init__(
        self,
        reference: dict[str, Any],
        schema_bounds: tuple[float | None, float | None],
        integer: bool,
        sample: Sample,
        *,
        ranged: bool = True,
    ) -> None:
        self.reference = reference
        self.schema_low, self.schema_high = schema_bounds
        # Values outside the schema's range, or the training data's where the schema sets none, are out of range.
        low = self.schema_low if self.schema_low is not None else reference.get("min")
        high = self.schema_high if self.schema_high is not None else reference.get("max")
        if not ranged:  # the predictions: no range to keep to
            low = high = None
        self.edges = np.asarray(reference["edges"], dtype=np.float64)
        self.counts = np.zeros(self.edges.size + 1, dtype=np.int64)
        self.low, self.high, self.integer = low, high, integer
        self.sample = sample
        self.n = self.nulls = self.missing = self.invalid = self.out_of_range = 0
        self.invalid_examples: list[str] = []
        self.range_examples: list[str] = []

    def add_values(self, values: np.ndarray) -> None:
        """Count finite, well-typed values."""
        if values.size == 0:
            return
        self.n += values.size
        self.counts += np.bincount(np.searchsorted(self.edges, values, side="right"), minlength=self.counts.size)
        outside = np.zeros(values.size, dtype=bool)
        if self.low is not None:
            outside |= values < self.low
        if self.high is not None:
            outside |= values > self.high
        if outside.any():
            self.out_of_range += int(outside.sum())
            for value in values[outside][: EXAMPLES - len(self.range_examples)]:
                _example(self.range_examples, float(value))
        self.sample.add(values)

    def add_column(self, column: Sequence[Any]) -> None:
        """Count one chunk of raw JSON values: numbers, nulls, and anything else (a wrong type)."""
        kinds = set(map(type, column))
        if kinds <= {int, float, type(None)}:
            array = np.array(column, dtype=np.float64)  # null -> NaN (JSON has no NaN of its own)
            nulls = np.isnan(array)
            self.nulls += int(nulls.sum())
            values = array[~nulls]
        else:
            numbers: list[float] = []
            for value in column:
                kind = type(value)
                if kind is float or kind is int:
                    numbers.append(float(value))
                elif value is None:
                    self.nulls += 1
                elif value is MISSING:
                    self.missing += 1
                else:
                    self.invalid += 1
                    _example(self.invalid_examples, value)
            values = np.array(numbers, dtype=np.float64)
        if self.integer and values.size:
            whole = values % 1 == 0
            if not whole.all():
                self.invalid += int((~whole).sum())
                for value in values[~whole][:EXAMPLES]:
                    _example(self.invalid_examples, float(value))
                values = values[whole]
        self.add_values(values)


class CategorySeries:
    """A category feature (or the predicted classes) in the window."""

    def __init__(self, reference: dict[str, Any], categories: list[str]) -> None:
        self.reference = reference
        self.categories = categories
        self.known = set(categories)
        self.counts: Counter[str] = Counter()
        self.unseen: Counter[str] = Counter()
        self.n = self.nulls = self.missing = self.invalid = self.unseen_total = 0
        self.invalid_examples: list[str] = []

    def add_column(self, column: Sequence[Any]) -> None:
        """Count one chunk of raw JSON values."""
        try:
            counted = Counter(column)
        except TypeError:  # a list or an object among the values
            counted = Counter(v if not isinstance(v, list | dict) else _Unhashable(type(v).__name__) for v in column)
        for value, count in counted.items():
            if type(value) is str and value in self.known:
                self.counts[value] += count
                self.n += count
            elif value is None or (type(value) is str and value == ""):
                self.nulls += count
            elif value is MISSING:
                self.missing += count
            elif type(value) is str:
                self.unseen_total += count
                if value in self.unseen or len(self.unseen) < MAX_DISTINCT:
                    self.unseen[value] += count
            else:
                self.invalid += count
                _example(self.invalid_examples, value)


# --------------------------------------------------------------------------------------------------------------------
# The scan: every statistic of a window in one pass
# --------------------------------------------------------------------------------------------------------------------


@dataclass
class Scan:
    """Everything the verdict is judged from."""

    window: Window
    features: dict[str, NumericSeries | CategorySeries]
    predictions: dict[str, NumericSeries | CategorySeries]
    reference_rows: int
    unknown_keys: Counter[str]
    lines_with_unknown_keys: int
    labels: Labels
    labelled_other_versions: int
    labelled: list[tuple[Any, Prediction]]


def _feature_series(
    schema: Schema, profile: dict[str, Any], params: MonitorParams
) -> dict[str, NumericSeries | CategorySeries]:
    series: dict[str, NumericSeries | CategorySeries] = {}
    for index, feature in enumerate(schema.features):
        reference = profile["features"][feature.name]
        if feature.numeric:
            rng = np.random.default_rng([params.seed, 2, index])
            sample = Sample(params.sample_size, rng)
            bounds = (feature.min, feature.max)
            series[feature.name] = NumericSeries(reference, bounds, feature.type == "integer", sample)
        else:
            series[feature.name] = CategorySeries(reference, feature.categories)
    return series


def _prediction_series(profile: dict[str, Any], params: MonitorParams) -> tuple[CategorySeries | None, NumericSeries]:
    """The predicted classes (classification only) and the score or predicted value."""
    predictions = profile["predictions"]
    sample = Sample(params.sample_size, np.random.default_rng([params.seed, 3]))
    if profile["task"] == "classification":
        labels = CategorySeries(predictions["label"], predictions["classes"])
        return labels, NumericSeries(predictions["score"], (None, None), False, sample, ranged=False)
    return None, NumericSeries(predictions["value"], (None, None), False, sample, ranged=False)


def _columns(
    inputs: list[dict[str, Any]], names: list[str], pick: Callable[[dict[str, Any]], Any]
) -> tuple[list[tuple[Any, ...]], list[dict[str, Any]]]:
    """A chunk's values, one tuple per feature, and the lines that may hold keys the schema does not know.

    ``MISSING`` stands where a line lacks a feature.
    """
    try:
        rows = list(map(pick, inputs))  # one C call per line when every line has every feature
    except KeyError:
        rows = [tuple(row.get(name, MISSING) for name in names) for row in inputs]
        suspects = inputs
    else:
        if len(names) == 1:
            rows = [(value,) for value in rows]
        suspects = [row for row in inputs if len(row) != len(names)]
    return (list(zip(*rows, strict=True)) if rows else [() for _ in names]), suspects


def check_profile(profile: dict[str, Any], schema: Schema) -> None:
    """Refuse a profile made for another schema or task."""
    if profile.get("format") != PROFILE_FORMAT:
        raise MonitorError(
            f"the reference profile has format {profile.get('format')!r}, not {PROFILE_FORMAT}: run `make repro`"
        )
    if set(profile.get("features", {})) != {f.name for f in schema.features}:
        raise MonitorError(
            "the reference profile describes other features than data/schema.yaml: run make repro to profile the "
            "current model"
        )
    if profile.get("task") != schema.target.kind:
        raise MonitorError(
            f"the reference profile is for a {profile.get('task')} model, the schema for {schema.target.kind}"
        )


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


@paused_gc()
def scan(
    files: list[Path],
    labels: Labels,
    schema: Schema,
    profile: dict[str, Any],
    params: MonitorParams,
    since: str | None,
    until: str | None,
) -> Scan:
    """Read the window once and count everything (the garbage collector paused)."""
    check_profile(profile, schema)
    window = Window(since, until)
    features = _feature_series(schema, profile, params)
    predicted_class, predicted = _prediction_series(profile, params)
    names = [f.name for f in schema.features]
    expected = frozenset(names)
    pick = operator.itemgetter(*names)
    version = profile.get("model_version")
    classes: list[str] = profile["predictions"].get("classes", [])
    positive = profile["predictions"].get("positive")
    binary_at = classes.index(positive) if len(classes) == 2 and positive in classes else None
    parse = prediction_parser(profile["task"], classes)
    unknown: Counter[str] = Counter()
    lines_with_unknown = reference_rows = labelled_other = 0
    labelled: list[tuple[Any, Prediction]] = []
    pending = labels.values
    for records, parsed in chunks(files, window, parse):
        _note_times(window, records)
        versions = _versions(records)
        _count(window.versions, versions)
        inputs = [r["inputs"] for r in records]
        columns, suspects = _columns(inputs, names, pick)
        for row in suspects:
            extra = [k for k in row if k not in expected]
            if extra:
                lines_with_unknown += 1
                for key in extra:
                    if key in unknown or len(unknown) < MAX_DISTINCT:
                        unknown[key] += 1
        for name, column in zip(names, columns, strict=True):
            features[name].add_column(column)
        mine = [i for i, v in enumerate(versions) if v == version]
        reference_rows += len(mine)
        ours = [parsed[i] for i in mine]
        if predicted_class is not None:
            predicted_class.add_column([p[0] for p in ours])  # type: ignore[index]
            if ours:
                probabilities = np.array([p[1] for p in ours], dtype=np.float64)  # type: ignore[index]
                score = probabilities[:, binary_at] if binary_at is not None else probabilities.max(axis=1)
                predicted.add_values(score[np.isfinite(score)])
        else:
            values = np.array(ours, dtype=np.float64)
            predicted.add_values(values[np.isfinite(values)])
        if pending:
            is_mine = set(mine)
            for i, record in enumerate(records):
                index = record.get("index", 0)
                joined = (str(record.get("request_id")), index if type(index) is int else -1)
                truth = pending.pop(joined, None)
                if truth is None:
                    continue
                if i in is_mine:
                    labelled.append((truth, parsed[i]))
                else:
                    labelled_other += 1
    predictions: dict[str, NumericSeries | CategorySeries] = {"score" if predicted_class else "value": predicted}
    if predicted_class is not None:
        predictions = {"class": predicted_class, **predictions}
    return Scan(
        window,
        features,
        predictions,
        reference_rows,
        unknown,
        lines_with_unknown,
        labels,
        labelled_other,
        labelled,
    )


# --------------------------------------------------------------------------------------------------------------------
# Judging: drift, decay, quality
# --------------------------------------------------------------------------------------------------------------------


def psi(reference: np.ndarray, window: np.ndarray) -> float:
    """Population stability index of two count vectors over the same bins (proportions floored at ``1e-4``)."""
    expected = np.maximum(reference / max(reference.sum(), 1), PSI_EPSILON)
    actual = np.maximum(window / max(window.sum(), 1), PSI_EPSILON)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def _test(series: NumericSeries | CategorySeries, min_window: int) -> dict[str, Any]:
    """The two-sample test and PSI of one series (``p_value`` None when not judged)."""
    from scipy import stats

    result: dict[str, Any] = {"values": series.n, "statistic": None, "p_value": None, "psi": None}
    if isinstance(series, NumericSeries):
        result["test"] = "Kolmogorov-Smirnov"
        if series.n < min_window:
            return result | {"status": "insufficient"}
        ks = stats.ks_2samp(np.asarray(series.reference["sample"]), series.sample.values)
        result |= {"statistic": float(ks.statistic), "p_value": float(ks.pvalue)}
        result["psi"] = psi(np.asarray(series.reference["counts"], dtype=np.float64), series.counts.astype(np.float64))
        return result
    result["test"] = "chi-squared"
    if series.n < min_window:
        return result | {"status": "insufficient"}
    reference = np.array([series.reference["counts"].get(c, 0) for c in series.categories], dtype=np.float64)
    window = np.array([series.counts.get(c, 0) for c in series.categories], dtype=np.float64)
    result["psi"] = psi(reference, window)
    seen = (reference + window) > 0
    if seen.sum() < 2:  # one category only, on both sides: nothing to compare
        return result | {"statistic": 0.0, "p_value": 1.0}
    chi2 = stats.chi2_contingency(np.vstack([reference[seen], window[seen]]))
    return result | {"statistic": float(chi2.statistic), "p_value": float(chi2.pvalue)}


def drift(scan_: Scan, params: MonitorParams, version: str | None) -> tuple[dict[str, Any], dict[str, Any], int]:
    """Per-feature and prediction results, Bonferroni over every test run on the window."""
    features = {name: _test(series, params.min_window) for name, series in scan_.features.items()}
    for name, result in features.items():
        result["type"] = scan_.features[name].reference.get("type")
    predictions: dict[str, Any] = {}
    for name, series in scan_.predictions.items():
        if scan_.reference_rows == 0:
            predictions[name] = {
                "test": "Kolmogorov-Smirnov" if isinstance(series, NumericSeries) else "chi-squared",
                "values": 0,
                "statistic": None,
                "p_value": None,
                "psi": None,
                "status": "skipped",
                "detail": f"no prediction of the profiled model version {version} in the window",
            }
        else:
            predictions[name] = _test(series, params.min_window)
        predictions[name]["type"] = "number" if isinstance(series, NumericSeries) else "category"
        if "name" in series.reference:
            predictions[name]["what"] = series.reference["name"]
    results = [*features.values(), *predictions.values()]
    tests = sum(1 for r in results if r["p_value"] is not None)
    level = params.alpha / max(tests, 1)
    for result in results:
        if "status" in result:
            continue
        significant = result["p_value"] < level
        large = result["psi"] >= params.psi_threshold
        result["status"] = "drift" if significant and large else "small" if significant else "ok"
    return features, predictions, tests


def decay(scan_: Scan, profile: dict[str, Any], schema: Schema, params: MonitorParams) -> dict[str, Any]:
    """Live metrics on the labelled predictions against the reference metrics (each judged if it has a limit)."""
    labelled = scan_.labelled
    reference = profile.get("metrics", {})
    section: dict[str, Any] = {"labelled": len(labelled), "min_labels": params.min_labels, "metrics": {}}
    live: dict[str, float] = {}
    higher_is_better: dict[str, bool] = {}
    if labelled and len(labelled) >= params.min_labels:
        from {{ cookiecutter.package_name }}.pipeline.evaluate import (
            HIGHER_IS_BETTER,  # scikit-learn: only when there is something to compute
        )

        live, higher_is_better = _metrics(labelled, profile, schema), HIGHER_IS_BETTER
    for name in sorted(set(params.max_drop) | set(live)):
        entry: dict[str, Any] = {"reference": reference.get(name), "live": live.get(name)}
        entry["max_drop"] = params.max_drop.get(name)
        entry["judged"] = name in params.max_drop
        if entry["live"] is not None and entry["reference"] is not None:
            worse = entry["reference"] - entry["live"]
            entry["drop"] = worse if higher_is_better.get(name, True) else -worse
        if entry["live"] is None:
            entry["status"] = "insufficient"
        elif not entry["judged"]:
            entry["status"] = "ok"
        elif entry["reference"] is None:
            entry["status"] = "missing"
        else:
            entry["status"] = "decay" if entry["drop"] > params.max_drop[name] else "ok"
        section["metrics"][name] = entry
    return section


def _metrics(labelled: list[tuple[Any, Prediction]], profile: dict[str, Any], schema: Schema) -> dict[str, float]:
    import pandas as pd

    from {{ cookiecutter.package_name }}.pipeline.evaluate import Predictions, compute

    if profile["task"] == "classification":
        classes = profile["predictions"]["classes"]
        known = set(classes)
        pairs = [(truth, pred) for truth, pred in labelled if truth in known]
        if not pairs:
            return {}
        actual = pd.Series([truth for truth, _ in pairs], dtype=object)
        predicted = np.asarray([pred[0] for _, pred in pairs])  # type: ignore[index]
        scores = np.array([pred[1] for _, pred in pairs], dtype=np.float64)  # type: ignore[index]
        scores /= np.maximum(scores.sum(axis=1, keepdims=True), 1e-12)  # float32 outputs sum to 1 only nearly
        return compute(Predictions(actual, predicted, scores, classes), schema)
    actual = pd.Series([float(truth) for truth, _ in labelled], dtype=np.float64)
    values = np.array([pred for _, pred in labelled], dtype=np.float64)
    return compute(Predictions(actual, values, None, []), schema)


def _problem(
    feature: str | None, problem: str, count: int, total: int, limit: float, examples: list[str], **extra: Any
) -> dict[str, Any]:
    share = count / total if total else 0.0
    return {
        "feature": feature,
        "problem": problem,
        "count": count,
        "share": share,
        "limit": limit,
        "examples": examples,
        "flagged": share > limit,
        **extra,
    }


def quality(scan_: Scan, params: MonitorParams) -> list[dict[str, Any]]:
    """Every data-quality problem found (flagged when above its limit)."""
    limits = params.quality
    window = scan_.window
    rows = window.rows
    problems = []
    if window.malformed:
        examples = [f"{e['file']}:{e['line']} {e['problem']}" for e in window.malformed_examples[:EXAMPLES]]
        problems.append(
            _problem(None, "malformed log lines", window.malformed, window.lines, limits.max_malformed, examples)
        )
    if scan_.lines_with_unknown_keys:
        keys = [k for k, _ in scan_.unknown_keys.most_common(EXAMPLES)]
        problems.append(
            _problem(None, "inputs not in the schema", scan_.lines_with_unknown_keys, rows, limits.max_invalid, keys)
        )
    if scan_.labels.invalid:
        problems.append(
            _problem(
                None,
                "unreadable labels",
                scan_.labels.invalid,
                scan_.labels.rows,
                limits.max_invalid,
                scan_.labels.examples,
            )
        )
    for name, series in scan_.features.items():
        if series.missing:
            problems.append(_problem(name, "missing from the inputs", series.missing, rows, limits.max_invalid, []))
        if series.invalid:
            problems.append(
                _problem(name, "wrong type", series.invalid, rows, limits.max_invalid, series.invalid_examples)
            )
        reference_rate = series.reference["nulls"] / max(series.reference["rows"], 1)
        rate = series.nulls / rows if rows else 0.0
        if rate > reference_rate + limits.max_null_increase:  # below that, the usual nulls of this feature
            entry = _problem(name, "nulls", series.nulls, rows, reference_rate + limits.max_null_increase, [])
            entry["reference_share"] = reference_rate
            problems.append(entry)
        if isinstance(series, NumericSeries) and series.out_of_range:
            bounds = f"[{_number(series.low)}, {_number(series.high)}]"
            learnt = [
                side for side, bound in (("min", series.schema_low), ("max", series.schema_high)) if bound is None
            ]
            source = f" (training data's {' and '.join(learnt)})" if learnt else ""
            problems.append(
                _problem(
                    name,
                    f"outside {bounds}{source}",
                    series.out_of_range,
                    rows,
                    limits.max_out_of_range,
                    series.range_examples,
                )
            )
        if isinstance(series, CategorySeries) and series.unseen_total:
            shown = [repr(k) for k, _ in series.unseen.most_common(EXAMPLES)]
            problems.append(_problem(name, "unseen categories", series.unseen_total, rows, limits.max_unseen, shown))
    return problems


def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:g}"


# --------------------------------------------------------------------------------------------------------------------
# The verdict and the report
# --------------------------------------------------------------------------------------------------------------------


def _names(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def summarise(verdict: dict[str, Any]) -> str:
    """The one-line summary: what to do, and why."""
    window = verdict["window"]
    drifted = [n for n, r in verdict["features"].items() if r["status"] == "drift"]
    predicted = [n for n, r in verdict["predictions"].items() if r["status"] == "drift"]
    decayed = {n: m for n, m in verdict["performance"]["metrics"].items() if m["status"] == "decay"}
    reasons = []
    if drifted or predicted:
        what = list(drifted) + ([f"the predictions ({', '.join(predicted)})"] if predicted else [])
        reasons.append(f"drift in {_names(what)}")
    if decayed:
        falls = [f"{n} {m['reference']:.4g} → {m['live']:.4g}" for n, m in decayed.items()]
        reasons.append(f"decay of {_names(falls)}")
    span = (
        f"{window['in_window']:,} predictions"
        + (f" from {window['first']} to {window['last']}" if window["first"] else "")
        + f", {window['malformed']:,} malformed line(s)"
    )
    flagged = [p for p in verdict["quality"]["problems"] if p["flagged"]]
    issues = f"; {len(flagged)} data-quality problem(s)" if flagged else ""
    reference = verdict["reference"]
    if window["in_window"] and not reference["rows_in_window"]:
        issues += f"; no prediction of the profiled model {reference['model_version']}: predictions and decay unjudged"
    if reasons:
        return f"Retrain: {'; '.join(reasons)} ({span}{issues})."
    if not verdict["tests"]:
        least = verdict["thresholds"]["min_window"]
        return f"Healthy, but too few predictions to judge drift (fewer than {least:,} values): {span}{issues}."
    return f"Healthy: no drift or decay beyond the thresholds ({span}{issues})."


def _fmt(value: Any) -> str:
    """A cell as the pull-request report formats it, with yes/no for booleans and thousands separators in counts."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    return markdown.cell(value)


def table(header: list[str], rows: list[list[Any]]) -> str:
    """A Markdown table in the pull-request report's layout."""
    return markdown.table(header, rows, _fmt)


def _code(text: str) -> str:
    return text.replace("`", "'")


def _pct(share: float) -> str:
    return f"{100 * share:.2f}%"


def _heading(verdict: dict[str, Any]) -> str:
    drifted = [f"`{n}`" for n, r in verdict["features"].items() if r["status"] == "drift"]
    if any(r["status"] == "drift" for r in verdict["predictions"].values()):
        drifted.append("the predictions")
    decayed = [f"`{n}`" for n, m in verdict["performance"]["metrics"].items() if m["status"] == "decay"]
    flagged = sum(1 for p in verdict["quality"]["problems"] if p["flagged"])
    note = f" (⚠️ {flagged} data-quality problem(s))" if flagged else ""
    if verdict["retrain"]:
        parts = ([f"drift in {_names(drifted)}"] if drifted else []) + (
            [f"decay of {_names(decayed)}"] if decayed else []
        )
        return f"### ❌ Retrain: {'; '.join(parts)}{note}"
    if not verdict["tests"]:
        return f"### ➖ Too few predictions to judge drift{note}"
    return f"### ✅ No drift or decay beyond the thresholds{note}"


def _window_section(verdict: dict[str, Any]) -> str:
    w = verdict["window"]
    labels = verdict["labels"]
    reference = verdict["reference"]
    versions = ", ".join(f"`{v}`: {n:,}" for v, n in list(w["model_versions"].items())[:10]) or "–"
    bounds = f"{w['since'] or 'the first line'} to {w['until'] or 'the last line'}"
    rows = [
        ["window (from `--since` to `--until`)", bounds],
        ["log files", w["files"]],
        ["lines read", w["lines"]],
        ["malformed lines (left out)", w["malformed"]],
        ["lines before / after the window", f"{w['before_since']:,} / {w['after_until']:,}"],
        ["predictions in the window", w["in_window"]],
        ["first / last", f"{w['first'] or '–'} / {w['last'] or '–'}"],
        ["model versions", versions],
        [f"predictions of the profiled model `{reference['model_version']}`", reference["rows_in_window"]],
        ["labels read (files)", f"{labels['rows']:,} ({labels['files']:,})"],
        ["labels joined to these predictions", labels["joined"]],
        ["labels matching no prediction in the window", labels["unmatched"]],
    ]
    section = f"### Window\n\n{table(['', ''], rows)}"
    if w["malformed_examples"]:
        shown = "\n".join(
            f"- `{e['file']}` line {e['line']}: {e['problem']}: `{_code(e['text'])}`" for e in w["malformed_examples"]
        )
        section += f"\n\nMalformed lines (first {len(w['malformed_examples'])}):\n\n{shown}"
    return section


def _drift_rows(results: dict[str, Any], label: Callable[[str, dict[str, Any]], str]) -> list[list[Any]]:
    return [
        [
            label(name, r),
            r.get("type"),
            r["test"],
            r["statistic"],
            r["p_value"],
            r["psi"],
            r["values"],
            RESULT[r["status"]],
        ]
        for name, r in results.items()
    ]


def _prediction_name(name: str, what: str | None) -> str:
    return name if not what or what == name else f"{name} ({what})"


def _drift_section(verdict: dict[str, Any]) -> str:
    t = verdict["thresholds"]
    tests = verdict["tests"]
    rule = (
        f"A series drifted when its test rejects at α/m = {t['alpha']:g}/{tests} = {t['alpha'] / max(tests, 1):.3g} "
        f"(Bonferroni over the {tests} tests of this window: the chance of any false alarm is at most {t['alpha']:g}) "
        f"**and** its PSI is at least {t['psi_threshold']:g}. Series with fewer than {t['min_window']:,} values are "
        "not judged; nulls are counted under data quality."
    )
    header = ["feature", "type", "test", "statistic", "p-value", "PSI", "values", "result"]
    features = table(header, _drift_rows(verdict["features"], lambda n, _: f"`{n}`"))
    names = {"class": "predicted class", "score": "score", "value": "predicted value"}
    predictions = table(
        ["prediction", *header[1:]],
        _drift_rows(verdict["predictions"], lambda n, r: _prediction_name(names.get(n, n), r.get("what"))),
    )
    skipped = [r["detail"] for r in verdict["predictions"].values() if r.get("detail")]
    note = f"\n\n_{skipped[0]}: the predictions are not compared._" if skipped else ""
    return (
        f"### Drift\n\n{rule}\n\n{features}\n\n### Predictions\n\nThe model's predictions against its predictions on "
        f"held-out data.\n\n{predictions}{note}"
    )


def _decay_section(verdict: dict[str, Any]) -> str:
    perf = verdict["performance"]
    n, needed = perf["labelled"], perf["min_labels"]
    if n < needed:
        why = "No label joined" if n == 0 else f"{n:,} labelled predictions, fewer than `min_labels` ({needed:,})"
        return f"### Decay\n\n_{why}: decay is not judged._"
    rows = []
    for name, m in perf["metrics"].items():
        change = "–"
        if m.get("drop") is not None:
            delta = m["live"] - m["reference"]
            change = "0" if abs(delta) < 1e-12 else f"{delta:+.4g} {'🔴' if m['drop'] > 0 else '🟢'}"
        rows.append(
            [name, m["reference"], m["live"], change, m["max_drop"], RESULT[m["status"]] if m["judged"] else "–"]
        )
    intro = f"On {n:,} labelled predictions of the profiled model, against its test-set metrics (🟢 better, 🔴 worse)."
    return f"### Decay\n\n{intro}\n\n{table(['metric', 'reference', 'live', 'change', 'max drop', 'result'], rows)}"


def _quality_section(verdict: dict[str, Any]) -> str:
    problems = verdict["quality"]["problems"]
    if not problems:
        return "### Data quality\n\nNo data-quality problem in the window."
    rows = [
        [
            f"`{p['feature']}`" if p["feature"] else "–",
            p["problem"],
            p["count"],
            _pct(p["share"]),
            _pct(p["limit"]),
            ", ".join(f"`{e}`" for e in p["examples"]) or "–",
            "⚠️ **above the limit**" if p["flagged"] else "✅ within",
        ]
        for p in problems
    ]
    intro = (
        "Shares of the predictions in the window (of the lines read for malformed lines); null limits are the training "
        "data's null rate plus the tolerance. Data-quality problems do not ask for retraining: fix their source."
    )
    header = ["feature", "problem", "rows", "share", "limit", "examples", "result"]
    return f"### Data quality\n\n{intro}\n\n{table(header, rows)}"


def _thresholds_section(verdict: dict[str, Any]) -> str:
    t = verdict["thresholds"]
    q = t["quality"]
    drops = ", ".join(f"{k} {v:g}" for k, v in t["max_drop"].items()) or "none"
    reference = verdict["reference"]
    return (
        "### Thresholds\n\n"
        f"From `params.yaml` (`monitor:`): alpha {t['alpha']:g}, PSI threshold {t['psi_threshold']:g}, min window "
        f"{t['min_window']:,}, min labels {t['min_labels']:,}, max drop: {drops}; quality: malformed "
        f"{_pct(q['max_malformed'])}, null increase {_pct(q['max_null_increase'])}, out of range "
        f"{_pct(q['max_out_of_range'])}, unseen {_pct(q['max_unseen'])}, invalid {_pct(q['max_invalid'])}.\n\n"
        f"Reference profile `{reference['path']}`: model `{reference['model_version']}`, "
        f"{reference['train_rows']:,} training rows, {reference['test_rows']:,} held-out predictions."
    )


def render(verdict: dict[str, Any], title: str) -> str:
    """The Markdown report: verdict and summary first, then window, drift, predictions, decay, quality."""
    sections = [
        f"## {title}",
        _heading(verdict),
        verdict["summary"],
        _window_section(verdict),
        _drift_section(verdict),
        _decay_section(verdict),
        _quality_section(verdict),
        _thresholds_section(verdict),
    ]
    return "\n\n".join(sections) + "\n"


def judge(
    scan_: Scan, profile: dict[str, Any], schema: Schema, params: MonitorParams, reference: Path
) -> dict[str, Any]:
    """The verdict of a scanned window."""
    version = profile.get("model_version")
    features, predictions, tests = drift(scan_, params, version)
    performance = decay(scan_, profile, schema, params)
    problems = quality(scan_, params)
    drifted = any(r["status"] == "drift" for r in [*features.values(), *predictions.values()])
    decayed = any(m["status"] == "decay" for m in performance["metrics"].values())
    verdict: dict[str, Any] = {
        "format": 1,
        "reference": {
            "path": str(reference),
            "model_version": version,
            "train_rows": profile["rows"]["train"],
            "test_rows": profile["rows"]["test"],
            "rows_in_window": scan_.reference_rows,
        },
        "window": scan_.window.summary(),
        "labels": {
            "files": scan_.labels.files,
            "rows": scan_.labels.rows,
            "invalid": scan_.labels.invalid,
            "joined": len(scan_.labelled) + scan_.labelled_other_versions,
            "joined_profiled_model": len(scan_.labelled),
            "unmatched": len(scan_.labels.values),
        },
        "thresholds": params.model_dump(),
        "tests": tests,
        "features": features,
        "predictions": predictions,
        "performance": performance,
        "quality": {"problems": problems, "flagged": sum(1 for p in problems if p["flagged"])},
        "drift": drifted,
        "decay": decayed,
        "quality_problems": any(p["flagged"] for p in problems),
        "retrain": drifted or decayed,
    }
    verdict["summary"] = summarise(verdict)
    return verdict


def load_profile(path: Path) -> dict[str, Any]:
    """The reference profile, or a ``MonitorError`` saying how to make it."""
    if not path.is_file():
        raise MonitorError(f"no reference profile at {path}: run `make repro` (or `make pull`) to make or fetch it")
    try:
        data: dict[str, Any] = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise MonitorError(f"the reference profile {path} is not valid JSON: {exc}") from None
    return data


def run(
    predictions_dir: Path,
    labels_dir: Path | None,
    schema: Schema,
    params: MonitorParams,
    reference: Path,
    output: Path,
    since: str | None,
    until: str | None,
    title: str,
) -> dict[str, Any]:
    """Monitor one window and write ``verdict.json`` and ``report.md`` to ``output``; return the verdict."""
    start, end = parse_time(since), parse_time(until)
    if start is not None and end is not None and start >= end:
        raise MonitorError(f"the window is empty: --since {since} is not before --until {until}")
    profile = load_profile(reference)
    check_profile(profile, schema)
    unknown = sorted(set(params.max_drop) - set(profile.get("metrics", {})))
    if unknown:
        known = ", ".join(sorted(profile.get("metrics", {})))
        raise MonitorError(f"params.yaml monitor.max_drop names {', '.join(unknown)}: this model's metrics are {known}")
    files = log_files(predictions_dir)
    labels = read_labels(labels_dir, schema)
    scanned = scan(files, labels, schema, profile, params, start, end)
    verdict = judge(scanned, profile, schema, params, reference)
    write_json(output / "verdict.json", verdict)
    write_text(output / "report.md", render(verdict, title))
    return verdict


# --------------------------------------------------------------------------------------------------------------------
# For retraining: the window's labelled rows as raw data
# --------------------------------------------------------------------------------------------------------------------


def _valid_row(inputs: dict[str, Any], schema: Schema) -> list[Any] | None:
    """The row's values in schema order if every feature satisfies the data contract, else None."""
    row: list[Any] = []
    for feature in schema.features:
        if feature.name not in inputs:
            return None
        value = inputs[feature.name]
        if value is None or (not feature.numeric and value == ""):
            if not feature.nullable:
                return None
            row.append(None)
            continue
        if feature.numeric:
            if type(value) is not int and type(value) is not float:
                return None
            number = float(value)
            if not math.isfinite(number) or (feature.type == "integer" and not number.is_integer()):
                return None
            if (feature.min is not None and number < feature.min) or (feature.max is not None and number > feature.max):
                return None
            row.append(int(number) if feature.type == "integer" else number)
        else:
            if type(value) is not str or value not in feature.categories:
                return None
            row.append(value)
    return row


def _valid_target(value: Any, schema: Schema) -> bool:
    target = schema.target
    if target.kind == "classification":
        return value in target.labels
    return (target.min is None or value >= target.min) and (target.max is None or value <= target.max)


def labelled_frame(
    predictions_dir: Path, labels_dir: Path, schema: Schema, since: str | None = None, until: str | None = None
) -> pd.DataFrame:
    """The window's labelled live rows as raw data: the schema's columns in order, features and target.

    Only rows that satisfy the data contract (the ``prepare`` stage would refuse the table otherwise); each
    ``(request_id, index)`` once, its first logged line. ``since``/``until`` take what ``--since``/``--until`` take.
    """
    import pandas as pd

    window = Window(parse_time(since), parse_time(until))
    labels = read_labels(labels_dir, schema)
    pending = labels.values
    rows: list[list[Any]] = []
    with paused_gc():
        for records, _ in chunks(log_files(predictions_dir), window, _any_prediction):
            if not pending:
                break
            for record in records:
                index = record.get("index", 0)
                key = (str(record.get("request_id")), index if type(index) is int else -1)
                if key not in pending:
                    continue
                truth = pending.pop(key)
                row = _valid_row(record["inputs"], schema)
                if row is not None and _valid_target(truth, schema):
                    rows.append([*row, truth])
    frame = pd.DataFrame(rows, columns=schema.columns)
    for feature in schema.features:
        if feature.type == "integer":
            frame[feature.name] = frame[feature.name].astype("Int64")
        elif feature.type == "number":
            frame[feature.name] = frame[feature.name].astype("float64")
        else:
            frame[feature.name] = frame[feature.name].astype(object)
    if schema.target.kind == "regression":
        frame[schema.target.name] = frame[schema.target.name].astype("float64")
    return frame


def _any_prediction(pred: Any) -> Prediction | None:
    """Retraining needs the inputs, not the prediction: any ``prediction`` object will do."""
    return ("", []) if isinstance(pred, dict) else None
