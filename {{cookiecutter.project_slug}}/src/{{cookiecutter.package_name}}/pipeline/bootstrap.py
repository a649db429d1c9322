"""Confidence intervals of the headline test-set metrics: a seeded percentile bootstrap, vectorized.

The test rows are drawn with replacement ``resamples`` times, once: each resample is a row of counts (how often each
test row was drawn), and every metric is computed from those counts for all resamples at once, with sums over arrays
(no Python loop over resamples). Classification: accuracy, macro F1 and ROC AUC (micro-averaged over the classes of a
multiclass model, as ``evaluate.compute``); regression: RMSE, MAE and R². Counts are integers, so the classification
metrics are exact; the sums of the regression metrics are numpy's own (pairwise, single-threaded): the same seed gives
the same file, byte for byte.

A resample can leave a metric undefined: ROC AUC when it drew a single class, R² when every drawn target is equal.
Those resamples are left out of that metric's interval, and the count kept (``Interval.defined``); a metric undefined
in every resample has no interval and its reason is recorded (``Bootstrap.undefined``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from {{ cookiecutter.package_name }}.contracts.evaluation import Bootstrap, Interval, Scores
from {{ cookiecutter.package_name }}.pipeline.config import BootstrapParams

HEADLINE = {"classification": ("accuracy", "f1_macro", "roc_auc"), "regression": ("rmse", "mae", "r2")}
"""The metrics given an interval, per task."""
SINGLE_CLASS = "a single class in every resample"
CONSTANT_TARGET = "the same target value in every resample"


def draw_counts(rows: int, params: BootstrapParams) -> np.ndarray:
    """How often each of ``rows`` test rows is drawn in each resample: ``(resamples, rows)`` integer counts."""
    rng = np.random.default_rng(params.seed)
    drawn = rng.integers(0, rows, size=(params.resamples, rows))
    offsets = (np.arange(params.resamples) * rows)[:, None]
    counts: np.ndarray = np.bincount((drawn + offsets).ravel(), minlength=params.resamples * rows)
    return counts.reshape(params.resamples, rows)


def _f1_macro(counts: np.ndarray, actual: np.ndarray, predicted: np.ndarray, classes: list[str]) -> np.ndarray:
    """Macro F1 per resample over the classes drawn or predicted in it (scikit-learn's labels; 0 where undefined)."""
    total, present = np.zeros(len(counts)), np.zeros(len(counts))
    for label in classes:
        is_true, is_pred = actual == label, predicted == label
        tp = counts @ (is_true & is_pred).astype(np.int64)
        wrong = counts @ (is_true ^ is_pred).astype(np.int64)  # false positives and false negatives
        denominator = 2 * tp + wrong
        total += np.divide(2 * tp, denominator, out=np.zeros(len(counts)), where=denominator > 0)
        present += denominator > 0
    result: np.ndarray = total / np.maximum(present, 1)
    return result


def roc_auc(counts: np.ndarray, truth: np.ndarray, score: np.ndarray) -> np.ndarray:
    """ROC AUC per resample (rows of ``counts`` weight the pairs ``truth``/``score``): NaN where a class is absent.

    The Mann-Whitney statistic with ties counted half: every positive's share of negatives scored below it.
    """
    order = np.argsort(score, kind="stable")
    ordered = score[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])  # one group per distinct score
    weights = counts[:, order]
    positive = truth[order].astype(bool)
    pos = np.add.reduceat(weights * positive, starts, axis=1)
    neg = np.add.reduceat(weights * ~positive, starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg
    twice = (pos * (2 * below + neg)).sum(axis=1)  # integers: exact
    pairs = pos.sum(axis=1) * neg.sum(axis=1)
    result: np.ndarray = np.divide(twice, 2 * pairs, out=np.full(len(counts), np.nan), where=pairs > 0)
    return result


def _classification(
    counts: np.ndarray,
    actual: np.ndarray,
    predicted: np.ndarray,
    scores: np.ndarray,
    classes: list[str],
    positive: str | None,
) -> dict[str, np.ndarray]:
    """Accuracy, macro F1 and ROC AUC per resample (``positive``: a binary model's positive class, else None)."""
    n = counts.sum(axis=1)
    result = {
        "accuracy": (counts @ (actual == predicted).astype(np.int64)) / n,
        "f1_macro": _f1_macro(counts, actual, predicted, classes),
    }
    one_hot = (actual[:, None] == np.asarray(classes)[None, :]).astype(np.int64)
    single = ((counts @ one_hot) > 0).sum(axis=1) < 2
    if positive is not None:
        auc = roc_auc(counts, actual == positive, scores[:, classes.index(positive)])
    else:  # every class's one-vs-rest pairs pooled: each row weighs on its len(classes) pairs
        auc = roc_auc(np.repeat(counts, len(classes), axis=1), one_hot.ravel(), scores.ravel())
    result["roc_auc"] = np.where(single, np.nan, auc)
    return result


def _regression(counts: np.ndarray, actual: np.ndarray, predicted: np.ndarray) -> dict[str, np.ndarray]:
    """RMSE, MAE and R² per resample (sums by numpy's pairwise summation, not BLAS: the same on every machine)."""
    n = counts.sum(axis=1)
    error = actual - predicted
    mean = (counts * actual).sum(axis=1) / n
    spread = (counts * (actual[None, :] - mean[:, None]) ** 2).sum(axis=1)
    squared = (counts * error**2).sum(axis=1)
    unexplained = np.divide(squared, spread, out=np.full(len(counts), np.nan), where=spread > 0)
    return {"rmse": np.sqrt(squared / n), "mae": (counts * np.abs(error)).sum(axis=1) / n, "r2": 1 - unexplained}


def intervals(
    replicates: dict[str, np.ndarray], point: Scores, params: BootstrapParams, reason: Callable[[str], str]
) -> Bootstrap:
    """The percentile intervals of the metrics ``point`` holds, from their resampled values (NaN: undefined)."""
    tail = (1 - params.confidence) / 2
    found: dict[str, Interval] = {}
    undefined: dict[str, str] = {}
    for name, values in replicates.items():
        if name not in point:
            continue
        defined = values[~np.isnan(values)]
        if not len(defined):
            undefined[name] = reason(name)
            continue
        low, high = np.quantile(defined, [tail, 1 - tail])
        found[name] = {"low": round(float(low), 10), "high": round(float(high), 10), "defined": len(defined)}
    return {
        "resamples": params.resamples,
        "confidence": params.confidence,
        "seed": params.seed,
        "intervals": found,
        "undefined": undefined,
    }


def bootstrap(
    actual: np.ndarray,
    predicted: np.ndarray,
    scores: np.ndarray | None,
    classes: list[str],
    positive: str | None,
    point: Scores,
    params: BootstrapParams,
) -> Bootstrap:
    """Intervals of the headline metrics in ``point`` (the test-set values) for these predictions.

    Classification when ``scores`` (class probabilities, columns in ``classes`` order) are given, else regression.
    """
    counts = draw_counts(len(actual), params)
    if scores is None:
        values = np.asarray(actual, dtype=float)
        replicates = _regression(counts, values, np.asarray(predicted, dtype=float))
        return intervals(replicates, point, params, lambda name: CONSTANT_TARGET)
    labels = np.asarray(actual).astype(str)
    replicates = _classification(counts, labels, np.asarray(predicted).astype(str), scores, classes, positive)
    return intervals(replicates, point, params, lambda name: SINGLE_CLASS)
