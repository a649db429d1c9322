"""The verdict (``verdict.json``): what the monitor decided about a window and why; the report is made from it.

The monitor workflow reads ``retrain`` from the file; everything else is for the report and for people.
"""

from __future__ import annotations

from typing import NotRequired, TypedDict

from {{ cookiecutter.package_name }}.monitoring.logs import WindowSummary


class SeriesResult(TypedDict):
    """The drift test of one series (a feature, or the predictions)."""

    test: str  # "Kolmogorov-Smirnov" | "chi-squared"
    values: int
    statistic: float | None
    p_value: float | None  # None: not tested
    psi: float | None
    status: NotRequired[str]  # "ok" | "drift" | "small" | "insufficient" | "skipped" (set once judged)
    type: NotRequired[str | None]  # the feature's type; "number" or "category" for the predictions
    what: NotRequired[str]  # what a prediction series is, in words
    detail: NotRequired[str]  # why a series was skipped


class MetricResult(TypedDict):
    """One metric: live against reference."""

    reference: float | None
    live: float | None
    max_drop: float | None
    judged: bool  # whether params.yaml sets a max_drop for it
    drop: NotRequired[float]  # how much worse live is (negative: better)
    status: NotRequired[str]  # "ok" | "decay" | "insufficient" | "missing"


class Performance(TypedDict):
    """Decay: the labelled predictions of the profiled model and their metrics."""

    labelled: int
    min_labels: int
    metrics: dict[str, MetricResult]


class Problem(TypedDict):
    """One data-quality problem."""

    feature: str | None
    problem: str
    count: int
    share: float
    limit: float
    examples: list[str]
    flagged: bool
    reference_share: NotRequired[float]  # nulls: the training data's null rate


class Quality(TypedDict):
    """Every data-quality problem found, and how many are above their limit."""

    problems: list[Problem]
    flagged: int


class Reference(TypedDict):
    """The reference profile judged against."""

    path: str
    model_version: str | None
    train_rows: int
    test_rows: int
    rows_in_window: int


class LabelsSummary(TypedDict):
    """What reading and joining the labels found."""

    files: int
    rows: int
    invalid: int
    joined: int
    joined_profiled_model: int
    unmatched: int


class QualityLimits(TypedDict):
    """``params.yaml``'s ``monitor.quality``."""

    max_malformed: float
    max_null_increase: float
    max_out_of_range: float
    max_unseen: float
    max_invalid: float


class Thresholds(TypedDict):
    """``params.yaml``'s ``monitor:`` as the verdict records it (``MonitorParams.model_dump()``)."""

    bins: int
    sample_size: int
    seed: int
    alpha: float
    psi_threshold: float
    min_window: int
    min_labels: int
    max_drop: dict[str, float]
    quality: QualityLimits


class Verdict(TypedDict):
    """The whole verdict."""

    format: int
    reference: Reference
    window: WindowSummary
    labels: LabelsSummary
    thresholds: Thresholds
    tests: int  # the tests run on the window (Bonferroni's m)
    features: dict[str, SeriesResult]
    predictions: dict[str, SeriesResult]
    performance: Performance
    quality: Quality
    drift: bool
    decay: bool
    quality_problems: bool
    retrain: bool
    summary: str
