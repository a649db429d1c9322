"""A model directory the server could not read stands in the champion's place, never ready, saying why.

The process stays up: ``/healthz`` answers, while ``/readyz``, predictions and the v2 readiness routes answer 503
naming the problem (a missing or truncated ``metadata.json``, an unreadable ``model.onnx``), instead of the process
exiting and a container restarting without a word.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, cast

from {{ cookiecutter.package_name }}.serving.model import Model, ModelError

if TYPE_CHECKING:
    from {{ cookiecutter.package_name }}.contracts.metadata import Metadata


class UnavailableModel(Model):
    """A model with no inputs and no session; ``reason`` says why it cannot be served."""

    def __init__(self, model_dir: Path, max_batch: int, reason: str) -> None:
        """Nothing read; ``version`` is ``unavailable``."""
        self.model_bytes = b""
        self.metadata = cast("Metadata", {})  # nothing read: /metadata answers nulls
        self.task = "classification"
        self.classes = []
        self.inputs = []
        self.golden = []
        self.version = "unavailable"
        self.names = []
        self.numeric_at, self.category_at, self.integer_at = [], [], []
        self.output_names = []
        self.max_batch = max_batch
        self.session = None
        self._run = None
        self.ready, self.reason = False, reason

    def self_check(self) -> bool:
        """Nothing to check: it stays unavailable."""
        return False

    @classmethod
    def instead_of(cls, model_dir: Path, max_batch: int) -> Model:
        """The model in ``model_dir``, or an unavailable one saying why it cannot be read."""
        try:
            return Model(model_dir, max_batch)
        except ModelError as exc:
            return cls(model_dir, max_batch, str(exc))
