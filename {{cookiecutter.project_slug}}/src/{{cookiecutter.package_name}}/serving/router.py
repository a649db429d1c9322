"""Which model answers a request: the champion, a challenger beside it, and the previous champion kept for rollback.

Every change here happens on the event loop's thread between two requests (requests are handled synchronously on
that thread), so a switch is atomic: a request is answered entirely by the model that was routed to when it
arrived, and none is dropped. Loading and self-checking a new model happens before the switch, off the loop.

* ``switch(model)``: the new model becomes the champion, the champion becomes ``previous``.
* ``rollback()``: the previous champion answers again at once (no load), and the rolled-back one becomes previous.
* ``challenge(model, mode, weight)``: a challenger in ``shadow`` mode (scored after the champion answered, never
  seen by clients) or ``ab`` mode (answers a ``weight`` share of requests; ``X-Route-Key`` makes the choice sticky).
* ``promote()``: the challenger becomes the champion; ``end_challenge()`` removes it.
"""

from __future__ import annotations

import random
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

from {{ cookiecutter.package_name }}.serving.model import Model
from {{ cookiecutter.package_name }}.serving.settings import MODES


class RoutingError(ValueError):
    """A routing change that cannot be made now (e.g. a rollback with no previous model)."""


@dataclass
class Loaded:
    """A checked model and where it came from."""

    model: Model
    source: str
    loaded_at: float = field(default_factory=time.time)

    def describe(self) -> dict[str, Any]:
        """What the admin API shows about it."""
        return {"version": self.model.version, "source": self.source, "loaded_at": round(self.loaded_at, 3)}


class Router:
    """The models being served and how requests are split between them."""

    def __init__(self, champion: Loaded) -> None:
        """Start with the champion alone."""
        self.champion = champion
        self.previous: Loaded | None = None
        self.challenger: Loaded | None = None
        self.mode = "shadow"
        self.weight = 0.0

    def route(self, key: str | None) -> tuple[Model, Model | None]:
        """The model that answers a request and the one that shadows it (if any)."""
        challenger = self.challenger
        if challenger is None:
            return self.champion.model, None
        if self.mode == "shadow":
            return self.champion.model, challenger.model
        share = random.random() if key is None else zlib.crc32(key.encode()) / 0x1_0000_0000
        return (challenger.model if share < self.weight else self.champion.model), None

    def switch(self, loaded: Loaded) -> None:
        """Make ``loaded`` the champion; keep the current one for ``rollback``."""
        self.previous, self.champion = self.champion, loaded

    def rollback(self) -> None:
        """Swap the champion and the previous champion."""
        if self.previous is None:
            raise RoutingError("there is no previous model to roll back to")
        self.previous, self.champion = self.champion, self.previous

    def challenge(self, loaded: Loaded, mode: str, weight: float) -> None:
        """Serve ``loaded`` as the challenger, in ``mode`` with ``weight`` (``ab`` only)."""
        if mode not in MODES:
            raise RoutingError(f"mode {mode!r} is not one of {', '.join(MODES)}")
        self.challenger, self.mode, self.weight = loaded, mode, weight

    def set_routing(self, mode: str, weight: float) -> None:
        """Change how the current challenger is used."""
        if self.challenger is None:
            raise RoutingError("there is no challenger: load one first")
        self.challenge(self.challenger, mode, weight)

    def promote(self) -> None:
        """Make the challenger the champion (the champion becomes previous)."""
        if self.challenger is None:
            raise RoutingError("there is no challenger to promote")
        self.switch(self.challenger)
        self.challenger = None

    def end_challenge(self) -> None:
        """Stop serving the challenger."""
        if self.challenger is None:
            raise RoutingError("there is no challenger to remove")
        self.challenger = None

    def roles(self) -> dict[str, Model]:
        """The served models by role (for metrics and metadata)."""
        roles = {"champion": self.champion.model}
        if self.challenger is not None:
            roles["challenger"] = self.challenger.model
        if self.previous is not None:
            roles["previous"] = self.previous.model
        return roles

    def describe(self) -> dict[str, Any]:
        """The state the admin API reports."""
        challenger = None
        if self.challenger is not None:
            challenger = {**self.challenger.describe(), "mode": self.mode}
            if self.mode == "ab":
                challenger["weight"] = self.weight
        return {
            "champion": self.champion.describe(),
            "previous": self.previous.describe() if self.previous else None,
            "challenger": challenger,
        }
