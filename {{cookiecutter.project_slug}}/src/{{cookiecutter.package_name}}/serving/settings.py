"""The server's configuration, read once at start from environment variables.

============================  ==============  ==========================================================================
Variable                      Default         Meaning
============================  ==============  ==========================================================================
``MODEL_DIR``                 ``models``      directory with the champion's ``model.onnx`` and ``metadata.json``
``HOST``                      ``0.0.0.0``     address the prediction API listens on
``PORT``                      ``8080``        its TCP port (0 picks a free one)
``MAX_BODY_BYTES``            ``1048576``     largest request body accepted (413 above)
``MAX_BATCH``                 ``1000``        most instances in one ``/predict`` request (400 above)
``MAX_URL_BYTES``             ``8192``        longest request target (URL) accepted (414 above)
``MAX_HEADER_BYTES``          ``16384``       largest header block accepted, all header lines together (431 above)
``MAX_HEADERS``               ``100``         most header lines in one request (431 above)
``MAX_CONNECTIONS``           ``1024``        most open client connections; one more is answered 503 and closed
``HEADER_TIMEOUT_SECONDS``    ``10``          time for a request's line and headers to arrive (408 after)
``BODY_TIMEOUT_SECONDS``      ``30``          time for a request's body to arrive once its headers did (408 after)
``KEEPALIVE_TIMEOUT_SECONDS`` ``75``          an idle keep-alive connection is closed after this; so is one whose
                                              client reads no answer for this long (longer than the usual load
                                              balancer idle timeout of 60 s, so the balancer closes first)
``LOG_LEVEL``                 ``INFO``        ``DEBUG`` logs one line per request; ``WARNING``/``ERROR`` log less
``MODEL_STORE``               (none)          directory of model versions (``<name>/model.onnx`` + ``metadata.json``)
                                              that the admin API may load while serving; unset, it loads none
``CHALLENGER_DIR``            (none)          a challenger to load at start, next to the champion
``CHALLENGER_MODE``           ``shadow``      ``shadow``: the challenger scores every request, the champion answers;
                                              ``ab``: the challenger answers a ``CHALLENGER_WEIGHT`` share of requests
``CHALLENGER_WEIGHT``         ``0.1``         share of requests the challenger answers in ``ab`` mode (0 to 1)
``ADMIN_HOST``                ``127.0.0.1``   address of the admin API (model loads, rollback, routing); loopback
                                              keeps it inside the pod (``kubectl port-forward`` reaches it)
``ADMIN_PORT``                ``8081``        its TCP port (0 picks a free one, ``off`` disables the admin API)
``SHUTDOWN_GRACE``            ``10``          seconds a stopping server waits for requests in progress (SIGTERM)
``PREDICTION_LOG_DIR``        (none)          where a sample of predictions is written as JSON lines (created if
                                              needed; see ``prediction_log``); unset, nothing is logged
``PREDICTION_LOG_SAMPLE``     ``0.1``         share of ``/predict`` requests logged (0 to 1), all their instances
``PREDICTION_LOG_MAX_BYTES``  ``67108864``    size past which no line is added to a log file: a new file is
                                              started (64 MiB; at least 1024)
============================  ==============  ==========================================================================

Nothing is written to disk unless ``PREDICTION_LOG_DIR`` is set: logs are JSON lines on stderr, metrics are served
from memory. The prediction log's files are never deleted by the server: retention is the operator's job.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from {{ cookiecutter.package_name }}.contracts.errors import ProjectError

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
MODES = ("shadow", "ab")


class SettingsError(ProjectError, ValueError):
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


def _seconds(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number of seconds") from None
    if not low <= value <= high:
        raise SettingsError(f"{name}={value:g} is out of range [{low:g}, {high:g}]")
    return value


def weight(raw: object, name: str = "CHALLENGER_WEIGHT") -> float:
    """A share of requests between 0 and 1, or ``SettingsError`` naming ``name``."""
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise SettingsError(f"{name}={raw!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise SettingsError(f"{name}={value} is out of range [0, 1]")
    return value


def mode(raw: object, name: str = "CHALLENGER_MODE") -> str:
    """A routing mode, or ``SettingsError`` naming ``name``."""
    if raw not in MODES:
        raise SettingsError(f"{name}={raw!r} is not one of {', '.join(MODES)}")
    return str(raw)


def _path(env: Mapping[str, str], name: str) -> Path | None:
    raw = env.get(name, "").strip()
    return Path(raw) if raw else None


@dataclass(frozen=True)
class Settings:
    """Everything the server is configured with."""

    model_dir: Path = Path("models")
    host: str = "0.0.0.0"  # a container listens on every interface
    port: int = 8080
    max_body_bytes: int = 1024 * 1024
    max_batch: int = 1000
    max_url_bytes: int = 8192
    max_header_bytes: int = 16384
    max_headers: int = 100
    max_connections: int = 1024
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keepalive_timeout: float = 75.0
    log_level: str = "INFO"
    model_store: Path | None = None
    challenger_dir: Path | None = None
    challenger_mode: str = "shadow"
    challenger_weight: float = 0.1
    admin_host: str = "127.0.0.1"
    admin_port: int | None = 8081
    shutdown_grace: int = 10
    prediction_log_dir: Path | None = None
    prediction_log_sample: float = 0.1
    prediction_log_max_bytes: int = 64 * 1024 * 1024

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, model_dir: Path | None = None) -> Settings:
        """Read the settings from ``env`` (the process environment by default); ``model_dir`` overrides ``MODEL_DIR``.

        Raises ``SettingsError`` naming the variable when a value is invalid.
        """
        env = os.environ if env is None else env
        level = env.get("LOG_LEVEL", "").strip().upper() or cls.log_level
        if level not in LOG_LEVELS:
            raise SettingsError(f"LOG_LEVEL={level!r} is not one of {', '.join(LOG_LEVELS)}")
        admin = env.get("ADMIN_PORT", "").strip().lower()
        settings = cls(
            model_dir=_path(env, "MODEL_DIR") or cls.model_dir,
            host=env.get("HOST", "").strip() or cls.host,
            port=_integer(env, "PORT", cls.port, 0, 65535),
            max_body_bytes=_integer(env, "MAX_BODY_BYTES", cls.max_body_bytes, 1, 1 << 30),
            max_batch=_integer(env, "MAX_BATCH", cls.max_batch, 1, 1_000_000),
            max_url_bytes=_integer(env, "MAX_URL_BYTES", cls.max_url_bytes, 256, 1 << 20),
            max_header_bytes=_integer(env, "MAX_HEADER_BYTES", cls.max_header_bytes, 1024, 1 << 20),
            max_headers=_integer(env, "MAX_HEADERS", cls.max_headers, 8, 10_000),
            max_connections=_integer(env, "MAX_CONNECTIONS", cls.max_connections, 1, 1_000_000),
            header_timeout=_seconds(env, "HEADER_TIMEOUT_SECONDS", cls.header_timeout, 0.1, 3600),
            body_timeout=_seconds(env, "BODY_TIMEOUT_SECONDS", cls.body_timeout, 0.1, 3600),
            keepalive_timeout=_seconds(env, "KEEPALIVE_TIMEOUT_SECONDS", cls.keepalive_timeout, 0.1, 86400),
            log_level=level,
            model_store=_path(env, "MODEL_STORE"),
            challenger_dir=_path(env, "CHALLENGER_DIR"),
            challenger_mode=mode(env.get("CHALLENGER_MODE", "").strip() or cls.challenger_mode),
            challenger_weight=weight(env.get("CHALLENGER_WEIGHT", "").strip() or cls.challenger_weight),
            admin_host=env.get("ADMIN_HOST", "").strip() or cls.admin_host,
            admin_port=None if admin == "off" else _integer(env, "ADMIN_PORT", cls.admin_port or 0, 0, 65535),
            shutdown_grace=_integer(env, "SHUTDOWN_GRACE", cls.shutdown_grace, 0, 3600),
            prediction_log_dir=_path(env, "PREDICTION_LOG_DIR"),
            prediction_log_sample=weight(
                env.get("PREDICTION_LOG_SAMPLE", "").strip() or cls.prediction_log_sample, "PREDICTION_LOG_SAMPLE"
            ),
            prediction_log_max_bytes=_integer(
                env, "PREDICTION_LOG_MAX_BYTES", cls.prediction_log_max_bytes, 1024, 1 << 40
            ),
        )
        return settings if model_dir is None else replace(settings, model_dir=model_dir)
