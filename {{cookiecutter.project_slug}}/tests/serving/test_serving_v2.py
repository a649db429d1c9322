"""The Open Inference Protocol (KServe v2 REST): a real server in a thread, the clients of Triton and KServe, raw HTTP.

Both third-party clients must get exactly what ``/predict`` answers and what the exported ONNX model computes, in
their binary and JSON modes, on test rows with missing numbers, missing categories and an unknown category. The cases
are built from the project's schema and a real exported model, so they hold for any dataset and task.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
import struct
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import PACKAGE, Server, Workspace, model_dir, ready_server
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from {{ cookiecutter.package_name }}.contracts.onnx import MISSING_CATEGORY
from {{ cookiecutter.package_name }}.pipeline import export
from {{ cookiecutter.package_name }}.pipeline.features import model_inputs
from {{ cookiecutter.package_name }}.pipeline.schema import Schema
from {{ cookiecutter.package_name }}.serving.routes import Request, Routes
from {{ cookiecutter.package_name }}.serving.session import session

MAX_BATCH = 50
MAX_BODY = 64 * 1024
LIMITS = {"MAX_BATCH": str(MAX_BATCH), "MAX_BODY_BYTES": str(MAX_BODY)}
INFER = f"/v2/models/{PACKAGE}/infer"
DATATYPES = {np.dtype(np.int64): "INT64", np.dtype(np.float32): "FP32", np.dtype(object): "BYTES"}


@pytest.fixture(scope="module")
def model(trained: Workspace, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return model_dir(trained, tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def server(model: Path) -> Iterator[Server]:
    with ready_server(model, **LIMITS) as running:
        yield running


@pytest.fixture(scope="module")
def inputs(trained: Workspace, schema: Schema) -> pd.DataFrame:
    """Test rows as the model takes them, with a missing value in every nullable feature and an unknown category."""
    frame = model_inputs(pd.read_parquet(trained.path("test")).head(24), schema).reset_index(drop=True)
    for row, feature in enumerate(f for f in schema.features if f.nullable):
        frame.loc[row % len(frame), feature.name] = np.nan if feature.numeric else MISSING_CATEGORY
    categorical = [f.name for f in schema.features if not f.numeric]
    if categorical:
        frame.loc[len(frame) - 1, categorical[0]] = "never-seen-before"
    return frame


def expected(trained: Workspace, inputs: pd.DataFrame, schema: Schema) -> dict[str, np.ndarray]:
    """What the exported ONNX model computes, run by onnxruntime directly: ``label``/``probabilities`` or ``value``."""
    out = export.run_onnx(session(trained.path("onnx").read_bytes()), inputs, schema)
    if schema.target.kind == "classification":
        return {"label": out["label"].ravel().astype(str), "probabilities": out["probabilities"]}
    return {"value": out["variable"].ravel()}


def predicted(server: Server, inputs: pd.DataFrame, schema: Schema) -> dict[str, np.ndarray]:
    """What ``/predict`` answers for the same rows, as arrays."""
    status, _, body = server.request("POST", "/predict", {"instances": export.records(inputs, schema)})
    assert status == 200, body
    answers = body["predictions"]
    if schema.target.kind == "classification":
        classes = server.server.router.champion.model.classes
        probabilities = [[p["probabilities"][c] for c in classes] for p in answers]
        return {"label": np.array([p["label"] for p in answers]), "probabilities": np.array(probabilities, np.float32)}
    return {"value": np.array([p["value"] for p in answers], np.float32)}


def assert_same(got: dict[str, np.ndarray], *wanted: dict[str, np.ndarray]) -> None:
    for want in wanted:
        assert set(got) == set(want)
        for name, values in want.items():
            if values.dtype.kind in "fc":
                np.testing.assert_array_equal(np.asarray(got[name], np.float32), values, err_msg=name)
            else:
                assert [str(v) for v in got[name]] == [str(v) for v in values], name


def arrays(inputs: pd.DataFrame, schema: Schema) -> dict[str, np.ndarray]:
    """One array per feature: BYTES for categories, INT64 for whole-number features without a missing value (the
    metadata's datatype), FP32 otherwise (NaN marks a missing value in binary data)."""
    columns = {}
    for feature in schema.features:
        column = inputs[feature.name]
        if not feature.numeric:
            columns[feature.name] = column.to_numpy(dtype=object)
        elif feature.type == "integer" and not column.isna().any():
            columns[feature.name] = column.to_numpy().astype(np.int64)
        else:
            columns[feature.name] = column.to_numpy(dtype=np.float32)
    return columns


def outputs_of(schema: Schema) -> list[str]:
    return ["label", "probabilities"] if schema.target.kind == "classification" else ["value"]


def v2_request(records: list[dict[str, Any]], schema: Schema, **extra: Any) -> dict[str, Any]:
    """A JSON inference request with one tensor per feature, from ``/predict`` records (``null`` for missing)."""
    tensors = [
        {
            "name": f.name,
            "datatype": "FP64" if f.numeric else "BYTES",
            "shape": [len(records)],
            "data": [r[f.name] for r in records],
        }
        for f in schema.features
    ]
    return {"inputs": tensors, **extra}


def good_request(server: Server, schema: Schema, **extra: Any) -> dict[str, Any]:
    return v2_request([server.server.router.champion.model.golden[0]["inputs"]], schema, **extra)


def tensor_outputs(body: dict[str, Any]) -> dict[str, np.ndarray]:
    return {o["name"]: np.array(o["data"], dtype=object).reshape(o["shape"]) for o in body["outputs"]}


def metric(server: Server, name: str, **labels: str) -> float:
    _, _, text = server.request("GET", "/metrics")
    total = 0.0
    for match in re.finditer("^" + re.escape(name) + r"\{(.*)\} (\S+)$", text, re.MULTILINE):
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(match.group(2))
    return total


# --------------------------------------------------------------------------------------------------------------------
# Third-party clients: Triton's and KServe's, in binary and JSON modes
# --------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_tritonclient_gets_what_predict_and_the_onnx_model_give(
    server: Server, trained: Workspace, schema: Schema, inputs: pd.DataFrame, binary: bool
) -> None:
    import tritonclient.http as triton

    client = triton.InferenceServerClient(f"127.0.0.1:{server.port}")
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready(PACKAGE)
    assert client.get_model_metadata(PACKAGE)["platform"] == "onnx_onnxv1"
    rows = inputs if binary else inputs.dropna()  # its JSON mode writes NaN, which is not JSON (below)
    tensors = []
    for name, values in arrays(rows, schema).items():
        tensor = triton.InferInput(name, list(values.shape), DATATYPES[values.dtype])
        tensor.set_data_from_numpy(values, binary_data=binary)
        tensors.append(tensor)
    result = client.infer(PACKAGE, tensors, request_id="triton-1")

    assert result.get_response()["id"] == "triton-1"
    assert result.get_response()["model_version"] == trained.read_json("metadata")["version"]
    got = {name: result.as_numpy(name) for name in outputs_of(schema)}
    assert_same(got, expected(trained, rows, schema), predicted(server, rows, schema))


