"""``track`` against a tracking store that fails: a server that refuses or never answers fails the stage within
seconds in one line naming it; a run cut short after it started (an error, SIGTERM) ends FAILED, not RUNNING; and the
stage ``tracking-target`` records the URI the run would go to, the environment's override included."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from conftest import BIN, Workspace, free_port, run, tool_env

if TYPE_CHECKING:
    from mlflow.entities import Run

PACKAGE = "{{ cookiecutter.package_name }}"
FAST = 15.0  # seconds: "within seconds", the interpreter's start and MLflow's import included


@contextlib.contextmanager
def silent_server() -> Iterator[str]:
    """A TCP server on 127.0.0.1 that accepts every connection and never answers; yields its URL."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError, OSError):
                held.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        listener.close()


def track(ws: Workspace, uri: str) -> tuple[subprocess.CompletedProcess[str], float]:
    """``track`` in a new process against ``uri``; the result and how long it took."""
    started = time.monotonic()
    result = run([BIN / PACKAGE, "track"], ws.root, tool_env(MLFLOW_TRACKING_URI=uri), check=False, timeout=300)
    return result, time.monotonic() - started


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str, alone: bool = True) -> None:
    """The command failed with one ``error:`` line holding ``fragments``, and no traceback; with ``alone``, it printed
    nothing else (else MLflow's own log lines, e.g. "Creating a new experiment", may come before it)."""
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 if alone else [line for line in lines if line.startswith("error")] == lines[-1:], lines
    for fragment in ("error: ", *fragments):
        assert fragment in lines[-1], lines[-1]


@pytest.mark.parametrize("server", ["closed port", "accepts, never answers"])
def test_an_unreachable_server_fails_track_within_seconds_in_one_line(
    trained: Workspace, tmp_path: Path, server: str
) -> None:
    ws = trained.copy(tmp_path / "ws")
    with contextlib.ExitStack() as stack:
        uri = f"http://127.0.0.1:{free_port()}" if server == "closed port" else stack.enter_context(silent_server())
        result, elapsed = track(ws, uri)

    expected = "connection refused" if server == "closed port" else f"no answer within {ws.params.track.timeout} s"
    assert_one_line_error(result, f"the MLflow tracking server {uri} did not answer", expected)
    assert elapsed < FAST, f"track took {elapsed:.1f} s to give up on {uri}"
    assert not ws.path("run").exists(), "a run record was written though nothing was tracked"


def test_a_run_that_fails_after_it_started_ends_failed(
    trained: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow import MlflowClient

    ws = trained.copy(tmp_path / "ws")
    ws.path("parity").unlink()  # read inside the run, after it started
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)

    result = ws.cli("track")

    assert result.code != 0
    assert "parity.json" in result.err
    client = MlflowClient(tracking_uri=store)
    experiment = client.get_experiment_by_name(ws.params.mlflow.experiment)
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    assert [r.info.status for r in runs] == ["FAILED"]
    assert "gate.passed" not in runs[0].data.tags, "a run cut short claims a passed gate"
    assert not ws.path("run").exists()


def test_sigterm_during_a_run_ends_it_failed(trained: Workspace, tmp_path: Path) -> None:
    """SIGTERM (a cancelled CI job) while the run is open: the run ends FAILED, the stage fails in one line."""
    from mlflow import MlflowClient

    ws = trained.copy(tmp_path / "ws")
    parity = ws.path("parity")
    parity.unlink()
    os.mkfifo(parity)  # reading it inside the run blocks until the test writes: the run stays open until then
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=store)
    # Create the store's tables before the stage starts: two processes migrating one new SQLite file at once race
    # (`table ... already exists`), and the polling below would otherwise be the second one.
    client.search_experiments()
    process = subprocess.Popen(
        [BIN / PACKAGE, "track"],
        cwd=ws.root,
        env=tool_env(MLFLOW_TRACKING_URI=store),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        running: list[Run] = []
        while not running and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.5)
            with contextlib.suppress(Exception):  # the store may not exist yet
                experiment = client.get_experiment_by_name(ws.params.mlflow.experiment)
                running = client.search_runs([experiment.experiment_id]) if experiment else []
        if not running:
            process.kill()
            out, err = process.communicate()
            pytest.fail(f"no run started (exit {process.returncode}):\n{err}")
        assert running[0].info.status == "RUNNING"
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()

    result = subprocess.CompletedProcess(process.args, process.returncode, out, err)
    run_id = running[0].info.run_id
    assert_one_line_error(result, "interrupted by SIGTERM", f"run {run_id} ended FAILED", alone=False)
    assert client.get_run(run_id).info.status == "FAILED"


def test_tracking_target_records_the_resolved_uri_without_credentials(trained: Workspace, tmp_path: Path) -> None:
    ws = trained.copy(tmp_path / "ws")
    target: list[str | Path] = [BIN / "python", "-m", f"{PACKAGE}.pipeline.tracking"]

    run(target, ws.root, tool_env())
    assert json.loads(ws.path("tracking").read_text()) == {"tracking_uri": ws.params.mlflow.tracking_uri}
    first = ws.path("tracking").read_bytes()
    run(target, ws.root, tool_env())
    assert ws.path("tracking").read_bytes() == first, "the same URI must give the same file (else track always reruns)"

    run(target, ws.root, tool_env(MLFLOW_TRACKING_URI="https://ci:s3cret@mlflow.example.com/"))
    assert json.loads(ws.path("tracking").read_text()) == {"tracking_uri": "https://ci:***@mlflow.example.com/"}
