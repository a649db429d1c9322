"""Live model versions: switch, roll back, shadow and A/B through the admin API of a real server, over real HTTP.

The store holds the ``trained`` model and a ``challenger`` trained on other rows, so the two versions give other
predictions and every answer can be traced to the version that made it.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Server, Workspace, model_dir, ready_server


@pytest.fixture(scope="module")
def store(trained: Workspace, challenger: Workspace, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("store")
    model_dir(trained, root / "v1")
    model_dir(challenger, root / "v2")
    broken = model_dir(challenger, root / "broken")
    metadata = json.loads((broken / "metadata.json").read_text())
    metadata["golden"][0]["inputs"] = {}
    (broken / "metadata.json").write_text(json.dumps(metadata))
    return root


@pytest.fixture
def server(store: Path) -> Iterator[Server]:
    with ready_server(store / "v1", MODEL_STORE=str(store)) as running:
        yield running


def version(ws: Workspace) -> str:
    return str(ws.read_json("metadata")["version"])


def predict(server: Server, record: dict[str, Any], key: str | None = None) -> dict[str, Any]:
    status, _, body = server.request("POST", "/predict", {"instances": [record]}, {"X-Route-Key": key} if key else {})
    assert status == 200, body
    return dict(body)


def golden(ws: Workspace) -> list[dict[str, Any]]:
    return list(ws.read_json("metadata")["golden"])


def metric(server: Server, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels``."""
    _, _, text = server.request("GET", "/metrics")
    total = 0.0
    for match in re.finditer("^" + re.escape(name) + r"\{(.*)\} (\S+)$", text, re.MULTILINE):
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(match.group(2))
    return total


def test_switch_and_rollback_change_the_answering_model_at_once(
    server: Server, trained: Workspace, challenger: Workspace
) -> None:
    v1, v2 = version(trained), version(challenger)
    sample = golden(challenger)[0]
    assert v1 != v2
    assert predict(server, sample["inputs"])["model_version"] == v1

    status, state = server.admin("POST", "/admin/models", {"name": "v2"})
    assert status == 200, state
    assert (state["champion"]["version"], state["previous"]["version"]) == (v2, v1)
    answer = predict(server, sample["inputs"])
    assert answer["model_version"] == v2
    assert server.request("GET", "/readyz")[2]["model_version"] == v2
    assert server.request("GET", "/metadata")[2]["version"] == v2

    status, state = server.admin("POST", "/admin/rollback")
    assert status == 200, state
    assert (state["champion"]["version"], state["previous"]["version"]) == (v1, v2)
    assert predict(server, sample["inputs"])["model_version"] == v1
    assert metric(server, "model_requests_total", model_version=v2, endpoint="/predict", status="200") == 1
    assert metric(server, "model_info", model_version=v2, role="previous") == 1


def test_the_switched_model_answers_its_own_golden_predictions(server: Server, challenger: Workspace) -> None:
    assert server.admin("POST", "/admin/models", {"name": "v2"})[0] == 200
    for sample in golden(challenger):
        got = predict(server, sample["inputs"])["predictions"][0]
        expected = sample["expected"]
        if "label" in expected:
            assert got["label"] == expected["label"]
            assert list(got["probabilities"].values()) == pytest.approx(expected["probabilities"], rel=1e-4, abs=1e-6)
        else:
            assert got["value"] == pytest.approx(expected["value"], rel=1e-4, abs=1e-6)


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "text"),
    [
        ("POST", "/admin/models", {"name": "nope"}, 404, "no model 'nope'"),
        ("POST", "/admin/models", {"name": "../v2"}, 400, "'name'"),
        ("POST", "/admin/models", {"name": "v2", "role": "boss"}, 400, "'role'"),
        ("POST", "/admin/models", {"name": "v2", "role": "challenger", "mode": "canary"}, 400, "mode"),
        ("POST", "/admin/models", {"name": "v2", "role": "challenger", "weight": 2}, 400, "weight"),
        ("POST", "/admin/models", {"name": "v2", "extra": 1}, 400, "unknown keys"),
        ("POST", "/admin/models", {"name": "broken"}, 422, "self-check"),
        ("POST", "/admin/rollback", None, 409, "no previous model"),
        ("POST", "/admin/challenger/promote", None, 409, "no challenger"),
        ("DELETE", "/admin/challenger", None, 409, "no challenger"),
        ("PUT", "/admin/routing", {"mode": "ab", "weight": 0.5}, 409, "no challenger"),
        ("GET", "/admin/rollback", None, 405, "POST"),
        ("GET", "/predict", None, 404, "no route"),
    ],
)
def test_refused_admin_requests_leave_the_champion_serving(
    server: Server, trained: Workspace, method: str, path: str, body: Any, status: int, text: str
) -> None:
    got, answer = server.admin(method, path, body)
    assert (got, text in answer["error"]) == (status, True), answer
    assert predict(server, golden(trained)[0]["inputs"])["model_version"] == version(trained)


