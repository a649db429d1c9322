"""The serving runtime: ONNX Runtime sessions configured as the model server runs them (onnxruntime only)."""

from __future__ import annotations

import onnxruntime as ort

MISSING_CATEGORY = ""
"""What a missing category becomes in the model's string inputs (the one-hot encoder treats it as unknown)."""

NUMERIC_INPUT = "__numeric__"
"""The graph input holding every numeric feature, ``float32[n, k]`` in schema order (missing values are NaN).

Category features keep one ``string[n, 1]`` input each, named after the feature. One packed tensor instead of a
tensor per feature makes a prediction several times cheaper: ONNX Runtime pays a fixed cost per input.
"""


def session(model_bytes: bytes) -> ort.InferenceSession:
    """A single-threaded CPU session, the way the server runs the model."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.enable_profiling = False  # profiling would write a JSON file to the working directory
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
