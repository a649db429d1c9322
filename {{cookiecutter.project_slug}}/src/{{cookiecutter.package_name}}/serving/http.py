"""The HTTP server: asyncio protocols with httptools' parser on uvloop, and the routes around the model.

Routes: ``POST /predict``, ``GET /healthz`` (the process is alive), ``GET /readyz`` (503 with the reason until the
model passed its self-check), ``GET /metadata``, ``GET /metrics`` (Prometheus) and ``GET /openapi.json``.

HTTP/1.1 with keep-alive and pipelining (requests are answered in order, one at a time: prediction is CPU-bound and
ONNX Runtime runs on this thread). Bodies come with ``Content-Length`` or chunked encoding, at most
``MAX_BODY_BYTES`` (413 above); a ``POST`` with neither gets 411. Every error is JSON: ``{"error": "..."}``.
Nothing is written to disk; logs are JSON lines on stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import Any, cast

import httptools
import uvloop

from {{ cookiecutter.package_name }}.serving.metrics import Metrics
from {{ cookiecutter.package_name }}.serving.model import Model, ModelError, RequestError
from {{ cookiecutter.package_name }}.serving.settings import Settings

log = logging.getLogger("{{ cookiecutter.package_name }}.serving")
PACKAGE = __name__.split(".", 1)[0]
REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    411: "Length Required",
    413: "Content Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
JSON = b"application/json"
Response = tuple[int, bytes, bytes]  # status, content type, body
Handler = Callable[["Request"], Response]


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, message and the record's ``fields``."""

    def format(self, record: logging.LogRecord) -> str:
        """Render the record."""
        line: dict[str, Any] = {
            "time": round(record.created, 6),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(getattr(record, "fields", {}))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure_logging(level: str) -> None:
    """JSON lines on stderr at ``level``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    log.handlers[:] = [handler]
    log.setLevel(level)
    log.propagate = False


def _error(status: int, message: str) -> Response:
    return status, JSON, json.dumps({"error": message}).encode()


def _json(document: Any, status: int = 200) -> Response:
    return status, JSON, json.dumps(document).encode()


class Request:
    """One parsed request."""

    __slots__ = ("body", "method", "path", "request_id")

    def __init__(self, method: str, path: str, body: bytes, request_id: str) -> None:
        """Keep what the handlers need."""
        self.method = method
        self.path = path
        self.body = body
        self.request_id = request_id


def openapi(model: Model) -> dict[str, Any]:
    """A static OpenAPI 3.1 description of the server, with the model's inputs as the request schema."""
    types = {"integer": {"type": "integer"}, "number": {"type": "number"}}
    properties: dict[str, Any] = {}
    for feature in model.inputs:
        spec: dict[str, Any] = dict(types.get(feature.type, {"type": "string"}))
        if feature.type == "category":
            spec["examples"] = sorted(feature.categories)
            spec["description"] = "known categories: " + ", ".join(sorted(feature.categories))
        if feature.nullable:
            spec["type"] = [spec["type"], "null"]
        properties[feature.name] = spec
    record = {
        "type": "object",
        "properties": properties,
        "required": [f.name for f in model.inputs],
        "additionalProperties": False,
    }
    if model.task == "classification":
        prediction: dict[str, Any] = {
            "type": "object",
            "properties": {
                "label": {"type": "string", "enum": model.classes},
                "probabilities": {
                    "type": "object",
                    "properties": {c: {"type": "number"} for c in model.classes},
                },
            },
        }
    else:
        prediction = {"type": "object", "properties": {"value": {"type": "number"}}}
    error = {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}
    error_ref = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    plain = {"200": {"description": "OK"}}
    return {
        "openapi": "3.1.0",
        "info": {"title": f"{PACKAGE} model server", "version": model.version},
        "paths": {
            "/predict": {
                "post": {
                    "summary": "Predict a batch of instances (records or rows).",
                    "parameters": [{"name": "X-Request-ID", "in": "header", "schema": {"type": "string"}}],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "oneOf": [
                                        {
                                            "type": "object",
                                            "properties": {
                                                "instances": {"type": "array", "items": record, "minItems": 1}
                                            },
                                            "required": ["instances"],
                                        },
                                        {
                                            "type": "object",
                                            "properties": {
                                                "columns": {"type": "array", "items": {"type": "string"}},
                                                "rows": {"type": "array", "items": {"type": "array"}, "minItems": 1},
                                            },
                                            "required": ["rows"],
                                        },
                                    ]
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "One prediction per instance, in order.",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "properties": {
                                            "predictions": {"type": "array", "items": prediction},
                                            "model_version": {"type": "string"},
                                            "request_id": {"type": "string"},
                                        },
                                    }
                                }
                            },
                        },
                        "400": {"description": "Invalid request.", "content": error_ref},
                        "413": {"description": "Body too large.", "content": error_ref},
                        "503": {"description": "The model is not ready.", "content": error_ref},
                    },
                }
            },
            "/healthz": {"get": {"summary": "The process is alive.", "responses": plain}},
            "/readyz": {"get": {"summary": "The model passed its self-check.", "responses": plain}},
            "/metadata": {"get": {"summary": "The model's version, lineage and input schema.", "responses": plain}},
            "/metrics": {"get": {"summary": "Prometheus metrics.", "responses": plain}},
            "/openapi.json": {"get": {"summary": "This document.", "responses": plain}},
        },
        "components": {"schemas": {"Instance": record, "Prediction": prediction, "Error": error}},
    }


