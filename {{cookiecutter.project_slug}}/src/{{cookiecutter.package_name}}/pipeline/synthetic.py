"""Synthetic rows that satisfy the schema, with a learnable target: for tests, smoke runs and benchmarks.

They let the project's tests run on any dataset's contract without the real data, and let the benchmark grow the
table to a million rows. ``write_log`` turns rows into the prediction log the server writes, for the monitor's
tests and benchmark.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd

from {{ cookiecutter.package_name }}.contracts import prediction_log
from {{ cookiecutter.package_name }}.contracts.io import atomic_path
from {{ cookiecutter.package_name }}.pipeline.schema import Feature, Schema

NULL_RATE = 0.05


def _numeric(feature: Feature, rows: int, rng: np.random.Generator) -> np.ndarray:
    low = feature.min if feature.min is not None else 0.0
    high = feature.max if feature.max is not None else low + 100.0
    values = rng.uniform(low, high, rows)
    return np.clip(np.round(values), low, high) if feature.type == "integer" else np.round(values, 4)


def frame(schema: Schema, rows: int, seed: int = 0) -> pd.DataFrame:
    """``rows`` rows of features drawn within the schema's bounds, and a target that depends on them."""
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {}
    signal = np.zeros(rows)
    for feature in schema.features:
        if feature.numeric:
            values = _numeric(feature, rows, rng)
            spread = values.std() or 1.0
            signal += (values - values.mean()) / spread
            column = pd.Series(values).astype("Int64" if feature.type == "integer" else "float64")
        else:
            codes = rng.integers(0, len(feature.categories), rows)
            signal += (codes - codes.mean()) / max(codes.std(), 1.0)
            column = pd.Series(np.asarray(feature.categories, dtype=object)[codes])
        if feature.nullable:
            column = column.mask(rng.random(rows) < NULL_RATE)
        data[feature.name] = column
    noisy = signal + rng.normal(0, 0.5, rows)
    target = schema.target
    if target.kind == "classification":
        ranks = noisy.argsort().argsort()
        bins = (ranks * len(target.labels)) // rows
        data[target.name] = np.asarray(target.labels, dtype=object)[bins]
    else:
        low = target.min if target.min is not None else 0.0
        high = target.max if target.max is not None else low + 1000.0
        scaled = (noisy - noisy.min()) / (np.ptp(noisy) or 1.0)
        data[target.name] = np.round(low + scaled * (high - low), 4)
    return pd.DataFrame(data, columns=schema.columns)


def write_csv(schema: Schema, rows: int, seed: int, path: Path) -> None:
    """Write :func:`frame` as a raw CSV, with the schema's separator and missing-value marker (``contracts.table``)."""
    fmt = schema.csv.format()
    with atomic_path(path) as tmp:
        table = frame(schema, rows, seed)
        table.to_csv(tmp, index=False, sep=fmt.separator, na_rep=fmt.null_text, lineterminator="\n")


def log_lines(
    frame: pd.DataFrame,
    schema: Schema,
    outputs: dict[str, np.ndarray],
    version: str,
    classes: list[str],
    start: str = "2026-11-21T10:00:00Z",
    step_us: int = 1000,
    prefix: str = "req",
) -> Iterator[bytes]:
    """The prediction log's lines (``contracts.prediction_log``) for ``frame`` and the model's ``outputs`` on it.

    Row ``i`` is request ``{prefix}-{i}``, index 0, logged ``i * step_us`` microseconds after ``start``.
    """
    rows = len(frame)
    moment = np.datetime64(start.rstrip("Z"), "us") + np.arange(rows, dtype=np.int64) * np.timedelta64(step_us, "us")
    times = np.datetime_as_string(moment, unit="us").tolist()
    columns: list[list[Any]] = []
    for feature in schema.features:
        column = frame[feature.name]
        if feature.numeric:
            values = pd.to_numeric(column).to_numpy(dtype=np.float64, na_value=np.nan).tolist()
            whole = feature.type == "integer"
            columns.append([None if v != v else int(v) if whole else v for v in values])
        else:
            columns.append(column.astype(object).where(column.notna(), None).tolist())
    names = [f.name for f in schema.features]
    if schema.target.kind == "classification":
        labels = outputs["label"].ravel().astype(str).tolist()
        probabilities = np.asarray(outputs["probabilities"], dtype=np.float64).tolist()
        predictions: list[prediction_log.ClassPrediction | prediction_log.ValuePrediction] = [
            prediction_log.ClassPrediction(label=label, probabilities=dict(zip(classes, row, strict=True)))
            for label, row in zip(labels, probabilities, strict=True)
        ]
    else:
        values = np.asarray(outputs["variable"], dtype=np.float64).ravel().tolist()
        predictions = [prediction_log.ValuePrediction(value=v) for v in values]
    line = prediction_log.line
    for i, (time, row, prediction) in enumerate(zip(times, zip(*columns, strict=True), predictions, strict=True)):
        inputs: dict[str, object] = dict(zip(names, row, strict=True))
        yield orjson.dumps(line(time + "Z", f"{prefix}-{i}", 0, version, inputs, prediction)) + b"\n"


def write_log(
    path: Path,
    frame: pd.DataFrame,
    schema: Schema,
    model_dir: Path,
    start: str = "2026-11-21T10:00:00Z",
    step_us: int = 1000,
    prefix: str = "req",
) -> Path:
    """Write the prediction log of ``frame`` as the server would, with the ONNX model's predictions.

    ``model_dir`` holds ``model.onnx`` and ``metadata.json`` (the pipeline's ``models/``, or a server's model).
    """
    from {{ cookiecutter.package_name }}.pipeline.profile import run_model
    from {{ cookiecutter.package_name }}.serving.session import session

    onnx_file = model_dir / "model.onnx"
    metadata = json.loads((model_dir / "metadata.json").read_text())
    outputs = run_model(session(onnx_file.read_bytes()), frame, schema)
    classes = [str(c) for c in metadata.get("classes", [])]
    with atomic_path(path) as tmp, tmp.open("wb") as handle:
        handle.writelines(log_lines(frame, schema, outputs, metadata["version"], classes, start, step_us, prefix))
    return path
