"""The model server: ONNX Runtime behind a small asyncio HTTP server (numpy, onnxruntime, orjson, httptools, uvloop).

One job per module. ``settings`` reads the configuration from the environment, ``limits`` the bounds every client is
held to. ``model`` loads and checks the exported model and turns validated instances into predictions; ``tensors``
reads and writes Open Inference Protocol tensors; ``unavailable`` stands in for a model that cannot be read.
``routes`` is the route table shared by the APIs: ``app`` (``/predict``, health, metadata, metrics, OpenAPI), ``v2``
(the Open Inference Protocol) and ``admin`` (versions, rollback, shadow and A/B through ``router``). ``protocol``
speaks HTTP/1.1 on one connection, ``writer`` sends the answers, ``server`` listens and stops gracefully.
``metrics``, ``prediction_log``, ``openapi``, ``golden`` and ``logs`` serve them all.
"""
