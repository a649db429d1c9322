"""What every route shares, whatever carries it: the request, the response, the route table, JSON in and out.

The route table handles errors and metrics for every request. Every error is ``{"error": "..."}``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from {{ cookiecutter.package_name }}.serving.logs import log
from {{ cookiecutter.package_name }}.serving.metrics import Metrics
from {{ cookiecutter.package_name }}.serving.model import RequestError

JSON = b"application/json"
Response = tuple[int, bytes, bytes]  # status, content type, body
Handler = Callable[["Request"], Response | Awaitable[Response]]


def error(status: int, message: str) -> Response:
    """A JSON error response: ``{"error": message}``."""
    return status, JSON, orjson.dumps({"error": message})


def json_response(document: Any, status: int = 200) -> Response:
    """A JSON response."""
    return status, JSON, orjson.dumps(document)


def decode(body: bytes) -> Any:
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
            return error(404, f"no route {request.path}: see /openapi.json")
        handler = methods.get(request.method)
        if handler is None and request.method == "HEAD":  # the transport sends the head of GET's answer
            handler = methods.get("GET")
        if handler is None:
            return error(405, f"{request.method} is not allowed on {request.path}: use {', '.join(methods)}")
        try:
            return handler(request)
        except RequestError as exc:
            return error(exc.status, str(exc))
        except Exception:
            log.exception("request failed", extra={"fields": {"request_id": request.request_id}})
            return error(500, "internal error")

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
