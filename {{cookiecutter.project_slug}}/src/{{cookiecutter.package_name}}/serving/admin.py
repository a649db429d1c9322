"""The admin API: load model versions from ``MODEL_STORE``, switch, roll back, challenge and promote.

It listens on ``ADMIN_HOST:ADMIN_PORT`` (loopback by default): ``GET /admin/models`` (what is served),
``POST /admin/models`` (load a version from ``MODEL_STORE``: ``{"name": ..., "role": "champion"}`` switches to it,
``{"name": ..., "role": "challenger", "mode": "shadow"|"ab", "weight": 0.1}`` serves it beside the champion),
``POST /admin/rollback``, ``PUT /admin/routing`` (``{"mode", "weight"}``), ``POST /admin/challenger/promote`` and
``DELETE /admin/challenger``. A model is loaded and self-checked off the event loop, then switched in between two
requests: no request fails or waits for a switch, a rollback or a promotion.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path

from {{ cookiecutter.package_name }}.serving.logs import log
from {{ cookiecutter.package_name }}.serving.metrics import Metrics
from {{ cookiecutter.package_name }}.serving.model import Model, ModelError, RequestError
from {{ cookiecutter.package_name }}.serving.router import Loaded, Router, RoutingError
from {{ cookiecutter.package_name }}.serving.routes import Request, Response, Routes, decode, json_response
from {{ cookiecutter.package_name }}.serving.settings import Settings, SettingsError, mode, weight

VERSION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class AdminApp:
    """The admin API: load model versions from ``MODEL_STORE``, switch, roll back, challenge and promote."""

    def __init__(self, settings: Settings, router: Router, metrics: Metrics) -> None:
        """Register the routes."""
        self.settings = settings
        self.router = router
        self.routes = Routes(metrics, lambda: self.router.champion.model.version)
        self.routes.table = {
            "/admin/models": {"GET": self.models, "POST": self.load},
            "/admin/rollback": {"POST": self.rollback},
            "/admin/routing": {"PUT": self.routing},
            "/admin/challenger/promote": {"POST": self.promote},
            "/admin/challenger": {"DELETE": self.end_challenge},
        }
        self.lock = asyncio.Lock()

    def models(self, request: Request) -> Response:
        """``GET /admin/models``."""
        return json_response(self.router.describe())

    async def load(self, request: Request) -> Response:
        """``POST /admin/models``: load and check a version from the store, then switch to it or challenge with it."""
        document = decode(request.body)
        if type(document) is not dict:
            raise RequestError("send a JSON object with 'name' (and 'role', 'mode', 'weight')")
        unknown = sorted(set(document) - {"name", "role", "mode", "weight"})
        if unknown:
            raise RequestError(f"unknown keys {unknown}: send 'name', 'role', 'mode', 'weight'")
        name, role = document.get("name"), document.get("role", "champion")
        if type(name) is not str or not VERSION_NAME.match(name):
            raise RequestError(f"'name' must be a directory name in MODEL_STORE (letters, digits, . _ -), got {name!r}")
        if role not in ("champion", "challenger"):
            raise RequestError(f"'role' must be 'champion' or 'challenger', got {role!r}")
        try:
            routing = mode(document.get("mode", "shadow"), "mode"), weight(document.get("weight", 0.1), "weight")
        except SettingsError as exc:
            raise RequestError(str(exc)) from None
        store = self.settings.model_store
        if store is None:
            raise RequestError("MODEL_STORE is not set: this server loads no other model", status=409)
        directory = store / name
        if not directory.is_dir():
            raise RequestError(f"no model {name!r} in MODEL_STORE ({store})", status=404)
        async with self.lock:  # one load at a time
            loaded = await load_checked(directory, self.settings.max_batch, name)
            if role == "champion":
                self.router.switch(loaded)
            else:
                self.router.challenge(loaded, *routing)
        log.info("model loaded", extra={"fields": {"role": role, **loaded.describe(), **self.router.describe()}})
        return json_response(self.router.describe())

    def rollback(self, request: Request) -> Response:
        """``POST /admin/rollback``: the previous champion answers again."""
        return self._change(self.router.rollback, "rolled back")

    def routing(self, request: Request) -> Response:
        """``PUT /admin/routing``: change the challenger's mode and weight."""
        document = decode(request.body)
        if type(document) is not dict or set(document) - {"mode", "weight"}:
            raise RequestError("send a JSON object with 'mode' ('shadow' or 'ab') and 'weight' (0 to 1)")
        try:
            routing = (
                mode(document.get("mode", self.router.mode), "mode"),
                weight(document.get("weight", 0.1), "weight"),
            )
        except SettingsError as exc:
            raise RequestError(str(exc)) from None
        return self._change(lambda: self.router.set_routing(*routing), "routing changed")

    def promote(self, request: Request) -> Response:
        """``POST /admin/challenger/promote``: the challenger becomes the champion."""
        return self._change(self.router.promote, "challenger promoted")

    def end_challenge(self, request: Request) -> Response:
        """``DELETE /admin/challenger``: stop serving the challenger."""
        return self._change(self.router.end_challenge, "challenger removed")

    def _change(self, change: Callable[[], None], message: str) -> Response:
        try:
            change()
        except RoutingError as exc:
            raise RequestError(str(exc), status=409) from None
        log.info(message, extra={"fields": self.router.describe()})
        return json_response(self.router.describe())


async def load_checked(directory: Path, max_batch: int, source: str) -> Loaded:
    """Read a model and run its self-check off the event loop; ``RequestError`` (422) if it is unusable."""
    try:
        model = Model(directory, max_batch)
    except ModelError as exc:
        raise RequestError(str(exc), status=422) from None
    if not await asyncio.get_running_loop().run_in_executor(None, model.self_check):
        raise RequestError(f"model {source!r} failed its self-check: {model.reason}", status=422)
    return Loaded(model, source)
