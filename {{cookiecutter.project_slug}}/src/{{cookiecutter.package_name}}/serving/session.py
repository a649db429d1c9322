"""ONNX Runtime sessions configured as the model server runs them (onnxruntime only)."""

from __future__ import annotations

import onnxruntime as ort


def session(model_bytes: bytes) -> ort.InferenceSession:
    """A single-threaded CPU session, the way the server runs the model."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.enable_profiling = False  # profiling would write a JSON file to the working directory
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