def test_tritonclient_json_mode_cannot_send_a_missing_number(server: Server, schema: Schema) -> None:
    import tritonclient.http as triton
    from tritonclient.utils import InferenceServerException

    numeric = [f for f in schema.features if f.numeric]
    if not numeric:
        pytest.skip("the schema has no numeric feature")
    tensor = triton.InferInput(numeric[0].name, [1], "FP32")
    tensor.set_data_from_numpy(np.array([np.nan], np.float32), binary_data=False)
    with pytest.raises(InferenceServerException, match="NaN and Infinity are not JSON"):
        triton.InferenceServerClient(f"127.0.0.1:{server.port}").infer(PACKAGE, [tensor])


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_kserve_client_gets_what_predict_and_the_onnx_model_give(
    server: Server, trained: Workspace, schema: Schema, inputs: pd.DataFrame, binary: bool
) -> None:
    from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig

    url = f"http://127.0.0.1:{server.port}"

    async def infer() -> Any:
        client = InferenceRESTClient(RESTConfig(protocol="v2"))
        try:
            assert await client.is_server_live(url)
            assert await client.is_server_ready(url)
            assert await client.is_model_ready(url, PACKAGE)
            tensors = []
            for name, values in arrays(inputs, schema).items():  # JSON mode: orjson writes NaN as null
                tensor = InferInput(name, list(values.shape), DATATYPES[values.dtype])
                tensor.set_data_from_numpy(values, binary_data=binary)
                tensors.append(tensor)
            request = InferRequest(PACKAGE, tensors, request_id="kserve-1", parameters={"content_type": "pd"})
            return await client.infer(url, request, model_name=PACKAGE)
        finally:
            await client.close()

    response = asyncio.run(infer())

    assert response.id == "kserve-1"
    got = {output.name: output.as_numpy() for output in response.outputs}
    assert_same(got, expected(trained, inputs, schema), predicted(server, inputs, schema))


