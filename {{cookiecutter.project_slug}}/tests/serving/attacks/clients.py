"""Attackers with behaviour of their own (trickling connections, keep-alive clients hammering a stopping server),
and what the suite reads back (the prediction log's files, one metric)."""

from __future__ import annotations

import json
import re
import select
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

from attacks import wire
from attacks.server import Served
from attacks.watch import Watch
from attacks.wire import HOST

TRICKLE_HEAD = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "


def trickle(port: int, count: int, pace: float, watch: Watch) -> tuple[int, list[float]]:
    """Open ``count`` connections that send a request head one byte every ``pace`` seconds, while ``watch`` is
    active; return how many are still open and after how many seconds the server closed each of the others."""
    opened = {socket.create_connection((HOST, port)): time.monotonic() for _ in range(count)}
    closed: dict[socket.socket, float] = {}
    for sock in opened:
        sock.sendall(TRICKLE_HEAD)
        sock.setblocking(False)

    def close(sock: socket.socket) -> None:
        closed.setdefault(sock, time.monotonic() - opened[sock])

    try:
        while watch.active and len(closed) < count:
            tick = time.monotonic() + pace
            for sock in set(opened) - set(closed):
                try:
                    sock.send(b"a")
                except BlockingIOError:
                    pass
                except OSError:
                    close(sock)
            while (left := tick - time.monotonic()) > 0 and len(closed) < count:
                for sock in select.select(list(set(opened) - set(closed)), [], [], left)[0]:
                    try:
                        data = sock.recv(65536)
                    except OSError:
                        data = b""
                    statuses = [reply.status for reply in wire.parse(data, True)[0]]
                    watch.require(all(400 <= s < 500 for s in statuses), f"a trickler got {data[:100]!r}")
                    if not data:
                        close(sock)
    finally:
        for sock in opened:
            sock.close()
    return count - len(closed), sorted(closed.values())


@dataclass
class Tally:
    """What keep-alive clients saw: request ids answered, the others with what happened, wrong answers."""

    answered: set[str] = field(default_factory=set)
    unanswered: dict[str, str] = field(default_factory=dict)
    wrong: list[str] = field(default_factory=list)


def hammer(port: int, body: bytes, name: str, tally: Tally) -> None:
    """Send ``POST /predict`` with ``body`` on a keep-alive connection, one request at a time and as fast as it can,
    reconnecting after a ``Connection: close``, until the server closes without an answer or refuses to connect."""
    head = (
        b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\nX-Request-ID: "
        % len(body)
    )
    count = 0
    while True:
        try:
            sock = socket.create_connection((HOST, port), timeout=15)
        except OSError:
            return  # refused at connect: nothing begun
        with sock:
            data = b""
            while True:
                count += 1
                request_id = f"{name}-{count}".encode()
                try:
                    sock.sendall(head + request_id + b"\r\n\r\n" + body)
                    while (end := data.find(b"\r\n\r\n")) < 0 or len(data) < (size := end + 4 + _length(data[:end])):
                        if not (chunk := sock.recv(65536)):
                            raise ConnectionError(f"closed after {len(data)} bytes of the answer")
                        data += chunk
                except OSError as exc:
                    tally.unanswered[request_id.decode()] = repr(exc)
                    return
                answer, data = data[:size], data[size:]
                tally.answered.add(request_id.decode())
                header = answer[:end].lower()
                if (
                    not header.startswith((b"http/1.1 200 ", b"http/1.1 503 "))
                    or b"\r\nx-request-id: " + request_id.lower() not in header
                ):
                    tally.wrong.append(answer[:300].decode(errors="replace"))
                if b"\r\nconnection: close" in header:
                    break


def _length(head: bytes) -> int:
    found = re.search(rb"\r\ncontent-length: *(\d+)", head, re.IGNORECASE)
    return int(found[1]) if found else 0


def logged(directory: Path) -> list[str]:
    """The request ids of the complete lines of the prediction log under ``directory``, one per line."""
    ids = []
    for path in directory.rglob("*.jsonl"):
        for line in path.read_bytes().split(b"\n")[:-1]:
            try:
                ids.append(json.loads(line)["request_id"])
            except ValueError:  # a line cut short (by a full disk)
                continue
    return ids


def metric(served: Served, name: str) -> float | None:
    """The value of an unlabelled metric on ``/metrics``."""
    found = re.search(rf"^{name} (\S+)$", served.get("/metrics")[2].decode(), re.MULTILINE)
    return float(found[1]) if found else None
