"""Stage ``track`` and command ``register``: MLflow records each run and holds the model registry.

A run carries the params, metrics, the ONNX model, the git commit and the DVC hashes of its data, so any
registered version leads back to its exact inputs. The registry uses aliases (``challenger``, ``champion``), not
stages. ``register`` works in the current tracking store: where the run the pipeline recorded is not there (CI pulled
the outputs of a run tracked elsewhere), it logs the same run there from the pipeline's outputs and registers that.

Where runs go is a dependency of ``track``: ``python -m {{ cookiecutter.package_name }}.pipeline.tracking`` (stage
``tracking-target``, run by every ``dvc repro``) writes the resolved tracking URI to ``paths.tracking``, so another URI
reruns ``track`` rather than restoring, from DVC's run cache, a record of a run logged elsewhere. A tracking server that
does not answer fails within ``track.timeout`` seconds with one line naming it, and a run interrupted after it started
(an error, SIGINT, SIGTERM) is ended FAILED.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from {{ cookiecutter.package_name }}.contracts import evaluation
from {{ cookiecutter.package_name }}.contracts.errors import AnswerIsNo
from {{ cookiecutter.package_name }}.contracts.io import read_json, write_json
from {{ cookiecutter.package_name }}.contracts.verdict import Verdict, read_timings
from {{ cookiecutter.package_name }}.contracts.verdict import read as read_verdict
from {{ cookiecutter.package_name }}.pipeline import lineage
from {{ cookiecutter.package_name }}.pipeline.config import ConfigError, MlflowParams, Params, load_params
from {{ cookiecutter.package_name }}.pipeline.tracking_server import (
    Interrupted,
    TrackingError,
    check_reachable,
    end_failed,
    http_settings,
    is_outage,
    public_uri,
    reason,
    terminate_raises,
)

if TYPE_CHECKING:
    from mlflow import MlflowClient

SERVING_REQUIREMENTS = ["onnxruntime"]
# Tags of a run that ``register`` logged because the recorded run was not in the current store: the run it stands for.
SOURCE_RUN_TAG = "source.run_id"
SOURCE_STORE_TAG = "source.tracking_uri"


class TrackingTarget(TypedDict):
    """``paths.tracking``: where ``track`` logs to, as resolved when the pipeline ran (credentials removed)."""

    tracking_uri: str


class RunRecord(TypedDict):
    """``reports/mlflow_run.json``: where the track stage logged the run."""

    tracking_uri: str
    experiment_id: str
    run_id: str
    model_uri: str
    url: str | None


@dataclass(frozen=True)
class Registration:
    """A new model version, the run it was registered from, and why that run when it is not the recorded one."""

    name: str
    version: str
    alias: str
    run_id: str
    stand_in: str | None = None  # one line: the recorded run was not in the current store, and what was done


def tracking_uri(params: MlflowParams) -> str:
    """``MLFLOW_TRACKING_URI`` if set (CI, shared servers), else the project's default from ``params.yaml``."""
    return os.environ.get("MLFLOW_TRACKING_URI") or params.tracking_uri


def write_target(params: Params) -> TrackingTarget:
    """Stage ``tracking-target``: record the tracking URI ``track`` would log to now (``paths.tracking``)."""
    target: TrackingTarget = {"tracking_uri": public_uri(tracking_uri(params.mlflow))}
    write_json(params.paths.tracking, target)
    return target


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


def lineage_files(params: Params) -> dict[str, Path]:
    """The derived files whose hashes a run records."""
    paths = params.paths
    return {"data.train": paths.train, "data.test": paths.test, "model.sklearn": paths.model, "model.onnx": paths.onnx}


def lineage_tags(params: Params) -> dict[str, str]:
    """The checked-out commit, whether it is dirty, and the hashes of the data and models, as run tags."""
    return {
        "git.commit": lineage.git_commit() or "none",
        "git.dirty": str(lineage.git_dirty(params.paths.outputs())).lower(),
        **lineage.data_lineage(params.paths.raw, lineage_files(params)),
    }


def _log_pipeline_run(params: Params, raw_params: dict[str, Any], tags: dict[str, str]) -> RunRecord:
    """Log the pipeline's outputs as one run in the current tracking store and return where it is."""
    paths = params.paths
    uri = tracking_uri(params.mlflow)
    check_reachable(uri, params.track)
    import mlflow  # after the check: an unreachable server fails before MLflow's seconds-long import

    metrics = evaluation.read(paths.metrics)
    slices = read_json(paths.slices)
    verdict = read_verdict(paths.verdict)
    with http_settings(params.track) as http, terminate_raises():
        mlflow.set_tracking_uri(uri)
        try:
            experiment = mlflow.set_experiment(params.mlflow.experiment)
            run = mlflow.start_run()
        except Interrupted as exc:
            raise TrackingError(f"track was interrupted by {exc.args[0]} before its run started") from None
        except Exception as exc:
            if not is_outage(exc):
                raise
            failed = reason(exc, http["timeout"])
            raise TrackingError(f"the MLflow tracking store {public_uri(uri)} failed: {failed}") from None
        try:
            info = _log_outputs(params, raw_params, tags, metrics, slices, verdict)
            mlflow.end_run()
        except BaseException as exc:
            error = end_failed(public_uri(uri), run.info.run_id, exc, http["timeout"])
            if error is None:
                raise
            raise error from None
    return {
        "tracking_uri": uri,
        "experiment_id": experiment.experiment_id,
        "run_id": run.info.run_id,
        "model_uri": info,
        "url": run_url(uri, experiment.experiment_id, run.info.run_id),
    }


