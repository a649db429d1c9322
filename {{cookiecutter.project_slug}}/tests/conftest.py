"""Shared test helpers: scratch workspaces where the CLI runs in-process, copies of the project as real git
repositories, subprocesses, free ports and servers.

Every test works on its own temporary directories and ports, so the suite is safe under ``pytest -n auto``. The
tests read the project's own ``params.yaml`` and ``data/schema.yaml`` and build their data with the package's
``synthetic.frame``, so they hold for any dataset and task the project was generated with.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import uvloop
import yaml

from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.contracts.io import md5
from {{ cookiecutter.package_name }}.contracts.scoring import HIGHER_IS_BETTER
from {{ cookiecutter.package_name }}.pipeline import synthetic
from {{ cookiecutter.package_name }}.pipeline.config import Params, load_params
from {{ cookiecutter.package_name }}.pipeline.schema import Schema, load_schema
from {{ cookiecutter.package_name }}.serving.server import ModelServer
from {{ cookiecutter.package_name }}.serving.settings import Settings
from {{ cookiecutter.package_name }}.serving.unavailable import UnavailableModel

PACKAGE = "{{ cookiecutter.package_name }}"
PROJECT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # the project's virtualenv: dvc, mlflow, moto_server and the package's CLI
E2E_MODULE = "test_e2e.py"  # the end-to-end tests, kept on one xdist worker so they share one reproduced project
PIPELINE_ROWS = 1500  # enough rows for a model that clears the gate and for slices of 30+ test rows
# Not copied into scratch copies of the project: environments, caches, local state and every pipeline output, so a
# copy starts from what a fresh clone plus `dvc pull` of the raw data holds.
NOT_COPIED = {
    ".venv",
    ".git",
    ".pytest_cache",
    ".ruff_cache",
    ".mypy_cache",
    ".hypothesis",
    "mlflow.db",
    "mlruns",
    "mlartifacts",
    "dvc.lock",
    "data/prepared",
    "models",
    "metrics",
    "plots",
    "reports",
    ".dvc/cache",
    ".dvc/tmp",
    ".dvc/config.local",
}
# Environment variables that would point git, DVC or MLflow somewhere outside the test's own directories.
LEAKY_ENV = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "MLFLOW_TRACKING_URI",
    "MLFLOW_REGISTRY_URI",
    "AWS_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
)
# Set for the tests and their subprocesses: a git identity without user configuration, no DVC analytics, and
# the local servers the tests start reached without any proxy.
ISOLATION = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "DVC_NO_ANALYTICS": "1",
    "NO_PROXY": "127.0.0.1,localhost",
    "no_proxy": "127.0.0.1,localhost",
}


# --------------------------------------------------------------------------------------------------------------------
# The project's own settings
# --------------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def params() -> Params:
    """The project's ``params.yaml``."""
    return load_params(PROJECT / "params.yaml")


@pytest.fixture(scope="session")
def schema(params: Params) -> Schema:
    """The project's data contract."""
    return load_schema(PROJECT / params.paths.schema_)


@pytest.fixture(scope="session", autouse=True)
def _isolated_env() -> Iterator[None]:
    """In-process git calls (lineage) see only the test's repository; commits need no user configuration."""
    with pytest.MonkeyPatch.context() as patch:
        for name in LEAKY_ENV:
            patch.delenv(name, raising=False)
        for name, value in ISOLATION.items():
            patch.setenv(name, value)
        yield


# --------------------------------------------------------------------------------------------------------------------
# Subprocesses, ports, HTTP
# --------------------------------------------------------------------------------------------------------------------


def tool_env(**extra: str) -> dict[str, str]:
    """The environment for subprocesses: the project's virtualenv first on PATH, isolated git/DVC/MLflow settings."""
    env = {k: v for k, v in os.environ.items() if k not in LEAKY_ENV}
    env.update(ISOLATION)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


def run(
    args: list[str | Path], cwd: Path, env: Mapping[str, str] | None = None, *, check: bool = True, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run a command and capture its output; with ``check``, a failure shows the command and everything it printed."""
    result = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=dict(env or tool_env()),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, args))} exited {result.returncode} in {cwd}\n"
            f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
        )
    return result


def git(cwd: Path, *args: str) -> str:
    """Run git in ``cwd`` and return its output."""
    return run(["git", *args], cwd).stdout.strip()


def commit_all(cwd: Path, message: str) -> str:
    """Stage everything and commit (if anything changed); return HEAD."""
    git(cwd, "add", "-A")
    if git(cwd, "status", "--porcelain"):
        git(cwd, "commit", "--quiet", "--no-verify", "-m", message)
    return git(cwd, "rev-parse", "HEAD")


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_http(url: str, timeout: float, process: subprocess.Popen[bytes] | None = None) -> None:
    """Poll ``url`` until it answers 200; fail early if ``process`` (the server) exits."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the server exited with {process.returncode} before {url} answered")
        with (
            contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError),
            opener.open(url, timeout=5) as r,
        ):
            if r.status == 200:
                return
        time.sleep(0.5)
    raise AssertionError(f"{url} did not answer within {timeout:.0f} s")


