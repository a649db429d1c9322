"""Stage ``export``: the ONNX model reproduces scikit-learn, and its metadata describes it for the server."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import pytest
from conftest import Workspace
from onnx import TensorProto, helper

from {{ cookiecutter.package_name }}.contracts.onnx import NUMERIC_INPUT
from {{ cookiecutter.package_name }}.pipeline import evaluate, export, synthetic, train
from {{ cookiecutter.package_name }}.pipeline.config import Params
from {{ cookiecutter.package_name }}.pipeline.features import MISSING_CATEGORY, model_inputs, onnx_feeds
from {{ cookiecutter.package_name }}.pipeline.schema import Schema


def onnx_session(ws: Workspace) -> ort.InferenceSession:
    return ort.InferenceSession(ws.path("onnx").read_bytes(), providers=["CPUExecutionProvider"])


def run_onnx(sess: ort.InferenceSession, inputs: pd.DataFrame, schema: Schema) -> dict[str, np.ndarray]:
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, onnx_feeds(inputs, schema)), strict=True))


def test_onnx_matches_scikit_learn_within_the_gate_tolerance(trained: Workspace, schema: Schema) -> None:
    limits = trained.params.gate.parity
    test = pd.read_parquet(trained.path("test"))
    expected = evaluate.predict(train.load(trained.path("model")), test, schema)

    got = run_onnx(onnx_session(trained), model_inputs(test, schema), schema)

    if schema.target.kind == "classification":
        assert expected.scores is not None
        assert np.max(np.abs(got["probabilities"] - expected.scores)) <= limits.max_diff
        agreement = np.mean(got["label"].astype(str).ravel() == expected.predicted.astype(str))
        assert agreement >= limits.min_label_agreement
    else:
        values = got["variable"].ravel().astype(np.float64)
        relative = np.abs(values - expected.predicted) / np.maximum(np.abs(expected.predicted), 1.0)
        assert np.max(relative) <= limits.max_diff
    parity = trained.read_json("parity")
    assert parity["rows"] == len(test)
    assert parity["max_diff"] <= limits.max_diff


def _feeds_from_record(record: dict[str, Any], schema: Schema) -> dict[str, np.ndarray]:
    """What a client sends (JSON values, ``null`` for missing ones) as the graph's inputs."""
    numbers = [np.nan if record[name] is None else record[name] for name in schema.numeric]
    feeds = {NUMERIC_INPUT: np.array([numbers], dtype=np.float32)} if schema.numeric else {}
    for name in schema.categorical:
        feeds[name] = np.array([[MISSING_CATEGORY if record[name] is None else record[name]]], dtype=object)
    return feeds


def graph_inputs(schema: Schema) -> list[str]:
    """The exported graph's inputs: the packed numeric features, then one per category feature."""
    return ([NUMERIC_INPUT] if schema.numeric else []) + schema.categorical


def test_golden_samples_reproduce_in_onnxruntime(trained: Workspace, schema: Schema) -> None:
    metadata = trained.read_json("metadata")
    sess = onnx_session(trained)
    golden = metadata["golden"]

    assert len(golden) == min(trained.params.export.golden_samples, len(pd.read_parquet(trained.path("test"))))
    for sample in golden:
        assert set(sample["inputs"]) == {f.name for f in schema.features}
        names = [o.name for o in sess.get_outputs()]
        out = dict(zip(names, sess.run(None, _feeds_from_record(sample["inputs"], schema)), strict=True))
        if schema.target.kind == "classification":
            assert str(out["label"].ravel()[0]) == sample["expected"]["label"]
            np.testing.assert_allclose(out["probabilities"][0], sample["expected"]["probabilities"], atol=1e-6)
        else:
            np.testing.assert_allclose(float(out["variable"].ravel()[0]), sample["expected"]["value"], rtol=1e-6)


