"""Tensors of the Open Inference Protocol (KServe v2 REST) for this tabular model: requests in, outputs out.

A request brings one input tensor per feature, named after it; the values are validated by ``Model.columns`` with
the rules of ``/predict``. Conventions (the protocol leaves them to the server):

* datatypes: ``BYTES`` for a category feature; any numeric datatype (``FP16``/``FP32``/``FP64``, ``INT8``…``INT64``,
  ``UINT8``…``UINT64``) for a numeric one, integer datatypes holding whole numbers only; ``BOOL`` is refused, as
  booleans are by ``/predict``. The model metadata advertises ``INT64`` (integer features), ``FP32`` (numbers) and
  ``BYTES``;
* shape ``[n]`` or ``[n, 1]``, every input with the same ``n``; ``data`` flat in row-major order or nested
  (``[[v], [v]]`` for ``[n, 1]``);
* a missing value is ``null`` in ``data`` (what orjson, and so the KServe SDK, writes for NaN) or ``""`` for a
  category; in binary tensor data, NaN in a floating-point tensor. ``NaN`` and ``Infinity`` literals are not JSON;
* binary tensor data (Triton's extension, the default of both Python clients' ``set_data_from_numpy``): an input
  whose ``parameters`` have ``binary_data_size`` takes its bytes from after the JSON, inputs in order (``BYTES``
  elements each prefixed by a 4-byte little-endian length). The JSON's length is the body's less the binary sizes.
  Outputs are always JSON;
* ``parameters.content_type`` ``"pd"`` (a table of named columns) is what the request is anyway; an input's
  ``content_type`` may be ``np`` or ``str``. Other request parameters are ignored;
* outputs: ``label`` (``BYTES [n]``) and ``probabilities`` (``FP32 [n, classes]``, in the order of the metadata's
  ``classes``) for classification, ``value`` (``FP32 [n]``) for regression; ``outputs`` in the request selects some,
  and ``parameters.classification: k`` on ``probabilities`` returns Triton's top-k strings ``"p:index:label"``
  (``BYTES [n, k]``).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from {{ cookiecutter.package_name }}.serving.model import Model, RequestError

BINARY_DTYPES = {
    "BOOL": "?",
    "FP16": "<f2",
    "FP32": "<f4",
    "FP64": "<f8",
    "INT8": "i1",
    "INT16": "<i2",
    "INT32": "<i4",
    "INT64": "<i8",
    "UINT8": "u1",
    "UINT16": "<u2",
    "UINT32": "<u4",
    "UINT64": "<u8",
}
"""The datatypes a tensor may have (with ``BYTES``), as numpy reads their binary data."""
DATATYPES = frozenset({*BINARY_DTYPES, "BYTES"})
NUMERIC = frozenset(BINARY_DTYPES) - {"BOOL"}
INTEGER = frozenset(d for d in NUMERIC if "INT" in d)
KEYS = ("id", "parameters", "inputs", "outputs", "model_name", "model_version")
"""Top-level keys of a request (``model_name`` and ``model_version``, which the KServe SDK adds, are ignored)."""
KNOWN_KEYS = frozenset(KEYS)
UNSUPPORTED = ("shared_memory_region", "shared_memory_byte_size", "shared_memory_offset")


@dataclass(frozen=True)
class Output:
    """A requested output; ``top`` > 0 asks for the top classes of ``probabilities`` as strings."""

    name: str
    top: int = 0


@dataclass(frozen=True)
class Inference:
    """A decoded inference request, not yet checked against a model: each input's datatype and values by name."""

    id: str | None
    datatypes: dict[str, str]
    values: dict[str, list[Any]]
    outputs: list[Output] | None


def _parameters(where: str, parameters: Any, content_types: tuple[str, ...]) -> dict[str, Any]:
    """A ``parameters`` object (``{}`` when absent), checked for what this server does not do."""
    if parameters is None:
        return {}
    if type(parameters) is not dict:
        raise RequestError(f"{where}: 'parameters' must be an object")
    shared = [key for key in UNSUPPORTED if key in parameters]
    if shared:
        raise RequestError(f"{where}: shared memory ({shared[0]}) is not supported: send the data in the request")
    kind = parameters.get("content_type")
    if kind is not None and kind not in content_types:
        accepted = ", ".join(repr(c) for c in content_types)
        raise RequestError(f"{where}: content_type {kind!r} is not supported (accepted: {accepted} or none)")
    return parameters


