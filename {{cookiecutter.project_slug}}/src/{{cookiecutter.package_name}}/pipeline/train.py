"""Stage ``train``: a scikit-learn pipeline (preprocessing + the estimator chosen in ``params.yaml``)."""

from __future__ import annotations

from pathlib import Path

import joblib
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from {{ cookiecutter.package_name }}.contracts.io import atomic_path
from {{ cookiecutter.package_name }}.pipeline.config import ConfigError, Params, TrainParams
from {{ cookiecutter.package_name }}.pipeline.features import model_inputs, target
from {{ cookiecutter.package_name }}.pipeline.schema import Schema, Task

ESTIMATORS: dict[Task, dict[str, type[BaseEstimator]]] = {
    "classification": {
        "linear": LogisticRegression,
        "random_forest": RandomForestClassifier,
        "gradient_boosting": GradientBoostingClassifier,
    },
    "regression": {
        "linear": Ridge,
        "random_forest": RandomForestRegressor,
        "gradient_boosting": GradientBoostingRegressor,
    },
}


def build(schema: Schema, params: TrainParams) -> Pipeline:
    """The untrained pipeline: impute (and scale, for linear models) numbers, one-hot encode categories."""
    estimator_class = ESTIMATORS[schema.target.kind][params.model]
    estimator = estimator_class()
    try:
        estimator.set_params(**params.hyperparams())
        estimator._validate_params()  # values as well as names, before any data is read
    except ValueError as exc:
        raise ConfigError(f"params.yaml train.{params.model}: {exc}") from None
    if "random_state" in estimator.get_params():
        estimator.set_params(random_state=params.seed)
    numeric_steps: list[tuple[str, BaseEstimator]] = [("impute", SimpleImputer(strategy="median"))]
    if params.model == "linear":
        # Trees split on raw float32 values, exactly as the ONNX model sees them; only linear models need scaling.
        numeric_steps.append(("scale", StandardScaler()))
    transformers = []
    if schema.numeric:
        transformers.append(("numeric", Pipeline(numeric_steps), schema.numeric))
    if schema.categorical:
        transformers.append(("categorical", OneHotEncoder(handle_unknown="ignore"), schema.categorical))
    return Pipeline([("preprocess", ColumnTransformer(transformers)), ("model", estimator)])


def fit(train: pd.DataFrame, schema: Schema, params: TrainParams) -> Pipeline:
    """Train the pipeline on the prepared training table."""
    pipeline = build(schema, params)
    pipeline.fit(model_inputs(train, schema), target(train, schema))
    if "n_jobs" in pipeline.named_steps["model"].get_params():
        # Train on every core (params), but predict sequentially: a parallel sum of the trees' outputs is
        # order-dependent in the last bits, and predictions must be reproducible.
        pipeline.named_steps["model"].set_params(n_jobs=None)
    return pipeline


def save(pipeline: Pipeline, path: Path) -> None:
    """Persist the fitted pipeline."""
    with atomic_path(path) as tmp:
        joblib.dump(pipeline, tmp)


def run(params: Params, schema: Schema) -> Pipeline:
    """Fit the pipeline on ``paths.train`` and save it to ``paths.model``."""
    pipeline = fit(pd.read_parquet(params.paths.train), schema, params.train)
    save(pipeline, params.paths.model)
    return pipeline


def load(path: Path) -> Pipeline:
    """Load a fitted pipeline written by :func:`save`."""
    model: Pipeline = joblib.load(path)
    return model
