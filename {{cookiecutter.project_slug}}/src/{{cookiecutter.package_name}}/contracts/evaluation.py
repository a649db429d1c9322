"""The ``evaluate`` stage's metrics file (``metrics/metrics.json``): the model's test metrics beside a naive baseline's.

Both are scored on the same test rows, so that the gate and the report can tell a model that learned something from
one that did not::

    {"model": {"accuracy": 0.91, ...},
     "naive_baseline": {"estimator": "DummyClassifier(strategy='prior')", "metrics": {"accuracy": 0.62, ...}},
     "bootstrap": {"resamples": 1000, "confidence": 0.95, "seed": 42,
                   "intervals": {"accuracy": {"low": 0.89, "high": 0.93, "defined": 1000}, ...},
                   "undefined": {}}}

The naive baseline ignores the features: it always predicts the training split's class frequencies (classification)
or its mean (regression). ``bootstrap`` holds confidence intervals of the model's headline metrics: each metric
recomputed on ``resamples`` sets of test rows drawn with replacement (seeded), the interval being the middle
``confidence`` share of those values (percentile bootstrap). Written by ``evaluate``; read by ``export``, ``profile``,
``validate``, ``track``, ``report`` and ``card``. Standard library only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TypedDict

from {{ cookiecutter.package_name }}.contracts.errors import ProjectError
from {{ cookiecutter.package_name }}.contracts.io import write_json

Scores = dict[str, float]
"""Metric name -> value on the test set (the names are those of ``contracts.scoring.HIGHER_IS_BETTER``)."""


class NaiveBaseline(TypedDict):
    """What a model that ignores the features scores on the same test rows, and which estimator that is."""

    estimator: str
    metrics: Scores


class Interval(TypedDict):
    """A metric's bootstrap interval, over the ``defined`` resamples where the metric could be computed."""

    low: float
    high: float
    defined: int


class Bootstrap(TypedDict):
    """Confidence intervals of the model's headline metrics, and how they were drawn.

    ``undefined``: metrics with no interval, each with the reason (e.g. every resample held a single class).
    """

    resamples: int
    confidence: float
    seed: int
    intervals: dict[str, Interval]
    undefined: dict[str, str]


class Evaluation(TypedDict):
    """The whole metrics file."""

    model: Scores
    naive_baseline: NaiveBaseline
    bootstrap: Bootstrap


class MetricsFileError(ProjectError):
    """A metrics file that is missing or is not one this code writes: the message names the file and the problem."""


def evaluation(model: Scores, estimator: str, naive: Scores, bootstrap: Bootstrap) -> Evaluation:
    """The metrics file's content."""
    return {
        "model": dict(model),
        "naive_baseline": {"estimator": estimator, "metrics": dict(naive)},
        "bootstrap": bootstrap,
    }


def bounds(bootstrap: Bootstrap, name: str) -> tuple[float, float] | None:
    """The interval of the metric ``name`` as (low, high), or None when it has none."""
    interval = bootstrap["intervals"].get(name)
    return None if interval is None else (interval["low"], interval["high"])


def interval_notes(bootstrap: Bootstrap) -> list[str]:
    """How the intervals were drawn, and every metric whose interval is partial or missing, in sentences."""
    notes = [
        f"Intervals: {bootstrap['confidence'] * 100:g}% percentile bootstrap over {bootstrap['resamples']:,} "
        f"resamples of the test rows (seed {bootstrap['seed']})."
    ]
    for name, interval in sorted(bootstrap["intervals"].items()):
        if interval["defined"] < bootstrap["resamples"]:
            left = bootstrap["resamples"] - interval["defined"]
            notes.append(
                f"`{name}` was undefined in {left:,} resamples (a single class drawn): its interval is over the "
                f"other {interval['defined']:,}."
            )
    notes += [f"`{name}`: no interval: {why}." for name, why in sorted(bootstrap["undefined"].items())]
    return notes


def _bootstrap(value: object, source: str) -> Bootstrap:
    """The metrics file's ``bootstrap`` entry, checked field by field."""
    fields = {"resamples": int, "confidence": float, "seed": int, "intervals": dict, "undefined": dict}
    if not isinstance(value, dict) or any(not isinstance(value.get(k), t) for k, t in fields.items()):
        raise MetricsFileError(f"{source}: bootstrap needs {', '.join(fields)} (run `dvc repro evaluate`)")
    intervals: dict[str, Interval] = {}
    keys = ("low", "high", "defined")
    for name, entry in value["intervals"].items():
        if not isinstance(entry, dict) or any(not isinstance(entry.get(k), int | float) for k in keys):
            raise MetricsFileError(f"{source}: the bootstrap interval of {name} needs low, high and defined (numbers)")
        low, high, defined = (entry[k] for k in keys)
        intervals[str(name)] = {"low": float(low), "high": float(high), "defined": int(defined)}
    return {
        "resamples": value["resamples"],
        "confidence": value["confidence"],
        "seed": value["seed"],
        "intervals": intervals,
        "undefined": {str(k): str(v) for k, v in value["undefined"].items()},
    }


def write(path: Path, content: Evaluation) -> None:
    """Write the metrics file (stable, sorted JSON, written atomically)."""
    write_json(path, content)


def _scores(value: object, where: str, source: str) -> Scores:
    if not isinstance(value, dict):
        raise MetricsFileError(f"{source}: {where} is not a mapping of metric names to numbers")
    bad = sorted(str(k) for k, v in value.items() if isinstance(v, bool) or not isinstance(v, int | float))
    if bad:
        raise MetricsFileError(f"{source}: {where} has values that are not numbers: {', '.join(bad)}")
    return {str(k): float(v) for k, v in value.items()}


def parse(document: object, source: str) -> Evaluation:
    """A parsed metrics file, or a :class:`MetricsFileError` naming ``source`` and what is wrong with it."""
    missing = [k for k in Evaluation.__annotations__ if not isinstance(document, dict) or k not in document]
    if missing:
        raise MetricsFileError(f"{source} is not a metrics file: no {', '.join(missing)} (run `dvc repro evaluate`)")
    assert isinstance(document, dict)
    naive = document["naive_baseline"]
    if not isinstance(naive, dict) or not isinstance(naive.get("estimator"), str):
        raise MetricsFileError(f"{source}: naive_baseline needs an estimator (a string) and its metrics")
    return evaluation(
        _scores(document["model"], "model", source),
        naive["estimator"],
        _scores(naive.get("metrics"), "naive_baseline.metrics", source),
        _bootstrap(document["bootstrap"], source),
    )


def read(path: Path) -> Evaluation:
    """The metrics file at ``path``, or a :class:`MetricsFileError` naming the file and what is wrong with it."""
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise MetricsFileError(f"cannot read the metrics file {path}: {exc} (run `dvc repro evaluate`)") from None
    return parse(document, str(path))


def committed_model_scores(document: object) -> Scores | None:
    """The model's metrics in a metrics file as committed on the baseline ref, or None.

    The file is in this format, one before the bootstrap (no ``bootstrap``) or one before the naive baseline (a flat
    mapping of metric names to numbers); None when there is no file or it is none of them.
    """
    if isinstance(document, dict) and "model" in document:
        try:
            return _scores(document["model"], "model", "the committed metrics file")
        except MetricsFileError:
            return None
    try:
        return _scores(document, "the metrics", "the committed metrics file")
    except MetricsFileError:
        return None
