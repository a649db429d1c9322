"""The HTTP server: asyncio protocols with httptools' parser on uvloop, and the routes around the models.

Prediction API (``HOST:PORT``): ``POST /predict``, ``GET /healthz`` (the process is alive), ``GET /readyz`` (503
with the reason until the champion passed its self-check, and while shutting down), ``GET /metadata``,
``GET /metrics`` (Prometheus) and ``GET /openapi.json``.

Admin API (``ADMIN_HOST:ADMIN_PORT``, loopback by default): ``GET /admin/models`` (what is served),
``POST /admin/models`` (load a version from ``MODEL_STORE``: ``{"name": ..., "role": "champion"}`` switches to it,
``{"name": ..., "role": "challenger", "mode": "shadow"|"ab", "weight": 0.1}`` serves it beside the champion),
``POST /admin/rollback``, ``PUT /admin/routing`` (``{"mode", "weight"}``), ``POST /admin/challenger/promote`` and
``DELETE /admin/challenger``. A model is loaded and self-checked off the event loop, then switched in between two
requests: no request fails or waits for a switch, a rollback or a promotion.

HTTP/1.1 with keep-alive and pipelining (requests are answered in order, one at a time: prediction is CPU-bound and
ONNX Runtime runs on this thread). Bodies come with ``Content-Length`` or chunked encoding, at most
``MAX_BODY_BYTES`` (413 above). Every error is JSON: ``{"error": "..."}``. Every response carries a request id
(the ``X-Request-ID`` header and, from ``/predict``, ``request_id`` in the body): the client's ``X-Request-ID`` (its
first 128 characters) or, without one, ``<random 64-bit hex per process>-<counter>``. Logs are JSON lines on stderr;
nothing is written to disk unless ``PREDICTION_LOG_DIR`` is set: then a sample of the answered ``/predict`` requests
is, with their request id (``prediction_log``). On SIGTERM the server stops accepting connections, answers the
requests it has begun, closes idle connections, writes the rest of the prediction log and exits (after
``SHUTDOWN_GRACE`` seconds at most).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import re
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from random import random
from typing import Any, cast

import httptools
import orjson
import uvloop

from {{ cookiecutter.package_name }}.serving import openapi
from {{ cookiecutter.package_name }}.serving.metrics import Metrics
from {{ cookiecutter.package_name }}.serving.model import Model, ModelError, RequestError
from {{ cookiecutter.package_name }}.serving.prediction_log import PredictionLog
from {{ cookiecutter.package_name }}.serving.router import Loaded, Router, RoutingError
from {{ cookiecutter.package_name }}.serving.settings import Settings, SettingsError, mode, weight

log = logging.getLogger("{{ cookiecutter.package_name }}.serving")
PACKAGE = __name__.split(".", 1)[0]
REASONS = {
    200: b"OK",
    400: b"Bad Request",
    404: b"Not Found",
    405: b"Method Not Allowed",
    409: b"Conflict",
    413: b"Content Too Large",
    422: b"Unprocessable Content",
    500: b"Internal Server Error",
    503: b"Service Unavailable",
}
JSON = b"application/json"
LINGER_SECONDS = 2.0
"""How long a connection the server closes still reads (and drops) what the client sends."""
VERSION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
Response = tuple[int, bytes, bytes]  # status, content type, body
Handler = Callable[["Request"], Response | Awaitable[Response]]


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
    return status, JSON, orjson.dumps({"error": message})


def _json(document: Any, status: int = 200) -> Response:
    return status, JSON, orjson.dumps(document)


def _decode(body: bytes) -> Any:
    """A JSON request body, or the ``RequestError`` saying why it is not one."""
    if not body:
        raise RequestError("the request body is empty: send a JSON object")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RequestError(f"the request body is not valid JSON (NaN and Infinity are not JSON): {exc}") from None


class Request:
    """One parsed request; ``version`` is set by the handler to the model version that answered."""

    __slots__ = ("body", "method", "path", "request_id", "route_key", "version")

    def __init__(self, method: str, path: str, body: bytes, request_id: str, route_key: str | None) -> None:
        """Keep what the handlers need."""
        self.method = method
        self.path = path
        self.body = body
        self.request_id = request_id
        self.route_key = route_key
        self.version: str | None = None


class Routes:
    """A table of handlers by path and method, with the error handling and metrics every request goes through."""

    def __init__(self, metrics: Metrics, default_version: Callable[[], str]) -> None:
        """Start with no route."""
        self.metrics = metrics
        self.default_version = default_version
        self.table: dict[str, dict[str, Handler]] = {}

    def dispatch(self, request: Request) -> Response | Awaitable[Response]:
        """The handler's response (or awaitable) for ``request``, or the 404/405."""
        methods = self.table.get(request.path)
        if methods is None:
            return _error(404, f"no route {request.path}: see /openapi.json")
        handler = methods.get(request.method)
        if handler is None:
            return _error(405, f"{request.method} is not allowed on {request.path}: use {', '.join(methods)}")
        try:
            return handler(request)
        except RequestError as exc:
            return _error(exc.status, str(exc))
        except Exception:
            log.exception("request failed", extra={"fields": {"request_id": request.request_id}})
            return _error(500, "internal error")

    def count(self, request: Request, status: int, seconds: float) -> None:
        """Record an answered request in the metrics (and the debug log)."""
        endpoint = request.path if request.path in self.table else "other"
        version = request.version or self.default_version()
        if status >= 400:
            kind = "client" if status < 500 else ("not_ready" if status == 503 else "server")
            self.metrics.error(version, endpoint, kind)
        self.metrics.observe(version, endpoint, status, seconds)
        if log.isEnabledFor(logging.DEBUG):
            fields = {
                "request_id": request.request_id,
                "method": request.method,
                "path": request.path,
                "status": status,
                "model_version": version,
                "duration_ms": round(seconds * 1000, 3),
            }
            log.debug("request", extra={"fields": fields})


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
        document = _decode(request.body)
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
        return _json({"status": "alive"})

    def readyz(self, request: Request) -> Response:
        """``GET /readyz``: 200 once the champion passed its self-check; 503 with the reason before or when stopping."""
        model = self.router.champion.model
        if self.draining:
            return _json({"status": "not ready", "error": "the server is shutting down"}, 503)
        if model.ready:
            return _json({"status": "ready", "model_version": model.version})
        return _json({"status": "not ready", "error": model.reason}, 503)

    def metadata(self, request: Request) -> Response:
        """``GET /metadata``: the champion's metadata and the other models being served."""
        return 200, JSON, self._document("metadata", self._metadata)

    def prometheus(self, request: Request) -> Response:
        """``GET /metrics``."""
        self.metrics.roles = {role: model.version for role, model in self.router.roles().items()}
        if self.prediction_log is not None:
            self.metrics.prediction_log = self.prediction_log.counts()
        return 200, b"text/plain; version=0.0.4; charset=utf-8", self.metrics.render().encode()

    def openapi(self, request: Request) -> Response:
        """``GET /openapi.json``."""
        return 200, JSON, self._document("openapi", lambda: openapi.document(self.router.champion.model))

    def _document(self, name: str, build: Callable[[], Any]) -> bytes:
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


