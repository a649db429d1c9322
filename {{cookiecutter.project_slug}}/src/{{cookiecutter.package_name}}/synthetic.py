"""Synthetic rows that satisfy the schema, with a learnable target: for tests, smoke runs and benchmarks.

They let the project's tests run on any dataset's contract without the real data, and let the benchmark grow the
table to a million rows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from {{ cookiecutter.package_name }}.io import atomic_path
from {{ cookiecutter.package_name }}.schema import Feature, Schema

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
    """Write :func:`frame` as a raw CSV."""
    with atomic_path(path) as tmp:
        frame(schema, rows, seed).to_csv(tmp, index=False)
