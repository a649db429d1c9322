"""Stage ``profile``: the reference profile that the ``monitor`` command compares live predictions with.

It is stored with the model (``paths.reference``) and holds, per feature of the training split:

* numeric: rows, nulls, min and max, inner bin edges at the quantiles (``monitor.bins`` bins, fewer when values
  repeat) with the number of training values in each bin (for the population stability index), and a seeded sample
  of at most ``monitor.sample_size`` values (for the two-sample Kolmogorov-Smirnov test);
* category: rows, nulls and the count of each category of the schema.

And the model's predictions on the held-out test split, computed by the ONNX model through the feeds the server
builds (``features.onnx_feeds``): on the rows it was trained on, a model's outputs are more confident than on new
data, so the held-out rows are what live traffic from the same distribution should look like. Classification: the
count of each predicted class and the distribution of the score (the positive class's probability for a binary
target, the predicted class's probability for more classes); regression: the distribution of the predicted value.
Last, the model's test-set metrics, against which decay is measured, and its version.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import onnxruntime as ort
import pandas as pd

from {{ cookiecutter.package_name }}.contracts import evaluation
from {{ cookiecutter.package_name }}.contracts import profile as contract
from {{ cookiecutter.package_name }}.contracts.metadata import Metadata
from {{ cookiecutter.package_name }}.contracts.metadata import read as read_metadata
from {{ cookiecutter.package_name }}.contracts.profile import (
    CategoryProfile,
    ClassPredictions,
    NumericProfile,
    Profile,
    ValuePredictions,
)
from {{ cookiecutter.package_name }}.contracts.scoring import score_column, score_name
from {{ cookiecutter.package_name }}.pipeline.config import MonitorParams, Params
from {{ cookiecutter.package_name }}.pipeline.features import model_inputs, onnx_feeds
from {{ cookiecutter.package_name }}.pipeline.schema import Schema
from {{ cookiecutter.package_name }}.serving.session import session

SAMPLE_BUDGET = 60_000
"""Sampled values over all numeric series together: keeps the profile well under 1 MB for up to a few hundred."""
MIN_SAMPLE = 200


def bin_edges(values: np.ndarray, bins: int) -> np.ndarray:
    """Inner edges at the quantiles of ``values`` (values it holds); repeated values merge bins, so fewer bins."""
    if values.size == 0:
        return np.empty(0)
    edges: np.ndarray = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1], method="higher"))
    return edges


def bin_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """How many ``values`` fall in each of the ``len(edges) + 1`` bins (a value equal to an edge goes above it)."""
    counts: np.ndarray = np.bincount(np.searchsorted(edges, values, side="right"), minlength=edges.size + 1)
    return counts


def sample_size(series: int, wanted: int) -> int:
    """Values sampled per numeric series: ``wanted``, less when many series would make the profile large."""
    return min(wanted, max(MIN_SAMPLE, SAMPLE_BUDGET // max(series, 1)))


def _short(value: float) -> float:
    return float(f"{value:.7g}")


def numeric_profile(
    values: np.ndarray,
    bins: int,
    size: int,
    rng: np.random.Generator,
    kind: Literal["integer", "number"] = "number",
) -> NumericProfile:
    """The profile of one numeric series (``values`` may hold NaN for nulls), of type ``kind``."""
    values = np.asarray(values, dtype=np.float64)
    present = values[~np.isnan(values)]
    edges = bin_edges(present, bins)
    sample = present if present.size <= size else rng.choice(present, size, replace=False)
    return {
        "type": kind,
        "rows": int(values.size),
        "nulls": int(values.size - present.size),
        "min": float(present.min()) if present.size else None,
        "max": float(present.max()) if present.size else None,
        "edges": edges.tolist(),
        "counts": bin_counts(present, edges).tolist(),
        "sample": [_short(v) for v in np.sort(sample)],
    }


def category_profile(values: pd.Series, categories: list[str]) -> CategoryProfile:
    """The profile of one category series: the count of each of ``categories`` (nulls apart)."""
    present = values.dropna().astype(str)
    counts = present.value_counts()
    return {
        "type": "category",
        "rows": len(values),
        "nulls": int(len(values) - len(present)),
        "counts": {c: int(counts.get(c, 0)) for c in categories},
    }


def run_model(sess: ort.InferenceSession, frame: pd.DataFrame, schema: Schema) -> dict[str, np.ndarray]:
    """The ONNX model's outputs on a table, fed as the server feeds it: ``label``/``probabilities`` or ``variable``."""
    names = [o.name for o in sess.get_outputs()]
    outputs = sess.run(None, onnx_feeds(model_inputs(frame, schema), schema))
    return dict(zip(names, outputs, strict=True))