class AdminApp:
    """The admin API: load model versions from ``MODEL_STORE``, switch, roll back, challenge and promote."""

    def __init__(self, settings: Settings, router: Router, metrics: Metrics) -> None:
        """Register the routes."""
        self.settings = settings
        self.router = router
        self.routes = Routes(metrics, lambda: self.router.champion.model.version)
        self.routes.table = {
            "/admin/models": {"GET": self.models, "POST": self.load},
            "/admin/rollback": {"POST": self.rollback},
            "/admin/routing": {"PUT": self.routing},
            "/admin/challenger/promote": {"POST": self.promote},
            "/admin/challenger": {"DELETE": self.end_challenge},
        }
        self.lock = asyncio.Lock()

    def models(self, request: Request) -> Response:
        """``GET /admin/models``."""
        return _json(self.router.describe())

    async def load(self, request: Request) -> Response:
        """``POST /admin/models``: load and check a version from the store, then switch to it or challenge with it."""
        document = _decode(request.body)
        if type(document) is not dict:
            raise RequestError("send a JSON object with 'name' (and 'role', 'mode', 'weight')")
        unknown = sorted(set(document) - {"name", "role", "mode", "weight"})
        if unknown:
            raise RequestError(f"unknown keys {unknown}: send 'name', 'role', 'mode', 'weight'")
        name, role = document.get("name"), document.get("role", "champion")
        if type(name) is not str or not VERSION_NAME.match(name):
            raise RequestError(f"'name' must be a directory name in MODEL_STORE (letters, digits, . _ -), got {name!r}")
        if role not in ("champion", "challenger"):
            raise RequestError(f"'role' must be 'champion' or 'challenger', got {role!r}")
        try:
            routing = mode(document.get("mode", "shadow"), "mode"), weight(document.get("weight", 0.1), "weight")
        except SettingsError as exc:
            raise RequestError(str(exc)) from None
        store = self.settings.model_store
        if store is None:
            raise RequestError("MODEL_STORE is not set: this server loads no other model", status=409)
        directory = store / name
        if not directory.is_dir():
            raise RequestError(f"no model {name!r} in MODEL_STORE ({store})", status=404)
        async with self.lock:  # one load at a time
            loaded = await load_checked(directory, self.settings.max_batch, name)
            if role == "champion":
                self.router.switch(loaded)
            else:
                self.router.challenge(loaded, *routing)
        log.info("model loaded", extra={"fields": {"role": role, **loaded.describe(), **self.router.describe()}})
        return _json(self.router.describe())

    def rollback(self, request: Request) -> Response:
        """``POST /admin/rollback``: the previous champion answers again."""
        return self._change(self.router.rollback, "rolled back")

    def routing(self, request: Request) -> Response:
        """``PUT /admin/routing``: change the challenger's mode and weight."""
        document = _decode(request.body)
        if type(document) is not dict or set(document) - {"mode", "weight"}:
            raise RequestError("send a JSON object with 'mode' ('shadow' or 'ab') and 'weight' (0 to 1)")
        try:
            routing = (
                mode(document.get("mode", self.router.mode), "mode"),
                weight(document.get("weight", 0.1), "weight"),
            )
        except SettingsError as exc:
            raise RequestError(str(exc)) from None
        return self._change(lambda: self.router.set_routing(*routing), "routing changed")

    def promote(self, request: Request) -> Response:
        """``POST /admin/challenger/promote``: the challenger becomes the champion."""
        return self._change(self.router.promote, "challenger promoted")

    def end_challenge(self, request: Request) -> Response:
        """``DELETE /admin/challenger``: stop serving the challenger."""
        return self._change(self.router.end_challenge, "challenger removed")

    def _change(self, change: Callable[[], None], message: str) -> Response:
        try:
            change()
        except RoutingError as exc:
            raise RequestError(str(exc), status=409) from None
        log.info(message, extra={"fields": self.router.describe()})
        return _json(self.router.describe())