def test_client_errors_carry_the_servers_message(server: Server, schema: Schema) -> None:
    import httpx
    import tritonclient.http as triton
    from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig
    from tritonclient.utils import InferenceServerException

    tensor = triton.InferInput("zz_unknown", [1], "FP32")
    tensor.set_data_from_numpy(np.array([1.0], np.float32))
    with pytest.raises(InferenceServerException, match="missing inputs"):
        triton.InferenceServerClient(f"127.0.0.1:{server.port}").infer(PACKAGE, [tensor])
    with pytest.raises(InferenceServerException, match="unknown model"):
        triton.InferenceServerClient(f"127.0.0.1:{server.port}").get_model_metadata("nope")

    async def infer() -> None:
        async with InferenceRESTClient(RESTConfig(protocol="v2")) as client:
            request = InferRequest("nope", [InferInput("x", [1], "FP32", [1.0])])
            await client.infer(f"http://127.0.0.1:{server.port}", request, model_name="nope")

    with pytest.raises(httpx.HTTPStatusError, match=f"unknown model 'nope': this server serves '{PACKAGE}'"):
        asyncio.run(infer())


# --------------------------------------------------------------------------------------------------------------------
# Raw HTTP: every route
# --------------------------------------------------------------------------------------------------------------------


def test_server_routes(server: Server) -> None:
    for path in ("/v2", "/v2/"):
        status, _, body = server.request("GET", path)
        assert status == 200
        assert body["name"] == PACKAGE
        assert isinstance(body["version"], str)
        assert body["extensions"] == ["classification"]
    assert server.request("GET", "/v2/health/live")[2] == {"live": True}
    assert server.request("GET", "/v2/health/ready")[::2] == (200, {"ready": True})
    assert server.request("POST", "/v2/health/ready")[0] == 405


def test_model_routes(server: Server, trained: Workspace, schema: Schema) -> None:
    version = trained.read_json("metadata")["version"]
    for path in (f"/v2/models/{PACKAGE}", f"/v2/models/{PACKAGE}/versions/{version}"):
        status, _, body = server.request("GET", path)
        assert status == 200, body
        assert (body["name"], body["versions"], body["platform"]) == (PACKAGE, [version], "onnx_onnxv1")
        assert [i["name"] for i in body["inputs"]] == [f.name for f in schema.features]
        kinds = {"integer": "INT64", "number": "FP32", "category": "BYTES"}
        assert [i["datatype"] for i in body["inputs"]] == [kinds[f.type] for f in schema.features]
        assert {tuple(i["shape"]) for i in body["inputs"]} == {(-1,)}
        assert [o["name"] for o in body["outputs"]] == outputs_of(schema)
        if schema.target.kind == "classification":
            assert body["classes"] == [str(c) for c in trained.read_json("metadata")["classes"]]
            assert body["outputs"][1] == {
                "name": "probabilities",
                "datatype": "FP32",
                "shape": [-1, len(body["classes"])],
            }
        assert server.request("GET", f"{path}/ready")[::2] == (200, {"name": PACKAGE, "ready": True})
    for path, text in [
        ("/v2/models/nope", "unknown model 'nope'"),
        ("/v2/models/nope/ready", "unknown model 'nope'"),
        (f"/v2/models/{PACKAGE}/versions/nope", f"has no version 'nope': it serves {version}"),
        (f"/v2/models/{PACKAGE}/versions/nope/ready", "has no version 'nope'"),
        (f"/v2/models/{PACKAGE}/versions/nope/infer", "has no version 'nope'"),
    ]:
        status, _, body = server.request(
            "POST" if path.endswith("infer") else "GET", path, good_request(server, schema)
        )
        assert (status, text in body["error"]) == (404, True), (path, body)
    for path in (
        "/v2/models//ready",
        f"/v2/models/{PACKAGE}/explain",
        f"/v2/models/{PACKAGE}/versions//infer",
        "/v2/x",
    ):
        assert server.request("GET", path)[0] == 404, path
    status, _, body = server.request("GET", INFER)
    assert (status, body) == (405, {"error": f"GET is not allowed on {INFER}: use POST"})


