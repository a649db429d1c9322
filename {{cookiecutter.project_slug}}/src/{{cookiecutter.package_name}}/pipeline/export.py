"""Stage ``export``: convert the pipeline to ONNX, measure parity with scikit-learn, and write the model's metadata.

The metadata travels with the ONNX file into the serving image: its input schema, opset, labels, lineage and a few
golden predictions that the server reproduces before it reports ready.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
from onnx import TensorProto, helper, numpy_helper
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn.pipeline import Pipeline

from {{ cookiecutter.package_name }}.contracts import evaluation
from {{ cookiecutter.package_name }}.contracts import metadata as model_metadata
from {{ cookiecutter.package_name }}.contracts.io import atomic_path, write_json
from {{ cookiecutter.package_name }}.contracts.metadata import Expected, Golden, Metadata
from {{ cookiecutter.package_name }}.contracts.onnx import NUMERIC_INPUT
from {{ cookiecutter.package_name }}.pipeline import lineage
from {{ cookiecutter.package_name }}.pipeline.config import ExportParams, Params
from {{ cookiecutter.package_name }}.pipeline.evaluate import predict
from {{ cookiecutter.package_name }}.pipeline.features import model_inputs, onnx_feeds
from {{ cookiecutter.package_name }}.pipeline.schema import Schema
from {{ cookiecutter.package_name }}.pipeline.train import load as load_model
from {{ cookiecutter.package_name }}.serving.session import session

GRAPH_NAME = "model"
"""The ONNX graph's name: fixed, where skl2onnx makes a random one."""


def convert(model: Pipeline, schema: Schema, params: ExportParams) -> onnx.ModelProto:
    """The ONNX graph of the fitted pipeline: the numeric features packed in one input, one input per category."""
    inputs = [
        (f.name, FloatTensorType([None, 1]) if f.numeric else StringTensorType([None, 1])) for f in schema.features
    ]
    options = {id(model): {"zipmap": False}} if schema.target.kind == "classification" else None
    proto: onnx.ModelProto = convert_sklearn(model, initial_types=inputs, target_opset=params.opset, options=options)
    _restore_input_names(proto, schema)
    pack_numeric_inputs(proto, schema.numeric)
    make_deterministic(proto)
    onnx.checker.check_model(proto)
    return proto


def make_deterministic(proto: onnx.ModelProto) -> None:
    """Remove what differs between two conversions of the same model, so that the same model gives the same bytes.

    skl2onnx names the graph with a random UUID, and lists the opsets in the iteration order of a set of strings,
    which changes with every interpreter (hash randomization). The graph gets a fixed name, the opsets their domain's
    order.
    """
    proto.graph.name = GRAPH_NAME
    opsets = sorted(((i.domain, i.version) for i in proto.opset_import), key=lambda opset: opset[0])
    del proto.opset_import[:]
    proto.opset_import.extend(helper.make_opsetid(domain, version) for domain, version in opsets)


def pack_numeric_inputs(proto: onnx.ModelProto, names: list[str]) -> None:
    """Replace the ``[n, 1]`` inputs ``names`` by one ``float32[n, len(names)]`` input, ``NUMERIC_INPUT``.

    A ``Concat`` of exactly those inputs in that order (how the column transformer's numeric branch starts) is the
    packed tensor itself and is removed; any other consumer reads its column from a ``Split`` of the packed input.
    """
    if not names:
        return
    graph = proto.graph
    if NUMERIC_INPUT in {i.name for i in graph.input}:
        raise ValueError(f"a feature is named {NUMERIC_INPUT!r}, the name of the packed numeric input: rename it")
    packed: dict[str, str] = {}  # output of a removed Concat -> the packed input
    for node in list(graph.node):
        axis = next((a.i for a in node.attribute if a.name == "axis"), None)
        if node.op_type == "Concat" and list(node.input) == names and axis in (1, -1):
            packed[node.output[0]] = NUMERIC_INPUT
            graph.node.remove(node)
    for node in graph.node:
        for index, name in enumerate(node.input):
            node.input[index] = packed.get(name, name)
    for output in graph.output:
        if output.name in packed:
            raise ValueError(f"graph output {output.name!r} is the numeric inputs' concatenation")
    if any(name in names for node in graph.node for name in node.input):
        opset = next(i.version for i in proto.opset_import if i.domain in ("", "ai.onnx"))
        if opset >= 13:  # Split takes its sizes as an input from opset 13 on
            sizes = NUMERIC_INPUT + "_split"
            graph.initializer.append(numpy_helper.from_array(np.ones(len(names), dtype=np.int64), sizes))
            split = helper.make_node("Split", [NUMERIC_INPUT, sizes], names, axis=1)
        else:
            split = helper.make_node("Split", [NUMERIC_INPUT], names, axis=1, split=[1] * len(names))
        graph.node.insert(0, split)
    kept = [i for i in graph.input if i.name not in names]
    del graph.input[:]
    graph.input.append(helper.make_tensor_value_info(NUMERIC_INPUT, TensorProto.FLOAT, [None, len(names)]))
    graph.input.extend(kept)