def test_without_a_store_nothing_can_be_loaded(trained: Workspace, tmp_path: Path) -> None:
    running = Server(model_dir(trained, tmp_path / "model"))
    try:
        status, answer = running.admin("POST", "/admin/models", {"name": "v2"})
        assert (status, "MODEL_STORE" in answer["error"]) == (409, True)
    finally:
        running.stop()


def test_shadow_scores_every_request_and_never_answers(
    server: Server, trained: Workspace, challenger: Workspace
) -> None:
    v1, v2 = version(trained), version(challenger)
    status, state = server.admin("POST", "/admin/models", {"name": "v2", "role": "challenger"})
    assert status == 200, state
    assert state["challenger"] == state["challenger"] | {"version": v2, "mode": "shadow"}

    samples = golden(trained) + golden(challenger)
    answers = [predict(server, s["inputs"]) for s in samples]

    assert {a["model_version"] for a in answers} == {v1}
    scored = metric(server, "model_shadow_predictions_total", champion=v1, challenger=v2)
    assert scored == len(samples)
    disagreements = metric(server, "model_shadow_predictions_total", champion=v1, challenger=v2, outcome="disagree")
    assert disagreements + metric(server, "model_shadow_predictions_total", outcome="agree") == len(samples)
    assert metric(server, "model_shadow_predictions_total", outcome="error") == 0


def test_ab_split_follows_the_weight_and_route_keys_stick(
    server: Server, trained: Workspace, challenger: Workspace
) -> None:
    v1, v2 = version(trained), version(challenger)
    body = {"name": "v2", "role": "challenger", "mode": "ab", "weight": 0.3}
    assert server.admin("POST", "/admin/models", body)[0] == 200
    record = golden(trained)[0]["inputs"]

    counts = Counter(predict(server, record)["model_version"] for _ in range(400))
    assert set(counts) == {v1, v2}
    assert 0.2 < counts[v2] / 400 < 0.4, counts  # binomial(400, 0.3): 0.2-0.4 is more than 4 standard deviations
    for key in ("alice", "bob", "carol"):
        assert len({predict(server, record, key)["model_version"] for _ in range(5)}) == 1
    per_version = {v: metric(server, "model_requests_total", model_version=v, endpoint="/predict") for v in (v1, v2)}
    assert per_version[v2] >= counts[v2]
    assert sum(per_version.values()) == 400 + 15

    assert server.admin("PUT", "/admin/routing", {"mode": "ab", "weight": 1.0})[0] == 200
    assert predict(server, record)["model_version"] == v2
    status, state = server.admin("POST", "/admin/challenger/promote")
    assert status == 200, state
    assert (state["champion"]["version"], state["previous"]["version"], state["challenger"]) == (v2, v1, None)
    assert {predict(server, record)["model_version"] for _ in range(20)} == {v2}


def test_a_challenger_can_be_configured_at_start(store: Path, trained: Workspace, challenger: Workspace) -> None:
    challenging = {"CHALLENGER_DIR": str(store / "v2"), "CHALLENGER_MODE": "ab", "CHALLENGER_WEIGHT": "1"}
    with ready_server(store / "v1", **challenging) as running:
        state = running.admin("GET", "/admin/models")[1]
        while state["challenger"] is None:  # the challenger loads right after the champion's self-check
            state = running.admin("GET", "/admin/models")[1]
        assert predict(running, golden(trained)[0]["inputs"])["model_version"] == version(challenger)
