"""The server process under load: a bounded loopback load test with a live switch and a rollback in the middle,
and a graceful stop on SIGTERM. The server runs as the real ``serve`` command in its own process.

``LOAD_TEST_SECONDS`` (default 60) sets the load test's length.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import signal
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import BIN, PACKAGE, Workspace, free_port, model_dir, stop_process_group, wait_for_http

pytestmark = pytest.mark.load

LOAD_SECONDS = float(os.environ.get("LOAD_TEST_SECONDS", "60"))
CONNECTIONS = 16


@dataclass
class Process:
    """A ``serve`` process on free ports."""

    process: subprocess.Popen[bytes]
    port: int
    admin_port: int
    log: Path
    scratch: Path  # its HOME, TMPDIR and working directory: the server must leave them empty

    def admin(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.admin_port, timeout=30)
        try:
            conn.request(method, path, None if body is None else json.dumps(body).encode())
            response = conn.getresponse()
            return response.status, json.loads(response.read())
        finally:
            conn.close()


@pytest.fixture
def serving(trained: Workspace, challenger: Workspace, tmp_path: Path) -> Iterator[Process]:
    store = tmp_path / "store"
    model_dir(trained, store / "v1")
    model_dir(challenger, store / "v2")
    port, admin_port = free_port(), free_port()
    scratch = tmp_path / "scratch"
    for name in ("home", "tmp", "cwd"):
        (scratch / name).mkdir(parents=True)
    env = os.environ | {
        "HOME": str(scratch / "home"),
        "TMPDIR": str(scratch / "tmp"),
        "MODEL_DIR": str(store / "v1"),
        "MODEL_STORE": str(store),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "ADMIN_PORT": str(admin_port),
        "LOG_LEVEL": "WARNING",
        "SHUTDOWN_GRACE": "5",
    }
    log = tmp_path / "server.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [BIN / PACKAGE, "serve"],
            cwd=scratch / "cwd",
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/readyz", 30, process)
        yield Process(process, port, admin_port, log, scratch)
    finally:
        stop_process_group(process)


@dataclass
class Tally:
    """What the load generator saw."""

    statuses: Counter[int] = field(default_factory=Counter)
    versions: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    sequences: list[list[str]] = field(default_factory=list)  # per connection: the versions in the order answered


async def one_connection(port: int, request: bytes, deadline: float, tally: Tally) -> None:
    """Send ``request`` on one keep-alive connection until ``deadline``, reading each response in full."""
    seen: list[str] = []
    tally.sequences.append(seen)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError as exc:
        tally.errors.append(f"connect: {exc}")
        return
    try:
        while time.monotonic() < deadline:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = int(head.lower().split(b"content-length: ", 1)[1].split(b"\r\n", 1)[0])
            body = await reader.readexactly(length)
            tally.statuses[status] += 1
            version = json.loads(body).get("model_version", "?") if status == 200 else "?"
            if not seen or seen[-1] != version:
                seen.append(version)
            tally.versions[version] += 1
    except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
        tally.errors.append(f"{type(exc).__name__}: {exc}")
    finally:
        writer.close()


async def load(port: int, body: bytes, seconds: float, during: Any) -> Tally:
    """``CONNECTIONS`` clients for ``seconds``, while ``during`` (a coroutine) changes the server."""
    request = (
        b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    tally = Tally()
    deadline = time.monotonic() + seconds
    clients = [one_connection(port, request, deadline, tally) for _ in range(CONNECTIONS)]
    await asyncio.gather(during, *clients)
    return tally


def version(ws: Workspace) -> str:
    return str(ws.read_json("metadata")["version"])


def test_a_switch_and_a_rollback_under_load_fail_no_request(
    serving: Process, trained: Workspace, challenger: Workspace
) -> None:
    v1, v2 = version(trained), version(challenger)
    body = json.dumps({"instances": [trained.read_json("metadata")["golden"][0]["inputs"]]}).encode()
    changes: list[tuple[str, int, Any]] = []

    async def switch_then_roll_back() -> None:
        await asyncio.sleep(LOAD_SECONDS / 3)
        changes.append(("switch", *await asyncio.to_thread(serving.admin, "POST", "/admin/models", {"name": "v2"})))
        await asyncio.sleep(LOAD_SECONDS / 3)
        changes.append(("rollback", *await asyncio.to_thread(serving.admin, "POST", "/admin/rollback")))

    started = time.monotonic()
    tally = asyncio.run(load(serving.port, body, LOAD_SECONDS, switch_then_roll_back()))
    elapsed = time.monotonic() - started
    answered = sum(tally.statuses.values())
    print(f"\n{answered} requests in {elapsed:.1f} s ({answered / elapsed:.0f}/s): {dict(tally.versions)}")

    assert [(name, status) for name, status, _ in changes] == [("switch", 200), ("rollback", 200)], changes
    assert tally.errors == []
    assert tally.statuses == Counter({200: answered})
    assert elapsed < LOAD_SECONDS + 10  # it stops by itself
    assert answered > 100 * LOAD_SECONDS
    assert tally.versions[v1] > 0
    assert tally.versions[v2] > 0
    for seen in tally.sequences:  # each connection saw v1, then v2, then v1 again: the switches were atomic
        assert seen == [v1, v2, v1], seen
    assert serving.process.poll() is None


def test_sigterm_answers_the_request_in_progress_then_exits(serving: Process, trained: Workspace) -> None:
    body = json.dumps({"instances": [trained.read_json("metadata")["golden"][0]["inputs"]]}).encode()
    head = b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
    idle = socket.create_connection(("127.0.0.1", serving.port), timeout=10)
    busy = socket.create_connection(("127.0.0.1", serving.port), timeout=10)
    try:
        busy.sendall(head + body[:10])  # a request in progress
        time.sleep(0.2)
        os.killpg(serving.process.pid, signal.SIGTERM)
        time.sleep(0.5)

        assert idle.recv(1024) == b""  # the idle connection was closed
        with pytest.raises(ConnectionRefusedError):  # no new connection is accepted
            socket.create_connection(("127.0.0.1", serving.port), timeout=2).close()
        busy.sendall(body[10:])
        answer = b""
        while chunk := busy.recv(65536):
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 200"), answer
        assert b"Connection: close" in answer
        assert serving.process.wait(10) == 0
    finally:
        idle.close()
        busy.close()
    assert sorted(p.relative_to(serving.scratch).as_posix() for p in serving.scratch.rglob("*")) == [
        "cwd",
        "home",
        "tmp",
    ], "the server wrote files (onnxruntime writes under $HOME unless told not to)"