async def load_checked(directory: Path, max_batch: int, source: str) -> Loaded:
    """Read a model and run its self-check off the event loop; ``RequestError`` (422) if it is unusable."""
    try:
        model = Model(directory, max_batch)
    except ModelError as exc:
        raise RequestError(str(exc), status=422) from None
    if not await asyncio.get_running_loop().run_in_executor(None, model.self_check):
        raise RequestError(f"model {source!r} failed its self-check: {model.reason}", status=422)
    return Loaded(model, source)


def _close_now(transport: asyncio.Transport) -> None:
    transport.close()


class Writer:
    """Responses are written once per event-loop iteration, after every readable connection was served.

    Writing each response at once would wake the client for every one of them; on a busy server most of the CPU
    would go to those wake-ups (measured: 68 µs a request instead of 41 on two cores). Order is kept: responses are
    written in the order they were made, and a connection is closed only after its last response.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        """Nothing pending."""
        self.loop = loop
        self.pending: list[tuple[asyncio.Transport, bytes, Callable[[asyncio.Transport], None] | None]] = []

    def write(
        self, transport: asyncio.Transport, data: bytes, then: Callable[[asyncio.Transport], None] | None = None
    ) -> None:
        """Queue ``data`` for ``transport`` (and ``then``, e.g. closing it, after it is written)."""
        if not self.pending:
            self.loop.call_soon(self.flush)
        self.pending.append((transport, data, then))

    def flush(self) -> None:
        """Write everything queued."""
        pending, self.pending = self.pending, []
        for transport, data, then in pending:
            if transport.is_closing():
                continue
            if data:
                transport.write(data)
            if then is not None:
                then(transport)


class HttpProtocol(asyncio.Protocol):
    """One client connection, parsed by httptools; the parser's callbacks fill the current request."""

    ids = itertools.count(1)
    prefix = os.urandom(8).hex()  # made-up request ids are unique across processes (labels are joined on them)

    def __init__(self, routes: Routes, max_body: int, connections: set[HttpProtocol], writer: Writer) -> None:
        """Start with no transport; ``connection_made`` brings it."""
        self.routes = routes
        self.writer = writer
        self.max_body = max_body
        self.connections = connections
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.busy = False  # a request has begun and is not answered yet
        self.closing = False  # close once the current request is answered (shutdown)
        self.pending: asyncio.Future[None] | None = None  # an admin request being answered
        self._reset()

    def _reset(self) -> None:
        self.url = b""
        self.body = b""
        self.request_id: str | None = None
        self.route_key: str | None = None
        self.length: int | None = None
        self.refused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport."""
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's
        self.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the transport."""
        self.transport = None
        self.connections.discard(self)

    def data_received(self, data: bytes) -> None:
        """Feed the parser; malformed HTTP gets a 400 and the connection is closed."""
        if self.refused:  # answered with Connection: close; what still arrives is dropped
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:  # raised after the request was answered: upgrading is simply not done
            if self.transport is not None:
                self.writer.write(self.transport, b"", _close_now)
        except httptools.HttpParserError as exc:
            self._refuse(400, f"malformed HTTP request: {exc}")

    def close_when_idle(self) -> None:
        """Shutdown: close now if no request is in progress, else right after answering it."""
        self.closing = True
        if not self.busy and self.transport is not None:
            self.writer.write(self.transport, b"", _close_now)

    # httptools callbacks ------------------------------------------------------------------------------------------

    def on_url(self, url: bytes) -> None:
        """A request starts (its state was reset after the previous one); the URL may arrive in pieces."""
        self.busy = True
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        """Keep the headers the server uses."""
        size = len(name)
        if size == 14 and name.lower() == b"content-length":
            self.length = int(value) if value.isdigit() else None  # httptools itself refuses a malformed one
        elif size in (11, 12):
            lower = name.lower()
            if lower == b"x-request-id":
                self.request_id = value.decode("latin-1")[:128]
            elif lower == b"x-route-key":
                self.route_key = value.decode("latin-1")[:128]

    def on_headers_complete(self) -> None:
        """Refuse a body announced larger than the limit before it is sent."""
        if self.length is not None and self.length > self.max_body:
            self._refuse(413, f"the body has {self.length} bytes, more than MAX_BODY_BYTES={self.max_body}")

    def on_body(self, body: bytes) -> None:
        """Collect the body, refusing it as soon as it exceeds the limit."""
        if self.refused:
            return
        self.body += body
        if len(self.body) > self.max_body:
            self._refuse(413, f"the body is larger than MAX_BODY_BYTES={self.max_body}")

    def on_message_complete(self) -> None:
        """Answer the request (an awaitable response is sent when ready, reading paused meanwhile)."""
        if self.refused:
            return
        start = time.perf_counter()
        request_id = self.request_id or f"{self.prefix}-{next(self.ids)}"
        path = self.url.split(b"?", 1)[0].decode("latin-1")
        request = Request(self.parser.get_method().decode("latin-1"), path, self.body, request_id, self.route_key)
        keep_alive = self.parser.should_keep_alive()
        self._reset()
        response = self.routes.dispatch(request)
        if isinstance(response, tuple):
            self._answer(request, response, keep_alive, start)
            return
        if self.transport is not None:
            self.transport.pause_reading()
        self.pending = asyncio.ensure_future(self._answer_later(request, response, keep_alive, start))

    async def _answer_later(
        self, request: Request, pending: Awaitable[Response], keep_alive: bool, start: float
    ) -> None:
        try:
            response = await pending
        except RequestError as exc:
            response = _error(exc.status, str(exc))
        except Exception:
            log.exception("request failed", extra={"fields": {"request_id": request.request_id}})
            response = _error(500, "internal error")
        self._answer(request, response, keep_alive, start)
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def _answer(self, request: Request, response: Response, keep_alive: bool, start: float) -> None:
        self._send(response, request.request_id, keep_alive and not self.closing)
        self.busy = False
        self.routes.count(request, response[0], time.perf_counter() - start)

    # responses ----------------------------------------------------------------------------------------------------

    def _refuse(self, status: int, message: str) -> None:
        """Answer now and close: the rest of the request is not read."""
        self.refused = True
        request_id = self.request_id or f"{self.prefix}-{next(self.ids)}"
        path = self.url.split(b"?", 1)[0].decode("latin-1")
        request = Request("-", path, b"", request_id, None)
        self._send(_error(status, message), request_id, keep_alive=False)
        self.routes.count(request, status, 0.0)

    def _send(self, response: Response, request_id: str, keep_alive: bool) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        status, content_type, body = response
        head = b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nX-Request-ID: %s\r\n%s\r\n" % (
            status,
            REASONS.get(status, b"Error"),
            content_type,
            len(body),
            request_id.encode("latin-1", "replace"),
            b"" if keep_alive else b"Connection: close\r\n",
        )
        if keep_alive:
            self.writer.write(transport, head + body)
            return
        self.busy = False
        self.refused = True
        self.writer.write(transport, head + body, self._close)

    def _close(self, transport: asyncio.Transport) -> None:
        """Close after the last answer, lingering unless the server stops.

        Half-close and keep reading for a while: closing with unread input would reset the connection, and the client
        could lose the answer (a 413 sent before the body arrived, for one).
        """
        if self.closing or not transport.can_write_eof():
            transport.close()
        else:
            transport.write_eof()
            asyncio.get_running_loop().call_later(LINGER_SECONDS, transport.close)


