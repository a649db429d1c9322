"""The model server: the real asyncio/httptools server in a thread, real HTTP requests with ``http.client``.

The cases are built from the project's schema and a real exported model (the ``trained`` workspace), so they hold
for any dataset and task.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import Server, Workspace, free_port, model_dir, ready_server

from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.pipeline import export
from {{ cookiecutter.package_name }}.pipeline.features import model_inputs
from {{ cookiecutter.package_name }}.pipeline.schema import Schema
from {{ cookiecutter.package_name }}.serving.session import session
from {{ cookiecutter.package_name }}.serving.settings import Settings, SettingsError

MAX_BATCH = 50
MAX_BODY = 64 * 1024
LIMITS = {"MAX_BATCH": str(MAX_BATCH), "MAX_BODY_BYTES": str(MAX_BODY)}


@pytest.fixture(scope="module")
def server(trained: Workspace, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with ready_server(model_dir(trained, tmp_path_factory.mktemp("model")), **LIMITS) as running:
        yield running


@pytest.fixture(scope="module")
def test_inputs(trained: Workspace, schema: Schema) -> pd.DataFrame:
    return model_inputs(pd.read_parquet(trained.path("test")).head(20), schema)


def good_record(server: Server, schema: Schema) -> dict[str, Any]:
    return dict(server.server.router.champion.model.golden[0]["inputs"])


def assert_matches_onnx(predictions: list[dict[str, Any]], trained: Workspace, inputs: pd.DataFrame, schema: Schema):
    expected = export.run_onnx(session(trained.path("onnx").read_bytes()), inputs, schema)
    assert len(predictions) == len(inputs)
    if schema.target.kind == "classification":
        classes = [str(c) for c in trained.read_json("metadata")["classes"]]
        assert [p["label"] for p in predictions] == [str(v) for v in expected["label"].ravel()]
        got = np.array([[p["probabilities"][c] for c in classes] for p in predictions])
        np.testing.assert_array_equal(got, expected["probabilities"])
    else:
        got = np.array([p["value"] for p in predictions])
        np.testing.assert_array_equal(got, expected["variable"].ravel())


# --------------------------------------------------------------------------------------------------------------------
# Predictions
# --------------------------------------------------------------------------------------------------------------------


def test_records_return_exactly_the_onnx_outputs(
    server: Server, trained: Workspace, schema: Schema, test_inputs: pd.DataFrame
) -> None:
    status, headers, body = server.request("POST", "/predict", {"instances": export.records(test_inputs, schema)})

    assert status == 200, body
    assert body["model_version"] == trained.read_json("metadata")["version"]
    assert body["request_id"] == headers["x-request-id"]
    assert_matches_onnx(body["predictions"], trained, test_inputs, schema)


def test_rows_in_metadata_order_and_with_columns_return_the_same(
    server: Server, trained: Workspace, schema: Schema, test_inputs: pd.DataFrame
) -> None:
    names = [f.name for f in schema.features]
    rows = [[r[n] for n in names] for r in export.records(test_inputs, schema)]
    status, _, body = server.request("POST", "/predict", {"rows": rows})
    assert status == 200, body
    assert_matches_onnx(body["predictions"], trained, test_inputs, schema)

    shuffled = names[::-1]
    status, _, body = server.request(
        "POST", "/predict", {"columns": shuffled, "rows": [row[::-1] for row in rows]}, {"X-Request-ID": "abc-123"}
    )
    assert status == 200, body
    assert body["request_id"] == "abc-123"
    assert_matches_onnx(body["predictions"], trained, test_inputs, schema)


def test_keep_alive_and_chunked_bodies(server: Server, schema: Schema) -> None:
    record = good_record(server, schema)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        for _ in range(3):
            conn.request("POST", "/predict", json.dumps({"instances": [record]}).encode())
            response = conn.getresponse()
            assert response.status == 200, response.read()
            response.read()
        chunks = iter([b'{"instances": ', json.dumps([record]).encode(), b"}"])
        conn.request("POST", "/predict", chunks, encode_chunked=True)
        response = conn.getresponse()
        assert response.status == 200, response.read()
        assert len(json.loads(response.read())["predictions"]) == 1
    finally:
        conn.close()


def test_unknown_categories_are_accepted_and_counted(server: Server, schema: Schema) -> None:
    categorical = [f for f in schema.features if not f.numeric]
    if not categorical:
        pytest.skip("the schema has no category feature")
    record = good_record(server, schema) | {categorical[0].name: "never-seen-before"}
    status, _, body = server.request("POST", "/predict", {"instances": [record]})
    assert status == 200, body
    _, _, metrics = server.request("GET", "/metrics")
    series = "model_unknown_categories_total" + "{" + f'model_version="{body["model_version"]}"'
    assert f'{series},feature="{categorical[0].name}"' + "} " in metrics


# --------------------------------------------------------------------------------------------------------------------
# Refused requests: a 4xx naming the problem, never a 5xx
# --------------------------------------------------------------------------------------------------------------------


def malformed_cases(record: dict[str, Any], schema: Schema) -> list[tuple[str, bytes, int, str]]:
    """(case, body, status, text the error must contain)."""

    def body(document: Any) -> bytes:
        return json.dumps(document).encode()

    first = schema.features[0].name
    cases = [
        ("not JSON", b"{not json", 400, "not valid JSON"),
        ("empty body", b"", 400, "empty"),
        ("a list", body([record]), 400, "JSON object"),
        ("no instances or rows", body({"data": [record]}), 400, "'instances'"),
        ("extra top-level key", body({"instances": [record], "x": 1}), 400, "unexpected top-level keys"),
        ("instances not a list", body({"instances": record}), 400, "list"),
        ("empty batch", body({"instances": []}), 400, "empty"),
        ("batch too large", body({"instances": [record] * (MAX_BATCH + 1)}), 400, "MAX_BATCH"),
        ("instance not an object", body({"instances": [[1, 2]]}), 400, "instance 0 is not an object"),
        ("missing feature", body({"instances": [{k: v for k, v in record.items() if k != first}]}), 400, first),
        ("extra feature", body({"instances": [record | {"zz_extra": 1}]}), 400, "zz_extra"),
        ("rows not lists", body({"rows": [record]}), 400, "row 0 is not a list"),
        ("row too short", body({"rows": [[None]]}), 400, "row 0 has 1 values"),
        ("unknown column", body({"columns": ["zz_extra"], "rows": [[1]]}), 400, "zz_extra"),
        ("missing column", body({"columns": [first], "rows": [[1]]}), 400, "missing features"),
        ("too large", b" " * (MAX_BODY + 1), 413, "MAX_BODY_BYTES"),
    ]
    for feature in schema.features:
        name = feature.name
        if feature.numeric:
            cases += [
                (f"string for {name}", body({"instances": [record | {name: "12"}]}), 400, name),
                (f"boolean for {name}", body({"instances": [record | {name: True}]}), 400, name),
            ]
            for constant, text in (
                ("NaN", "NaN"),
                ("Infinity", "Infinity"),
                ("-Infinity", "Infinity"),
                ("1e309", "infinity"),
            ):
                document = body({"instances": [record | {name: "__X__"}]}).replace(b'"__X__"', constant.encode())
                cases.append((f"{constant} for {name}", document, 400, text))
            cases.append((f"overflow for {name}", body({"instances": [record | {name: 1e300}]}), 400, name))
            if feature.type == "integer":
                cases.append((f"fraction for {name}", body({"instances": [record | {name: 1.5}]}), 400, "whole"))
        else:
            cases.append((f"number for {name}", body({"instances": [record | {name: 3}]}), 400, name))
        if not feature.nullable:
            cases.append((f"null for {name}", body({"instances": [record | {name: None}]}), 400, "not nullable"))
    return cases


def test_malformed_requests_get_a_4xx_naming_the_problem(server: Server, schema: Schema) -> None:
    failures = []
    for case, payload, status, text in malformed_cases(good_record(server, schema), schema):
        got, _, body = server.request("POST", "/predict", payload, {"Content-Type": "application/json"})
        if got != status or not isinstance(body, dict) or text not in body.get("error", ""):
            failures.append(f"{case}: {got} {body!r:.300}")
        assert got < 500, f"{case}: {got} {body}"
    assert not failures, "\n".join(failures)


def test_routes_methods_and_raw_http_errors(server: Server) -> None:
    assert server.request("GET", "/nope")[0] == 404
    status, _, body = server.request("GET", "/predict")
    assert status == 405
    assert "POST" in body["error"]

    def raw(data: bytes) -> bytes:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(data)
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
            return b"".join(chunks)

    no_length = raw(b"POST /predict HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")  # so no body
    assert no_length.startswith(b"HTTP/1.1 400"), no_length
    assert b"empty" in no_length
    garbage = raw(b"NOT HTTP AT ALL\r\n\r\n")
    assert garbage.startswith(b"HTTP/1.1 400"), garbage
    assert b'"error"' in garbage


# --------------------------------------------------------------------------------------------------------------------
# Health, metadata, metrics, OpenAPI
# --------------------------------------------------------------------------------------------------------------------


def test_health_metadata_and_openapi(server: Server, trained: Workspace, schema: Schema) -> None:
    assert server.request("GET", "/healthz")[0] == 200
    metadata = trained.read_json("metadata")

    status, _, body = server.request("GET", "/metadata")
    assert status == 200
    assert body["version"] == metadata["version"]
    assert body["lineage"] == metadata["lineage"]
    assert body["metrics"] == trained.read_json("metrics")["model"]
    assert body["metrics"]
    assert [i["name"] for i in body["inputs"]] == [f.name for f in schema.features]

    status, _, spec = server.request("GET", "/openapi.json")
    assert status == 200
    assert spec["openapi"].startswith("3.1")
    assert "post" in spec["paths"]["/predict"]
    assert set(spec["components"]["schemas"]["Instance"]["properties"]) == {f.name for f in schema.features}


def test_metrics_count_requests(server: Server) -> None:
    def healthz_count() -> int:
        _, _, text = server.request("GET", "/metrics")
        for line in text.splitlines():
            if line.startswith("model_requests_total{") and 'endpoint="/healthz",status="200"' in line:
                return int(line.rsplit(" ", 1)[1])
        return 0

    before = healthz_count()
    for _ in range(3):
        server.request("GET", "/healthz")
    assert healthz_count() == before + 3
    _, _, text = server.request("GET", "/metrics")
    assert "# TYPE model_request_duration_seconds histogram" in text


# --------------------------------------------------------------------------------------------------------------------
# The self-check
# --------------------------------------------------------------------------------------------------------------------


def tampered(trained: Workspace, dest: Path, change: Any) -> Path:
    directory = model_dir(trained, dest)
    metadata = json.loads((directory / "metadata.json").read_text())
    change(metadata)
    (directory / "metadata.json").write_text(json.dumps(metadata))
    return directory


def _wrong_golden(metadata: dict[str, Any]) -> None:
    expected = metadata["golden"][0]["expected"]
    if "probabilities" in expected:
        expected["probabilities"] = [p + 0.01 for p in expected["probabilities"]]
    else:
        expected["value"] = expected["value"] * 1.01 + 1.0


def _renamed_input(metadata: dict[str, Any]) -> None:
    metadata["inputs"].pop(0)


@pytest.mark.parametrize(
    ("change", "reason"), [(_wrong_golden, "golden sample 0"), (_renamed_input, "do not match the metadata")]
)
def test_a_model_failing_its_self_check_is_never_ready(
    trained: Workspace, schema: Schema, tmp_path: Path, change: Any, reason: str
) -> None:
    running = Server(tampered(trained, tmp_path / "model", change), **LIMITS)
    try:
        status, body = running.wait_checked()
        assert status == 503
        assert reason in body["error"]
        record = dict(trained.read_json("metadata")["golden"][0]["inputs"])
        status, _, body = running.request("POST", "/predict", {"instances": [record]})
        assert status == 503
        assert "not ready" in body["error"]
        assert running.request("GET", "/healthz")[0] == 200
    finally:
        running.stop()


def _truncated(directory: Path) -> None:
    text = (directory / "metadata.json").read_text()
    (directory / "metadata.json").write_text(text[: len(text) // 2])


def _missing(directory: Path) -> None:
    (directory / "metadata.json").unlink()


@pytest.mark.parametrize(
    ("damage", "reason"),
    [(_truncated, r"metadata\.json: .+: line \d+ column \d+"), (_missing, r"metadata\.json")],
)
def test_an_unreadable_model_keeps_the_process_up_and_says_why(
    trained: Workspace, tmp_path: Path, damage: Any, reason: str
) -> None:
    directory = model_dir(trained, tmp_path / "model")
    damage(directory)
    running = Server(directory, **LIMITS)
    try:
        status, body = running.wait_checked()
        assert status == 503
        assert re.search(reason, body["error"]), body
        assert running.request("GET", "/healthz")[0] == 200
        record = dict(trained.read_json("metadata")["golden"][0]["inputs"])
        status, _, body = running.request("POST", "/predict", {"instances": [record]})
        assert status == 503
        assert re.search(reason, body["error"]), body
        assert running.request("GET", "/metadata")[2]["version"] == "unavailable"
    finally:
        running.stop()


# --------------------------------------------------------------------------------------------------------------------
# Settings and the command line
# --------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"PORT": "http"}, "PORT"),
        ({"PORT": "70000"}, "PORT"),
        ({"MAX_BATCH": "0"}, "MAX_BATCH"),
        ({"LOG_LEVEL": "x"}, "LOG_LEVEL"),
        ({"CHALLENGER_MODE": "canary"}, "CHALLENGER_MODE"),
        ({"CHALLENGER_WEIGHT": "1.5"}, "CHALLENGER_WEIGHT"),
        ({"CHALLENGER_WEIGHT": "half"}, "CHALLENGER_WEIGHT"),
        ({"ADMIN_PORT": "-1"}, "ADMIN_PORT"),
        ({"SHUTDOWN_GRACE": "x"}, "SHUTDOWN_GRACE"),
        ({"MAX_URL_BYTES": "10"}, "MAX_URL_BYTES"),
        ({"MAX_HEADER_BYTES": "big"}, "MAX_HEADER_BYTES"),
        ({"MAX_HEADERS": "1"}, "MAX_HEADERS"),
        ({"MAX_CONNECTIONS": "0"}, "MAX_CONNECTIONS"),
        ({"HEADER_TIMEOUT_SECONDS": "0"}, "HEADER_TIMEOUT_SECONDS"),
        ({"BODY_TIMEOUT_SECONDS": "soon"}, "BODY_TIMEOUT_SECONDS"),
        ({"KEEPALIVE_TIMEOUT_SECONDS": "-1"}, "KEEPALIVE_TIMEOUT_SECONDS"),
    ],
)
def test_invalid_settings_name_the_variable(env: dict[str, str], name: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env(env)


def test_defaults() -> None:
    assert Settings.from_env({"ADMIN_PORT": "off"}).admin_port is None
    settings = Settings.from_env({})
    assert (settings.admin_host, settings.admin_port, settings.model_store) == ("127.0.0.1", 8081, None)
    assert (settings.host, settings.port, settings.max_body_bytes, settings.max_batch) == (
        "0.0.0.0",
        8080,
        1 << 20,
        1000,
    )
    limits = (settings.max_url_bytes, settings.max_header_bytes, settings.max_headers, settings.max_connections)
    assert limits == (8192, 16384, 100, 1024)
    timeouts = (settings.header_timeout, settings.body_timeout, settings.keepalive_timeout)
    assert timeouts == (10.0, 30.0, 75.0)
    assert Settings.from_env({"KEEPALIVE_TIMEOUT_SECONDS": "0.5"}).keepalive_timeout == 0.5


def test_the_serve_path_imports_only_the_serving_runtime() -> None:
    code = (
        "import sys; from {{ cookiecutter.package_name }}.cli import main, parser; import {{ cookiecutter.package_name }}.serving.server; parser(); "
        "main(['healthcheck', '--timeout', '0.1']); "
        "heavy = {'pandas', 'sklearn', 'pydantic', 'yaml', 'mlflow', 'scipy', 'skl2onnx'}; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_healthcheck_exits_0_only_when_the_server_is_ready(
    server: Server, trained: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def healthcheck(port: int) -> int:
        monkeypatch.setenv("HOST", "0.0.0.0")
        monkeypatch.setenv("PORT", str(port))
        return main(["healthcheck", "--timeout", "5"])

    assert healthcheck(server.port) == 0
    assert healthcheck(free_port()) == 1  # nobody listens
    unready = Server(tampered(trained, tmp_path / "model", _wrong_golden), **LIMITS)
    try:
        assert unready.wait_checked()[0] == 503
        assert healthcheck(unready.port) == 1
    finally:
        unready.stop()


def test_serve_refuses_invalid_settings(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "{{ cookiecutter.package_name }}", "serve", "--model-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        env={"PORT": "nope", "PATH": ""},
        check=False,
    )
    assert result.returncode == 2
    assert "PORT" in result.stderr
