"""What every route shares, whatever carries it: the request, the response, the route table, JSON in and out.

The route table handles errors and metrics for every request. Every error is ``{"error": "..."}``. Routes are exact
paths (one dictionary look-up: ``/predict``) or templates with ``{parameter}`` segments (``/v2/models/{name}/infer``),
tried only when no exact path matches; the metrics name a templated route by its template, so the number of series
stays bounded whatever paths clients send.
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
    """One parsed request; ``version`` is set by the handler to the model version that answered.

    A request routed by a template has the template in ``route`` and the values of its parameters in ``params``.
    """

    __slots__ = ("body", "method", "params", "path", "request_id", "route", "route_key", "version")

    def __init__(self, method: str, path: str, body: bytes, request_id: str, route_key: str | None) -> None:
        """Keep what the handlers need."""
        self.method = method
        self.path = path
        self.body = body
        self.request_id = request_id
        self.route_key = route_key
        self.version: str | None = None
        self.route: str | None = None
        self.params: tuple[str, ...] = ()


Pattern = tuple[tuple[str | None, ...], str]  # the template's segments (None for a parameter), the template


class Routes:
    """A table of handlers by path and method, with the error handling and metrics every request goes through."""

    def __init__(self, metrics: Metrics, default_version: Callable[[], str]) -> None:
        """Start with no route."""
        self.metrics = metrics
        self.default_version = default_version
        self.table: dict[str, dict[str, Handler]] = {}
        self.templates: dict[str, dict[str, Handler]] = {}
        self.patterns: dict[int, list[Pattern]] = {}  # by number of segments

    def add(self, route: str, methods: dict[str, Handler]) -> None:
        """Route an exact path, or a template whose ``{parameter}`` segments match any non-empty segment."""
        if "{" not in route:
            self.table[route] = methods
            return
        segments = tuple(None if s.startswith("{") and s.endswith("}") else s for s in route.split("/"))
        self.patterns.setdefault(len(segments), []).append((segments, route))
        self.templates[route] = methods

    def match(self, path: str) -> tuple[str, tuple[str, ...]] | None:
        """The template matching ``path`` and its parameters' values, or None."""
        candidates = self.patterns.get(path.count("/") + 1)
        if not candidates:  # most unknown paths: no list of segments is made
            return None
        segments = path.split("/")
        for pattern, route in candidates:
            params = []
            for want, got in zip(pattern, segments, strict=True):
                if want is None and got:
                    params.append(got)
                elif want != got:
                    break
            else:
                return route, tuple(params)
        return None

    def dispatch(self, request: Request) -> Response | Awaitable[Response]:
        """The handler's response (or awaitable) for ``request``, or the 404/405."""
        methods = self.table.get(request.path)
        if methods is None:
            found = self.match(request.path) if self.patterns else None
            if found is None:
                return error(404, f"no route {request.path}: see /openapi.json")
            request.route, request.params = found
            methods = self.templates[request.route]
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
        path = request.path
        endpoint = request.route or (path if path in self.table else self.endpoint(path))
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

    def endpoint(self, path: str) -> str:
        """The metrics' name of the route of ``path``: the path, the template it matches, or ``other``."""
        if path in self.table:
            return path
        found = self.match(path) if self.patterns else None
        return "other" if found is None else found[0]
