"""``track`` and ``register`` against SQLite stores: registration works in the current store, whichever store the
pipeline's run was tracked into (the end-to-end tests do the same with a real MLflow server)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import Workspace, require_impossible, write_fake_run

from {{ cookiecutter.package_name }}.pipeline.tracking import SOURCE_RUN_TAG, SOURCE_STORE_TAG

# What the release workflow reads from `make register` (release.yml, step `register`).
REGISTERED = re.compile(r"^registered .* version ([0-9][0-9]*) as .*$", re.MULTILINE)


def _version(stdout: str) -> str:
    found = REGISTERED.findall(stdout)
    assert len(found) == 1, stdout
    return str(found[0])


def test_register_in_another_store_logs_the_run_there(
    trained: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow import MlflowClient

    ws = trained.copy(tmp_path / "ws")
    store_a, store_b = f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"
    flags = [] if ws.read_json("verdict")["passed"] else ["--allow-failed-gate"]
    name = ws.params.mlflow.registered_model
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store_a)
    ws.ok("track")
    record = ws.read_json("run")
    recorded_bytes = ws.path("run").read_bytes()
    original = MlflowClient(tracking_uri=store_a).get_run(record["run_id"])

    monkeypatch.setenv("MLFLOW_TRACKING_URI", store_b)
    first = ws.ok("register", "--alias", "challenger", *flags)
    second = ws.ok("register", "--alias", "challenger", *flags)

    # one line says what happened, the next is the one the release workflow parses
    lines = first.out.splitlines()
    assert len(lines) == 2, first.out
    assert lines[0].startswith(f"run {record['run_id']} (tracked in {store_a}) is not in {store_b}: registering run ")
    assert lines[1] == f"registered {name} version 1 as @challenger"
    assert _version(first.out) == "1"
    assert _version(second.out) == "2"
    assert second.out.splitlines()[1] == f"registered {name} version 2 as @challenger"

    client = MlflowClient(tracking_uri=store_b)
    v1, v2 = client.get_model_version(name, "1"), client.get_model_version(name, "2")
    assert str(client.get_model_version_by_alias(name, "challenger").version) == "2"
    assert v1.run_id == v2.run_id != record["run_id"], "the second register reuses the run the first one logged"
    stand_in = client.get_run(v1.run_id)
    assert stand_in.data.tags[SOURCE_RUN_TAG] == record["run_id"]
    assert stand_in.data.tags[SOURCE_STORE_TAG] == store_a
    assert stand_in.info.experiment_id == client.get_experiment_by_name(ws.params.mlflow.experiment).experiment_id
    # what the track stage logged: the same params, metrics and lineage tags, and an ONNX model
    assert stand_in.data.params == original.data.params
    assert stand_in.data.metrics.keys() == original.data.metrics.keys()
    for metric in ("parity.max_diff", *ws.read_json("metrics")["model"]):
        if metric in original.data.metrics:
            assert stand_in.data.metrics[metric] == pytest.approx(original.data.metrics[metric]), metric
    for tag in ("git.commit", "gate.passed", "data.raw.md5", "model.onnx.md5", "data.train.md5"):
        assert stand_in.data.tags[tag] == original.data.tags[tag], tag
    for version in (v1, v2):
        assert version.tags[SOURCE_RUN_TAG] == record["run_id"]
        assert version.tags["model.onnx.md5"] == original.data.tags["model.onnx.md5"]
    model_dir = Path(client.download_artifacts(v1.run_id, "model", str(tmp_path / "model")))
    assert (model_dir / "MLmodel").is_file()
    assert "onnx" in (model_dir / "MLmodel").read_text()
    # nothing of this is written back: the run record is a DVC output of the track stage
    assert ws.path("run").read_bytes() == recorded_bytes

    # In the store the run was tracked into, the recorded run itself is registered, as before.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store_a)
    same = ws.ok("register", "--alias", "challenger", *flags)
    assert same.out == f"registered {name} version 1 as @challenger\n"
    assert MlflowClient(tracking_uri=store_a).get_model_version(name, "1").run_id == record["run_id"]


def test_a_failed_gate_refuses_before_anything_is_logged(
    trained: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow import MlflowClient

    ws = trained.copy(tmp_path / "ws")
    require_impossible(ws)
    ws.ok("validate")
    write_fake_run(ws)  # a run tracked elsewhere
    store_b = f"sqlite:///{tmp_path / 'b.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store_b)

    result = ws.cli("register", "--alias", "challenger")

    assert result.code == 1
    assert "the gate failed" in result.err
    assert "registered" not in result.out
    client = MlflowClient(tracking_uri=store_b)
    assert client.get_experiment_by_name(ws.params.mlflow.experiment) is None, "a refused model was logged"
    assert not client.search_registered_models()
