"""Scoring rules every tier reads: which way each metric improves, and what a classifier's score is.

Standard library only, so the gate, the pull-request report and the monitor read them without scikit-learn.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType

HIGHER_IS_BETTER: Mapping[str, bool] = MappingProxyType(
    {
        "accuracy": True,
        "balanced_accuracy": True,
        "f1_macro": True,
        "roc_auc": True,
        "average_precision": True,
        "log_loss": False,
        "r2": True,
        "rmse": False,
        "mae": False,
    }
)
"""The direction of every metric the ``evaluate`` stage computes (a metric not listed: higher is better)."""


def worsening(name: str, value: float, before: float) -> float:
    """How much worse ``value`` is than ``before`` for the metric ``name`` (negative when it is better)."""
    return before - value if HIGHER_IS_BETTER.get(name, True) else value - before


def score_column(classes: Sequence[str], positive: str | None) -> int | None:
    """Which probability is a classifier's score: the positive class's (binary), else None: the predicted class's.

    The one rule the reference profile and the monitor share: a score is one number per prediction, the
    probability in column ``score_column(...)``, or the largest probability when it is None.
    """
    if len(classes) == 2 and positive is not None and positive in classes:
        return list(classes).index(positive)
    return None


def score_name(classes: Sequence[str], positive: str | None) -> str:
    """What the score of a classifier's prediction is, in words (see :func:`score_column`)."""
    if score_column(classes, positive) is not None:
        return f"probability of {positive!r}"
    return "probability of the predicted class"
