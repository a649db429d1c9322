"""Stage ``evaluate``: test-set metrics beside a naive baseline's, per-slice metrics and the data behind the plots."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import label_binarize

from {{ cookiecutter.package_name }}.contracts import evaluation
from {{ cookiecutter.package_name }}.contracts.io import atomic_path, write_json
from {{ cookiecutter.package_name }}.pipeline.bootstrap import bootstrap
from {{ cookiecutter.package_name }}.pipeline.config import EvaluateParams, Params
from {{ cookiecutter.package_name }}.pipeline.features import model_inputs, target
from {{ cookiecutter.package_name }}.pipeline.schema import Schema
from {{ cookiecutter.package_name }}.pipeline.train import load as load_model

PLOT_FILES = {
    "classification": ("roc.csv", "precision_recall.csv", "confusion.csv"),
    "regression": ("predictions.csv",),
}
# The naive baseline of each task: a model that ignores the features, fitted on the training split.
NAIVE = {
    "classification": "DummyClassifier(strategy='prior')",  # predicts the majority class; scores: the class shares
    "regression": "DummyRegressor(strategy='mean')",  # predicts the training mean
}


@dataclass(frozen=True)
class Predictions:
    """Model outputs on a table."""

    actual: pd.Series
    predicted: np.ndarray
    scores: np.ndarray | None  # class probabilities, columns in ``classes`` order
    classes: list[str]


def predict(model: Pipeline | DummyClassifier | DummyRegressor, frame: pd.DataFrame, schema: Schema) -> Predictions:
    """Run the model (or the naive baseline) on a prepared table."""
    inputs = model_inputs(frame, schema)
    if schema.target.kind == "classification":
        classes = [str(c) for c in model.classes_]
        return Predictions(target(frame, schema), model.predict(inputs), model.predict_proba(inputs), classes)
    return Predictions(target(frame, schema), model.predict(inputs), None, [])


def _positive_scores(pred: Predictions, schema: Schema) -> tuple[np.ndarray, np.ndarray]:
    """Binary: (is positive, score of positive). Multiclass: every class's one-vs-rest pairs pooled (micro-average)."""
    assert pred.scores is not None
    if schema.target.binary:
        index = pred.classes.index(str(schema.target.positive))
        return (pred.actual.to_numpy() == schema.target.positive).astype(int), pred.scores[:, index]
    truth = label_binarize(pred.actual, classes=pred.classes)
    return truth.ravel(), pred.scores.ravel()


def compute(pred: Predictions, schema: Schema) -> dict[str, float]:
    """The headline metrics of a set of predictions."""
    if schema.target.kind == "regression":
        return {
            "rmse": float(np.sqrt(skm.mean_squared_error(pred.actual, pred.predicted))),
            "mae": float(skm.mean_absolute_error(pred.actual, pred.predicted)),
            "r2": float(skm.r2_score(pred.actual, pred.predicted)) if len(pred.actual) > 1 else float("nan"),
        }
    result = {
        "accuracy": float(skm.accuracy_score(pred.actual, pred.predicted)),
        "balanced_accuracy": float(skm.balanced_accuracy_score(pred.actual, pred.predicted)),
        "f1_macro": float(skm.f1_score(pred.actual, pred.predicted, average="macro", zero_division=0)),
    }
    assert pred.scores is not None
    if pred.actual.nunique() > 1:
        truth, score = _positive_scores(pred, schema)
        result["roc_auc"] = float(skm.roc_auc_score(truth, score))
        result["average_precision"] = float(skm.average_precision_score(truth, score))
        result["log_loss"] = float(skm.log_loss(pred.actual, pred.scores, labels=pred.classes))
    return result


def intervals(
    pred: Predictions, point: dict[str, float], schema: Schema, params: EvaluateParams
) -> evaluation.Bootstrap:
    """Bootstrap confidence intervals of the headline metrics in ``point`` (``pipeline.bootstrap``)."""
    positive = str(schema.target.positive) if schema.target.kind == "classification" and schema.target.binary else None
    actual = pred.actual.to_numpy()
    return bootstrap(actual, pred.predicted, pred.scores, pred.classes, positive, point, params.bootstrap)