def _document(body: bytes) -> tuple[Any, bytes]:
    """The JSON of the request and the binary data after it (empty without binary tensor data)."""
    if not body:
        raise RequestError("the request body is empty: send an inference request, a JSON object with 'inputs'")
    try:
        return orjson.loads(body), b""
    except orjson.JSONDecodeError as exc:
        invalid = RequestError(f"the request is not valid JSON (NaN and Infinity are not JSON): {exc}")
        if not exc.msg.startswith(("unexpected content after document", "str is not valid UTF-8")):
            raise invalid from None
    text = body.decode("utf-8", "surrogateescape")  # binary data after the JSON need not be UTF-8
    try:
        end = len(text[: json.JSONDecoder().raw_decode(text)[1]].encode("utf-8", "surrogateescape"))
        document = orjson.loads(body[:end])  # strict JSON: the header of a request with binary data
    except ValueError:
        raise invalid from None
    if end == len(body):
        raise invalid
    return document, body[end:]


def _binary(document: Any, binary: bytes, body: bytes) -> tuple[Any, bytes]:
    """The JSON header and the binary data, split where the inputs' ``binary_data_size`` say."""
    inputs = document.get("inputs") if type(document) is dict else None
    sizes = [
        tensor["parameters"].get("binary_data_size")
        for tensor in (inputs if type(inputs) is list else [])
        if type(tensor) is dict and type(tensor.get("parameters")) is dict
    ]
    sizes = [s for s in sizes if s is not None]
    if not sizes:
        if binary:
            raise RequestError("the body has data after the JSON but no input has a 'binary_data_size' parameter")
        return document, b""
    if not all(type(s) is int and s >= 0 for s in sizes):
        raise RequestError("'binary_data_size' must be a number of bytes")
    header = len(body) - sum(sizes)
    if header == len(body) - len(binary):
        return document, binary
    try:
        if header <= 0:
            raise ValueError
        return orjson.loads(body[:header]), body[header:]
    except ValueError:
        raise RequestError(
            f"the inputs' binary_data_size add up to {sum(sizes)} bytes but {len(binary)} follow the JSON"
        ) from None


def _shape(name: str, shape: Any) -> int:
    """The number of instances of a ``[n]`` or ``[n, 1]`` shape."""
    if type(shape) is not list or not all(type(d) is int and d >= 0 for d in shape) or not 1 <= len(shape) <= 2:
        raise RequestError(f"input {name!r}: 'shape' must be [n] or [n, 1], got {shape!r:.60}")
    if len(shape) == 2 and shape[1] != 1:
        raise RequestError(f"input {name!r} has shape {shape}: send shape [n] or [n, 1], one value per instance")
    return int(shape[0])


def _from_bytes(name: str, datatype: str, raw: bytes, size: int) -> list[Any]:
    """The values of a tensor sent as binary data."""
    if datatype != "BYTES":
        dtype = np.dtype(BINARY_DTYPES[datatype])
        if len(raw) != size * dtype.itemsize:
            raise RequestError(f"input {name!r}: {len(raw)} bytes of binary data for {size} {datatype} values")
        values: list[Any] = np.frombuffer(raw, dtype=dtype).tolist()
        return [None if v != v else v for v in values] if datatype.startswith("FP") else values  # NaN: missing
    texts, at = [], 0
    try:
        for _ in range(size):
            (length,) = struct.unpack_from("<I", raw, at)
            texts.append(raw[at + 4 : at + 4 + length].decode("utf-8"))
            at += 4 + length
    except (struct.error, UnicodeDecodeError) as exc:
        raise RequestError(f"input {name!r}: the binary BYTES data is not {size} UTF-8 strings: {exc}") from None
    if at != len(raw):
        raise RequestError(f"input {name!r}: {len(raw)} bytes of binary data hold more than {size} BYTES values")
    return texts


