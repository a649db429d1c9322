"""Stage ``evaluate``: the task's metrics beside a naive baseline's, metrics for every slice, and the tables DVC
plots."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import Workspace

from {{ cookiecutter.package_name }}.contracts import evaluation
from {{ cookiecutter.package_name }}.contracts.evaluation import MetricsFileError
from {{ cookiecutter.package_name }}.contracts.scoring import HIGHER_IS_BETTER
from {{ cookiecutter.package_name }}.pipeline import evaluate, train
from {{ cookiecutter.package_name }}.pipeline.evaluate import PLOT_FILES, Predictions
from {{ cookiecutter.package_name }}.pipeline.features import target
from {{ cookiecutter.package_name }}.pipeline.schema import Schema

METRICS = {
    "classification": {"accuracy", "balanced_accuracy", "f1_macro", "roc_auc", "average_precision", "log_loss"},
    "regression": {"rmse", "mae", "r2"},
}
ALWAYS = {"classification": "accuracy", "regression": "rmse"}  # defined on any slice, however small


def test_metric_names_and_ranges(trained: Workspace, schema: Schema) -> None:
    metrics = trained.read_json("metrics")["model"]

    assert set(metrics) == METRICS[schema.target.kind]
    assert set(metrics) <= set(HIGHER_IS_BETTER), "the gate and the report need each metric's direction"
    if schema.target.kind == "classification":
        for name in METRICS["classification"] - {"log_loss"}:
            assert 0 <= metrics[name] <= 1, name
        assert metrics["log_loss"] > 0
    else:
        assert 0 <= metrics["mae"] <= metrics["rmse"]
        assert metrics["r2"] <= 1


def test_metrics_file_matches_the_saved_model(trained: Workspace, schema: Schema) -> None:
    model, test = train.load(trained.path("model")), pd.read_parquet(trained.path("test"))

    expected = evaluate.compute(evaluate.predict(model, test, schema), schema)

    assert trained.read_json("metrics")["model"] == pytest.approx(expected)
    assert evaluation.read(trained.path("metrics"))["model"] == pytest.approx(expected)


def test_the_naive_baseline_is_scored_on_the_test_set(trained: Workspace, schema: Schema) -> None:
    """The naive baseline ignores the features: the training split's class shares, or its mean. Its metrics are
    recomputed here from those two facts alone."""
    naive = trained.read_json("metrics")["naive_baseline"]
    train_y = target(pd.read_parquet(trained.path("train")), schema)
    test_y = target(pd.read_parquet(trained.path("test")), schema)

    assert naive["estimator"] == evaluate.NAIVE[schema.target.kind]
    assert set(naive["metrics"]) == METRICS[schema.target.kind]
    if schema.target.kind == "classification":
        majority = train_y.value_counts().sort_index().idxmax()  # ties: the first class in sorted order
        assert naive["metrics"]["accuracy"] == pytest.approx((test_y == majority).mean())
        assert naive["metrics"]["balanced_accuracy"] == pytest.approx(1 / len(schema.target.labels))
        if schema.target.binary:
            assert naive["metrics"]["roc_auc"] == pytest.approx(0.5)  # the same score for every row
    else:
        errors = test_y.to_numpy(dtype=float) - train_y.to_numpy(dtype=float).mean()
        assert naive["metrics"]["rmse"] == pytest.approx(np.sqrt(np.mean(errors**2)))
        assert naive["metrics"]["mae"] == pytest.approx(np.mean(np.abs(errors)))
        assert naive["metrics"]["r2"] <= 0  # the training mean explains nothing of the test rows
    model = trained.read_json("metrics")["model"]
    for name in ("accuracy", "roc_auc", "rmse"):
        if name in model:
            gain = model[name] - naive["metrics"][name]
            assert gain > 0 if HIGHER_IS_BETTER[name] else gain < 0, f"the model does not beat the naive {name}"


@pytest.mark.parametrize(
    ("content", "named"),
    [
        (None, "cannot read the metrics file"),
        ('{"accuracy": 0.9}', "no model, naive_baseline"),
        ('{"model": {"accuracy": 0.9}, "naive_baseline": {"metrics": {}}, "bootstrap": {}}', "needs an estimator"),
        (
            '{"model": {"accuracy": "high"}, "naive_baseline": {"estimator": "e", "metrics": {}}, "bootstrap": {}}',
            "accuracy",
        ),
        ('{"model": {}, "naive_baseline": {"estimator": "e", "metrics": {}}, "bootstrap": {}}', "bootstrap needs"),
        (
            '{"model": {}, "naive_baseline": {"estimator": "e", "metrics": {}}, "bootstrap": {"resamples": 9, '
            '"confidence": 0.9, "seed": 1, "intervals": {"r2": {"low": 0.1}}, "undefined": {}}}',
            "interval of r2 needs low, high and defined",
        ),
    ],
)
def test_a_file_that_is_not_a_metrics_file_is_refused_naming_why(
    tmp_path: Path, content: str | None, named: str
) -> None:
    path = tmp_path / "metrics.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(MetricsFileError) as raised:
        evaluation.read(path)
    assert named in str(raised.value)
    assert str(path) in str(raised.value)


def test_perfect_predictions_score_perfectly(trained: Workspace, schema: Schema) -> None:
    actual = target(pd.read_parquet(trained.path("test")), schema)
    if schema.target.kind == "classification":
        classes = sorted(schema.target.labels)
        scores = np.stack([(actual == c).to_numpy(dtype=float) for c in classes], axis=1)
        metrics = evaluate.compute(Predictions(actual, actual.to_numpy(), scores, classes), schema)
        assert metrics["accuracy"] == metrics["balanced_accuracy"] == metrics["f1_macro"] == 1
        assert metrics["roc_auc"] == metrics["average_precision"] == 1
        assert metrics["log_loss"] < 1e-6
    else:
        metrics = evaluate.compute(Predictions(actual, actual.to_numpy(), None, []), schema)
        assert metrics == {"rmse": 0, "mae": 0, "r2": 1}


def test_slice_metrics_cover_every_slice_column(trained: Workspace, schema: Schema) -> None:
    slices = trained.read_json("slices")
    test = pd.read_parquet(trained.path("test"))
    declared = {f.name: set(f.categories) for f in schema.features}

    assert set(slices) == set(schema.slices)
    for column, groups in slices.items():
        assert set(groups) <= declared[column] | {"(missing)"}, column
        assert sum(g["n"] for g in groups.values()) == len(test), column
        for category, group in groups.items():
            assert group["n"] >= 1
            assert ALWAYS[schema.target.kind] in group, (column, category)
            assert set(group) - {"n"} <= METRICS[schema.target.kind]


def test_slice_metrics_equal_metrics_on_the_slice_rows(trained: Workspace, schema: Schema) -> None:
    if not schema.slices:
        pytest.skip("the schema declares no slice column")
    column = schema.slices[0]
    groups = trained.read_json("slices")[column]
    category = max(groups, key=lambda c: groups[c]["n"])
    test = pd.read_parquet(trained.path("test"))
    rows = test[test[column].fillna("(missing)").astype(str) == category]

    expected = evaluate.compute(evaluate.predict(train.load(trained.path("model")), rows, schema), schema)

    assert groups[category]["n"] == len(rows)
    assert {k: v for k, v in groups[category].items() if k != "n"} == pytest.approx(expected)


def test_plot_files_are_written(trained: Workspace, schema: Schema) -> None:
    plots = trained.path("plots")
    test = pd.read_parquet(trained.path("test"))

    assert sorted(p.name for p in plots.iterdir()) == sorted(PLOT_FILES[schema.target.kind])
    if schema.target.kind == "classification":
        roc = pd.read_csv(plots / "roc.csv")
        assert list(roc.columns) == ["fpr", "tpr"]
        assert roc.iloc[0].tolist() == [0, 0]
        assert roc.iloc[-1].tolist() == [1, 1]
        assert roc["fpr"].is_monotonic_increasing
        assert roc["tpr"].is_monotonic_increasing
        pr = pd.read_csv(plots / "precision_recall.csv")
        assert list(pr.columns) == ["recall", "precision"]
        assert pr.min().min() >= 0
        assert pr.max().max() <= 1
        confusion = pd.read_csv(plots / "confusion.csv", dtype=str)
        assert list(confusion.columns) == ["actual", "predicted"]
        assert len(confusion) == len(test)
        assert set(confusion.stack()) <= set(schema.target.labels)
    else:
        predictions = pd.read_csv(plots / "predictions.csv")
        assert list(predictions.columns) == ["actual", "predicted", "residual"]
        assert len(predictions) == len(test)
        scale = predictions["actual"].abs().max()
        np.testing.assert_allclose(
            predictions["residual"], predictions["actual"] - predictions["predicted"], atol=1e-4 * scale
        )
