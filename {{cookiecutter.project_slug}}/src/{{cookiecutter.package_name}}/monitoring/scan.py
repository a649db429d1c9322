"""The scan: every statistic of a window in one pass over the log, in chunks, with the labels joined on the way."""

from __future__ import annotations

import operator
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from {{ cookiecutter.package_name }}.contracts.prediction_log import Parsed, join_key, prediction_parser
from {{ cookiecutter.package_name }}.contracts.profile import Profile, classified, regressed
from {{ cookiecutter.package_name }}.contracts.scoring import score_column
from {{ cookiecutter.package_name }}.monitoring.errors import MonitorError
from {{ cookiecutter.package_name }}.monitoring.labels import Labels, Truth
from {{ cookiecutter.package_name }}.monitoring.logs import MAX_DISTINCT, Window, chunks, paused_gc
from {{ cookiecutter.package_name }}.monitoring.series import MISSING, CategorySeries, NumericSeries, Sample, Series
from {{ cookiecutter.package_name }}.pipeline.config import MonitorParams
from {{ cookiecutter.package_name }}.pipeline.schema import Schema


@dataclass
class Scan:
    """Everything the verdict is judged from."""

    window: Window
    features: dict[str, Series]
    predictions: dict[str, Series]
    reference_rows: int
    unknown_keys: Counter[str]
    lines_with_unknown_keys: int
    labels: Labels
    labelled_other_versions: int
    labelled: list[tuple[Truth, Parsed]]


def _feature_series(schema: Schema, profile: Profile, params: MonitorParams) -> dict[str, Series]:
    series: dict[str, Series] = {}
    for index, feature in enumerate(schema.features):
        reference = profile["features"][feature.name]
        if feature.numeric and reference["type"] != "category":
            rng = np.random.default_rng([params.seed, 2, index])
            sample = Sample(params.sample_size, rng)
            bounds = (feature.min, feature.max)
            series[feature.name] = NumericSeries(reference, bounds, feature.type == "integer", sample)
        elif not feature.numeric and reference["type"] == "category":
            series[feature.name] = CategorySeries(reference, feature.categories)
        else:
            raise MonitorError(
                f"the reference profile has {feature.name} as {reference['type']}, data/schema.yaml as "
                f"{feature.type}: run make repro to profile the current model"
            )
    return series


def _prediction_series(profile: Profile, params: MonitorParams) -> tuple[CategorySeries | None, NumericSeries]:
    """The predicted classes (classification only) and the score or predicted value."""
    sample = Sample(params.sample_size, np.random.default_rng([params.seed, 3]))
    predictions = classified(profile["predictions"])
    if predictions is not None:
        labels = CategorySeries(predictions["label"], predictions["classes"])
        return labels, NumericSeries(predictions["score"], (None, None), False, sample, ranged=False)
    values = regressed(profile["predictions"])
    return None, NumericSeries(values["value"], (None, None), False, sample, ranged=False)


def _columns(
    inputs: Sequence[dict[str, object]], names: list[str], pick: Callable[[dict[str, object]], object]
) -> tuple[list[tuple[object, ...]], Sequence[dict[str, object]]]:
    """A chunk's values, one tuple per feature, and the lines that may hold keys the schema does not know.

    ``MISSING`` stands where a line lacks a feature.
    """
    rows: list[Any]
    try:
        rows = list(map(pick, inputs))  # one C call per line when every line has every feature
    except KeyError:
        rows = [tuple(row.get(name, MISSING) for name in names) for row in inputs]
        suspects = inputs
    else:
        if len(names) == 1:
            rows = [(value,) for value in rows]
        suspects = [row for row in inputs if len(row) != len(names)]
    return (list(zip(*rows, strict=True)) if rows else [() for _ in names]), suspects  # type: ignore[call-overload]


def check_profile(profile: Profile, schema: Schema) -> None:
    """Refuse a profile made for another schema or task."""
    if set(profile["features"]) != {f.name for f in schema.features}:
        raise MonitorError(
            "the reference profile describes other features than data/schema.yaml: run make repro to profile the "
            "current model"
        )
    if profile["task"] != schema.target.kind:
        raise MonitorError(
            f"the reference profile is for a {profile['task']} model, the schema for {schema.target.kind}"
        )


@paused_gc()
def scan(
    files: list[Path],
    labels: Labels,
    schema: Schema,
    profile: Profile,
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
    version = profile["model_version"]
    reference = classified(profile["predictions"])
    classes = reference["classes"] if reference is not None else []
    binary_at = score_column(classes, reference["positive"]) if reference is not None else None
    parse = prediction_parser(profile["task"], classes)
    unknown: Counter[str] = Counter()
    lines_with_unknown = reference_rows = labelled_other = 0
    labelled: list[tuple[Truth, Parsed]] = []
    pending = labels.values
    for records, parsed in chunks(files, window, parse):
        versions = window.note(records)
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
                truth = pending.pop(join_key(record), None)
                if truth is None:
                    continue
                if i in is_mine:
                    labelled.append((truth, parsed[i]))
                else:
                    labelled_other += 1
    predictions: dict[str, Series] = {"score" if predicted_class else "value": predicted}
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