def _values(name: str, data: Any, datatype: str, size: int) -> list[Any]:
    """The values of a tensor sent in JSON, flattened."""
    if type(data) is not list:
        raise RequestError(f"input {name!r}: 'data' must be a list of values (or use binary_data_size)")
    if data and type(data[0]) is list:  # the natural [n, 1] layout
        if not all(type(row) is list and len(row) == 1 for row in data):
            raise RequestError(f"input {name!r}: nested 'data' must hold one value per instance: [[v], [v], ...]")
        data = [row[0] for row in data]
    if len(data) != size:
        raise RequestError(f"input {name!r} has {len(data)} values but its shape holds {size}")
    if datatype in INTEGER and not all(type(v) is int or v is None for v in data):
        index, value = next((i, v) for i, v in enumerate(data) if not (type(v) is int or v is None))
        raise RequestError(f"instance {index}: input {name!r} is {datatype} but holds {value!r:.40}")
    values: list[Any] = data
    return values


def read(body: bytes) -> Inference:
    """Decode an inference request (``RequestError`` naming the problem); its values are checked by the model."""
    document, binary = _binary(*_document(body), body)
    if type(document) is not dict:
        raise RequestError("the request must be a JSON object with 'inputs', one tensor per feature")
    if not document.keys() <= KNOWN_KEYS:
        unknown = sorted(set(document) - KNOWN_KEYS)
        raise RequestError(f"unexpected top-level keys {unknown}: send {', '.join(KEYS[:4])}")
    request_id = document.get("id")
    if request_id is not None and type(request_id) is not str:
        raise RequestError(f"'id' must be a string, got {type(request_id).__name__}")
    _parameters("the request", document.get("parameters"), ("pd",))
    tensors = document.get("inputs")
    if type(tensors) is not list or not tensors:
        raise RequestError("'inputs' must be a non-empty list of tensors, one per feature")
    datatypes: dict[str, str] = {}
    values: dict[str, list[Any]] = {}
    first: tuple[str, int] | None = None
    for tensor in tensors:
        name = tensor.get("name") if type(tensor) is dict else None
        if type(name) is not str:
            raise RequestError("every input must be an object with a 'name', 'datatype', 'shape' and 'data'")
        if name in datatypes:
            raise RequestError(f"input {name!r} is sent more than once")
        datatype = tensor.get("datatype")
        if type(datatype) is not str or datatype not in DATATYPES:
            raise RequestError(f"input {name!r}: unknown datatype {datatype!r:.40}")
        shape = tensor.get("shape")
        ok = type(shape) is list and len(shape) == 1 and type(shape[0]) is int and shape[0] >= 0
        size = shape[0] if ok else _shape(name, shape)
        parameters = tensor.get("parameters")
        length = (
            _parameters(f"input {name!r}", parameters, ("np", "str")).get("binary_data_size") if parameters else None
        )
        if length is None:
            data = tensor.get("data")
            flat = type(data) is list and len(data) == size and (not data or type(data[0]) is not list)
            values[name] = data if flat and datatype not in INTEGER else _values(name, data, datatype, size)
        else:
            values[name], binary = _from_bytes(name, datatype, binary[:length], size), binary[length:]
        datatypes[name] = datatype
        if first is None:
            first = name, size
        elif size != first[1]:
            raise RequestError(
                f"the inputs have different numbers of instances: {first[0]!r} {first[1]}, {name!r} {size}"
            )
    if binary:
        raise RequestError(f"{len(binary)} bytes of binary data follow the inputs' binary_data_size")
    outputs = document.get("outputs")
    return Inference(request_id or None, datatypes, values, None if outputs is None else _requested(outputs))


def _requested(outputs: Any) -> list[Output]:
    if type(outputs) is not list or not all(type(o) is dict and type(o.get("name")) is str for o in outputs):
        raise RequestError("'outputs' must be a list of objects with a 'name'")
    requested = []
    for output in outputs:
        top = _parameters(f"output {output['name']!r}", output.get("parameters"), ()).get("classification", 0)
        if type(top) is not int or top < 0:
            raise RequestError(f"output {output['name']!r}: 'classification' must be a number of classes")
        requested.append(Output(output["name"], top))
    return requested