def stop_process_group(process: subprocess.Popen[bytes], grace: float = 20) -> None:
    """Stop a server started with ``start_new_session=True`` and every worker it spawned."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(grace)
    with contextlib.suppress(ProcessLookupError):  # workers left behind by a server that exited on its own
        os.killpg(process.pid, signal.SIGKILL)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under ``pytest -n`` (``make test``), send all end-to-end tests to one worker so they share one reproduced
    project and one MLflow server; every other test is distributed one by one, as ``--dist load`` does."""
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class EndToEndOnOneWorker(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return E2E_MODULE if nodeid.split("::")[0].endswith(E2E_MODULE) else nodeid

    return EndToEndOnOneWorker(config, log)


# --------------------------------------------------------------------------------------------------------------------
# Scratch workspaces: the CLI in-process, on synthetic data
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CliResult:
    """Exit code and output of one in-process CLI call."""

    code: int
    out: str
    err: str


class Workspace:
    """A directory with the project's ``params.yaml`` and schema, where the CLI runs in-process."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def create(cls, root: Path) -> Workspace:
        """Copy the project's settings into ``root``."""
        settings = load_params(PROJECT / "params.yaml")
        schema_path = root / settings.paths.schema_
        schema_path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(PROJECT / "params.yaml", root / "params.yaml")
        shutil.copyfile(PROJECT / settings.paths.schema_, schema_path)
        return cls(root)

    def copy(self, dest: Path) -> Workspace:
        """An independent copy, for tests that change settings or outputs."""
        shutil.copytree(self.root, dest, dirs_exist_ok=True)
        return Workspace(dest)

    @property
    def params(self) -> Params:
        """The workspace's current settings."""
        return load_params(self.root / "params.yaml")

    @property
    def schema(self) -> Schema:
        """The workspace's data contract."""
        return load_schema(self.root / self.params.paths.schema_)

    def path(self, name: str) -> Path:
        """Absolute path of an artifact named in ``params.yaml`` (``paths.<name>``)."""
        relative: Path = getattr(self.params.paths, name)
        return self.root / relative

    def read_json(self, name: str) -> Any:
        """An artifact written as JSON."""
        return json.loads(self.path(name).read_text())

    def raw_params(self) -> dict[str, Any]:
        """``params.yaml`` as plain data."""
        data: dict[str, Any] = yaml.safe_load((self.root / "params.yaml").read_text())
        return data

    def set_params(self, changes: Mapping[str, Any]) -> None:
        """Change settings by dotted key, e.g. ``{"gate.thresholds.accuracy": {"min": 1.5}}``."""
        data = self.raw_params()
        for dotted, value in changes.items():
            *parents, leaf = dotted.split(".")
            node = data
            for key in parents:
                node = node.setdefault(key, {})
            node[leaf] = value
        (self.root / "params.yaml").write_text(yaml.safe_dump(data, sort_keys=False))

    def write_raw(self, data: pd.DataFrame | str) -> Path:
        """Replace the raw CSV with a table or with literal text."""
        raw = self.path("raw")
        raw.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, str):
            raw.write_text(data)
        else:
            data.to_csv(raw, index=False)
        return raw

    def cli(self, *args: str) -> CliResult:
        """Run one command of the project's CLI in this directory, capturing what it prints."""
        out, err = io.StringIO(), io.StringIO()
        with contextlib.chdir(self.root), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(args))
        return CliResult(code, out.getvalue(), err.getvalue())

    def ok(self, *args: str) -> CliResult:
        """Run a command that must succeed."""
        result = self.cli(*args)
        assert result.code == 0, f"`{' '.join(args)}` exited {result.code}:\n{result.err}"
        return result

    def git_init(self) -> None:
        """Make the workspace a git repository on the baseline branch."""
        git(self.root, "init", "--quiet", f"--initial-branch={self.params.gate.baseline_ref}")


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    """An empty scratch workspace with the project's settings."""
    return Workspace.create(tmp_path / "ws")


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """A workspace where prepare, train, evaluate, export, profile and validate ran on synthetic data. Read-only:
    tests that change anything work on ``trained.copy(tmp_path)``.

    The latency limit is relaxed here: these tests run next to each other on a busy machine, where a p99 of a
    sub-millisecond call measures the scheduler, not the model. The gate's latency check still runs.
    """
    ws = Workspace.create(tmp_path_factory.mktemp("trained"))
    ws.set_params({"gate.max_latency_ms": 1000.0})
    ws.write_raw(synthetic.frame(ws.schema, PIPELINE_ROWS, seed=0))
    for command in ("prepare", "train", "evaluate", "export", "profile", "validate"):
        ws.ok(command)
    return ws


