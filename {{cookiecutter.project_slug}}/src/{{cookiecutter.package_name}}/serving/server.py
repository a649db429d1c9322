"""The model server: the prediction API and the admin API over HTTP/1.1 on uvloop, from start to graceful stop.

The prediction API (``app``) listens on ``HOST:PORT``, the admin API (``admin``) on ``ADMIN_HOST:ADMIN_PORT``. The
server binds first (``/healthz`` answers at once), then self-checks the champion (``/readyz`` answers 503 with the
reason until it passed). Logs are JSON lines on stderr; nothing is written to disk unless ``PREDICTION_LOG_DIR`` is
set. On SIGTERM it stops accepting connections, answers the requests it has begun, closes idle connections, writes the
rest of the prediction log and exits (after ``SHUTDOWN_GRACE`` seconds at most).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time

import uvloop

from {{ cookiecutter.package_name }}.serving.admin import AdminApp, load_checked
from {{ cookiecutter.package_name }}.serving.app import App
from {{ cookiecutter.package_name }}.serving.limits import Limits
from {{ cookiecutter.package_name }}.serving.logs import configure_logging, log
from {{ cookiecutter.package_name }}.serving.model import Model, RequestError
from {{ cookiecutter.package_name }}.serving.protocol import HttpProtocol
from {{ cookiecutter.package_name }}.serving.router import Loaded, Router
from {{ cookiecutter.package_name }}.serving.routes import Routes
from {{ cookiecutter.package_name }}.serving.settings import Settings
from {{ cookiecutter.package_name }}.serving.unavailable import UnavailableModel
from {{ cookiecutter.package_name }}.serving.writer import Writer


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
        self.limits = Limits.of(settings)
        self.clock: asyncio.TimerHandle | None = None
        self.port = settings.port
        self.admin_port: int | None = None

    async def start(self) -> int:
        """Listen and return the bound port of the prediction API (useful with ``PORT=0``)."""
        loop = asyncio.get_running_loop()
        settings, connections, limits = self.settings, self.connections, self.limits
        self.writer = writer = Writer(loop)

        async def listen(routes: Routes, host: str, port: int) -> int:
            server = await loop.create_server(
                lambda: HttpProtocol(routes, limits, connections, writer),
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
        self._tick()
        return self.port

    def _tick(self) -> None:
        """Enforce every connection's deadline (headers, body, idle, unread answers), a few times a timeout."""
        now = time.monotonic()
        for connection in list(self.connections):
            connection.expire(now)
        self.clock = asyncio.get_running_loop().call_later(self.limits.tick, self._tick)

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
        if self.clock is not None:
            self.clock.cancel()
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
    server = ModelServer(settings, UnavailableModel.instead_of(settings.model_dir, settings.max_batch))
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
    """The ``serve`` command: configure logging, serve on uvloop until stopped; 1 if it cannot listen."""
    configure_logging(settings.log_level)
    log.info("starting", extra={"fields": {"settings": {k: str(v) for k, v in vars(settings).items()}}})
    try:
        uvloop.run(serve(settings))
    except OSError as exc:
        log.error("cannot listen", extra={"fields": {"error": str(exc)}})
        return 1
    return 0
