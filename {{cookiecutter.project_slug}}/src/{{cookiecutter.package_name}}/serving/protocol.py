"""HTTP/1.1 on asyncio: one protocol object per connection, parsed by httptools, and the writer of responses.

Keep-alive and pipelining: requests are answered in order, one at a time (prediction is CPU-bound and ONNX Runtime
runs on this thread). Bodies come with ``Content-Length`` or chunked encoding, at most ``MAX_BODY_BYTES`` (413
above). Every response carries a request id: the client's ``X-Request-ID`` (its first 128 characters) or, without
one, ``<random 64-bit hex per process>-<counter>``. Responses are written once per event-loop iteration.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import Awaitable, Callable
from typing import cast

import httptools

from {{ cookiecutter.package_name }}.serving.logs import log
from {{ cookiecutter.package_name }}.serving.model import RequestError
from {{ cookiecutter.package_name }}.serving.routes import Request, Response, Routes, error

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
LINGER_SECONDS = 2.0
"""How long a connection the server closes still reads (and drops) what the client sends."""


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
            response = error(exc.status, str(exc))
        except Exception:
            log.exception("request failed", extra={"fields": {"request_id": request.request_id}})
            response = error(500, "internal error")
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
        self._send(error(status, message), request_id, keep_alive=False)
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