def require_impossible(ws: Workspace) -> tuple[str, float]:
    """Make the first gated metric's threshold 0.5 better than the trained model scores (validate not rerun);
    return the name and the limit of the check that must now fail."""
    metrics = ws.read_json("metrics")["model"]
    metric = next(iter(ws.params.gate.thresholds), "accuracy" if "accuracy" in metrics else "r2")
    if HIGHER_IS_BETTER[metric]:
        limit = metrics[metric] + 0.5
        ws.set_params({f"gate.thresholds.{metric}": {"min": limit}})
        return f"{metric} >= {limit:g}", limit
    limit = metrics[metric] - 0.5
    ws.set_params({f"gate.thresholds.{metric}": {"max": limit}})
    return f"{metric} <= {limit:g}", limit


FAKE_RUN = {
    "tracking_uri": "sqlite:///mlflow.db",
    "experiment_id": "1",
    "run_id": "0123456789abcdef0123456789abcdef",
    "model_uri": "models:/m-0123456789abcdef",
    "url": None,
}


def write_fake_run(ws: Workspace) -> None:
    """The record the ``track`` stage leaves, for tests of later stages that do not need MLflow itself."""
    path = ws.path("run")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(FAKE_RUN))


# --------------------------------------------------------------------------------------------------------------------
# End to end: real git repositories, DVC, an MLflow server
# --------------------------------------------------------------------------------------------------------------------


def copy_project(dest: Path) -> Path:
    """Copy the project's sources, settings and raw data (no outputs, caches or environments) to ``dest``."""

    def ignore(directory: str, names: list[str]) -> set[str]:
        where = Path(directory).relative_to(PROJECT)
        return {n for n in names if n == "__pycache__" or (where / n).as_posix() in NOT_COPIED}

    shutil.copytree(PROJECT, dest, ignore=ignore)
    return dest


def tracked_outputs(root: Path, settings: Params) -> dict[str, str]:
    """MD5 of every file DVC stores for the pipeline (raw data and cached stage outputs), by relative path."""
    paths = settings.paths
    files = [
        paths.raw,
        paths.train,
        paths.test,
        paths.model,
        paths.onnx,
        paths.metadata,
        paths.verdict,
        paths.run,
        paths.report,
    ]
    return {p.as_posix(): md5(root / p) for p in files}


