"""Stage ``track`` and command ``register``: MLflow records each run and holds the model registry.

A run carries the params, metrics, the ONNX model, the git commit and the DVC hashes of its data, so any
registered version leads back to its exact inputs. The registry uses aliases (``challenger``, ``champion``), not
stages.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from {{ cookiecutter.package_name }}.config import MlflowParams, Params
from {{ cookiecutter.package_name }}.io import read_json, write_json

SERVING_REQUIREMENTS = ["onnxruntime"]


def tracking_uri(params: MlflowParams) -> str:
    """``MLFLOW_TRACKING_URI`` if set (CI, shared servers), else the project's default from ``params.yaml``."""
    return os.environ.get("MLFLOW_TRACKING_URI") or params.tracking_uri


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _metric_name(name: str) -> str:
    """MLflow accepts only alphanumerics and ``_-. :/`` in metric names; category values may hold anything."""
    return re.sub(r"[^\w\-. :/]", "_", name)


def run_url(uri: str, experiment_id: str, run_id: str) -> str | None:
    """A browser link to the run, when the tracking server has a UI address."""
    if uri.startswith(("http://", "https://")):
        return f"{uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"
    return None


def log_run(params: Params, raw_params: dict[str, Any], lineage_tags: dict[str, str]) -> dict[str, Any]:
    """Log one pipeline run to MLflow and return where it is."""
    import mlflow
    import onnx

    paths = params.paths
    uri = tracking_uri(params.mlflow)
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.set_experiment(params.mlflow.experiment)
    metrics = read_json(paths.metrics)
    slices = read_json(paths.slices)
    verdict = read_json(paths.verdict)
    with mlflow.start_run() as run:
        mlflow.log_params({k: v for k, v in flatten(raw_params).items() if not k.startswith("paths.")})
        mlflow.log_metrics({k: v for k, v in metrics.items() if v is not None})
        mlflow.log_metrics({f"parity.{k}": v for k, v in read_json(paths.parity).items()})
        mlflow.log_metrics({f"latency.{k}": v for k, v in verdict["latency"].items()})
        mlflow.log_metrics(
            {
                _metric_name(f"slice.{k}"): v
                for k, v in flatten(slices).items()
                if isinstance(v, int | float) and not k.endswith(".n")
            }
        )
        mlflow.set_tags({**lineage_tags, "gate.passed": str(verdict["passed"]).lower()})
        info = mlflow.onnx.log_model(onnx.load(str(paths.onnx)), name="model", pip_requirements=SERVING_REQUIREMENTS)
        for path in (paths.metadata, paths.verdict, paths.schema_, paths.data_profile, paths.model):
            mlflow.log_artifact(str(path), artifact_path="pipeline")
    record = {
        "tracking_uri": uri,
        "experiment_id": experiment.experiment_id,
        "run_id": run.info.run_id,
        "model_uri": info.model_uri,
        "url": run_url(uri, experiment.experiment_id, run.info.run_id),
    }
    write_json(paths.run, record)
    return record


def register(params: Params, alias: str, *, allow_failed_gate: bool = False) -> dict[str, Any]:
    """Register the tracked model as a new version and point ``alias`` at it. A failed gate refuses."""
    import mlflow
    from mlflow import MlflowClient

    verdict = read_json(params.paths.verdict)
    if not verdict["passed"] and not allow_failed_gate:
        raise PermissionError(f"the gate failed ({params.paths.verdict}): this model cannot be registered")
    run: dict[str, Any] = read_json(params.paths.run)
    mlflow.set_tracking_uri(run["tracking_uri"])
    client = MlflowClient()
    source_run = client.get_run(run["run_id"])
    version = mlflow.register_model(
        run["model_uri"],
        params.mlflow.registered_model,
        tags={k: v for k, v in source_run.data.tags.items() if not k.startswith("mlflow.")},
    )
    client.set_registered_model_alias(params.mlflow.registered_model, alias, version.version)
    return {"name": params.mlflow.registered_model, "version": version.version, "alias": alias, "run_id": run["run_id"]}


def lineage_files(params: Params) -> dict[str, Path]:
    """The derived files whose hashes a run records."""
    paths = params.paths
    return {"data.train": paths.train, "data.test": paths.test, "model.sklearn": paths.model, "model.onnx": paths.onnx}
