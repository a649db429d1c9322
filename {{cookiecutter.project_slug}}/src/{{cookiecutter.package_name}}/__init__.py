"""The {{ cookiecutter.package_name }} package: data contract, training, validation gate, tracking, report and server."""

import os

# ONNX Runtime's telemetry writes a device id under ~/.cache/Microsoft at import: the server writes nothing to disk.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
# MLflow sends usage telemetry from every process that imports it, unless this is set before the import (every
# command imports mlflow after this package). MLFLOW_DISABLE_TELEMETRY=false in the environment turns it back on.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

__version__ = "0.1.0"
