"""The server under attack: the command that starts it, its settings, its process group and its memory.

The command is the project's ``serve`` CLI, or ``ATTACK_SERVE_COMMAND`` (split like a shell command line, ``{port}``
replaced by the port to listen on) to attack another implementation of the same API. Either way the server gets its
settings from environment variables (``MODEL_DIR``, ``HOST``, ``PORT`` and the limits and timeouts in ``SETTINGS``),
is started in a session of its own and is judged only over TCP and by the resident memory of its process group.
"""

from __future__ import annotations

import http.client
import os
import shlex
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from conftest import BIN, PACKAGE, free_port, stop_process_group, wait_for_http

from attacks.wire import HOST

SETTINGS = {
    "HEADER_TIMEOUT_SECONDS": "2",
    "BODY_TIMEOUT_SECONDS": "2",
    "KEEPALIVE_TIMEOUT_SECONDS": "2",
    "MAX_CONNECTIONS": "1000",
    "MAX_BODY_BYTES": "1048576",
    "SHUTDOWN_GRACE": "5",
    "LOG_LEVEL": "WARNING",
    "ADMIN_PORT": "off",
}
"""The settings the suite starts the server with (short timeouts, so that it runs in minutes); each may be overridden
by the environment variable of the same name. The tests read their expectations from them."""
PAGE = os.sysconf("SC_PAGE_SIZE")


def command() -> list[str]:
    """The command line that starts the server, ``{port}`` still to be replaced."""
    raw = os.environ.get("ATTACK_SERVE_COMMAND", "").strip()
    return shlex.split(raw) if raw else [str(BIN / PACKAGE), "serve"]


def group_rss(group: int) -> int:
    """Resident bytes of every process in the process group ``group`` (the server and any worker it spawned)."""
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == group:  # fields from the state on: pgrp is the third, rss (pages) the 22nd
            total += int(fields[21]) * PAGE
    return total


@dataclass
class Served:
    """A running server process and the settings it was started with."""

    process: subprocess.Popen[bytes]
    port: int
    env: dict[str, str]
    log: Path

    def setting(self, name: str) -> float:
        return float(self.env[name])

    def alive(self) -> bool:
        return self.process.poll() is None

    def rss(self) -> int:
        return group_rss(self.process.pid)

    def get(
        self, path: str, method: str = "GET", body: bytes | None = None, timeout: float = 5
    ) -> tuple[int, dict[str, str], bytes]:
        """One request on a new connection: status, headers (lower-case names) and body."""
        conn = http.client.HTTPConnection(HOST, self.port, timeout=timeout)
        try:
            conn.request(method, path, body, {"Content-Type": "application/json"} if body else {})
            response = conn.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            conn.close()

    def ready(self, within: float) -> bool:
        """Whether ``/readyz`` answers 200 within ``within`` seconds."""
        deadline = time.monotonic() + within
        while self.alive():
            try:
                if self.get("/readyz", timeout=max(deadline - time.monotonic(), 0.1))[0] == 200:
                    return True
            except (OSError, http.client.HTTPException):
                pass
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return False

    def log_tail(self, size: int = 2000) -> str:
        return self.log.read_bytes()[-size:].decode(errors="replace")

    def stop(self) -> None:
        stop_process_group(self.process)


class Launcher:
    """Starts servers on a model directory; stops them all at the end. ``shared()`` is one server reused by the
    tests that need no setting of their own, restarted when an attack left it down or not ready."""

    def __init__(self, model: Path, root: Path) -> None:
        self.model = model
        self.root = root
        self.started: list[Served] = []
        self._shared: Served | None = None

    def start(self, model: Path | None = None, wait: str = "/readyz", **settings: str) -> Served:
        """A new server with ``SETTINGS`` (and the environment's overrides, then ``settings``), once ``wait``
        answers 200."""
        port = free_port()
        env = dict(os.environ)
        env.update({name: os.environ.get(name, value) for name, value in SETTINGS.items()})
        env.update(settings)
        env.update(MODEL_DIR=str(model or self.model), HOST=HOST, PORT=str(port))
        log = self.root / f"server-{len(self.started)}.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [part.replace("{port}", str(port)) for part in command()],
                cwd=self.root,
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        served = Served(process, port, env, log)
        self.started.append(served)
        try:
            wait_for_http(f"http://{HOST}:{port}{wait}", 30, process)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- server log\n{served.log_tail()}") from None
        return served

    def shared(self) -> Served:
        if self._shared is None or not self._shared.ready(3):
            if self._shared is not None:
                self._shared.stop()
            self._shared = self.start()
        return self._shared

    def stop_all(self) -> None:
        for served in self.started:
            served.stop()
