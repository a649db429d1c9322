"""HTTP/1.1 on asyncio: one protocol object per connection, parsed by httptools.

Keep-alive and pipelining: requests are answered in order, one at a time (prediction is CPU-bound and ONNX Runtime
runs on this thread). Every resource a client can make the server hold is bounded (``limits``): the request line
(414), the header block (431), the body (413, from ``Content-Length`` before it is sent or as chunks arrive), the
requests received but not yet answered, and the answers the client has not read (reading pauses above a high-water
mark, and a client that stops reading for ``KEEPALIVE_TIMEOUT_SECONDS`` is dropped). A request's headers must arrive
within ``HEADER_TIMEOUT_SECONDS`` and its body within ``BODY_TIMEOUT_SECONDS`` (408), and an idle keep-alive
connection is closed after ``KEEPALIVE_TIMEOUT_SECONDS``. ``HEAD`` is answered wherever ``GET`` is, without the body.
Every response carries a request id: the client's ``X-Request-ID`` (1 to 128 characters from ``A-Z a-z 0-9 . _ : -``;
anything else is refused, so nothing the client sent is echoed raw) or ``<random 64-bit hex per process>-<counter>``.

A request is answered, or never begun: a stopping server answers what it has received and reads nothing more.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import time
from collections import deque
from collections.abc import Awaitable
from typing import cast

import httptools

from {{ cookiecutter.package_name }}.serving.limits import Limits
from {{ cookiecutter.package_name }}.serving.logs import log
from {{ cookiecutter.package_name }}.serving.model import RequestError
from {{ cookiecutter.package_name }}.serving.routes import Request, Response, Routes, error
from {{ cookiecutter.package_name }}.serving.writer import Writer, close_now, status_line

REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")
LINGER_SECONDS = 2.0
"""How long a connection the server closes still reads (and drops) what the client sends."""
HIGH_WATER = 256 * 1024
"""Answers made for a connection but not yet handed to its socket, past which its next requests wait."""
MAX_WAITING = 32
"""Requests received on one connection and not begun yet, past which the server stops reading from it."""
SLICE = 16 * 1024
"""While a request's head is incomplete, reads are fed to the parser in pieces of at most this many bytes."""
BURST = 128 * 1024
"""Bytes read from one connection in one event-loop iteration, past which it waits for the next one (libuv reads up
to 2 MB at once: parsed in one go, a body of tiny chunks would hold every other connection for a quarter second)."""

IDLE, HEAD, BODY, BUSY = range(4)  # where a connection is, for its deadline