def scores(probabilities: np.ndarray, classes: list[str], positive: str | None) -> np.ndarray:
    """One number per prediction: the positive class's probability (binary), else the predicted class's.

    The rule is ``contracts.scoring.score_column``'s, which the monitor applies to logged predictions.
    """
    at = score_column(classes, positive)
    if at is not None:
        column: np.ndarray = probabilities[:, at]
        return column
    top: np.ndarray = probabilities.max(axis=1)
    return top


def prediction_profile(
    outputs: dict[str, np.ndarray], metadata: Metadata, params: MonitorParams, size: int
) -> ClassPredictions | ValuePredictions:
    """The distribution of the model's predictions: class counts and score, or value."""
    rng = np.random.default_rng([params.seed, 1])
    if metadata["task"] == "classification":
        classes = [str(c) for c in metadata["classes"]]
        positive = metadata.get("positive")
        labels = pd.Series(outputs["label"].ravel().astype(str))
        score = numeric_profile(
            scores(np.asarray(outputs["probabilities"], dtype=np.float64), classes, positive), params.bins, size, rng
        )
        score["name"] = score_name(classes, positive)
        return {
            "rows": len(labels),
            "classes": classes,
            "positive": positive,
            "label": category_profile(labels, classes),
            "score": score,
        }
    values = np.asarray(outputs["variable"], dtype=np.float64).ravel()
    value = numeric_profile(values, params.bins, size, rng)
    value["name"] = "predicted value"
    return {"rows": int(values.size), "value": value}


def build(
    train: pd.DataFrame,
    test: pd.DataFrame,
    schema: Schema,
    model_bytes: bytes,
    metadata: Metadata,
    metrics: dict[str, float],
    params: MonitorParams,
) -> Profile:
    """The reference profile."""
    size = sample_size(len(schema.numeric) + 1, params.sample_size)
    features: dict[str, NumericProfile | CategoryProfile] = {}
    for index, feature in enumerate(schema.features):
        column = train[feature.name]
        if feature.numeric:
            rng = np.random.default_rng([params.seed, 0, index])
            values = pd.to_numeric(column).to_numpy(dtype=np.float64, na_value=np.nan)
            kind: Literal["integer", "number"] = "integer" if feature.type == "integer" else "number"
            features[feature.name] = numeric_profile(values, params.bins, size, rng, kind)
        else:
            features[feature.name] = category_profile(column, feature.categories)
    outputs = run_model(session(model_bytes), test, schema)
    return {
        "format": contract.FORMAT,
        "model_version": metadata.get("version"),
        "task": schema.target.kind,
        "target": schema.target.name,
        "rows": {"train": len(train), "test": len(test)},
        "settings": {"bins": params.bins, "sample_size": size, "seed": params.seed},
        "features": features,
        "predictions": prediction_profile(outputs, metadata, params, size),
        "metrics": metrics,
    }


def run(params: Params, schema: Schema) -> Profile:
    """Build the profile from the pipeline's artifacts and write it to ``paths.reference`` (compact JSON).

    It reads ``paths.train``, ``paths.test``, ``paths.onnx``, ``paths.metadata`` and ``paths.metrics``.
    """
    paths = params.paths
    profile = build(
        pd.read_parquet(paths.train),
        pd.read_parquet(paths.test),
        schema,
        paths.onnx.read_bytes(),
        read_metadata(paths.metadata),
        evaluation.read(paths.metrics)["model"],
        params.monitor,
    )
    contract.write(paths.reference, profile)
    return profile
