"""Vendor the KServe InferenceService CRD schema the generated project's tests validate against.

The generated project's ``tests/test_deploy.py`` validates ``deploy/kserve`` (the ``deploy_target=kserve`` answer)
against, with no network at test time.

Usage: ``python -m tools.vendor_kserve_schemas KSERVE_GIT_DIR`` (a clone or mirror of kserve/kserve; the release tags
below are read with ``git show``).

Two releases: the newest (v0.20.0) and the oldest the generated InferenceService is written for (v0.15.2), so a field
that one of them lacks fails the test. The newest is stored under ``group/version/Kind`` like every other vendored
schema, the oldest under the same key followed by ``@<tag>``; ``test_deploy.py`` validates against both.

Only what the InferenceService uses is kept: the schema (no ``description`` fields, no ``status``) with the predictor's
pod spec and its ``containers``. Pruned to ``{"x-pruned": true}`` (which accepts anything; re-vendor without pruning it
before relying on it): the other components (``transformer``, ``explainer``, ``canary``), the predictor's model
frameworks and ``model`` (a custom container replaces them), ``workerSpec`` (multi-node), ``initContainers`` and
``volumes``. Only the schema (data) is committed, never KServe's code.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from tools.vendor_argo_schemas import PRUNED, crd_schema, write_schemas

OUTPUT = (
    Path(__file__).resolve().parents[1] / "{{cookiecutter.project_slug}}" / "tests" / "schemas" / "kserve-crds.json"
)
REPOSITORY = "kserve/kserve"
NEWEST = "v0.20.0"
OLDEST = "v0.15.2"
CRD = "config/crd/full/serving.kserve.io_inferenceservices.yaml"
PRUNED_COMPONENTS = ("transformer", "explainer", "canary")
PRUNED_PREDICTOR = (
    "model",
    "sklearn",
    "xgboost",
    "tensorflow",
    "pytorch",
    "triton",
    "onnx",
    "huggingface",
    "pmml",
    "lightgbm",
    "paddle",
    "workerSpec",
    "initContainers",
    "volumes",
)


def pruned(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` without the subtrees the generated InferenceService never writes."""
    spec = schema["properties"]["spec"]["properties"]
    for name in PRUNED_COMPONENTS:
        if name in spec:
            spec[name] = PRUNED
    predictor = spec["predictor"]["properties"]
    for name in PRUNED_PREDICTOR:
        if name in predictor:
            predictor[name] = PRUNED
    return schema


def main(git_dir: Path) -> None:
    """Write ``tests/schemas/kserve-crds.json`` into the template."""
    schemas: dict[str, Any] = {
        "_source": [f"{REPOSITORY}@{tag}:{CRD}" for tag in (NEWEST, OLDEST)],
        "_pruned": [
            "description fields",
            "status",
            f"spec.{', spec.'.join(PRUNED_COMPONENTS)}",
            f"spec.predictor.{', spec.predictor.'.join(PRUNED_PREDICTOR)}",
        ],
    }
    for tag in (NEWEST, OLDEST):
        key, schema = crd_schema(git_dir, tag, CRD)
        schemas[key if tag == NEWEST else f"{key}@{tag}"] = pruned(schema)
    write_schemas(OUTPUT, schemas)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(Path(sys.argv[1]))
