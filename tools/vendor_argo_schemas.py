"""Vendor the Argo CD and Argo Rollouts CRD schemas the generated project's tests validate against.

The generated project's ``tests/test_deploy.py`` validates its Argo resources against them, with no network at test
time.

Usage: ``python -m tools.vendor_argo_schemas ARGO_CD_GIT_DIR ARGO_ROLLOUTS_GIT_DIR`` (clones or mirrors of
argoproj/argo-cd and argoproj/argo-rollouts; the release tags below are read with ``git show``).

Only what the tests need is kept: the ``openAPIV3Schema`` of Application, Rollout and AnalysisTemplate, without
``description`` fields, ``status`` and ``operation`` (never written in git), Rollout's inline pod ``template`` (the
project uses ``workloadRef``) and AnalysisTemplate's metric providers other than Prometheus. A pruned subtree becomes
``{"x-pruned": true}``, which accepts anything: re-vendor without pruning it before relying on it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

OUTPUT = Path(__file__).resolve().parents[1] / "{{cookiecutter.project_slug}}" / "tests" / "schemas" / "argo-crds.json"
ARGO_CD_TAG = "v3.5.1"
ARGO_ROLLOUTS_TAG = "v1.9.1"
PRUNED = {"x-pruned": True}
KEPT_PROVIDERS = {"prometheus"}


def _without_descriptions(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _without_descriptions(v) for k, v in node.items() if k != "description"}
    if isinstance(node, list):
        return [_without_descriptions(v) for v in node]
    return node


def crd_schema(git_dir: Path, tag: str, path: str) -> tuple[str, dict[str, Any]]:
    """The ``group/version/Kind`` key and the served version's schema (no descriptions) of one CRD file."""
    text = subprocess.run(
        ["git", "-C", str(git_dir), "show", f"{tag}:{path}"], capture_output=True, text=True, check=True
    ).stdout
    crd = yaml.safe_load(text)
    version = next(v for v in crd["spec"]["versions"] if v.get("served") and v.get("storage"))
    schema: dict[str, Any] = _without_descriptions(version["schema"]["openAPIV3Schema"])
    for field in ("status", "operation"):
        schema["properties"].pop(field, None)
    return f"{crd['spec']['group']}/{version['name']}/{crd['spec']['names']['kind']}", schema


def main(argo_cd: Path, argo_rollouts: Path) -> None:
    """Write ``tests/schemas/argo-crds.json`` into the template."""
    sources = [
        (argo_cd, ARGO_CD_TAG, "manifests/crds/application-crd.yaml", "argoproj/argo-cd"),
        (argo_rollouts, ARGO_ROLLOUTS_TAG, "manifests/crds/rollout-crd.yaml", "argoproj/argo-rollouts"),
        (argo_rollouts, ARGO_ROLLOUTS_TAG, "manifests/crds/analysis-template-crd.yaml", "argoproj/argo-rollouts"),
    ]
    schemas: dict[str, Any] = {
        "_source": [f"{repo}@{tag}:{path}" for _, tag, path, repo in sources],
        "_pruned": [
            "description fields",
            "status, operation",
            "Rollout spec.template",
            "AnalysisTemplate spec.metrics[].provider other than prometheus",
        ],
    }
    for git_dir, tag, path, _ in sources:
        key, schema = crd_schema(git_dir, tag, path)
        spec = schema["properties"]["spec"]["properties"]
        if key.endswith("/Rollout"):
            spec["template"] = PRUNED
        if key.endswith("/AnalysisTemplate"):
            providers = spec["metrics"]["items"]["properties"]["provider"]["properties"]
            for name in set(providers) - KEPT_PROVIDERS:
                providers[name] = PRUNED
        schemas[key] = schema
    write_schemas(OUTPUT, schemas)


def write_schemas(output: Path, schemas: dict[str, Any]) -> None:
    """Write vendored schemas as sorted JSON into the template, refusing text that cookiecutter would render."""
    text = json.dumps(schemas, indent=1, sort_keys=True) + "\n"
    if "{{" in text or "{%" in text or "{#" in text:
        raise SystemExit("error: the schemas hold a Jinja marker; cookiecutter would try to render it")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    print(f"wrote {output} ({len(text) // 1024} KiB)")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    main(Path(sys.argv[1]), Path(sys.argv[2]))
