"""Raw HTTP/1.1 over sockets: send exactly the bytes an attacker sends, read and parse whatever comes back."""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

HOST = "127.0.0.1"


def request(
    path: str = "/healthz", method: str = "GET", body: bytes = b"", request_id: str | None = None, extra: bytes = b""
) -> bytes:
    """One well-formed request (``extra``: more header lines, each ending in CRLF)."""
    head = f"{method} {path} HTTP/1.1\r\nHost: {HOST}\r\n".encode()
    if request_id is not None:
        head += f"X-Request-ID: {request_id}\r\n".encode()
    if body or method == "POST":
        head += b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
    return head + extra + b"\r\n" + body


@dataclass(frozen=True)
class Reply:
    """One response: status, headers (lower-case names, the last of repeated ones) and body."""

    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def closes(self) -> bool:
        return "close" in self.headers.get("connection", "").lower()


@dataclass
class Outcome:
    """What came back on one connection."""

    replies: list[Reply] = field(default_factory=list)
    closed: bool = False  # the server closed its side (EOF)
    reset: bool = False  # ... or reset the connection
    rest: bytes = b""  # bytes that do not parse as an HTTP/1.x response
    seconds: float = 0.0  # from connecting to the close, or to the end of reading
    sent: int = 0  # bytes the server took before the client stopped sending
    stalled: bool = False  # sending stopped because the server did not read

    @property
    def ended(self) -> bool:
        return self.closed or self.reset

    @property
    def statuses(self) -> list[int]:
        return [reply.status for reply in self.replies]

    def __str__(self) -> str:
        end = "reset" if self.reset else "closed" if self.closed else "still open"
        rest = f", {len(self.rest)} bytes that are no complete answer: {self.rest[:60]!r}..." if self.rest else ""
        return f"statuses {self.statuses}, {end} after {self.seconds:.2f} s, {self.sent} bytes sent{rest}"


def _chunked(data: bytes) -> tuple[bytes, int] | None:
    """A chunked body at the start of ``data`` and the bytes it takes, or None while incomplete."""
    body, at = b"", 0
    while True:
        end = data.find(b"\r\n", at)
        if end < 0:
            return None
        size = int(data[at:end].split(b";")[0] or b"0", 16)
        if size == 0:
            trailer = data.find(b"\r\n\r\n", end)
            return None if trailer < 0 else (body, trailer + 4)
        if len(data) < end + 2 + size + 2:
            return None
        body += data[end + 2 : end + 2 + size]
        at = end + 2 + size + 2


def parse(data: bytes, eof: bool) -> tuple[list[Reply], bytes]:
    """The complete responses at the start of ``data`` and what is left (incomplete, or not HTTP at all)."""
    replies: list[Reply] = []
    while data:
        end = data.find(b"\r\n\r\n")
        if end < 0:
            break
        lines = data[:end].decode("latin-1").split("\r\n")
        first = lines[0].split(" ", 2)
        if len(first) < 2 or not first[0].startswith("HTTP/1.") or not first[1].isdigit():
            break
        status, headers = int(first[1]), {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        rest = data[end + 4 :]
        if "chunked" in headers.get("transfer-encoding", "").lower():
            found = _chunked(rest)
            if found is None:
                break
            body, size = found
        elif "content-length" in headers:
            size = int(headers["content-length"])
            if len(rest) < size:
                break
            body = rest[:size]
        elif status < 200 or status in (204, 304):
            body, size = b"", 0
        elif eof:
            body, size = rest, len(rest)
        else:
            break
        replies.append(Reply(status, headers, body))
        data = rest[size:]
    return replies, data


def read(sock: socket.socket, deadline: float, wanted: int | None = None, started: float | None = None) -> Outcome:
    """Read until the server closes or ``deadline`` (``time.monotonic``); with ``wanted``, stop after that many
    responses unless the last one announces ``Connection: close`` (then read on to the close)."""
    outcome, data, eof = Outcome(), b"", False
    started = time.monotonic() if started is None else started
    while True:
        left = deadline - time.monotonic()
        sock.settimeout(max(left, 0.0))  # past the deadline: what has arrived, without waiting
        try:
            chunk = sock.recv(1 << 20)
        except (TimeoutError, BlockingIOError):
            break
        except OSError:  # ECONNRESET, or EPIPE surfacing late
            outcome.reset = True
            break
        eof = not chunk
        data += chunk
        replies, left_over = parse(data, eof)
        if eof:
            outcome.closed = True
            break
        if left <= 0 or (wanted is not None and len(replies) >= wanted and not replies[-1].closes and not left_over):
            break
    outcome.replies, outcome.rest = parse(data, eof or outcome.reset)
    outcome.seconds = time.monotonic() - started
    return outcome


def exchange(
    port: int,
    data: bytes | Iterable[bytes],
    *,
    seconds: float = 5.0,
    wanted: int | None = None,
    keep_sending: Callable[[], bool] = lambda: True,
    send_timeout: float = 1.0,
) -> Outcome:
    """Send ``data`` (bytes, or pieces sent one after the other) on a new connection, then read as ``read`` does.

    Sending stops early when the server answers or closes, when it stops reading for ``send_timeout``, or when
    ``keep_sending()`` turns false (the memory guard).
    """
    started = time.monotonic()
    sent, stalled = 0, False
    with socket.create_connection((HOST, port), timeout=5) as sock:
        for piece in [data] if isinstance(data, bytes) else data:
            if not keep_sending() or select.select([sock], [], [], 0)[0]:
                break
            sock.settimeout(send_timeout)
            try:
                sock.sendall(piece)
            except TimeoutError:
                stalled = True
                break
            except OSError:
                break
            sent += len(piece)
        outcome = read(sock, started + seconds, wanted, started)
    outcome.sent, outcome.stalled = sent, stalled
    return outcome