def columns(request: Inference, model: Model) -> list[list[Any]]:
    """The values of every feature of ``model``, in its input order; the inputs must be its features exactly."""
    datatypes = request.datatypes
    missing = [name for name in model.names if name not in datatypes]
    if missing:
        raise RequestError(f"the request is missing inputs {missing}: send one input per feature")
    if len(datatypes) != len(model.names):
        unknown = sorted(set(datatypes) - set(model.names))
        raise RequestError(f"unknown inputs {unknown}: this model's inputs are {', '.join(model.names)}")
    for feature in model.inputs:
        datatype = datatypes[feature.name]
        if datatype == "BYTES" if feature.type == "category" else datatype in NUMERIC:
            continue
        if feature.type == "category":
            raise RequestError(f"input {feature.name!r} is a category: send datatype BYTES, not {datatype}")
        raise RequestError(f"input {feature.name!r} is a number: send a numeric datatype (FP32…), not {datatype}")
    values = request.values
    return [values[name] for name in model.names]


def records(names: list[str], columns: list[list[Any]]) -> list[dict[str, Any]]:
    """The instances of a request as ``/predict`` records, by feature name (for the prediction log and the shadow)."""
    return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]


def output_names(model: Model) -> list[str]:
    """The outputs of a model, as the protocol names them."""
    return ["label", "probabilities"] if model.task == "classification" else ["value"]


def selected(request: Inference, model: Model) -> list[Output]:
    """The outputs to answer with: the requested ones (checked against the model), or all of them."""
    names = output_names(model)
    if request.outputs is None:
        return [Output(name) for name in names]
    for output in request.outputs:
        if output.name not in names:
            raise RequestError(f"unknown output {output.name!r}: this model's outputs are {', '.join(names)}")
        if output.top and output.name != "probabilities":
            raise RequestError(f"output {output.name!r}: 'classification' applies to 'probabilities' only")
    return request.outputs


def encode(model: Model, outputs: list[Output], labels: list[str] | None, rows: list[list[float]]) -> list[Any]:
    """The response's output tensors, from ``Model.infer``'s labels and rows."""
    size, tensors = len(rows), list[dict[str, Any]]()
    for output in outputs:
        if output.name == "label":
            tensors.append({"name": "label", "datatype": "BYTES", "shape": [size], "data": labels})
        elif output.name == "value":
            tensors.append({"name": "value", "datatype": "FP32", "shape": [size], "data": [v for (v,) in rows]})
        elif output.top:
            top = min(output.top, len(model.classes))
            texts = [text for row in rows for text in _top(row, top, model.classes)]
            tensors.append({"name": "probabilities", "datatype": "BYTES", "shape": [size, top], "data": texts})
        else:
            numbers = [p for row in rows for p in row]
            shape = [size, len(model.classes)]
            tensors.append({"name": "probabilities", "datatype": "FP32", "shape": shape, "data": numbers})
    return tensors


def _top(row: list[float], top: int, classes: list[str]) -> list[str]:
    """Triton's classification strings for the ``top`` most probable classes: ``"probability:index:label"``."""
    order = sorted(range(len(row)), key=row.__getitem__, reverse=True)[:top]
    return [f"{row[k]}:{k}:{classes[k]}" for k in order]


def metadata(model: Model, name: str, versions: list[str]) -> dict[str, Any]:
    """The model metadata response: the protocol's fields, plus ``classes`` (the probabilities' order)."""
    datatypes = {"integer": "INT64", "number": "FP32", "category": "BYTES"}
    inputs = [{"name": f.name, "datatype": datatypes.get(f.type, "FP32"), "shape": [-1]} for f in model.inputs]
    outputs: list[dict[str, Any]] = [{"name": "value", "datatype": "FP32", "shape": [-1]}]
    if model.task == "classification":
        outputs = [
            {"name": "label", "datatype": "BYTES", "shape": [-1]},
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, len(model.classes)]},
        ]
    document: dict[str, Any] = {
        "name": name,
        "versions": versions,
        "platform": "onnx_onnxv1",
        "inputs": inputs,
        "outputs": outputs,
    }
    if model.task == "classification":
        document["classes"] = model.classes
    return document
