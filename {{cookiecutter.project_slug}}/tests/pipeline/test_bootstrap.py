"""The bootstrap behind the test-set metrics' confidence intervals: seeded, vectorized, equal to scikit-learn's
metrics on each resample, and honest about resamples where a metric is undefined."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import Workspace
from sklearn import metrics as skm

from {{ cookiecutter.package_name }}.contracts import evaluation
from {{ cookiecutter.package_name }}.pipeline import bootstrap as bs
from {{ cookiecutter.package_name }}.pipeline import evaluate, train
from {{ cookiecutter.package_name }}.pipeline.config import BootstrapParams
from {{ cookiecutter.package_name }}.pipeline.schema import Schema

PARAMS = BootstrapParams(resamples=1000, confidence=0.95, seed=7)


def classifier(rows: int, seed: int = 0, positives: float = 0.3) -> dict[str, np.ndarray]:
    """A noisy binary classifier's outputs: labels, predictions and probabilities (columns: no, yes)."""
    rng = np.random.default_rng(seed)
    truth = rng.random(rows) < positives
    score = np.clip(0.5 * truth + rng.normal(0.25, 0.25, rows), 0, 1)
    return {
        "actual": np.where(truth, "yes", "no"),
        "predicted": np.where(score > 0.5, "yes", "no"),
        "scores": np.stack([1 - score, score], axis=1),
    }


def classification_intervals(data: dict[str, np.ndarray], params: BootstrapParams = PARAMS) -> evaluation.Bootstrap:
    actual, predicted, scores = data["actual"], data["predicted"], data["scores"]
    point = {
        "accuracy": float(skm.accuracy_score(actual, predicted)),
        "f1_macro": float(skm.f1_score(actual, predicted, average="macro", zero_division=0)),
    }
    if len(set(actual)) > 1:
        point["roc_auc"] = float(skm.roc_auc_score(actual == "yes", scores[:, 1]))
    return bs.bootstrap(actual, predicted, scores, ["no", "yes"], "yes", point, params)


def test_the_same_seed_gives_the_same_intervals_and_another_seed_others() -> None:
    data = classifier(400)

    first, again = classification_intervals(data), classification_intervals(data)
    other = classification_intervals(data, PARAMS.model_copy(update={"seed": 8}))

    assert json.dumps(first, sort_keys=True) == json.dumps(again, sort_keys=True)
    assert first["intervals"] != other["intervals"]
    assert set(first["intervals"]) == {"accuracy", "f1_macro", "roc_auc"}


def test_each_resample_scores_what_scikit_learn_scores_on_the_rows_it_drew() -> None:
    data = classifier(300, seed=1)
    counts = bs.draw_counts(300, BootstrapParams(resamples=100, confidence=0.9, seed=3))
    replicates = bs._classification(counts, data["actual"], data["predicted"], data["scores"], ["no", "yes"], "yes")

    assert counts.shape == (100, 300)
    assert (counts.sum(axis=1) == 300).all()
    for b in range(5):
        rows = np.repeat(np.arange(300), counts[b])
        actual, predicted = data["actual"][rows], data["predicted"][rows]
        assert replicates["accuracy"][b] == pytest.approx(skm.accuracy_score(actual, predicted))
        assert replicates["f1_macro"][b] == pytest.approx(skm.f1_score(actual, predicted, average="macro"))
        assert replicates["roc_auc"][b] == pytest.approx(skm.roc_auc_score(actual == "yes", data["scores"][rows, 1]))


def test_the_interval_holds_the_point_estimate_and_narrows_with_more_rows() -> None:
    widths = []
    for rows in (200, 3200):
        data = classifier(rows, seed=rows)
        found = classification_intervals(data)
        accuracy = float(np.mean(data["actual"] == data["predicted"]))
        interval = found["intervals"]["accuracy"]
        assert interval["low"] <= accuracy <= interval["high"], rows
        widths.append(interval["high"] - interval["low"])
    assert widths[1] < widths[0] / 2, f"16 times the rows should more than halve the interval: {widths}"


