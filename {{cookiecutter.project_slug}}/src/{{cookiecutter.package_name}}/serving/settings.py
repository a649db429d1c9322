"""The server's configuration, read once at start from environment variables.

========================  ==============  ==========================================================================
Variable                  Default         Meaning
========================  ==============  ==========================================================================
``MODEL_DIR``             ``models``      directory with ``model.onnx`` and ``metadata.json``
``HOST``                  ``0.0.0.0``     address to listen on
``PORT``                  ``8080``        TCP port (0 picks a free one)
``MAX_BODY_BYTES``        ``1048576``     largest request body accepted (413 above)
``MAX_BATCH``             ``1000``        most instances in one ``/predict`` request (400 above)
``LOG_LEVEL``             ``INFO``        ``DEBUG`` logs one line per request; ``WARNING``/``ERROR`` log less
========================  ==============  ==========================================================================
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class SettingsError(ValueError):
    """An environment variable has a value the server cannot use."""


def _integer(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not an integer") from None
    if not low <= value <= high:
        raise SettingsError(f"{name}={value} is out of range [{low}, {high}]")
    return value


@dataclass(frozen=True)
class Settings:
    """Everything the server is configured with."""

    model_dir: Path = Path("models")
    host: str = "0.0.0.0"  # a container listens on every interface
    port: int = 8080
    max_body_bytes: int = 1024 * 1024
    max_batch: int = 1000
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, model_dir: Path | None = None) -> Settings:
        """Read the settings from ``env`` (the process environment by default); ``model_dir`` overrides ``MODEL_DIR``.

        Raises ``SettingsError`` naming the variable when a value is invalid.
        """
        env = os.environ if env is None else env
        level = env.get("LOG_LEVEL", "").strip().upper() or cls.log_level
        if level not in LOG_LEVELS:
            raise SettingsError(f"LOG_LEVEL={level!r} is not one of {', '.join(LOG_LEVELS)}")
        host = env.get("HOST", "").strip() or cls.host
        settings = cls(
            model_dir=Path(env.get("MODEL_DIR", "").strip() or cls.model_dir),
            host=host,
            port=_integer(env, "PORT", cls.port, 0, 65535),
            max_body_bytes=_integer(env, "MAX_BODY_BYTES", cls.max_body_bytes, 1, 1 << 30),
            max_batch=_integer(env, "MAX_BATCH", cls.max_batch, 1, 1_000_000),
            log_level=level,
        )
        return settings if model_dir is None else replace(settings, model_dir=model_dir)

    @property
    def model_path(self) -> Path:
        """The ONNX graph."""
        return self.model_dir / "model.onnx"

    @property
    def metadata_path(self) -> Path:
        """The model's metadata written by the export stage."""
        return self.model_dir / "metadata.json"