def test_infer_answers_the_protocols_response(server: Server, trained: Workspace, schema: Schema) -> None:
    version = trained.read_json("metadata")["version"]
    for path in (INFER, f"/v2/models/{PACKAGE}/versions/{version}/infer"):
        status, headers, body = server.request("POST", path, good_request(server, schema, id="raw-1"))
        assert status == 200, body
        assert (body["model_name"], body["model_version"], body["id"]) == (PACKAGE, version, "raw-1")
        assert [o["name"] for o in body["outputs"]] == outputs_of(schema)
        for output in body["outputs"]:
            assert output["shape"][0] == 1
            assert len(output["data"]) == int(np.prod(output["shape"]))
        assert headers["x-request-id"] != "raw-1"  # the header is the transport's id, never taken from the body


def test_nested_data_and_n_by_1_shapes_are_the_same_request(server: Server, schema: Schema, inputs: pd.DataFrame):
    flat = v2_request(export.records(inputs, schema), schema)
    nested = json.loads(json.dumps(flat))
    for tensor in nested["inputs"]:
        tensor["shape"] = [tensor["shape"][0], 1]
        tensor["data"] = [[v] for v in tensor["data"]]
    answers = [server.request("POST", INFER, document)[2] for document in (flat, nested)]
    assert answers[0]["outputs"] == answers[1]["outputs"], answers


def test_request_ids(server: Server, schema: Schema) -> None:
    status, headers, body = server.request("POST", INFER, good_request(server, schema))
    assert status == 200, body
    assert body["id"] == headers["x-request-id"]  # none sent: the one the server made up, a string
    _, headers, body = server.request("POST", INFER, good_request(server, schema), {"X-Request-ID": "hdr-7"})
    assert body["id"] == headers["x-request-id"] == "hdr-7"
    _, headers, body = server.request("POST", INFER, good_request(server, schema, id="body-7"), {"X-Request-ID": "h"})
    assert (body["id"], headers["x-request-id"]) == ("body-7", "h")


def test_outputs_can_be_selected(server: Server, schema: Schema) -> None:
    for name in outputs_of(schema):
        status, _, body = server.request("POST", INFER, good_request(server, schema, outputs=[{"name": name}]))
        assert status == 200, body
        assert [o["name"] for o in body["outputs"]] == [name]
    if schema.target.kind != "classification":
        return
    _, _, full = server.request("POST", INFER, good_request(server, schema))
    probabilities = full["outputs"][1]["data"]
    classes = server.server.router.champion.model.classes
    requested = [{"name": "probabilities", "parameters": {"classification": 2, "binary_data": True}}]
    status, _, body = server.request("POST", INFER, good_request(server, schema, outputs=requested))
    assert status == 200, body
    (top,) = body["outputs"]
    assert (top["datatype"], top["shape"]) == ("BYTES", [1, 2])
    best = int(np.argmax(probabilities))
    assert top["data"][0] == f"{probabilities[best]}:{best}:{classes[best]}"
    assert float(top["data"][1].split(":")[0]) <= probabilities[best]


def test_binary_tensor_data_without_a_client(server: Server, schema: Schema) -> None:
    """The JSON's length is found from the inputs' binary_data_size (no Inference-Header-Content-Length needed)."""
    document = good_request(server, schema)
    blobs = []
    for tensor in document["inputs"]:
        value = tensor.pop("data")[0]
        if tensor["datatype"] == "BYTES":
            raw = b"" if value is None else value.encode()
            blob = struct.pack("<I", len(raw)) + raw
        else:
            tensor["datatype"] = "FP64"
            blob = struct.pack("<d", np.nan if value is None else value)
        tensor["parameters"] = {"binary_data_size": len(blob)}
        blobs.append(blob)
    body = json.dumps(document).encode() + b"".join(blobs)
    status, _, answer = server.request("POST", INFER, body, {"Content-Type": "application/octet-stream"})
    assert status == 200, answer
    _, _, plain = server.request("POST", INFER, good_request(server, schema))
    assert answer["outputs"] == plain["outputs"]
    status, _, answer = server.request("POST", INFER, body[:-1])
    assert (status, "binary" in answer["error"]) == (400, True), answer


# --------------------------------------------------------------------------------------------------------------------
# Refused requests: a 4xx naming the problem, never a 5xx
# --------------------------------------------------------------------------------------------------------------------


