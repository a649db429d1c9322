"""How the exported ONNX graph names its inputs: what the pipeline writes and the server feeds."""

from __future__ import annotations

MISSING_CATEGORY = ""
"""What a missing category becomes in the model's string inputs (the one-hot encoder treats it as unknown)."""

NUMERIC_INPUT = "__numeric__"
"""The graph input holding every numeric feature, ``float32[n, k]`` in schema order (missing values are NaN).

Category features keep one ``string[n, 1]`` input each, named after the feature. One packed tensor instead of a
tensor per feature makes a prediction several times cheaper: ONNX Runtime pays a fixed cost per input.
"""
