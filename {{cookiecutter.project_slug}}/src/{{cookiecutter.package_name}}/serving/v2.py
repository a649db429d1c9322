"""The Open Inference Protocol (KServe v2 REST) beside ``/predict``: the routes, around the same models and rules.

The model is named after the package (``MODEL_NAME``); its versions are the champion's and, while one is served, the
challenger's. ``POST /v2/models/{name}/infer`` is routed as ``/predict`` is (shadow, A/B with ``X-Route-Key``);
naming a version (``/v2/models/{name}/versions/{version}/infer``) gets that model, outside the A/B split (a shadow
challenger still scores what the champion answers). Requests are validated with ``/predict``'s rules, counted in the
same metrics (``endpoint`` is the route's template) and sampled into the same prediction log, whose ``request_id`` is
the response's ``id``: the request's ``id`` (an empty one counts as none), or else the request id of ``/predict``
(``X-Request-ID`` or one made up). The ``X-Request-ID`` response header is that of ``/predict``, never the body's.
Errors are ``{"error": "..."}`` with a 4xx naming the problem (404 for an unknown model or version, 503 not ready).
Tensor conventions: ``tensors``.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
from random import random
from typing import TYPE_CHECKING, Any

import orjson

from {{ cookiecutter.package_name }}.serving import tensors
from {{ cookiecutter.package_name }}.serving.model import Model, RequestError
from {{ cookiecutter.package_name }}.serving.routes import JSON, Request, Response, Routes, json_response

if TYPE_CHECKING:
    from {{ cookiecutter.package_name }}.serving.app import App

MODEL_NAME = __name__.split(".", 1)[0]
"""The model's name in the protocol's paths: the package's name."""
DISTRIBUTION = "{{ cookiecutter.project_slug }}"
EXTENSIONS = ["classification"]
"""Triton's extensions this server implements (binary tensor data is accepted in requests, but not listed: outputs
are always JSON)."""


def server_version() -> str:
    """The package's version, or ``unknown`` when it runs from a source tree."""
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


class V2:
    """The protocol's routes, around the prediction API's router, metrics and prediction log."""

    def __init__(self, app: App) -> None:
        """Keep the app whose models are served."""
        self.app = app
        self.server = {"name": MODEL_NAME, "version": server_version(), "extensions": EXTENSIONS}

    def register(self, routes: Routes) -> None:
        """Add the routes to the prediction API's table."""
        for path in ("/v2", "/v2/"):
            routes.add(path, {"GET": self.server_metadata})
        routes.add("/v2/health/live", {"GET": self.live})
        routes.add("/v2/health/ready", {"GET": self.ready})
        for model in ("/v2/models/{name}", "/v2/models/{name}/versions/{version}"):
            routes.add(model, {"GET": self.model_metadata})
            routes.add(f"{model}/ready", {"GET": self.model_ready})
            routes.add(f"{model}/infer", {"POST": self.infer})

    # ----------------------------------------------------------------------------------------------------------------
    # Server
    # ----------------------------------------------------------------------------------------------------------------

    def server_metadata(self, request: Request) -> Response:
        """``GET /v2``: the server's name, version and extensions."""
        return json_response(self.server)

    def live(self, request: Request) -> Response:
        """``GET /v2/health/live``: the process answers."""
        return json_response({"live": True})

    def ready(self, request: Request) -> Response:
        """``GET /v2/health/ready``: as ``/readyz``, ``{"ready": true}`` or a 503 with the reason."""
        reason = self._unready(self.app.router.champion.model)
        if reason is None:
            return json_response({"ready": True})
        return json_response({"ready": False, "error": reason}, 503)

    # ----------------------------------------------------------------------------------------------------------------
    # Models
    # ----------------------------------------------------------------------------------------------------------------

    def versions(self) -> list[str]:
        """The versions a request may name: the champion's, then the challenger's."""
        router = self.app.router
        versions = [router.champion.model.version]
        if router.challenger is not None and router.challenger.model.version not in versions:
            versions.append(router.challenger.model.version)
        return versions

    def _named(self, request: Request) -> tuple[Model, Model | None] | None:
        """The model a request's path names and its shadow, or None when it names no version (404 if unknown)."""
        name, *version = request.params
        if name != MODEL_NAME:
            raise RequestError(f"unknown model {name!r}: this server serves {MODEL_NAME!r}", status=404)
        if not version:
            return None
        router = self.app.router
        champion, challenger = router.champion.model, router.challenger
        if version[0] == champion.version:
            shadow = challenger.model if challenger is not None and router.mode == "shadow" else None
            return champion, shadow
        if challenger is not None and version[0] == challenger.model.version:
            return challenger.model, None
        served = ", ".join(self.versions())
        raise RequestError(f"model {MODEL_NAME!r} has no version {version[0]!r}: it serves {served}", status=404)

    def _model(self, request: Request) -> Model:
        named = self._named(request)
        model = self.app.router.champion.model if named is None else named[0]
        request.version = model.version
        return model

    def _unready(self, model: Model) -> str | None:
        if self.app.draining:
            return "the server is shutting down"
        return None if model.ready else model.reason

    def model_metadata(self, request: Request) -> Response:
        """``GET /v2/models/{name}[/versions/{version}]``: inputs, outputs, platform and versions."""
        model = self._model(request)
        key = f"v2 model {model.version}"
        return 200, JSON, self.app.cached(key, lambda: tensors.metadata(model, MODEL_NAME, self.versions()))

    def model_ready(self, request: Request) -> Response:
        """``GET /v2/models/{name}[/versions/{version}]/ready``: ``{"name", "ready"}``, 503 when not ready."""
        reason = self._unready(self._model(request))
        if reason is None:
            return json_response({"name": MODEL_NAME, "ready": True})
        return json_response({"name": MODEL_NAME, "ready": False, "error": reason}, 503)

    # ----------------------------------------------------------------------------------------------------------------
    # Inference
    # ----------------------------------------------------------------------------------------------------------------

    def infer(self, request: Request) -> Response:
        """``POST /v2/models/{name}[/versions/{version}]/infer``: as ``/predict``, with tensors in and out."""
        app = self.app
        named = self._named(request)
        model, shadow = app.router.route(request.route_key) if named is None else named
        request.version = model.version
        if not model.ready:
            raise RequestError(f"the model is not ready: {model.reason}", status=503)
        inference = tensors.read(request.body)
        columns = tensors.columns(inference, model)
        outputs = tensors.selected(inference, model)
        batch = model.columns(columns)
        labels, rows = model.infer(batch)
        app.metrics.predicted(model.version, batch.size, batch.unknown)
        request_id = inference.id or request.request_id
        logged = app.prediction_log
        sampled = logged is not None and random() < logged.rate
        if shadow is not None or sampled:
            document: dict[str, Any] = {"instances": tensors.records(model.names, columns)}
            predictions = model.predictions(labels, rows)
            if shadow is not None:
                asyncio.get_running_loop().call_soon(app.shadow, shadow, model, document, predictions, request_id)
            if sampled and logged is not None:
                logged.record(request_id, model.version, model.names, document, predictions)
        body = {
            "model_name": MODEL_NAME,
            "model_version": model.version,
            "id": request_id,
            "outputs": tensors.encode(model, outputs, labels, rows),
        }
        return 200, JSON, orjson.dumps(body)