def refused_cases(request: dict[str, Any], schema: Schema) -> list[tuple[str, bytes, int, str]]:
    """(case, body, status, text the error must contain)."""

    def body(document: Any) -> bytes:
        return json.dumps(document).encode()

    def changed(name: str, **fields: Any) -> bytes:
        tensors = [t | fields if t["name"] == name else t for t in request["inputs"]]
        return body({**request, "inputs": tensors})

    first = schema.features[0].name
    others = [t for t in request["inputs"] if t["name"] != first]
    cases = [
        ("not JSON", b"{not json", 400, "not valid JSON"),
        ("empty body", b"", 400, "empty"),
        ("a list", body([request]), 400, "JSON object"),
        ("unknown top-level key", body({**request, "instances": []}), 400, "unexpected top-level keys ['instances']"),
        ("id not a string", body({**request, "id": 7}), 400, "'id' must be a string"),
        ("no inputs", body({"id": "x"}), 400, "'inputs'"),
        ("inputs empty", body({"inputs": []}), 400, "'inputs'"),
        ("input not an object", body({"inputs": [1]}), 400, "'name'"),
        ("input twice", body({"inputs": [*request["inputs"], request["inputs"][0]]}), 400, "more than once"),
        ("missing input", body({"inputs": others}), 400, f"missing inputs ['{first}']"),
        ("unknown input", body({"inputs": [*request["inputs"], request["inputs"][0] | {"name": "zz"}]}), 400, "zz"),
        ("unknown datatype", changed(first, datatype="FLOAT"), 400, "unknown datatype 'FLOAT'"),
        ("shape [n, 2]", changed(first, shape=[1, 2]), 400, "shape [n] or [n, 1]"),
        ("shape not a list", changed(first, shape=1), 400, "'shape'"),
        ("more values than the shape", changed(first, shape=[2]), 400, "has 1 values but its shape holds 2"),
        ("data not a list", changed(first, data=3), 400, "'data' must be a list"),
        ("nested data too wide", changed(first, data=[[1, 2]], shape=[1, 1]), 400, "one value per instance"),
        ("different batch sizes", changed(first, data=[None, None], shape=[2]), 400, "different numbers of instances"),
        ("empty batch", body({"inputs": [t | {"data": [], "shape": [0]} for t in request["inputs"]]}), 400, "empty"),
        ("batch too large", body(widened(request, MAX_BATCH + 1)), 400, "MAX_BATCH"),
        ("too large", b" " * (MAX_BODY + 1), 413, "MAX_BODY_BYTES"),
        ("content_type np", body({**request, "parameters": {"content_type": "np"}}), 400, "content_type 'np'"),
        ("shared memory", changed(first, parameters={"shared_memory_region": "r"}), 400, "shared memory"),
        ("unknown output", body({**request, "outputs": [{"name": "zz"}]}), 400, "unknown output 'zz'"),
        ("outputs not objects", body({**request, "outputs": ["label"]}), 400, "'outputs'"),
        ("binary size, no data", changed(first, parameters={"binary_data_size": 8}), 400, "binary_data_size"),
        ("binary size wrong type", changed(first, parameters={"binary_data_size": "8"}), 400, "binary_data_size"),
    ]
    if schema.target.kind == "classification":
        top = [{"name": "label", "parameters": {"classification": 1}}]
        cases.append(("classification on label", body({**request, "outputs": top}), 400, "'probabilities' only"))
        top = [{"name": "probabilities", "parameters": {"classification": -1}}]
        cases.append(("classification < 0", body({**request, "outputs": top}), 400, "number of classes"))
    for feature in schema.features:
        name = feature.name
        if feature.numeric:
            cases += [
                (f"BYTES for {name}", changed(name, datatype="BYTES", data=["12"]), 400, f"{name!r} is a number"),
                (f"BOOL for {name}", changed(name, datatype="BOOL", data=[True]), 400, "not BOOL"),
                (f"string for {name}", changed(name, data=["12"]), 400, name),
                (f"boolean for {name}", changed(name, data=[True]), 400, name),
                (f"fraction as INT64 for {name}", changed(name, datatype="INT64", data=[1.5]), 400, "INT64 but holds"),
                (f"overflow for {name}", changed(name, data=[1e300]), 400, "finite float32"),
                (f"NaN for {name}", changed(name, data=["__X__"]).replace(b'"__X__"', b"NaN"), 400, "NaN"),
            ]
            if feature.type == "integer":
                cases.append((f"fraction for {name}", changed(name, data=[1.5]), 400, "whole number"))
        else:
            cases += [
                (f"FP32 for {name}", changed(name, datatype="FP32", data=[1.0]), 400, "send datatype BYTES"),
                (f"number for {name}", changed(name, data=[3]), 400, "must be a string"),
            ]
        if not feature.nullable:
            cases.append((f"null for {name}", changed(name, data=[None]), 400, "not nullable"))
    return cases