class App:
    """The routes, the model and the metrics; independent of the transport."""

    def __init__(self, settings: Settings, model: Model) -> None:
        """Prepare the static documents."""
        self.settings = settings
        self.model = model
        self.metrics = Metrics(model.version)
        meta = model.metadata
        lineage = meta.get("lineage") or {}
        self.metadata_body = json.dumps(
            {
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
            }
        ).encode()
        self.openapi_body = json.dumps(openapi(model)).encode()
        self.routes: dict[str, dict[str, Handler]] = {
            "/predict": {"POST": self.predict},
            "/healthz": {"GET": self.healthz},
            "/readyz": {"GET": self.readyz},
            "/metadata": {"GET": self.metadata},
            "/metrics": {"GET": self.prometheus},
            "/openapi.json": {"GET": self.openapi},
        }

    def handle(self, request: Request) -> Response:
        """Route one request and count it."""
        start = time.perf_counter()
        methods = self.routes.get(request.path)
        endpoint = request.path if methods is not None else "other"
        if methods is None:
            response = _error(404, f"no route {request.path}: see /openapi.json")
        elif request.method not in methods:
            response = _error(405, f"{request.method} is not allowed on {request.path}: use {', '.join(methods)}")
        else:
            try:
                response = methods[request.method](request)
            except RequestError as exc:
                response = _error(exc.status, str(exc))
            except Exception:
                log.exception("request failed", extra={"fields": {"request_id": request.request_id}})
                response = _error(500, "internal error")
        status = response[0]
        if status >= 400:
            self.metrics.error(endpoint, "client" if status < 500 else ("not_ready" if status == 503 else "server"))
        elapsed = time.perf_counter() - start
        self.metrics.observe(endpoint, status, elapsed)
        if log.isEnabledFor(logging.DEBUG):
            fields = {
                "request_id": request.request_id,
                "method": request.method,
                "path": request.path,
                "status": status,
                "duration_ms": round(elapsed * 1000, 3),
            }
            log.debug("request", extra={"fields": fields})
        return response

    def predict(self, request: Request) -> Response:
        """``POST /predict``."""
        model = self.model
        if not model.ready:
            raise RequestError(f"the model is not ready: {model.reason}", status=503)
        batch = model.parse_body(request.body)
        predictions = model.predict(batch)
        self.metrics.predicted(batch.size, batch.unknown)
        body = {"predictions": predictions, "model_version": model.version, "request_id": request.request_id}
        return 200, JSON, json.dumps(body).encode()

    def healthz(self, request: Request) -> Response:
        """``GET /healthz``: the process answers."""
        return _json({"status": "alive"})

    def readyz(self, request: Request) -> Response:
        """``GET /readyz``: 200 once the self-check passed, 503 with the reason before or if it failed."""
        if self.model.ready:
            return _json({"status": "ready", "model_version": self.model.version})
        return _json({"status": "not ready", "error": self.model.reason}, 503)

    def metadata(self, request: Request) -> Response:
        """``GET /metadata``."""
        return 200, JSON, self.metadata_body

    def prometheus(self, request: Request) -> Response:
        """``GET /metrics``."""
        return 200, b"text/plain; version=0.0.4; charset=utf-8", self.metrics.render().encode()

    def openapi(self, request: Request) -> Response:
        """``GET /openapi.json``."""
        return 200, JSON, self.openapi_body