def test_regression_intervals_hold_the_point_estimates() -> None:
    rng = np.random.default_rng(0)
    actual = rng.normal(10, 3, 500)
    predicted = actual + rng.normal(0, 1, 500)
    point = {
        "rmse": float(np.sqrt(skm.mean_squared_error(actual, predicted))),
        "mae": float(skm.mean_absolute_error(actual, predicted)),
        "r2": float(skm.r2_score(actual, predicted)),
    }

    found = bs.bootstrap(actual, predicted, None, [], None, point, PARAMS)

    assert set(found["intervals"]) == set(point)
    for name, value in point.items():
        assert found["intervals"][name]["low"] <= value <= found["intervals"][name]["high"], name
        assert found["intervals"][name]["defined"] == PARAMS.resamples


def test_a_resample_with_a_single_class_leaves_roc_auc_out_and_says_so() -> None:
    """Two positives in 20 rows: about 1 resample in 9 draws no positive, where ROC AUC is undefined."""
    data = classifier(20, seed=4)
    data["actual"][:] = "no"
    data["actual"][:2] = "yes"

    found = classification_intervals(data)

    interval = found["intervals"]["roc_auc"]
    assert 0 < interval["defined"] < PARAMS.resamples
    assert found["intervals"]["accuracy"]["defined"] == PARAMS.resamples
    notes = " ".join(evaluation.interval_notes(found))
    left = PARAMS.resamples - interval["defined"]
    assert f"`roc_auc` was undefined in {left:,} resamples (a single class drawn)" in notes


def test_a_metric_undefined_in_every_resample_has_no_interval_and_the_reason() -> None:
    data = classifier(50, seed=5)
    data["actual"][:] = "no"
    point = {"accuracy": 0.5, "roc_auc": 0.5}  # roc_auc given: the bootstrap must not crash on it

    found = bs.bootstrap(data["actual"], data["predicted"], data["scores"], ["no", "yes"], "yes", point, PARAMS)

    assert "roc_auc" not in found["intervals"]
    assert found["undefined"] == {"roc_auc": bs.SINGLE_CLASS}
    assert f"`roc_auc`: no interval: {bs.SINGLE_CLASS}." in evaluation.interval_notes(found)


def test_the_metrics_file_holds_the_intervals_of_the_test_set(trained: Workspace, schema: Schema) -> None:
    written = evaluation.read(trained.path("metrics"))
    model, test = train.load(trained.path("model")), pd.read_parquet(trained.path("test"))
    pred = evaluate.predict(model, test, schema)

    expected = evaluate.intervals(pred, written["model"], schema, trained.params.evaluate)

    assert written["bootstrap"] == expected
    assert set(written["bootstrap"]["intervals"]) <= set(bs.HEADLINE[schema.target.kind])
    for name, interval in written["bootstrap"]["intervals"].items():
        assert interval["low"] <= written["model"][name] <= interval["high"], name


def test_a_multiclass_roc_auc_pools_every_class_pairs_as_evaluate_does() -> None:
    """Micro-averaged: each row weighs on its one-vs-rest pair of every class, as ``evaluate.compute`` pools them."""
    rng = np.random.default_rng(6)
    classes = ["a", "b", "c"]
    actual = rng.choice(classes, 240)
    scores = rng.dirichlet([1, 1, 1], 240) + 0.5 * (actual[:, None] == np.asarray(classes)[None, :])
    scores /= scores.sum(axis=1, keepdims=True)
    predicted = np.asarray(classes)[scores.argmax(axis=1)]
    counts = bs.draw_counts(240, BootstrapParams(resamples=100, confidence=0.9, seed=1))

    replicates = bs._classification(counts, actual, predicted, scores, classes, None)

    truth = (actual[:, None] == np.asarray(classes)[None, :]).astype(int)
    for b in range(3):
        rows = np.repeat(np.arange(240), counts[b])
        expected = skm.roc_auc_score(truth[rows].ravel(), scores[rows].ravel())
        assert replicates["roc_auc"][b] == pytest.approx(expected)
        assert replicates["f1_macro"][b] == pytest.approx(skm.f1_score(actual[rows], predicted[rows], average="macro"))