def widened(request: dict[str, Any], size: int) -> dict[str, Any]:
    return {"inputs": [t | {"data": t["data"] * size, "shape": [size]} for t in request["inputs"]]}


def test_refused_requests_get_a_4xx_naming_the_problem(server: Server, schema: Schema) -> None:
    failures = []
    for case, payload, status, text in refused_cases(good_request(server, schema), schema):
        got, _, body = server.request("POST", INFER, payload, {"Content-Type": "application/json"})
        if got != status or not isinstance(body, dict) or text not in body.get("error", ""):
            failures.append(f"{case}: {got} {body!r:.300}")
        assert got < 500, f"{case}: {got} {body}"
    assert not failures, "\n".join(failures)
    assert server.request("POST", INFER, widened(good_request(server, schema), MAX_BATCH))[0] == 200


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=6),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=6,
)


def nodes(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """The path of every value in a JSON document."""
    yield path
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in children:
        yield from nodes(child, (*path, key))


@st.composite
def mutated(draw: st.DrawFn, request: dict[str, Any]) -> bytes:
    """A valid request with one to three values replaced or removed, sometimes followed by stray bytes."""
    document = copy.deepcopy(request)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from([p for p in nodes(document) if p]))
        parent = document
        for key in path[:-1]:
            parent = parent[key]
        if draw(st.booleans()):
            parent[path[-1]] = draw(JSON_VALUES)
        else:
            del parent[path[-1]]
    tail = draw(st.binary(max_size=12)) if draw(st.integers(0, 4)) == 0 else b""
    return json.dumps(document).encode() + tail