class ModelServer:
    """The listening servers: bind first (``/healthz`` answers at once), then self-check the champion."""

    def __init__(self, settings: Settings, model: Model) -> None:
        """Build the apps around ``model``, the champion; nothing listens until ``start``."""
        self.settings = settings
        self.router = Router(Loaded(model, str(settings.model_dir)))
        self.app = App(settings, self.router)
        self.admin = AdminApp(settings, self.router, self.app.metrics)
        self.connections: set[HttpProtocol] = set()
        self.servers: list[asyncio.Server] = []
        self.writer: Writer | None = None
        self.port = settings.port
        self.admin_port: int | None = None

    async def start(self) -> int:
        """Listen and return the bound port of the prediction API (useful with ``PORT=0``)."""
        loop = asyncio.get_running_loop()
        settings, connections = self.settings, self.connections
        self.writer = writer = Writer(loop)

        async def listen(routes: Routes, host: str, port: int) -> int:
            server = await loop.create_server(
                lambda: HttpProtocol(routes, settings.max_body_bytes, connections, writer),
                host,
                port,
                reuse_address=True,
                backlog=1024,
            )
            self.servers.append(server)
            bound: int = server.sockets[0].getsockname()[1]
            return bound

        logged = self.app.prediction_log
        if logged is not None:
            logged.start(loop)
            fields = {"directory": str(logged.directory), "sample": logged.rate, "max_bytes": logged.max_bytes}
            log.info("logging predictions", extra={"fields": fields})
        self.port = await listen(self.app.routes, settings.host, settings.port)
        if settings.admin_port is not None:
            self.admin_port = await listen(self.admin.routes, settings.admin_host, settings.admin_port)
        fields = {
            "host": settings.host,
            "port": self.port,
            "admin_host": settings.admin_host,
            "admin_port": self.admin_port,
        }
        log.info("listening", extra={"fields": fields})
        return self.port

    async def check(self) -> bool:
        """Self-check the champion off the event loop, then load ``CHALLENGER_DIR`` if set; log the outcome."""
        model = self.router.champion.model
        ready = await asyncio.get_running_loop().run_in_executor(None, model.self_check)
        fields = {"model_version": model.version, "reason": model.reason}
        if not ready:
            log.error("the model failed its self-check; not ready", extra={"fields": fields})
            return False
        log.info("ready", extra={"fields": fields})
        directory = self.settings.challenger_dir
        if directory is not None:
            try:
                loaded = await load_checked(directory, self.settings.max_batch, str(directory))
            except RequestError as exc:  # the champion serves alone: a broken challenger must not take it down
                log.error("the challenger cannot be served", extra={"fields": {"error": str(exc)}})
            else:
                self.router.challenge(loaded, self.settings.challenger_mode, self.settings.challenger_weight)
                log.info("challenger loaded", extra={"fields": self.router.describe()})
        return True

    async def close(self) -> None:
        """Stop listening, answer the requests in progress, close every connection (``SHUTDOWN_GRACE`` at most)."""
        self.app.draining = True
        for server in self.servers:
            server.close()
        if self.writer is not None:
            self.writer.flush()
        for connection in list(self.connections):
            connection.close_when_idle()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.shutdown_grace
        while self.connections and loop.time() < deadline:
            await asyncio.sleep(0.01)
        for connection in list(self.connections):
            if connection.transport is not None:
                connection.transport.abort()
        for server in self.servers:
            await server.wait_closed()
        if self.app.prediction_log is not None:  # the requests are answered: write the rest of their lines
            await self.app.prediction_log.close(max(deadline - loop.time(), 1.0))


async def serve(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Load the model, listen, self-check, and serve until ``stop`` is set (or SIGTERM/SIGINT in the main thread)."""
    server = ModelServer(settings, Model(settings.model_dir, settings.max_batch))
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(ValueError, NotImplementedError, RuntimeError):  # not the main thread
            loop.add_signal_handler(sig, stop.set)
    await server.start()
    await server.check()
    await stop.wait()
    log.info("stopping", extra={"fields": {"connections": len(server.connections)}})
    await server.close()
    log.info("stopped")


def run(settings: Settings) -> int:
    """The ``serve`` command: configure logging, serve on uvloop until stopped; 1 if the model cannot be read."""
    configure_logging(settings.log_level)
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
