"""How ``track`` and ``register`` talk to an MLflow tracking server, so that an outage costs seconds, not minutes.

Short timeouts, a check that the server answers before a run starts, one line naming the server when it does not, and
a run cut short ended FAILED rather than left RUNNING. MLflow's defaults (a 120 s timeout, 7 retries with doubling
waits) make an outage hang for minutes and end in a long traceback; ``track:`` in ``params.yaml`` sets them instead.
"""

from __future__ import annotations

import contextlib
import os
import signal
import ssl
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from types import FrameType
from urllib.parse import urlsplit, urlunsplit

from {{ cookiecutter.package_name }}.contracts.errors import ProjectError
from {{ cookiecutter.package_name }}.pipeline.config import TrackParams


class TrackingError(ProjectError, RuntimeError):
    """The tracking server cannot be reached, or a run was interrupted: one line that names the server or the run."""


def public_uri(uri: str) -> str:
    """``uri`` without a password (``https://user:secret@host`` -> ``https://user:***@host``)."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


HTTP_SETTINGS = {
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "timeout",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "max_retries",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "backoff_factor",
}


def http_values(track: TrackParams) -> dict[str, int]:
    """MLflow's HTTP timeout and retries: ``track``'s, where the environment does not already set them."""
    values: dict[str, int] = {}
    for name, field in HTTP_SETTINGS.items():
        given = os.environ.get(name, "")
        values[field] = int(given) if given.isdigit() else getattr(track, field)
    return values


@contextlib.contextmanager
def http_settings(track: TrackParams) -> Iterator[dict[str, int]]:
    """``http_values`` in the environment for the block, where MLflow's HTTP client reads them; yields them."""
    saved = {name: os.environ.get(name) for name in HTTP_SETTINGS}
    values = http_values(track)
    os.environ.update({name: str(values[field]) for name, field in HTTP_SETTINGS.items()})
    try:
        yield values
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def reason(exc: BaseException | str, timeout: int) -> str:
    """What went wrong talking to the server, in a few words, from MLflow's long exception messages."""
    text = str(exc)
    if "Connection refused" in text:
        return "connection refused"
    if "timed out" in text.lower() or "Timeout" in text:
        return f"no answer within {timeout} s"
    if "Name or service not known" in text or "nodename nor servname" in text or "getaddrinfo" in text:
        return "unknown host"
    first = (text.strip().splitlines() or [type(exc).__name__])[0]
    return first if len(first) <= 300 else first[:297] + "..."


def is_outage(exc: BaseException) -> bool:
    """An error talking to the tracking store (MLflow's, or the HTTP client's), not one of the pipeline's files."""
    from mlflow.exceptions import MlflowException

    network = isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError | PermissionError | IsADirectoryError)
    return isinstance(exc, MlflowException) or network


def check_reachable(uri: str, track: TrackParams) -> None:
    """Raise ``TrackingError`` when a tracking server (``http(s)://``) does not answer within the timeout.

    One request to ``/health``, without retries and before MLflow is even imported, so that an outage fails at once
    instead of leaving a run RUNNING. Any answer counts, an error status or a certificate MLflow's client may reject
    included: that is for MLflow to judge, with the credentials this request does not send.
    """
    if not uri.startswith(("http://", "https://")):
        return
    timeout = http_values(track)["timeout"]
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout):
            return
    except urllib.error.HTTPError:
        return
    except OSError as exc:  # URLError, TimeoutError, ConnectionError
        cause = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        if isinstance(cause, ssl.SSLError):
            return
        raise TrackingError(
            f"the MLflow tracking server {public_uri(uri)} did not answer: {reason(cause, timeout)} "
            f"(track.timeout in params.yaml; MLFLOW_TRACKING_URI overrides mlflow.tracking_uri)"
        ) from None


class Interrupted(BaseException):
    """SIGTERM during a run, raised where the run is, so that it ends FAILED rather than staying RUNNING."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def terminate_raises() -> Iterator[None]:
    """Within the block, SIGTERM (a cancelled CI job, ``kill``) raises like SIGINT does.

    Only the main thread has signal handlers: elsewhere the block runs as it is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise Interrupted(signum)

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def end_failed(uri: str, run_id: str, exc: BaseException, timeout: int) -> TrackingError | None:
    """End the run FAILED; the error to raise instead of ``exc`` (None: raise ``exc`` itself, it names its problem)."""
    import mlflow

    try:
        mlflow.end_run("FAILED")
        ended = f"run {run_id} ended FAILED"
    except Exception as end_exc:
        ended = f"run {run_id} could not be marked FAILED ({reason(end_exc, timeout)}): it stays RUNNING in {uri}"
    if isinstance(exc, Interrupted | KeyboardInterrupt):
        name = exc.args[0] if isinstance(exc, Interrupted) else "SIGINT"
        return TrackingError(f"track was interrupted by {name}: {ended}")
    if is_outage(exc):
        return TrackingError(f"logging to the MLflow tracking store {uri} failed: {reason(exc, timeout)}; {ended}")
    return None
