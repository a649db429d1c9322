"""The registry follows the deployments, on a real ``mlflow server``: promote, promote, roll back, and ``@champion``
names what prod runs after each step; a version the server does not hold is an error, a local store's is skipped."""

from __future__ import annotations

import shutil
import time
import uuid
from pathlib import Path

import pytest
from conftest import PROJECT, MlflowServer, free_port
from test_promote import A, B, C, Repo, needs_deploy, new_repo

pytestmark = needs_deploy


def registered(uri: str, versions: int) -> str:
    """A new registered model in the store with this many versions (each from its own run); returns its name."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    name = f"model-{uuid.uuid4().hex[:8]}"
    client.create_registered_model(name)
    experiment = client.create_experiment(name)
    for _ in range(versions):
        run = client.create_run(experiment)
        client.create_model_version(name, f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
        client.set_terminated(run.info.run_id)
    return name


def champion(uri: str, name: str, alias: str = "champion") -> str:
    from mlflow import MlflowClient

    return str(MlflowClient(tracking_uri=uri).get_model_version_by_alias(name, alias).version)


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    """A git repository with the deploy files, ``params.yaml`` and the schema: where the release commands run."""
    repo = new_repo(tmp_path / "repo")
    shutil.copyfile(PROJECT / "params.yaml", repo.root / "params.yaml")
    schema = repo.params.paths.schema_
    (repo.root / schema).parent.mkdir(parents=True)
    shutil.copyfile(PROJECT / schema, repo.root / schema)
    return repo


def use_model(repo: Repo, name: str) -> None:
    repo.set_params({"mlflow.registered_model": name})


@pytest.mark.slow
def test_champion_follows_promote_promote_rollback(
    repo: Repo, mlflow_server: MlflowServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = mlflow_server.wait()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    name = registered(uri, 2)
    use_model(repo, name)

    for env in ("dev", "staging", "prod"):
        repo.ok("promote", "--env", env, "--digest", A, *(["--model-version", "1"] if env == "dev" else []))
    out = repo.ok("follow-registry", "--env", "prod").out
    assert out == f"moved {name}@champion to version 1 (it named no version): prod runs it\n"
    assert champion(uri, name) == "1"
    again = repo.ok("follow-registry", "--env", "prod").out
    assert again == f"{name}@champion already names version 1, which prod runs\n"

    for env in ("dev", "staging", "prod"):
        repo.ok("promote", "--env", env, "--digest", B, *(["--model-version", "2"] if env == "dev" else []))
    assert repo.ok("follow-registry", "--env", "staging").out.startswith(f"moved {name}@staging to version 2")
    out = repo.ok("follow-registry", "--env", "prod").out
    assert out == f"moved {name}@champion to version 2 from version 1: prod runs it\n"
    assert champion(uri, name) == "2"

    repo.ok("rollback", "--env", "prod")
    moved = repo.ok("follow-registry", "--env", "prod", "--json").out
    assert '"previous": "2"' in moved
    assert '"moved": true' in moved
    assert champion(uri, name) == "1", "a rollback moves @champion back"
    assert champion(uri, name, "staging") == "2", "staging keeps its own alias"
    history = repo.ok("history", "--env", "prod").out
    assert [line.split()[1] for line in history.splitlines()[2:5]] == ["1", "2", "1"], history


@pytest.mark.slow
def test_a_version_the_server_does_not_hold_is_an_error(
    repo: Repo, mlflow_server: MlflowServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = mlflow_server.wait()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    name = registered(uri, 1)
    use_model(repo, name)
    repo.ok("promote", "--env", "prod", "--digest", C, "--model-version", "9", "--force")

    result = repo.cli("follow-registry", "--env", "prod")

    assert result.code == 2, result
    assert result.err == (
        f"error: the registry {uri} holds no version 9 of {name}, which prod runs: register it, or promote the "
        "version that was\n"
    )


def test_an_unknown_version_or_a_local_store_without_it_is_skipped(
    repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    name = registered(store, 1)
    use_model(repo, name)
    repo.ok("promote", "--env", "dev", "--digest", A)

    unknown = repo.ok("follow-registry", "--env", "dev").out
    assert unknown.startswith(f"{name}@dev not moved: ")
    assert "names no model version (promote with --model-version)" in unknown

    repo.ok("promote", "--env", "dev", "--digest", B, "--model-version", "5")
    local = repo.ok("follow-registry", "--env", "dev").out
    assert local == f"{name}@dev not moved: the registry {store} holds no version 5 of {name} (a local store)\n"

    repo.ok("promote", "--env", "dev", "--digest", C, "--model-version", "1")
    assert repo.ok("follow-registry", "--env", "dev").out.startswith(f"moved {name}@dev to version 1")
    assert champion(store, name, "dev") == "1"


def test_an_unreachable_server_fails_fast_naming_it(repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    uri = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    repo.ok("promote", "--env", "prod", "--digest", A, "--model-version", "1", "--force")

    started = time.monotonic()
    result = repo.cli("follow-registry", "--env", "prod")

    assert result.code == 2, result
    assert uri in result.err
    assert result.err.count("\n") == 1, result.err
    assert time.monotonic() - started < 30
