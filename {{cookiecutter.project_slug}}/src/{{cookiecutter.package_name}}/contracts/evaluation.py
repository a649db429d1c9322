"""The ``evaluate`` stage's metrics file (``metrics/metrics.json``): the model's test metrics beside a naive baseline's.

Both are scored on the same test rows, so that the gate and the report can tell a model that learned something from
one that did not::

    {"model": {"accuracy": 0.91, ...},
     "naive_baseline": {"estimator": "DummyClassifier(strategy='prior')", "metrics": {"accuracy": 0.62, ...}}}

The naive baseline ignores the features: it always predicts the training split's class frequencies (classification)
or its mean (regression). Written by ``evaluate``; read by ``export``, ``profile``, ``validate``, ``track`` and
``report``. Standard library only.
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


class Evaluation(TypedDict):
    """The whole metrics file."""

    model: Scores
    naive_baseline: NaiveBaseline


class MetricsFileError(ProjectError):
    """A metrics file that is missing or is not one this code writes: the message names the file and the problem."""


def evaluation(model: Scores, estimator: str, naive: Scores) -> Evaluation:
    """The metrics file's content."""
    return {"model": dict(model), "naive_baseline": {"estimator": estimator, "metrics": dict(naive)}}


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

    The file is in this format or the one before the naive baseline (a flat mapping of metric names to numbers); None
    when there is no file or it is neither.
    """
    if isinstance(document, dict) and "model" in document:
        try:
            return parse(document, "the committed metrics file")["model"]
        except MetricsFileError:
            return None
    try:
        return _scores(document, "the metrics", "the committed metrics file")
    except MetricsFileError:
        return None