def _restore_input_names(proto: onnx.ModelProto, schema: Schema) -> None:
    """Give the graph inputs back the schema's names, which the feeds, the metadata and the server use.

    skl2onnx turns input names into identifiers (``"monthly charges"`` becomes ``monthly_charges``).
    """
    renamed = {i.name: f.name for i, f in zip(proto.graph.input, schema.features, strict=True) if i.name != f.name}
    for value in proto.graph.input:
        value.name = renamed.get(value.name, value.name)
    for node in proto.graph.node:
        for index, name in enumerate(node.input):
            node.input[index] = renamed.get(name, name)


def run_onnx(sess: ort.InferenceSession, inputs: pd.DataFrame, schema: Schema) -> dict[str, np.ndarray]:
    """Outputs of the ONNX model by name (``label``/``probabilities`` or ``variable``)."""
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, onnx_feeds(inputs, schema)), strict=True))


def parity(model: Pipeline, sess: ort.InferenceSession, test: pd.DataFrame, schema: Schema) -> dict[str, Any]:
    """How closely ONNX reproduces scikit-learn on the test set."""
    expected = predict(model, test, schema)
    got = run_onnx(sess, model_inputs(test, schema), schema)
    if schema.target.kind == "classification":
        assert expected.scores is not None
        labels = got["label"].astype(str).ravel()
        return {
            "rows": len(test),
            "label_agreement": float(np.mean(labels == expected.predicted.astype(str))),
            "max_diff": float(np.max(np.abs(got["probabilities"] - expected.scores))),
        }
    values = got["variable"].ravel().astype(np.float64)
    scale = np.maximum(np.abs(expected.predicted), 1.0)
    return {"rows": len(test), "max_diff": float(np.max(np.abs(values - expected.predicted) / scale))}


def records(inputs: pd.DataFrame, schema: Schema) -> list[dict[str, float | str | None]]:
    """Model inputs as a client sends them: JSON numbers and strings, null for missing values."""
    rows = []
    for _, row in inputs.iterrows():
        record: dict[str, float | str | None] = {}
        for feature in schema.features:
            value = row[feature.name]
            if feature.numeric:
                record[feature.name] = None if np.isnan(value) else float(value)
            else:
                record[feature.name] = value or None
        rows.append(record)
    return rows


def golden(sess: ort.InferenceSession, test: pd.DataFrame, schema: Schema, count: int) -> list[Golden]:
    """A few test rows with the ONNX model's outputs, for the server's start-up self-check."""
    inputs = model_inputs(test.head(count), schema)
    out = run_onnx(sess, inputs, schema)
    samples: list[Golden] = []
    for i, record in enumerate(records(inputs, schema)):
        expected: Expected
        if schema.target.kind == "classification":
            expected = {"label": str(out["label"].ravel()[i]), "probabilities": out["probabilities"][i].tolist()}
        else:
            expected = {"value": float(out["variable"].ravel()[i])}
        samples.append({"inputs": record, "expected": expected})
    return samples


def model_version(proto: onnx.ModelProto) -> str:
    """The version the server reports: the first 12 hex digits of the ONNX file's MD5 (the hash ``dvc.lock`` records).

    Only the model's content: the same model exported again, from another commit or on another day, keeps its version.
    Its lineage (the commit it was exported from, the data's hashes) travels beside it in the metadata.
    """
    return hashlib.md5(proto.SerializeToString()).hexdigest()[:12]


def metadata(
    proto: onnx.ModelProto,
    model: Pipeline,
    schema: Schema,
    samples: list[Golden],
    lineage: dict[str, Any],
    metrics: evaluation.Scores,
) -> Metadata:
    """Everything the server needs to know about the model besides its graph (its test metrics included)."""
    return {
        "format": model_metadata.FORMAT,
        "version": model_version(proto),
        "task": schema.target.kind,
        "target": schema.target.name,
        "classes": [str(c) for c in model.classes_] if schema.target.kind == "classification" else [],
        "positive": schema.target.positive,
        "inputs": [f.spec() for f in schema.features],
        "outputs": [o.name for o in proto.graph.output],
        "opset": {imp.domain or "ai.onnx": imp.version for imp in proto.opset_import},
        "producer": {
            "skl2onnx": importlib.metadata.version("skl2onnx"),
            "scikit-learn": importlib.metadata.version("scikit-learn"),
            "onnxruntime": ort.__version__,
        },
        "golden": samples,
        "metrics": metrics,
        "lineage": lineage,
    }


def run(params: Params, schema: Schema) -> dict[str, Any]:
    """Convert ``paths.model`` to ``paths.onnx``, with its metadata and its parity on ``paths.test``.

    The metadata (``paths.metadata``) carries the lineage and the model's test metrics (``paths.metrics``); the parity
    figures go to ``paths.parity``.
    """
    paths = params.paths
    model, test = load_model(paths.model), pd.read_parquet(paths.test)
    origin = {"git_commit": lineage.git_commit(), **lineage.data_lineage(paths.raw, {"data.train": paths.train})}
    proto = convert(model, schema, params.export)
    model_bytes = proto.SerializeToString()
    sess = session(model_bytes)
    measured = parity(model, sess, test, schema)
    samples = golden(sess, test, schema, params.export.golden_samples)
    test_metrics = evaluation.read(paths.metrics)["model"]
    with atomic_path(paths.onnx) as tmp:
        tmp.write_bytes(model_bytes)
    model_metadata.write(paths.metadata, metadata(proto, model, schema, samples, origin, test_metrics))
    write_json(paths.parity, measured)
    return measured