class HttpProtocol(asyncio.Protocol):
    """One client connection, parsed by httptools; the parser's callbacks fill the current request."""

    ids = itertools.count(1)
    prefix = os.urandom(4).hex()

    def __init__(self, app: App) -> None:
        """Start with no transport; ``connection_made`` brings it."""
        self.app = app
        self.max_body = app.settings.max_body_bytes
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self._reset()

    def _reset(self) -> None:
        self.url = b""
        self.body: list[bytes] = []
        self.size = 0
        self.request_id: str | None = None
        self.has_length = False
        self.refused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport."""
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the transport."""
        self.transport = None

    def data_received(self, data: bytes) -> None:
        """Feed the parser; malformed HTTP gets a 400 and the connection is closed."""
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._send(_error(400, "protocol upgrades are not supported"), "-", keep_alive=False)
        except httptools.HttpParserError as exc:
            if not self.refused:
                self._send(_error(400, f"malformed HTTP request: {exc}"), "-", keep_alive=False)

    # httptools callbacks ------------------------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        """A new request starts."""
        self._reset()

    def on_url(self, url: bytes) -> None:
        """The URL may arrive in pieces."""
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        """Keep the headers the server uses."""
        lower = name.lower()
        if lower == b"x-request-id":
            self.request_id = value.decode("latin-1")[:128]
        elif lower == b"content-length" or (lower == b"transfer-encoding" and b"chunked" in value.lower()):
            self.has_length = True

    def on_headers_complete(self) -> None:
        """Refuse bodies that are too large or have no length before reading them."""
        method = self.parser.get_method()
        length = self.parser.get_content_length() if hasattr(self.parser, "get_content_length") else None
        if length is not None and length > self.max_body:
            self._refuse(413, f"the body has {length} bytes, more than MAX_BODY_BYTES={self.max_body}")
        elif method == b"POST" and not self.has_length:
            self._refuse(411, "POST needs a Content-Length header (or chunked transfer encoding)")

    def on_body(self, body: bytes) -> None:
        """Collect the body, refusing it as soon as it exceeds the limit."""
        if self.refused:
            return
        self.size += len(body)
        if self.size > self.max_body:
            self._refuse(413, f"the body is larger than MAX_BODY_BYTES={self.max_body}")
            return
        self.body.append(body)

    def on_message_complete(self) -> None:
        """Answer the request."""
        if self.refused:
            return
        request_id = self.request_id or f"{self.prefix}-{next(self.ids)}"
        path = self.url.split(b"?", 1)[0].decode("latin-1")
        method = self.parser.get_method().decode("latin-1")
        request = Request(method, path, b"".join(self.body), request_id)
        self._send(self.app.handle(request), request_id, self.parser.should_keep_alive())

    # responses ----------------------------------------------------------------------------------------------------

    def _refuse(self, status: int, message: str) -> None:
        """Answer now and close: the rest of the request is not read."""
        self.refused = True
        request_id = self.request_id or f"{self.prefix}-{next(self.ids)}"
        path = self.url.split(b"?", 1)[0].decode("latin-1")
        endpoint = path if path in self.app.routes else "other"
        self.app.metrics.error(endpoint, "client")
        self.app.metrics.observe(endpoint, status, 0.0)
        self._send(_error(status, message), request_id, keep_alive=False)

    def _send(self, response: Response, request_id: str, keep_alive: bool) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        status, content_type, body = response
        head = b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nX-Request-ID: %s\r\n%s\r\n" % (
            status,
            REASONS.get(status, "Error").encode(),
            content_type,
            len(body),
            request_id.encode("latin-1", "replace"),
            b"" if keep_alive else b"Connection: close\r\n",
        )
        transport.write(head + body)
        if not keep_alive:
            transport.close()


class ModelServer:
    """The listening server: bind first (``/healthz`` answers at once), then self-check the model."""

    def __init__(self, settings: Settings, model: Model) -> None:
        """Build the app; nothing listens until ``start``."""
        self.settings = settings
        self.app = App(settings, model)
        self.server: asyncio.Server | None = None
        self.port = settings.port

    async def start(self) -> int:
        """Listen and return the bound port (useful with ``PORT=0``)."""
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(
            lambda: HttpProtocol(self.app), self.settings.host, self.settings.port, reuse_address=True, backlog=1024
        )
        self.port = self.server.sockets[0].getsockname()[1]
        log.info("listening", extra={"fields": {"host": self.settings.host, "port": self.port}})
        return self.port

    async def check(self) -> bool:
        """Run the model's self-check off the event loop; log the outcome."""
        model = self.app.model
        ready = await asyncio.get_running_loop().run_in_executor(None, model.self_check)
        fields = {"model_version": model.version, "reason": model.reason}
        if ready:
            log.info("ready", extra={"fields": fields})
        else:
            log.error("the model failed its self-check; not ready", extra={"fields": fields})
        return ready

    async def close(self) -> None:
        """Stop listening and close open connections."""
        if self.server is not None:
            self.server.close()
            close_clients = getattr(self.server, "close_clients", None)  # Python 3.13+
            if close_clients is not None:
                close_clients()
            await self.server.wait_closed()


async def serve(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Load the model, listen, self-check, and serve until ``stop`` is set (or SIGTERM/SIGINT in the main thread)."""
    model = Model(settings.model_dir, settings.max_batch)
    server = ModelServer(settings, model)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(ValueError, NotImplementedError, RuntimeError):  # not the main thread
            loop.add_signal_handler(sig, stop.set)
    await server.start()
    await server.check()
    await stop.wait()
    log.info("stopping")
    await server.close()


def run(settings: Settings) -> int:
    """The ``serve`` command: configure logging, serve on uvloop until stopped; 1 if the model cannot be read."""
    configure_logging(settings.log_level)
    # ONNX Runtime keeps no cache and writes nothing unless profiling or optimized-model saving is enabled (both off).
    log.info("starting", extra={"fields": {"settings": {k: str(v) for k, v in vars(settings).items()}}})
    try:
        uvloop.run(serve(settings))
    except ModelError as exc:
        log.error("cannot start", extra={"fields": {"error": str(exc)}})
        return 1
    except OSError as exc:
        log.error("cannot listen", extra={"fields": {"error": str(exc)}})
        return 1
    return 0