def test_golden_samples_are_the_first_test_rows(trained: Workspace, schema: Schema) -> None:
    golden = trained.read_json("metadata")["golden"]
    inputs = model_inputs(pd.read_parquet(trained.path("test")).head(len(golden)), schema)

    for sample, (_, row) in zip(golden, inputs.iterrows(), strict=True):
        for feature in schema.features:
            value = sample["inputs"][feature.name]
            if feature.numeric:
                assert (value is None and np.isnan(row[feature.name])) or value == float(row[feature.name])
            else:
                assert value == (row[feature.name] or None)


def test_metadata_describes_inputs_opset_and_classes(trained: Workspace, schema: Schema, params: Params) -> None:
    metadata = trained.read_json("metadata")
    proto = onnx.load(str(trained.path("onnx")))
    model = train.load(trained.path("model"))

    assert metadata["task"] == schema.target.kind
    assert metadata["target"] == schema.target.name
    assert [i["name"] for i in metadata["inputs"]] == [f.name for f in schema.features]
    for described, feature in zip(metadata["inputs"], schema.features, strict=True):
        assert described["type"] == feature.type
        assert described["nullable"] == feature.nullable
        assert described["categories"] == feature.categories
        assert (described["min"], described["max"]) == (feature.min, feature.max)
    assert [i.name for i in proto.graph.input] == graph_inputs(schema)
    assert metadata["outputs"] == [o.name for o in proto.graph.output]
    assert metadata["opset"] == {imp.domain or "ai.onnx": imp.version for imp in proto.opset_import}
    assert 1 <= metadata["opset"]["ai.onnx"] <= params.export.opset
    if schema.target.kind == "classification":
        assert metadata["classes"] == [str(c) for c in model.classes_]
        assert sorted(metadata["classes"]) == sorted(schema.target.labels)
        assert metadata["positive"] == schema.target.positive
        assert metadata["outputs"] == ["label", "probabilities"]
    else:
        assert metadata["classes"] == []
        assert metadata["outputs"] == ["variable"]
    assert metadata["lineage"]["data.raw.md5"]
    assert metadata["metrics"] == trained.read_json("metrics")["model"]
    assert set(metadata["producer"]) == {"skl2onnx", "scikit-learn", "onnxruntime"}


def test_column_names_that_are_not_identifiers_keep_their_names(schema: Schema, params: Params) -> None:
    contract = schema.model_dump()
    for feature in contract["features"]:
        feature["name"] = f"{feature['name']} (raw value)"
    odd = Schema.model_validate(contract)
    data = synthetic.frame(odd, 300, seed=5)
    model = train.fit(data, odd, params.train)

    proto = export.convert(model, odd, params.export)
    sess = export.session(proto.SerializeToString())

    assert [i.name for i in sess.get_inputs()] == graph_inputs(odd)
    assert "Split" not in {node.op_type for node in proto.graph.node}  # the numeric Concat was folded away
    assert export.parity(model, sess, data, odd)["max_diff"] <= params.gate.parity.max_diff


@pytest.mark.parametrize("opset", [11, 13])
def test_packing_splits_the_numeric_input_for_other_consumers(opset: int) -> None:
    """Inputs not consumed by a matching ``Concat`` are read from a ``Split`` of the packed tensor."""
    a, b = (helper.make_tensor_value_info(n, TensorProto.FLOAT, [None, 1]) for n in ("a", "b"))
    out = helper.make_tensor_value_info("out", TensorProto.FLOAT, [None, 2])
    graph = helper.make_graph([helper.make_node("Concat", ["b", "a"], ["out"], axis=1)], "g", [a, b], [out])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)

    export.pack_numeric_inputs(proto, ["a", "b"])
    onnx.checker.check_model(proto)

    sess = export.session(proto.SerializeToString())
    assert [i.name for i in sess.get_inputs()] == [NUMERIC_INPUT]
    got = sess.run(None, {NUMERIC_INPUT: np.array([[1, 2], [3, 4]], dtype=np.float32)})[0]
    np.testing.assert_array_equal(got, [[2, 1], [4, 3]])
