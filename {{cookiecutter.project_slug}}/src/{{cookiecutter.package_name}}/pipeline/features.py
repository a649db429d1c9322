"""One conversion from a table to model inputs, shared by training, evaluation, export and the parity check.

Numeric features become float32 (what the ONNX model and the server receive) and missing categories become the
empty string, so scikit-learn is trained on exactly the values the exported model will see.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from {{ cookiecutter.package_name }}.contracts.onnx import MISSING_CATEGORY, NUMERIC_INPUT
from {{ cookiecutter.package_name }}.pipeline.schema import Schema

__all__ = ["MISSING_CATEGORY", "model_inputs", "onnx_feeds", "target"]


def model_inputs(frame: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """The feature columns, in schema order, typed as the model expects."""
    columns: dict[str, Any] = {}
    for feature in schema.features:
        column = frame[feature.name]
        if feature.numeric:
            columns[feature.name] = pd.to_numeric(column, errors="raise").astype(np.float32)
        else:
            columns[feature.name] = column.astype(object).where(column.notna(), MISSING_CATEGORY).astype(str)
    return pd.DataFrame(columns, index=frame.index).astype({c: object for c in schema.categorical})


def target(frame: pd.DataFrame, schema: Schema) -> pd.Series:
    """The target column: labels as strings for classification, floats for regression."""
    column = frame[schema.target.name]
    return column.astype(str) if schema.target.kind == "classification" else column.astype(np.float64)


def onnx_feeds(inputs: pd.DataFrame, schema: Schema) -> dict[str, np.ndarray]:
    """ONNX Runtime feeds: the numeric features packed in one ``[n, k]`` tensor, one ``[n, 1]`` per category."""
    feeds: dict[str, np.ndarray] = {}
    if schema.numeric:
        feeds[NUMERIC_INPUT] = inputs[schema.numeric].to_numpy(dtype=np.float32)
    for name in schema.categorical:
        feeds[name] = inputs[name].to_numpy().astype(object).reshape(-1, 1)
    return feeds
