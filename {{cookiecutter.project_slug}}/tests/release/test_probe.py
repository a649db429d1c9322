"""Continuous validation: ``probe`` against a real server passes for its own model and fails, naming why, otherwise."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Server, Workspace, free_port, model_dir, ready_server

from {{ cookiecutter.package_name }}.cli import main


@pytest.fixture(scope="module")
def server(trained: Workspace, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with ready_server(model_dir(trained, tmp_path_factory.mktemp("model"))) as running:
        yield running


def probe(url: str, metadata: Path, *extra: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict]:
    code = main(["probe", "--url", url, "--metadata", str(metadata), "--requests", "20", "--json", *extra])
    return code, json.loads(capsys.readouterr().out)


def failed(verdict: dict) -> list[str]:
    return [c["name"] for c in verdict["checks"] if not c["passed"]]


def test_the_server_of_the_release_is_healthy(
    server: Server, trained: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    code, verdict = probe(f"http://127.0.0.1:{server.port}/", trained.path("metadata"), capsys=capsys)
    assert (code, verdict["healthy"], verdict["rollback"], failed(verdict)) == (0, True, False, [])
    assert [c["name"] for c in verdict["checks"]][:3] == [
        "ready",
        "serves the release's model version",
        "golden predictions reproduce",
    ]


def test_another_model_or_wrong_predictions_call_for_a_rollback(
    server: Server, trained: Workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    metadata = trained.read_json("metadata")
    metadata["version"] = "not-deployed"
    expected = metadata["golden"][0]["expected"]
    if "probabilities" in expected:
        expected["probabilities"] = [p + 0.01 for p in expected["probabilities"]]
    else:
        expected["value"] = expected["value"] * 1.01 + 1.0
    (tmp_path / "metadata.json").write_text(json.dumps(metadata))

    code, verdict = probe(f"http://127.0.0.1:{server.port}", tmp_path / "metadata.json", capsys=capsys)

    assert (code, verdict["rollback"]) == (1, True)
    assert failed(verdict) == ["serves the release's model version", "golden predictions reproduce"]
    golden = next(c for c in verdict["checks"] if c["name"] == "golden predictions reproduce")
    assert golden["detail"].startswith("sample 0")


def test_a_tight_latency_budget_and_an_unreachable_server_fail(
    server: Server, trained: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    _, verdict = probe(f"http://127.0.0.1:{server.port}", trained.path("metadata"), "--budget-ms", "0", capsys=capsys)
    assert failed(verdict) == ["latency p95 <= 0 ms"]

    code, verdict = probe(f"http://127.0.0.1:{free_port()}", trained.path("metadata"), capsys=capsys)
    assert code == 1
    assert failed(verdict)[:3] == ["ready", "serves the release's model version", "golden predictions reproduce"]


def test_unreadable_metadata_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["probe", "--url", "http://127.0.0.1:1", "--metadata", str(tmp_path / "nope.json")]) == 2
    assert "cannot read the model metadata" in capsys.readouterr().err