class MlflowServer:
    """``mlflow server`` on a free port, with a SQLite store and a local artifact root in a temporary directory."""

    def __init__(self, home: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = home / "server.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    BIN / "mlflow",
                    "server",
                    "--backend-store-uri",
                    f"sqlite:///{home / 'mlflow.db'}",
                    "--artifacts-destination",
                    str(home / "artifacts"),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--workers",
                    "1",
                ],
                cwd=home,
                env=tool_env(MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false"),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait(self, timeout: float = 300) -> str:
        """Block until ``/health`` answers; return the tracking URI."""
        try:
            wait_for_http(f"{self.url}/health", timeout, self.process)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- server log\n{self.log.read_text(errors='replace')[-5000:]}") from None
        return self.url

    def stop(self) -> None:
        """Stop the server and its workers."""
        stop_process_group(self.process)


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """A real MLflow tracking server for the session, always stopped at the end. It is started, not waited for:
    callers call ``wait()`` when they need it, so it boots while they do other work."""
    server = MlflowServer(tmp_path_factory.mktemp("mlflow"))
    try:
        yield server
    finally:
        server.stop()


@dataclass(frozen=True)
class Reproduced:
    """A git copy of the project where ``dvc repro`` ran against the session's MLflow server."""

    root: Path
    env: dict[str, str]
    commit: str  # HEAD while the pipeline ran (what the MLflow run must record)
    tracking_uri: str
    output: str

    @property
    def params(self) -> Params:
        """The copy's settings."""
        return load_params(self.root / "params.yaml")

    def run(self, *args: str | Path, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run a command in the copy with the session's environment."""
        return run(list(args), self.root, env or self.env)


@pytest.fixture(scope="session")
def reproduced(tmp_path_factory: pytest.TempPathFactory, mlflow_server: MlflowServer) -> Reproduced:
    """The whole pipeline, run once per session by DVC in a committed git copy of the project."""
    if not (PROJECT / load_params(PROJECT / "params.yaml").paths.raw).exists():
        pytest.skip("the raw data is not in the working tree: run `make pull` (or `make setup`) first")
    root = copy_project(tmp_path_factory.mktemp("e2e") / PROJECT.name)
    env = tool_env()
    run(["git", "init", "--quiet", "--initial-branch=main"], root, env)
    settings = load_params(root / "params.yaml")
    dvc_file = settings.paths.raw.with_name(settings.paths.raw.name + ".dvc")
    run([BIN / "dvc", "commit", "--force", "--quiet", dvc_file], root, env)  # what `make setup` does: fill the cache
    commit = commit_all(root, "the project")
    env["MLFLOW_TRACKING_URI"] = mlflow_server.wait()
    result = run([BIN / "dvc", "repro"], root, env, timeout=1200)
    return Reproduced(root, env, commit, env["MLFLOW_TRACKING_URI"], result.stdout + result.stderr)


@pytest.fixture(scope="session")
def pushed(reproduced: Reproduced) -> Reproduced:
    """The reproduced copy with its outputs (``dvc.lock``, metrics, ``.gitignore`` files) committed, as after a PR."""
    commit_all(reproduced.root, "pipeline outputs")
    assert not git(reproduced.root, "status", "--porcelain"), "the pipeline left uncommitted changes"
    return reproduced


# --------------------------------------------------------------------------------------------------------------------
# The model server
# --------------------------------------------------------------------------------------------------------------------


class Server:
    """A ``ModelServer`` on 127.0.0.1 and a free port, its uvloop loop running in a daemon thread."""

    def __init__(self, model_dir: Path, **env: str) -> None:
        settings = Settings.from_env({"HOST": "127.0.0.1", "PORT": "0", "ADMIN_PORT": "0", **env}, model_dir)
        self.loop = uvloop.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = ModelServer(settings, UnavailableModel.instead_of(settings.model_dir, settings.max_batch))
        self.port = asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(10)
        asyncio.run_coroutine_threadsafe(self.server.check(), self.loop)  # /readyz turns 200 when it passes

    @property
    def admin_port(self) -> int:
        port = self.server.admin_port
        assert port is not None, "the admin API is off"
        return port

    def admin(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """One request to the admin API: status and decoded JSON body."""
        status, _, data = self.request(method, path, body, port=self.admin_port)
        return status, data

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None, port: int | None = None
    ) -> tuple[int, dict[str, str], Any]:
        """One request on a new connection; JSON bodies are decoded, the rest returned as text."""
        conn = http.client.HTTPConnection("127.0.0.1", port or self.port, timeout=10)
        try:
            payload = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
            conn.request(method, path, payload, headers or {})
            response = conn.getresponse()
            raw = response.read()
            content_type = response.getheader("Content-Type", "")
            data = json.loads(raw) if content_type.startswith("application/json") else raw.decode()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, data
        finally:
            conn.close()

    def wait_checked(self, timeout: float = 10) -> tuple[int, Any]:
        """``/readyz`` once the self-check has run (ready or refused)."""
        deadline = time.monotonic() + timeout
        while True:
            status, _, body = self.request("GET", "/readyz")
            if status == 200 or "self-check has not run" not in body.get("error", "") or time.monotonic() > deadline:
                return status, body
            time.sleep(0.02)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@contextlib.contextmanager
def ready_server(model: Path, **env: str) -> Iterator[Server]:
    """A ``Server`` on ``model`` that passed its self-check; stopped on exit."""
    running = Server(model, **env)
    try:
        status, body = running.wait_checked()
        assert status == 200, body
        yield running
    finally:
        running.stop()


def model_dir(ws: Workspace, dest: Path) -> Path:
    """The exported model of ``ws`` under the names the server expects."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ws.path("onnx"), dest / "model.onnx")
    shutil.copyfile(ws.path("metadata"), dest / "metadata.json")
    return dest


@pytest.fixture(scope="session")
def challenger(trained: Workspace, tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """A second exported model, trained on other synthetic rows: another version with other predictions."""
    ws = trained.copy(tmp_path_factory.mktemp("challenger"))
    ws.write_raw(synthetic.frame(ws.schema, PIPELINE_ROWS // 2, seed=1))
    for command in ("prepare", "train", "evaluate", "export"):
        ws.ok(command)
    return ws