def _log_outputs(
    params: Params,
    raw_params: dict[str, Any],
    tags: dict[str, str],
    metrics: evaluation.Evaluation,
    slices: dict[str, Any],
    verdict: Verdict,
) -> str:
    """Log params, metrics, tags, the ONNX model and the pipeline's files into the active run; return the model's URI.

    ``gate.passed`` is set last: a run cut short does not claim a passed gate for a model it does not hold.
    """
    import mlflow
    import onnx

    paths = params.paths
    mlflow.log_params({k: v for k, v in flatten(raw_params).items() if not k.startswith("paths.")})
    mlflow.log_metrics(metrics["model"])
    mlflow.log_metrics({f"naive_baseline.{k}": v for k, v in metrics["naive_baseline"]["metrics"].items()})
    mlflow.log_metrics({f"parity.{k}": v for k, v in read_json(paths.parity).items()})
    timings = read_timings(paths.timings)  # untracked, so not a dependency of the stage: logged when it is here
    if timings is not None:
        mlflow.log_metrics({"latency.p50_ms": timings["p50_ms"], "latency.p99_ms": timings["p99_ms"]})
    mlflow.log_metrics(
        {
            _metric_name(f"slice.{k}"): v
            for k, v in flatten(slices).items()
            if isinstance(v, int | float) and not k.endswith(".n")
        }
    )
    mlflow.set_tags(tags)
    info = mlflow.onnx.log_model(onnx.load(str(paths.onnx)), name="model", pip_requirements=SERVING_REQUIREMENTS)
    for path in (paths.metadata, paths.verdict, paths.schema_, paths.data_profile, paths.model):
        mlflow.log_artifact(str(path), artifact_path="pipeline")
    mlflow.set_tag("gate.passed", str(verdict["passed"]).lower())
    return str(info.model_uri)


def log_run(params: Params, raw_params: dict[str, Any], tags: dict[str, str]) -> RunRecord:
    """Stage ``track``: log one pipeline run to MLflow and record where it is (``paths.run``)."""
    record = _log_pipeline_run(params, raw_params, tags)
    write_json(params.paths.run, record)
    return record


def _has_run(client: MlflowClient, run_id: str) -> bool:
    """Whether the current store holds the run; any other error (unreachable, unauthorized) is raised."""
    from mlflow.exceptions import MlflowException

    try:
        client.get_run(run_id)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return False
        raise
    return True


def _stand_in(client: MlflowClient, params: Params, raw_params: dict[str, Any], recorded: RunRecord) -> tuple[str, str]:
    """The run of the current store that stands for the recorded one, and its model URI.

    That is the run an earlier ``register`` of the same outputs logged, else one logged now from the pipeline's outputs.
    """
    experiment = client.get_experiment_by_name(params.mlflow.experiment)
    if experiment is not None:
        earlier = client.search_runs(
            [experiment.experiment_id],
            filter_string=f"tags.`{SOURCE_RUN_TAG}` = '{recorded['run_id']}' and attributes.status = 'FINISHED'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        if earlier:
            return earlier[0].info.run_id, f"runs:/{earlier[0].info.run_id}/model"
    tags = {**lineage_tags(params), SOURCE_RUN_TAG: recorded["run_id"], SOURCE_STORE_TAG: recorded["tracking_uri"]}
    logged = _log_pipeline_run(params, raw_params, tags)
    return logged["run_id"], logged["model_uri"]


def register(
    params: Params, raw_params: dict[str, Any], alias: str, *, allow_failed_gate: bool = False
) -> Registration:
    """Register the tracked model as a new version in the current tracking store and point ``alias`` at it.

    A failed gate refuses. When the store does not hold the run that ``paths.run`` records (tracked into another
    store), the pipeline's outputs are logged there as a new run tagged with the recorded one, and that is registered;
    ``paths.run`` is left as it is (it is a DVC output: rewriting it would make the pipeline look changed).
    """
    verdict = read_verdict(params.paths.verdict)
    if not verdict["passed"] and not allow_failed_gate:
        raise AnswerIsNo(f"the gate failed ({params.paths.verdict}): this model cannot be registered")
    recorded: RunRecord = read_json(params.paths.run)
    uri = tracking_uri(params.mlflow)
    check_reachable(uri, params.track)
    with http_settings(params.track):
        return _register(params, raw_params, alias, recorded, uri)


def _register(params: Params, raw_params: dict[str, Any], alias: str, recorded: RunRecord, uri: str) -> Registration:
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(uri)
    client = MlflowClient(tracking_uri=uri)
    run_id, model_uri, stand_in = recorded["run_id"], recorded["model_uri"], None
    if not _has_run(client, run_id):
        run_id, model_uri = _stand_in(client, params, raw_params, recorded)
        stand_in = (
            f"run {recorded['run_id']} (tracked in {recorded['tracking_uri']}) is not in {uri}: registering run "
            f"{run_id}, logged there from the pipeline's outputs and tagged {SOURCE_RUN_TAG}"
        )
    source_run = client.get_run(run_id)
    version = mlflow.register_model(
        model_uri,
        params.mlflow.registered_model,
        tags={k: v for k, v in source_run.data.tags.items() if not k.startswith("mlflow.")},
    )
    client.set_registered_model_alias(params.mlflow.registered_model, alias, version.version)
    return Registration(params.mlflow.registered_model, str(version.version), alias, run_id, stand_in)


def main() -> int:
    """``python -m {{ cookiecutter.package_name }}.pipeline.tracking``: the stage ``tracking-target``."""
    try:
        params = load_params()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    target = write_target(params)
    print(f"track logs to {target['tracking_uri']} ({params.paths.tracking})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
