"""The prediction API as a bare ASGI application: the same ``App`` and ``Routes`` behind any ASGI server.

It exists to measure the hand-written HTTP layer (``protocol``, ``server``) against well-kept servers: the template's
serving benchmark runs it on uvicorn (httptools, uvloop) and on granian, side by side with ``serve``. It is not on
the image's serve path (``serve`` does not import it) and needs nothing beyond the runtime's dependencies; the ASGI
servers are not dependencies of the project. With one installed, from the project::

    export MODEL_DIR=models APP={{ cookiecutter.package_name }}.serving.asgi:create_app
    uvicorn --factory "$APP" --http httptools --loop uvloop --no-access-log
    granian --interface asgi --factory --loop uvloop --http 1 "$APP"

The settings are ``serve``'s environment variables, except where to listen, the limits on the request head, the
timeouts and the connection cap (the ASGI server's options) and the admin API (not served here). Lifespan: startup
reads the model and self-checks it off the event loop, then loads ``CHALLENGER_DIR``; a model that cannot be read or
fails its self-check leaves the process up and not ready (``/healthz`` 200, ``/readyz`` and every other route 503
with the reason). Shutdown, once the server answered what it had begun, marks the app draining and writes the rest
of the prediction log. HTTP: ``HEAD`` on a ``GET`` route answers its headers; the client's ``X-Request-ID`` is echoed
when it is 1 to 128 safe characters (letters, digits, ``._:-``), refused with a 400 naming the rule otherwise (an
absent or empty one is made up); a body larger than ``MAX_BODY_BYTES`` is refused with 413, from ``Content-Length``
before it is read or as soon as the streamed body passes the limit (the connection is then closed).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from {{ cookiecutter.package_name }}.serving.admin import load_checked
from {{ cookiecutter.package_name }}.serving.app import App
from {{ cookiecutter.package_name }}.serving.logs import configure_logging, log
from {{ cookiecutter.package_name }}.serving.model import Model, ModelError, RequestError
from {{ cookiecutter.package_name }}.serving.router import Loaded, Router
from {{ cookiecutter.package_name }}.serving.routes import Request, Response, error, json_response
from {{ cookiecutter.package_name }}.serving.settings import Settings

# The ASGI interface (asgiref's spec): scopes and messages are plain dicts of the server's making.
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

SAFE_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")
UNSAFE_ID = "X-Request-ID must be 1 to 128 characters among A-Z a-z 0-9 . _ : - (this one has {} bytes)"


class Asgi:
    """The ASGI callable around the prediction API: lifespan and HTTP scopes (websockets are refused)."""

    ids = itertools.count(1)
    prefix = os.urandom(8).hex()  # made-up request ids are unique across processes (labels are joined on them)

    def __init__(self, settings: Settings) -> None:
        """Nothing is read until the lifespan startup."""
        self.settings = settings
        self.app: App | None = None
        self.reason = "the server has not started: its ASGI server sent no lifespan startup"

    def made_up_id(self) -> str:
        """A request id for a request without a usable one: ``<random 64-bit hex per process>-<counter>``."""
        return f"{self.prefix}-{next(self.ids)}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one scope."""
        kind = scope["type"]
        if kind == "http":
            await self.http(scope, receive, send)
        elif kind == "lifespan":
            await self.lifespan(receive, send)
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1003})

    # lifespan -------------------------------------------------------------------------------------------------------

    async def lifespan(self, receive: Receive, send: Send) -> None:
        """Start up (read and self-check the model) and shut down (write the rest of the prediction log)."""
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except ModelError as exc:  # up and not ready, saying why: the process is not restarted in a loop
                    self.reason = f"the model cannot be served: {exc}"
                    log.error("the model cannot be read; not ready", extra={"fields": {"error": str(exc)}})
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def startup(self) -> None:
        """Read the champion (``ModelError`` if it cannot be read), self-check it, load the challenger if any."""
        settings = self.settings
        configure_logging(settings.log_level)
        log.info("starting", extra={"fields": {"settings": {k: str(v) for k, v in vars(settings).items()}}})
        model = Model(settings.model_dir, settings.max_batch)
        router = Router(Loaded(model, str(settings.model_dir)))
        app = App(settings, router)
        loop = asyncio.get_running_loop()
        if app.prediction_log is not None:
            app.prediction_log.start(loop)
        self.app = app  # /healthz answers; /readyz says why not until the self-check passed
        ready = await loop.run_in_executor(None, model.self_check)
        fields = {"model_version": model.version, "reason": model.reason}
        if not ready:
            log.error("the model failed its self-check; not ready", extra={"fields": fields})
            return
        log.info("ready", extra={"fields": fields})
        if settings.challenger_dir is not None:
            try:
                loaded = await load_checked(settings.challenger_dir, settings.max_batch, str(settings.challenger_dir))
            except RequestError as exc:  # the champion serves alone: a broken challenger must not take it down
                log.error("the challenger cannot be served", extra={"fields": {"error": str(exc)}})
            else:
                router.challenge(loaded, settings.challenger_mode, settings.challenger_weight)
                log.info("challenger loaded", extra={"fields": router.describe()})

    async def shutdown(self) -> None:
        """The server answered what it had begun: write the rest of the prediction log."""
        app = self.app
        if app is None:
            return
        app.draining = True
        log.info("stopping")
        if app.prediction_log is not None:
            await app.prediction_log.close(max(float(self.settings.shutdown_grace), 1.0))
        log.info("stopped")

    # HTTP -----------------------------------------------------------------------------------------------------------

    def unready(self, path: str) -> Response:
        """Before the startup, or when the model cannot be read: alive, not ready, every other route 503."""
        if path == "/healthz":
            return json_response({"status": "alive"})
        if path == "/readyz":
            return json_response({"status": "not ready", "error": self.reason}, 503)
        return error(503, self.reason)

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Read the request (within ``MAX_BODY_BYTES``), dispatch it to the routes, send the response."""
        start = time.perf_counter()
        given_id = route_key = length = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                length = value
            elif name == b"x-request-id":
                given_id = value
            elif name == b"x-route-key":
                route_key = value.decode("latin-1")[:128]
        unsafe = given_id is not None and given_id != b"" and SAFE_ID.fullmatch(given_id) is None
        rid = given_id.decode("ascii") if given_id and not unsafe else self.made_up_id()
        method: str = scope["method"]
        path: str = scope["path"]
        app = self.app
        routes = None if app is None else app.routes
        head = method == "HEAD" and routes is not None and "GET" in routes.table.get(path, {})
        request = Request("GET" if head else method, path, b"", rid, route_key)
        limit = self.settings.max_body_bytes
        close = False
        if routes is None:
            response: Response = self.unready(path)
        elif unsafe:
            response, close = error(400, UNSAFE_ID.format(len(given_id or b""))), True
        elif length is not None and length.isdigit() and int(length) > limit:
            response, close = error(413, f"the body has {int(length)} bytes, more than MAX_BODY_BYTES={limit}"), True
        else:
            body = await read_body(receive, limit)
            if body is None:
                return  # the client is gone
            if body is TOO_LARGE:
                response, close = error(413, f"the body is larger than MAX_BODY_BYTES={limit}"), True
            else:
                request.body = body
                response = await answer(routes.dispatch(request), rid)
        status, content_type, payload = response
        headers = [
            (b"content-type", content_type),
            (b"content-length", b"%d" % len(payload)),
            (b"x-request-id", rid.encode("ascii")),
        ]
        if close:
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else payload})
        if routes is not None:
            routes.count(request, status, time.perf_counter() - start)


TOO_LARGE = b"<too large>"  # a sentinel: compared by identity, never a real body


async def read_body(receive: Receive, limit: int) -> bytes | None:
    """The request body (``TOO_LARGE`` once it passes ``limit`` bytes; None if the client disconnected).

    Linear in the body's size: the chunks are joined once at the end.
    """
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk: bytes = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                return TOO_LARGE
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def answer(response: Response | Awaitable[Response], rid: str) -> Response:
    """A handler's response, awaited if need be (its errors become their JSON error responses)."""
    if isinstance(response, tuple):
        return response
    try:
        return await response
    except RequestError as exc:
        return error(exc.status, str(exc))
    except Exception:
        log.exception("request failed", extra={"fields": {"request_id": rid}})
        return error(500, "internal error")


def create_app(settings: Settings | None = None) -> Asgi:
    """The ASGI application, configured from the environment (``SettingsError`` names a bad variable)."""
    return Asgi(settings or Settings.from_env())
