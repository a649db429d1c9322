"""The prediction API, independent of the transport.

``POST /predict``, ``GET /healthz``, ``GET /readyz``, ``GET /metadata``, ``GET /metrics`` (Prometheus) and
``GET /openapi.json``, around the router of models, the metrics and the prediction log; the Open Inference Protocol's
``/v2`` routes (``v2``) beside them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from random import random
from typing import Any

import orjson

from {{ cookiecutter.package_name }}.serving import openapi
from {{ cookiecutter.package_name }}.serving.logs import log
from {{ cookiecutter.package_name }}.serving.metrics import Metrics
from {{ cookiecutter.package_name }}.serving.model import Model, RequestError
from {{ cookiecutter.package_name }}.serving.prediction_log import PredictionLog
from {{ cookiecutter.package_name }}.serving.router import Router
from {{ cookiecutter.package_name }}.serving.routes import JSON, Request, Response, Routes, decode, json_response
from {{ cookiecutter.package_name }}.serving.settings import Settings
from {{ cookiecutter.package_name }}.serving.v2 import V2

PACKAGE = __name__.split(".", 1)[0]


class App:
    """The prediction API: routes, the router of models and the metrics; independent of the transport."""

    def __init__(self, settings: Settings, router: Router) -> None:
        """Register the routes."""
        self.settings = settings
        self.router = router
        self.metrics = Metrics()
        self.draining = False
        self.routes = Routes(self.metrics, lambda: self.router.champion.model.version)
        self.routes.table = {
            "/predict": {"POST": self.predict},
            "/healthz": {"GET": self.healthz},
            "/readyz": {"GET": self.readyz},
            "/metadata": {"GET": self.metadata},
            "/metrics": {"GET": self.prometheus},
            "/openapi.json": {"GET": self.openapi},
        }
        V2(self).register(self.routes)
        self._documents: dict[tuple[str, int], bytes] = {}
        directory = settings.prediction_log_dir
        self.prediction_log = (
            None
            if directory is None
            else PredictionLog(directory, settings.prediction_log_sample, settings.prediction_log_max_bytes)
        )

    def predict(self, request: Request) -> Response:
        """``POST /predict``: the routed model answers; a shadow challenger scores after the response is sent.

        A ``PREDICTION_LOG_SAMPLE`` share of the answered requests is logged, with the answering model's version.
        """
        model, shadow = self.router.route(request.route_key)
        request.version = model.version
        if not model.ready:
            raise RequestError(f"the model is not ready: {model.reason}", status=503)
        document = decode(request.body)
        batch = model.parse(document)
        predictions = model.predict(batch)
        self.metrics.predicted(model.version, batch.size, batch.unknown)
        if shadow is not None:
            asyncio.get_running_loop().call_soon(self.shadow, shadow, model, document, predictions, request.request_id)
        logged = self.prediction_log
        if logged is not None and random() < logged.rate:
            logged.record(request.request_id, model.version, model.names, document, predictions)
        body = {"predictions": predictions, "model_version": model.version, "request_id": request.request_id}
        return 200, JSON, orjson.dumps(body)

    def shadow(
        self, challenger: Model, champion: Model, document: Any, answered: list[dict[str, Any]], request_id: str
    ) -> None:
        """Score a request with the challenger and count whether it agrees with the champion's answer."""
        start = time.perf_counter()
        try:
            predictions = challenger.predict(challenger.parse(document))
        except Exception as exc:  # the client has its answer: a challenger failure is only counted and logged
            outcome, predictions = "error", []
            failure = {"request_id": request_id, "challenger": challenger.version, "error": str(exc)}
            log.warning("shadow scoring failed", extra={"fields": failure})
        else:
            outcome = "agree" if _agree(answered, predictions) else "disagree"
        self.metrics.shadowed(champion.version, challenger.version, outcome, time.perf_counter() - start)
        if outcome == "disagree" or log.isEnabledFor(logging.DEBUG):
            fields: dict[str, Any] = {
                "request_id": request_id,
                "champion": champion.version,
                "challenger": challenger.version,
                "answered": answered,
                "shadow": predictions,
            }
            log.log(logging.INFO if outcome == "disagree" else logging.DEBUG, "shadow", extra={"fields": fields})

    def healthz(self, request: Request) -> Response:
        """``GET /healthz``: the process answers."""
        return json_response({"status": "alive"})

    def readyz(self, request: Request) -> Response:
        """``GET /readyz``: 200 once the champion passed its self-check; 503 with the reason before or when stopping."""
        model = self.router.champion.model
        if self.draining:
            return json_response({"status": "not ready", "error": "the server is shutting down"}, 503)
        if model.ready:
            return json_response({"status": "ready", "model_version": model.version})
        return json_response({"status": "not ready", "error": model.reason}, 503)

    def metadata(self, request: Request) -> Response:
        """``GET /metadata``: the champion's metadata and the other models being served."""
        return 200, JSON, self.cached("metadata", self._metadata)

    def prometheus(self, request: Request) -> Response:
        """``GET /metrics``."""
        self.metrics.roles = {role: model.version for role, model in self.router.roles().items()}
        if self.prediction_log is not None:
            self.metrics.prediction_log = self.prediction_log.counts()
        return 200, b"text/plain; version=0.0.4; charset=utf-8", self.metrics.render().encode()

    def openapi(self, request: Request) -> Response:
        """``GET /openapi.json``."""
        return 200, JSON, self.cached("openapi", lambda: openapi.document(self.router.champion.model))

    def cached(self, name: str, build: Callable[[], Any]) -> bytes:
        """A JSON document about the served models, rebuilt only when they change."""
        key = (name, hash(tuple(sorted((r, id(m)) for r, m in self.router.roles().items()))))
        if key not in self._documents:
            self._documents = {k: v for k, v in self._documents.items() if k[0] != name}
            self._documents[key] = orjson.dumps(build())
        return self._documents[key]

    def _metadata(self) -> dict[str, Any]:
        model = self.router.champion.model
        meta = model.metadata
        lineage = meta.get("lineage") or {}
        return {
            "name": PACKAGE,
            "version": model.version,
            "task": model.task,
            "target": meta.get("target"),
            "classes": model.classes,
            "positive": meta.get("positive"),
            "git_commit": lineage.get("git_commit"),
            "data_hash": lineage.get("data.raw.md5") or lineage.get("data.raw.dvc_md5"),
            "metrics": meta.get("metrics", {}),
            "lineage": lineage,
            "opset": meta.get("opset"),
            "inputs": meta.get("inputs"),
            "outputs": meta.get("outputs"),
            "serving": self.router.describe(),
        }


def _agree(answered: list[dict[str, Any]], shadow: list[dict[str, Any]]) -> bool:
    """Same labels (classification) or values within 1% (regression) for every instance."""
    if len(answered) != len(shadow):
        return False
    for a, b in zip(answered, shadow, strict=True):
        if "label" in a:
            if a["label"] != b.get("label"):
                return False
        elif abs(a["value"] - b.get("value", float("inf"))) > 0.01 * max(abs(a["value"]), 1.0):
            return False
    return True
