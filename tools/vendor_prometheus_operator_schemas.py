"""Vendor the prometheus-operator CRD schema (PodMonitor) the generated project's tests validate against.

The generated project's ``tests/test_deploy.py`` validates ``deploy/components/monitoring/podmonitor.yaml`` against,
with no network at test time.

Usage: ``python -m tools.vendor_prometheus_operator_schemas PROMETHEUS_OPERATOR_GIT_DIR`` (a clone or mirror of
prometheus-operator/prometheus-operator; the release tag below is read with ``git show``).

The schema is kept whole except its ``description`` fields and ``status`` (see ``tools/vendor_argo_schemas.py``, whose
reading of a CRD this shares); only the schema (data) is committed, never the operator's code.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from tools.vendor_argo_schemas import crd_schema, write_schemas

OUTPUT = (
    Path(__file__).resolve().parents[1]
    / "{{cookiecutter.project_slug}}"
    / "tests"
    / "schemas"
    / "prometheus-operator-crds.json"
)
TAG = "v0.93.0"
REPOSITORY = "prometheus-operator/prometheus-operator"
CRDS = ("example/prometheus-operator-crd/monitoring.coreos.com_podmonitors.yaml",)


def main(git_dir: Path) -> None:
    """Write ``tests/schemas/prometheus-operator-crds.json`` into the template."""
    schemas: dict[str, Any] = {
        "_source": [f"{REPOSITORY}@{TAG}:{path}" for path in CRDS],
        "_pruned": ["description fields", "status"],
    }
    for path in CRDS:
        key, schema = crd_schema(git_dir, TAG, path)
        schemas[key] = schema
    write_schemas(OUTPUT, schemas)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(Path(sys.argv[1]))
