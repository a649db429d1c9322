"""The reference profile: written by the ``profile`` stage with the model, read by the ``monitor`` command.

Per feature of the training split, the distribution (numbers: bins at the quantiles with their counts and a sample;
categories: the count of each), the model's predictions on the held-out split (classes and score, or value), its
test-set metrics and its version. Standard library only: the monitor reads it without pandas or onnxruntime.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal, NotRequired, TypedDict, cast

from {{ cookiecutter.package_name }}.contracts.errors import ProjectError
from {{ cookiecutter.package_name }}.contracts.io import write_json

FORMAT = 1
"""Version of the profile's layout: a profile of another format is refused."""


class NumericProfile(TypedDict):
    """A numeric series: a number feature, or the predictions' score or value."""

    type: Literal["integer", "number"]
    rows: int
    nulls: int
    min: float | None
    max: float | None
    edges: list[float]  # inner bin edges at the quantiles; a value equal to an edge counts in the bin above it
    counts: list[int]  # values in each of the len(edges) + 1 bins
    sample: list[float]  # a seeded sample of the values, sorted (for the two-sample Kolmogorov-Smirnov test)
    name: NotRequired[str]  # what a prediction series is, in words (predictions only)


class CategoryProfile(TypedDict):
    """A category series: a category feature, or the predicted classes."""

    type: Literal["category"]
    rows: int
    nulls: int
    counts: dict[str, int]


class ClassPredictions(TypedDict):
    """A classifier's predictions on the held-out split."""

    rows: int
    classes: list[str]
    positive: str | None
    label: CategoryProfile
    score: NumericProfile


class ValuePredictions(TypedDict):
    """A regressor's predictions on the held-out split."""

    rows: int
    value: NumericProfile


class Rows(TypedDict):
    """Rows of each split."""

    train: int
    test: int


class Settings(TypedDict):
    """How the profile was made (``params.yaml``'s ``monitor:``, the sample size after the budget)."""

    bins: int
    sample_size: int
    seed: int


class Profile(TypedDict):
    """The reference profile (``paths.reference``)."""

    format: int
    model_version: str | None
    task: Literal["classification", "regression"]
    target: str
    rows: Rows
    settings: Settings
    features: dict[str, NumericProfile | CategoryProfile]
    predictions: ClassPredictions | ValuePredictions
    metrics: dict[str, float]


def classified(predictions: ClassPredictions | ValuePredictions) -> ClassPredictions | None:
    """A classifier's predictions, or None for a regressor's."""
    return cast(ClassPredictions, predictions) if "classes" in predictions else None


def regressed(predictions: ClassPredictions | ValuePredictions) -> ValuePredictions:
    """A regressor's predictions; ``ProfileError`` for a classifier's."""
    if "value" not in predictions:
        raise ProfileError("the reference profile holds a classifier's predictions, not a predicted value")
    return cast(ValuePredictions, predictions)


class ProfileError(ProjectError, ValueError):
    """The reference profile is missing or is not one this code reads; the message says how to make it."""


def write(path: Path, profile: Profile) -> None:
    """Write ``profile`` to ``path`` (compact JSON, keys sorted, atomically)."""
    write_json(path, profile, indent=None)


def load(path: Path) -> Profile:
    """Read the profile at ``path``; ``ProfileError`` naming the problem if there is none or it is not readable."""
    if not path.is_file():
        raise ProfileError(f"no reference profile at {path}: run `make repro` (or `make pull`) to make or fetch it")
    try:
        data = json.loads(path.read_bytes())
    except ValueError as exc:
        raise ProfileError(f"the reference profile {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ProfileError(f"the reference profile {path} is not a JSON object: run `make repro`")
    if data.get("format") != FORMAT:
        raise ProfileError(f"the reference profile has format {data.get('format')!r}, not {FORMAT}: run `make repro`")
    missing = sorted(set(Profile.__required_keys__) - set(data))
    if missing:
        raise ProfileError(f"the reference profile {path} has no {', '.join(missing)}: run `make repro`")
    return cast(Profile, data)
