"""The model server: ONNX Runtime behind a small asyncio HTTP server (numpy, onnxruntime, httptools and uvloop only).

``settings`` reads the configuration from the environment, ``model`` loads and checks the exported model and turns
JSON requests into predictions, ``metrics`` keeps the Prometheus counters and ``http`` serves it all.
"""