def test_mutated_requests_never_get_a_5xx(server: Server, schema: Schema) -> None:
    golden = server.server.router.champion.model.golden
    request = v2_request(
        [s["inputs"] for s in golden[:2]], schema, id="fuzz", outputs=[{"name": outputs_of(schema)[0]}]
    )
    statuses: Counter[int] = Counter()

    @settings(max_examples=400, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
    @given(mutated(request))
    def check(body: bytes) -> None:
        status, _, answer = server.request("POST", INFER, body, {"Content-Type": "application/json"})
        statuses[status] += 1
        assert status < 500, (status, answer, body)
        assert isinstance(answer, dict), answer
        if status == 200:
            assert all(len(o["data"]) == int(np.prod(o["shape"])) for o in answer["outputs"]), answer
        else:
            assert isinstance(answer.get("error"), str), answer
            assert answer["error"], answer

    check()
    assert statuses[400] > 200, statuses
    assert server.request("GET", "/v2/health/ready")[0] == 200
    assert metric(server, "model_errors_total", kind="server") == 0


def test_a_model_failing_its_self_check_is_not_ready(trained: Workspace, schema: Schema, tmp_path: Path) -> None:
    directory = model_dir(trained, tmp_path / "model")
    metadata = json.loads((directory / "metadata.json").read_text())
    metadata["inputs"].pop(0)
    (directory / "metadata.json").write_text(json.dumps(metadata))
    running = Server(directory, **LIMITS)
    try:
        assert running.wait_checked()[0] == 503
        assert running.request("GET", "/v2/health/live")[0] == 200
        status, _, body = running.request("GET", "/v2/health/ready")
        assert (status, body["ready"], "do not match" in body["error"]) == (503, False, True)
        status, _, body = running.request("GET", f"/v2/models/{PACKAGE}/ready")
        assert (status, body["ready"]) == (503, False)
        record = dict(trained.read_json("metadata")["golden"][0]["inputs"])
        status, _, body = running.request("POST", INFER, v2_request([record], schema))
        assert (status, "not ready" in body["error"]) == (503, True)
    finally:
        running.stop()


# --------------------------------------------------------------------------------------------------------------------
# Metrics, prediction log, OpenAPI, routing table
# --------------------------------------------------------------------------------------------------------------------


def test_metrics_name_the_route_template_never_the_raw_path(server: Server, schema: Schema) -> None:
    template = "/v2/models/{name}/infer"
    before = metric(server, "model_requests_total", endpoint=template, status="200")
    for _ in range(3):
        assert server.request("POST", INFER, good_request(server, schema))[0] == 200
    assert server.request("POST", "/v2/models/evil-a1/infer", good_request(server, schema))[0] == 404
    assert server.request("GET", "/v2/models/evil-b2/versions/evil-c3/ready")[0] == 404
    assert server.request("GET", "/v2/evil-d4")[0] == 404
    assert metric(server, "model_requests_total", endpoint=template, status="200") == before + 3
    assert metric(server, "model_errors_total", endpoint=template, kind="client") >= 1
    assert metric(server, "model_requests_total", endpoint="/v2/models/{name}/versions/{version}/ready") >= 1
    assert metric(server, "model_requests_total", endpoint="other", status="404") >= 1
    _, _, text = server.request("GET", "/metrics")
    assert "evil" not in text


def test_lines_of_the_prediction_log_are_those_of_predict(
    model: Path, trained: Workspace, schema: Schema, inputs: pd.DataFrame, tmp_path: Path
) -> None:
    logs = tmp_path / "logs"
    rows = inputs.head(3)
    with ready_server(model, PREDICTION_LOG_DIR=str(logs), PREDICTION_LOG_SAMPLE="1") as running:
        status, _, body = running.request("POST", INFER, v2_request(export.records(rows, schema), schema, id="log-1"))
        assert status == 200, body
        status, _, answer = running.request("POST", "/predict", {"instances": export.records(rows, schema)})
        assert status == 200, answer
        deadline = time.monotonic() + 10
        while len(lines := read_lines(logs)) < 2 * len(rows) and time.monotonic() < deadline:
            time.sleep(0.05)
    v2_lines = [line for line in lines if line["request_id"] == "log-1"]
    predict_lines = [line for line in lines if line["request_id"] == answer["request_id"]]
    assert len(v2_lines) == len(predict_lines) == len(rows), lines
    for v2_line, predict_line in zip(v2_lines, predict_lines, strict=True):
        assert list(v2_line) == ["time", "request_id", "index", "model_version", "inputs", "prediction"]
        for key in ("index", "model_version", "inputs", "prediction"):
            assert v2_line[key] == predict_line[key], key
    assert [line["inputs"] for line in v2_lines] == export.records(rows, schema)


def read_lines(directory: Path) -> list[dict[str, Any]]:
    found = []
    for path in sorted(directory.rglob("*.jsonl")) if directory.is_dir() else []:
        data = path.read_bytes()
        found += [json.loads(line) for line in data[: data.rfind(b"\n") + 1].splitlines()]
    return found


def test_openapi_describes_the_v2_routes(server: Server, schema: Schema) -> None:
    status, _, spec = server.request("GET", "/openapi.json")
    assert status == 200
    paths = spec["paths"]
    for route in ("/v2", "/v2/health/live", "/v2/health/ready"):
        assert "get" in paths[route]
    for base in ("/v2/models/{name}", "/v2/models/{name}/versions/{version}"):
        assert "get" in paths[base]
        assert "get" in paths[f"{base}/ready"]
        infer = paths[f"{base}/infer"]["post"]
        assert {p["name"] for p in infer["parameters"]} == set(re.findall(r"\{(\w+)\}", base))
        schema_ = infer["requestBody"]["content"]["application/json"]["schema"]
        assert schema_["properties"]["inputs"]["items"]["properties"]["name"]["enum"] == [
            f.name for f in schema.features
        ]
    assert set(paths) - {"/v2/"} >= {r for r in server.server.app.routes.templates} | {"/v2"}


def test_templates_are_matched_only_when_no_exact_path_is() -> None:
    routes = Routes(None, lambda: "1")  # type: ignore[arg-type]  # no metrics needed to match
    routes.add("/predict", {"POST": lambda r: (200, b"", b"exact")})
    routes.add("/v2/models/{name}/infer", {"POST": lambda r: (200, b"", r.params[0].encode())})
    routes.add(
        "/v2/models/{name}/versions/{version}/infer", {"POST": lambda r: (200, b"", "/".join(r.params).encode())}
    )
    assert routes.table.keys() == {"/predict"}

    def answer(path: str) -> tuple[int, bytes]:
        response = routes.dispatch(Request("POST", path, b"", "id", None))
        assert isinstance(response, tuple)
        return response[0], response[2]

    assert answer("/predict") == (200, b"exact")
    assert answer("/v2/models/m/infer") == (200, b"m")
    assert answer("/v2/models/m/versions/3/infer") == (200, b"m/3")
    for path in ("/v2/models//infer", "/v2/models/m/infer/", "/v2/models/m/versions/3", "/predict/"):
        assert answer(path)[0] == 404, path
    assert [routes.endpoint(p) for p in ("/predict", "/v2/models/x/infer", "/v2/models/x")] == [
        "/predict",
        "/v2/models/{name}/infer",
        "other",
    ]


# --------------------------------------------------------------------------------------------------------------------
# Champion and challenger through the v2 route
# --------------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def store(trained: Workspace, challenger: Workspace, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("store")
    model_dir(trained, root / "v1")
    model_dir(challenger, root / "v2")
    return root


@pytest.fixture
def served(store: Path) -> Iterator[Server]:
    with ready_server(store / "v1", MODEL_STORE=str(store)) as running:
        yield running


def version(ws: Workspace) -> str:
    return str(ws.read_json("metadata")["version"])


def infer(server: Server, schema: Schema, path: str = INFER, key: str | None = None) -> dict[str, Any]:
    headers = {"X-Route-Key": key} if key else {}
    status, _, body = server.request("POST", path, good_request(server, schema), headers)
    assert status == 200, body
    return dict(body)


def test_shadow_scores_v2_requests_and_a_named_version_answers_itself(
    served: Server, trained: Workspace, challenger: Workspace, schema: Schema
) -> None:
    v1, v2 = version(trained), version(challenger)
    assert served.admin("POST", "/admin/models", {"name": "v2", "role": "challenger"})[0] == 200
    assert served.request("GET", f"/v2/models/{PACKAGE}")[2]["versions"] == [v1, v2]
    assert served.request("GET", f"/v2/models/{PACKAGE}/versions/{v2}/ready")[0] == 200

    answers = [infer(served, schema)["model_version"] for _ in range(5)]
    answers.append(infer(served, schema, f"/v2/models/{PACKAGE}/versions/{v1}/infer")["model_version"])

    assert answers == [v1] * 6
    deadline = time.monotonic() + 5
    while metric(served, "model_shadow_predictions_total", champion=v1, challenger=v2) < 6:
        assert time.monotonic() < deadline, "the shadow did not score every v2 request"
        time.sleep(0.02)
    assert metric(served, "model_shadow_predictions_total", outcome="error") == 0
    assert infer(served, schema, f"/v2/models/{PACKAGE}/versions/{v2}/infer")["model_version"] == v2
    assert metric(
        served, "model_requests_total", model_version=v2, endpoint="/v2/models/{name}/versions/{version}/infer"
    )


def test_ab_split_of_v2_requests_follows_the_weight_and_route_keys(
    served: Server, trained: Workspace, challenger: Workspace, schema: Schema
) -> None:
    v1, v2 = version(trained), version(challenger)
    body = {"name": "v2", "role": "challenger", "mode": "ab", "weight": 0.3}
    assert served.admin("POST", "/admin/models", body)[0] == 200

    counts = Counter(infer(served, schema)["model_version"] for _ in range(300))
    assert 0.18 < counts[v2] / 300 < 0.42, counts  # binomial(300, 0.3): more than 4 standard deviations
    for key in ("alice", "bob", "carol", "dave"):
        assert len({infer(served, schema, key=key)["model_version"] for _ in range(5)}) == 1
    assert metric(served, "model_requests_total", model_version=v2, endpoint="/v2/models/{name}/infer") >= counts[v2]
    assert {infer(served, schema, f"/v2/models/{PACKAGE}/versions/{v1}/infer")["model_version"] for _ in range(20)} == {
        v1
    }
    assert served.admin("POST", "/admin/challenger/promote")[0] == 200
    assert served.request("GET", f"/v2/models/{PACKAGE}")[2]["versions"] == [v2]
    status, _, answer = served.request(
        "POST", f"/v2/models/{PACKAGE}/versions/{v1}/infer", good_request(served, schema)
    )
    assert (status, f"it serves {v2}" in answer["error"]) == (404, True)