class HttpProtocol(asyncio.Protocol):
    """One client connection, parsed by httptools; the parser's callbacks fill the current request."""

    ids = itertools.count(1)
    prefix = os.urandom(8).hex()  # made-up request ids are unique across processes (labels are joined on them)

    def __init__(self, routes: Routes, limits: Limits, connections: set[HttpProtocol], writer: Writer) -> None:
        """Start with no transport; ``connection_made`` brings it."""
        self.routes = routes
        self.writer = writer
        self.limits = limits
        self.connections = connections
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.busy = False  # a request has begun and is not answered yet
        self.closing = False  # the server stops: finish the request in progress, begin no other
        self.ignoring = False  # a request began after the server started stopping: it is not begun at all
        self.refused = False  # answered with Connection: close; what still arrives is dropped
        self.waiting: deque[tuple[Request, bool, float]] = deque()  # received, not begun
        self.queued = 0  # bytes of answers handed to the writer, not yet to the socket
        self.write_paused = False  # the socket's buffer is above its high-water mark
        self.stalled_at = 0.0  # since when
        self.reading = True
        self.burst = 0  # bytes read in this event-loop iteration
        self.yielding = False  # reading paused until the next iteration, after a burst
        self.pending: asyncio.Future[None] | None = None  # an awaitable answer (admin API)
        self.phase = IDLE
        self.deadline = time.monotonic() + limits.header_timeout  # the first request must come soon
        self.head_bytes = 0  # bytes fed while a request's head is incomplete
        self._reset()

    def _reset(self) -> None:
        self.url = b""
        self.body = b""  # the body's first piece: most bodies come in one
        self.buffer: bytearray | None = None  # the body so far, once a second piece came (not a list: tiny chunks)
        self.body_size = 0
        self.request_id: str | None = None
        self.bad_request_id = False
        self.route_key: str | None = None
        self.length: int | None = None
        self.headers = 0
        self.header_bytes = 0
        self.expect_continue = False

    # connection -----------------------------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport, or refuse the connection when the server has as many as it takes."""
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's
        if len(self.connections) >= self.limits.max_connections:
            self.refused = True
            message = f"the server has MAX_CONNECTIONS={self.limits.max_connections} connections open: retry later"
            status, content_type, body = error(503, message)
            request_id = f"{self.prefix}-{next(self.ids)}"
            self.transport.write(self._head(status, content_type, body, request_id, False) + body)
            self._close(self.transport)
            return
        self.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the transport."""
        self.transport = None
        self.connections.discard(self)
        if self.pending is not None:
            self.pending.cancel()

    def pause_writing(self) -> None:
        """The client reads slower than it is answered: stop reading its requests until it caught up."""
        self.write_paused, self.stalled_at = True, time.monotonic()
        self._update_reading()

    def resume_writing(self) -> None:
        """The client caught up: answer what waits, read again."""
        self.write_paused, self.stalled_at = False, 0.0
        self.drain()

    def data_received(self, data: bytes) -> None:
        """Feed the parser; malformed HTTP gets a 400 and the connection is closed.

        While a request's head is incomplete, large reads are fed in slices, so that the head's size is checked every
        ``SLICE`` bytes: the parser buffers an unfinished header line in full, and must not buffer megabytes of one.
        """
        if self.refused or self.ignoring:  # nothing more is begun on this connection
            return
        self.burst += len(data)
        if self.burst > BURST and not self.yielding:  # let the other connections in before reading more
            self.yielding = True
            asyncio.get_running_loop().call_soon(self._end_burst)
            self._update_reading()
        if len(data) <= SLICE or self.phase == BODY:
            self._feed(data)
            return
        for start in range(0, len(data), SLICE):
            if not self._feed(data[start : start + SLICE]) or self.phase == BODY:
                if self.phase == BODY and start + SLICE < len(data):
                    self._feed(data[start + SLICE :])
                return

    def _feed(self, data: bytes) -> bool:
        """Feed ``data``; False once the connection was refused."""
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:  # raised after the request was answered: upgrading is simply not done
            self.refused = True
            if self.transport is not None:
                self.writer.write(self, b"", close_now)
        except httptools.HttpParserError as exc:
            self._refuse(400, f"malformed HTTP request: {exc}")
        if self.phase == HEAD and not self.refused:  # the head is still incomplete: bound it
            self.head_bytes += len(data)  # (with what preceded it in this piece: SLICE bytes at most)
            if self.head_bytes > self.limits.max_url_bytes + self.limits.max_header_bytes + SLICE:
                self._refuse(431, f"the request head is larger than MAX_HEADER_BYTES={self.limits.max_header_bytes}")
        return not (self.refused or self.ignoring)

    def _end_burst(self) -> None:
        self.burst, self.yielding = 0, False
        self._update_reading()

    def close_when_idle(self) -> None:
        """Shutdown: finish and answer the requests received or arriving, then close; begin no other."""
        self.closing = True
        if self.phase not in (HEAD, BODY) and not self.busy and not self.waiting and self.transport is not None:
            self.ignoring = True
            self.writer.write(self, b"", close_now)

    def expire(self, now: float) -> None:
        """The server's clock: enforce this connection's deadline (header, body, idle, unread answers)."""
        if self.transport is None:
            return
        if self.stalled_at and now - self.stalled_at > self.limits.keepalive_timeout:
            self.transport.abort()  # answers unread for the whole keep-alive timeout: the client is gone or hostile
            return
        if not self.deadline or now < self.deadline:
            return
        if self.phase == HEAD:
            limit = f"HEADER_TIMEOUT_SECONDS={self.limits.header_timeout:g}"
            self._refuse(408, f"the request line and headers took longer than {limit}")
        elif self.phase == BODY:
            self._refuse(408, f"the request body took longer than BODY_TIMEOUT_SECONDS={self.limits.body_timeout:g}")
        else:
            self.transport.close()

    # httptools callbacks ------------------------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        """A request starts: its head must arrive within the header timeout (none starts once the server stops)."""
        self.phase, self.deadline, self.head_bytes = HEAD, time.monotonic() + self.limits.header_timeout, 0
        if self.closing:
            self.ignoring = True

    def on_url(self, url: bytes) -> None:
        """The URL may arrive in pieces."""
        self.url += url
        if len(self.url) > self.limits.max_url_bytes and not (self.refused or self.ignoring):
            self._refuse(414, f"the request line is longer than MAX_URL_BYTES={self.limits.max_url_bytes}")

    def on_header(self, name: bytes, value: bytes) -> None:
        """Count the headers and keep those the server uses."""
        self.headers += 1
        self.header_bytes += len(name) + len(value) + 4
        if self.refused or self.ignoring:
            return
        if self.headers > self.limits.max_headers or self.header_bytes > self.limits.max_header_bytes:
            limit = f"MAX_HEADERS={self.limits.max_headers}, MAX_HEADER_BYTES={self.limits.max_header_bytes}"
            self._refuse(431, f"the request has more or larger headers than the server takes ({limit})")
            return
        size = len(name)
        if size == 14 and name.lower() == b"content-length":
            self.length = int(value) if value.isdigit() else None  # httptools itself refuses a malformed one
        elif size in (11, 12):
            lower = name.lower()
            if lower == b"x-request-id":
                self.bad_request_id = REQUEST_ID.fullmatch(value) is None
                self.request_id = None if self.bad_request_id else value.decode("ascii")
            elif lower == b"x-route-key":
                self.route_key = value.decode("latin-1")[:128]
        elif size == 6 and name.lower() == b"expect":
            self.expect_continue = value.lower() == b"100-continue"

    def on_headers_complete(self) -> None:
        """Refuse a bad request id, or a body announced larger than the limit, before the body is sent."""
        if self.refused or self.ignoring:
            return
        self.phase, self.deadline = BODY, time.monotonic() + self.limits.body_timeout
        if self.bad_request_id:
            self._refuse(400, "X-Request-ID must be 1 to 128 characters from A-Z a-z 0-9 . _ : -")
        elif self.length is not None and self.length > self.limits.max_body_bytes:
            limit = f"MAX_BODY_BYTES={self.limits.max_body_bytes}"
            self._refuse(413, f"the body has {self.length} bytes, more than {limit}")
        elif self.expect_continue:
            continued = b"HTTP/1.1 100 Continue\r\n\r\n"
            self.queued += len(continued)
            self.writer.write(self, continued)

    def on_body(self, body: bytes) -> None:
        """Collect the body (pieces after the first in one buffer), refusing it once it exceeds the limit."""
        if self.refused or self.ignoring:
            return
        self.body_size += len(body)
        if self.body_size > self.limits.max_body_bytes:
            self._refuse(413, f"the body is larger than MAX_BODY_BYTES={self.limits.max_body_bytes}")
            return
        if self.buffer is None and not self.body:
            self.body = body
        else:
            self.buffer = bytearray(self.body) if self.buffer is None else self.buffer
            self.buffer += body

    def on_message_complete(self) -> None:
        """Begin the request now, or after those received before it."""
        if self.refused or self.ignoring:
            return
        start = time.perf_counter()
        request_id = self.request_id or f"{self.prefix}-{next(self.ids)}"
        url = self.url if self.url[:1] == b"/" else _origin_form(self.url)
        path = url.split(b"?", 1)[0].decode("latin-1")
        body = self.body if self.buffer is None else bytes(self.buffer)
        request = Request(self.parser.get_method().decode("latin-1"), path, body, request_id, self.route_key)
        keep_alive = self.parser.should_keep_alive()
        self._reset()
        self.phase, self.deadline = BUSY, 0.0
        if self.busy or self.waiting or self._backed_up():
            self.waiting.append((request, keep_alive, start))
            self._update_reading()
            return
        self._begin(request, keep_alive, start)

    # answering ------------------------------------------------------------------------------------------------------

    def _backed_up(self) -> bool:
        return self.write_paused or self.queued > HIGH_WATER

    def _update_reading(self) -> None:
        """Read while nothing is backed up; a paused connection keeps its data in the kernel (TCP flow control)."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        want = not (
            self.busy
            or self.yielding
            or self.write_paused
            or len(self.waiting) >= MAX_WAITING
            or self.queued > HIGH_WATER
        )
        if want != self.reading:
            self.reading = want
            if want:
                transport.resume_reading()
            else:
                transport.pause_reading()

    def drain(self) -> None:
        """Answer the requests that wait, while the client reads its answers; then read again."""
        while self.waiting and not self.busy and not self._backed_up() and self.transport is not None:
            request, keep_alive, start = self.waiting.popleft()
            self._begin(request, keep_alive, start)
        if not self.waiting and not self.busy and self.phase == BUSY:
            self.phase, self.deadline = IDLE, time.monotonic() + self.limits.keepalive_timeout
        self._update_reading()

    def _begin(self, request: Request, keep_alive: bool, start: float) -> None:
        response = self.routes.dispatch(request)
        if isinstance(response, tuple):
            self._answer(request, response, keep_alive, start)
            return
        self.busy = True
        self._update_reading()
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
        self.busy, self.pending = False, None
        self._answer(request, response, keep_alive, start)
        self.drain()

    def _answer(self, request: Request, response: Response, keep_alive: bool, start: float) -> None:
        last = self.closing and not self.waiting and self.phase not in (HEAD, BODY)
        self._send(response, request.request_id, keep_alive and not last, request.method == "HEAD")
        self.routes.count(request, response[0], time.perf_counter() - start)
        if not self.waiting and not self.busy and not self.refused:
            self.phase, self.deadline = IDLE, time.monotonic() + self.limits.keepalive_timeout

    def _refuse(self, status: int, message: str) -> None:
        """Answer now and close: the rest of the request is not read."""
        request_id = self.request_id or f"{self.prefix}-{next(self.ids)}"
        path = self.url.split(b"?", 1)[0].decode("latin-1")
        self.waiting.clear()
        self._send(error(status, message), request_id, keep_alive=False)
        self.routes.count(Request("-", path, b"", request_id, None), status, 0.0)

    def _head(self, status: int, content_type: bytes, body: bytes, request_id: str, keep_alive: bool) -> bytes:
        return b"%sContent-Type: %s\r\nContent-Length: %d\r\nX-Request-ID: %s\r\n%s\r\n" % (
            status_line(status),
            content_type,
            len(body),
            request_id.encode("ascii"),
            b"" if keep_alive else b"Connection: close\r\n",
        )

    def _send(self, response: Response, request_id: str, keep_alive: bool, head_only: bool = False) -> None:
        if self.refused or self.transport is None or self.transport.is_closing():
            return  # the connection was already answered with Connection: close
        status, content_type, body = response
        data = self._head(status, content_type, body, request_id, keep_alive) + (b"" if head_only else body)
        self.queued += len(data)
        if keep_alive:
            self.writer.write(self, data)
            return
        self.refused, self.phase, self.deadline = True, IDLE, 0.0
        self.writer.write(self, data, self._close)

    def written(self, size: int) -> None:
        """The writer handed ``size`` bytes of answers to the socket: requests that waited for that may begin."""
        self.queued -= size
        if self.waiting and not self.busy and not self._backed_up():
            self.drain()
        elif not self.reading and not self.busy:
            self._update_reading()

    def _close(self, transport: asyncio.Transport) -> None:
        """Close after the last answer, lingering unless the server stops.

        Half-close and keep reading for a while: closing with unread input would reset the connection, and the client
        could lose the answer (a 413 sent before the body arrived, for one).
        """
        if self.closing or not transport.can_write_eof():
            transport.close()
        else:
            transport.write_eof()
            if not self.reading:
                self.reading = True
                transport.resume_reading()  # read and drop, so the kernel does not reset the connection
            asyncio.get_running_loop().call_later(LINGER_SECONDS, transport.close)


def _origin_form(url: bytes) -> bytes:
    """The path of an absolute-form request target (``http://host/path?q``), which a server must accept."""
    scheme, separator, rest = url.partition(b"://")
    if not separator or scheme.lower() not in (b"http", b"https"):
        return url
    slash = rest.find(b"/")
    return rest[slash:] if slash >= 0 else b"/"
