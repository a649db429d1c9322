"""The {{ cookiecutter.package_name }} package: data contract, training, validation gate, tracking, report and server."""

import os

# ONNX Runtime's telemetry writes a device id under ~/.cache/Microsoft at import: the server writes nothing to disk.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

__version__ = "0.1.0"