def naive_baseline(train: pd.DataFrame, schema: Schema) -> DummyClassifier | DummyRegressor:
    """The task's naive baseline (``NAIVE``), fitted on the training split."""
    classification = schema.target.kind == "classification"
    naive = DummyClassifier(strategy="prior") if classification else DummyRegressor(strategy="mean")
    return naive.fit(model_inputs(train, schema), target(train, schema))


def slice_metrics(frame: pd.DataFrame, pred: Predictions, schema: Schema) -> dict[str, dict[str, dict[str, Any]]]:
    """Metrics for every category of every slice column: ``{column: {category: {"n": .., metric: ..}}}``."""
    result: dict[str, dict[str, dict[str, Any]]] = {}
    for column in schema.slices:
        groups: dict[str, dict[str, Any]] = {}
        values = frame[column].fillna("(missing)").astype(str).to_numpy()
        for category in sorted(set(values)):
            mask = values == category
            part = Predictions(
                pred.actual[mask],
                pred.predicted[mask],
                None if pred.scores is None else pred.scores[mask],
                pred.classes,
            )
            groups[category] = {"n": int(mask.sum()), **compute(part, schema)}
        result[column] = groups
    return result


def _downsample(frame: pd.DataFrame, points: int) -> pd.DataFrame:
    index = np.unique(np.linspace(0, len(frame) - 1, points).round().astype(int))
    return frame.iloc[index].reset_index(drop=True)


def _sample(frame: pd.DataFrame, rows: int) -> pd.DataFrame:
    """A fixed sample of at most ``rows`` rows: per-row plot files are committed, so their size must stay bounded."""
    return frame if len(frame) <= rows else frame.sample(n=rows, random_state=0).sort_index().reset_index(drop=True)


def plot_tables(pred: Predictions, schema: Schema, params: EvaluateParams) -> dict[str, pd.DataFrame]:
    """The tables DVC plots (and the report) draw, keyed by file name."""
    if schema.target.kind == "regression":
        actual = pred.actual.to_numpy()
        rows = pd.DataFrame({"actual": actual, "predicted": pred.predicted, "residual": actual - pred.predicted})
        return {"predictions.csv": _sample(rows, params.max_plot_rows)}
    truth, score = _positive_scores(pred, schema)
    fpr, tpr, _ = skm.roc_curve(truth, score)
    precision, recall, _ = skm.precision_recall_curve(truth, score)
    points = max(params.curve_points * 5, 101)  # DVC draws these; the report resamples them coarser
    return {
        "roc.csv": _downsample(pd.DataFrame({"fpr": fpr, "tpr": tpr}), points),
        "precision_recall.csv": _downsample(pd.DataFrame({"recall": recall, "precision": precision}), points),
        "confusion.csv": _sample(
            pd.DataFrame({"actual": pred.actual.to_numpy(), "predicted": pred.predicted}), params.max_plot_rows
        ),
    }


def run(params: Params, schema: Schema) -> evaluation.Evaluation:
    """Evaluate ``paths.model`` and the naive baseline (fitted on ``paths.train``) on ``paths.test``.

    Writes ``paths.metrics``, ``paths.slices`` and ``paths.plots``.
    """
    paths = params.paths
    model, test = load_model(paths.model), pd.read_parquet(paths.test)
    pred = predict(model, test, schema)
    naive = compute(predict(naive_baseline(pd.read_parquet(paths.train), schema), test, schema), schema)
    point = compute(pred, schema)
    ci = intervals(pred, point, schema, params.evaluate)
    result = evaluation.evaluation(point, NAIVE[schema.target.kind], naive, ci)
    slices = slice_metrics(test, pred, schema)
    tables = plot_tables(pred, schema, params.evaluate)
    for name, table in tables.items():
        with atomic_path(paths.plots / name) as tmp:
            table.to_csv(tmp, index=False, float_format="%.6g")
    write_json(paths.slices, slices)
    evaluation.write(paths.metrics, result)
    return result
