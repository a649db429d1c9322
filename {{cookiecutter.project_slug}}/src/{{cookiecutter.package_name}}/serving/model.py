"""The exported model as the server runs it: loading, the start-up self-check, request validation and prediction.

Request bodies are JSON in one of two shapes, with at most ``MAX_BATCH`` instances:

* records: ``{"instances": [{"feature": value, ...}, ...]}``, every input feature named exactly once;
* rows: ``{"columns": ["feature", ...], "rows": [[value, ...], ...]}``; without ``columns`` the values follow the
  metadata's input order.

The Open Inference Protocol (``v2``) brings one list of values per feature instead: ``columns`` validates those with
the same rules.

Validation rules (each failure is a ``RequestError``, a 400 naming the instance and the feature):

* numeric features (``integer``, ``number``) take JSON numbers (not booleans, not strings); ``integer`` features
  take whole numbers only; NaN, Infinity and numbers beyond float32 are refused;
* category features take strings; a category the model was not trained on is accepted (the one-hot encoder ignores
  it, as it does in training) and counted in the ``unknown_categories`` metric;
* ``null`` (or ``""`` for a category) is a missing value, accepted only for ``nullable`` features;
* missing and extra features are refused; ranges (``min``/``max``) are not enforced: the model extrapolates.

A valid request whose prediction is not a finite number (float32 overflow, for inputs far outside the training data)
gets a 422 naming the instance: JSON has no NaN or infinity.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from {{ cookiecutter.package_name }}.contracts import metadata as model_metadata
from {{ cookiecutter.package_name }}.contracts.golden import reproduces
from {{ cookiecutter.package_name }}.contracts.metadata import Golden, Metadata, MetadataError
from {{ cookiecutter.package_name }}.contracts.onnx import NUMERIC_INPUT
from {{ cookiecutter.package_name }}.contracts.rules import Rule, Violation, category, number
from {{ cookiecutter.package_name }}.serving.session import session

FLOAT32_MAX = float(np.finfo(np.float32).max)
NUMBER_TYPES = frozenset({int, float})


class ModelError(Exception):
    """The model files cannot be read or the model fails its self-check."""


class RequestError(ValueError):
    """A request the server refuses, with the HTTP status and a message naming the problem."""

    def __init__(self, message: str, status: int = 400) -> None:
        """Keep the status with the message."""
        super().__init__(message)
        self.status = status


def _refuse_constant(name: str) -> float:
    raise RequestError(f"{name} is not a valid number: send finite numbers or null")


@dataclass
class Batch:
    """A validated request: ONNX feeds plus what the metrics count."""

    feeds: dict[str, np.ndarray]
    size: int
    unknown: dict[str, int]


def _refused(exc: Violation, column: list[Any]) -> RequestError:
    """The error naming the first instance whose value in ``column`` (the failing feature's) breaks its rule."""
    index = 0
    for index, value in enumerate(column):  # noqa: B007  (the index names the instance)
        try:
            number(exc.rule, value, FLOAT32_MAX)
        except Violation:
            break
    if exc.problem == "finite":
        return RequestError(f"instance {index}: {exc.rule.name!r} is not a finite float32 number")
    return RequestError(f"instance {index}: {exc}")


def _texts(feature: Rule, rows: Iterable[Sequence[Any]], k: int) -> tuple[np.ndarray, int]:
    """A category feature's values (``row[k]`` of each row) as its ``string[n, 1]`` feed, and how many are unknown."""
    texts: list[str] = []
    misses = index = 0
    try:
        for index, row in enumerate(rows):  # noqa: B007  (the index names the instance in the error)
            text, known = category(feature, row[k])
            texts.append(text)
            misses += not known
    except Violation as exc:
        raise RequestError(f"instance {index}: {exc}") from None
    return np.array(texts, dtype=object).reshape(-1, 1), misses


def _check_finite(rows: list[list[float]]) -> None:
    """Refuse outputs that overflowed float32 (inputs far outside the training data): JSON has no NaN or infinity."""
    for index, row in enumerate(rows):
        if not all(map(math.isfinite, row)):
            raise RequestError(
                f"instance {index}: the model's output is not a finite number (inputs far outside the training data?)",
                status=422,
            )


class Model:
    """The ONNX model and its metadata; ``self_check`` must pass before ``predict`` is used."""

    def __init__(self, model_dir: Path, max_batch: int = 1000) -> None:
        """Read ``model.onnx`` and ``metadata.json`` from ``model_dir`` (``ModelError`` if they are unusable)."""
        path = model_dir / "model.onnx"
        try:
            self.model_bytes = path.read_bytes()
        except OSError as exc:
            raise ModelError(f"cannot read the model: {path}: {exc}") from exc
        try:
            self.metadata: Metadata = model_metadata.read(model_dir / "metadata.json", reader="server")
        except MetadataError as exc:
            raise ModelError(str(exc)) from exc
        meta = self.metadata
        self.task: str = meta["task"]
        self.classes: list[str] = [str(c) for c in meta["classes"]]
        self.inputs = [Rule.of(spec) for spec in meta["inputs"]]
        self.golden: list[Golden] = list(meta["golden"])
        self.version: str = str(meta["version"] or "unversioned")
        self.names = [i.name for i in self.inputs]
        self.numeric_at = [k for k, i in enumerate(self.inputs) if i.numeric]
        self.category_at = [k for k, i in enumerate(self.inputs) if not i.numeric]
        numeric = [self.inputs[k] for k in self.numeric_at]
        self.integer_at = [k for k, i in enumerate(numeric) if i.type == "integer"]
        self.output_names = ["label", "probabilities"] if self.task == "classification" else ["variable"]
        self.max_batch = max_batch
        self.session: ort.InferenceSession | None = None
        self._run: Any = None  # the session's run, set by the self-check
        self.ready = False
        self.reason = "the self-check has not run yet"

    # ----------------------------------------------------------------------------------------------------------------
    # Start-up
    # ----------------------------------------------------------------------------------------------------------------

    def self_check(self) -> bool:
        """Create the session and check it against the metadata; set ``ready`` and ``reason``, return ``ready``.

        Checks: onnxruntime can load the graph (its opsets are supported), the graph's inputs are the metadata's
        (names and tensor types), and every golden sample reproduces (same label, probabilities or value within
        a relative 1e-4).
        """
        try:
            self.session = session(self.model_bytes)
            # The binding's run, without the Python wrapper's per-call input checks (about 1 µs of 5 a prediction;
            # onnxruntime checks the inputs itself). Same signature: (output names, feeds, run options).
            self._run = getattr(self.session, "_sess", self.session).run
            self._check_inputs(self.session)
            self._check_golden()
        except ModelError as exc:
            self.ready, self.reason = False, str(exc)
        except Exception as exc:  # onnxruntime raises its own types for unsupported opsets or corrupt graphs
            opset = self.metadata.get("opset")
            self.ready = False
            self.reason = f"onnxruntime {ort.__version__} cannot load the model (opset {opset}): {exc}"
        else:
            self.ready, self.reason = True, "ready"
        return self.ready

    def _check_inputs(self, sess: ort.InferenceSession) -> None:
        graph = {i.name: (i.type, i.shape[1:]) for i in sess.get_inputs()}
        declared = {self.inputs[k].name: ("tensor(string)", [1]) for k in self.category_at}
        if self.numeric_at:
            declared[NUMERIC_INPUT] = ("tensor(float)", [len(self.numeric_at)])
        if graph != declared:
            raise ModelError(f"the graph's inputs {graph} do not match the metadata's inputs {declared}")
        outputs = [o.name for o in sess.get_outputs()]
        if outputs != self.output_names:
            raise ModelError(f"the graph's outputs {outputs} are not {self.output_names} for a {self.task} model")

    def _check_golden(self) -> None:
        if not self.golden:
            raise ModelError("the metadata has no golden samples to check the model with")
        for index, sample in enumerate(self.golden):
            try:
                got = self.predict(self.parse({"instances": [sample["inputs"]]}))[0]
            except RequestError as exc:
                raise ModelError(f"golden sample {index} is not a valid request: {exc}") from exc
            if not reproduces(got, sample["expected"], self.classes):
                raise ModelError(f"golden sample {index}: got {got}, expected {sample['expected']}")

    # ----------------------------------------------------------------------------------------------------------------
    # Requests
    # ----------------------------------------------------------------------------------------------------------------

    def parse(self, document: Any) -> Batch:
        """Validate a decoded request and build the ONNX feeds."""
        if type(document) is not dict:
            raise RequestError("the request must be a JSON object with 'instances' or 'rows'")
        if "instances" in document:
            if len(document) != 1:
                others = sorted(set(document) - {"instances"})
                raise RequestError(f"unexpected top-level keys {others}: send only 'instances'")
            rows = self._records(document["instances"])
        elif "rows" in document:
            extra = set(document) - {"rows", "columns"}
            if extra:
                raise RequestError(f"unexpected top-level keys {sorted(extra)}: send only 'columns' and 'rows'")
            rows = self._rows(document.get("columns"), document["rows"])
        else:
            raise RequestError("the request must have 'instances' (a list of objects) or 'rows' (a list of lists)")
        return self._batch(rows)

    def _check_size(self, size: int) -> None:
        if size == 0:
            raise RequestError("the batch is empty: send at least one instance")
        if size > self.max_batch:
            raise RequestError(f"the batch has {size} instances, more than MAX_BATCH={self.max_batch}")

    def _records(self, instances: Any) -> list[list[Any]]:
        """``instances`` as rows of values in the metadata's input order."""
        if type(instances) is not list:
            raise RequestError("'instances' must be a list of objects")
        self._check_size(len(instances))
        names, width = self.names, len(self.names)
        try:
            rows = [[record[name] for name in names] for record in instances]
        except (KeyError, TypeError):
            for index, record in enumerate(instances):  # the slow path only finds which instance is wrong
                if type(record) is not dict:
                    raise RequestError(f"instance {index} is not an object of feature values") from None
                missing = [name for name in names if name not in record]
                if missing:
                    raise RequestError(f"instance {index} is missing features {missing}") from None
            raise  # pragma: no cover  (every record is a dict with every name)
        for index, record in enumerate(instances):
            if len(record) != width:
                raise RequestError(f"instance {index} has unknown features {sorted(set(record) - set(names))}")
        return rows

    def _rows(self, columns: Any, rows: Any) -> list[list[Any]]:
        """``rows`` (values in the order of ``columns``, or the metadata's) as rows in the metadata's input order."""
        names = self.names
        if columns is not None:
            if type(columns) is not list or not all(type(n) is str for n in columns):
                raise RequestError("'columns' must be a list of feature names")
            unknown = sorted(set(columns) - set(names))
            if unknown:
                raise RequestError(f"unknown features in 'columns': {unknown}")
            missing = [name for name in names if name not in columns]
            if missing:
                raise RequestError(f"'columns' is missing features {missing}")
            if len(columns) != len(set(columns)):
                raise RequestError("'columns' names a feature more than once")
        if type(rows) is not list:
            raise RequestError("'rows' must be a list of lists")
        self._check_size(len(rows))
        order = names if columns is None else columns
        width = len(order)
        for index, row in enumerate(rows):
            if type(row) is not list:
                raise RequestError(f"row {index} is not a list of values")
            if len(row) != width:
                raise RequestError(f"row {index} has {len(row)} values, expected {width} ({', '.join(order)})")
        if columns is None or columns == names:
            return rows
        position = [columns.index(name) for name in names]
        return [[row[k] for k in position] for row in rows]

    def columns(self, columns: list[list[Any]]) -> Batch:
        """Validate one list of values per input feature, in the metadata's order, and build the ONNX feeds.

        The rules of ``parse``, for requests that bring features as columns (all of one length).
        """
        size = len(columns[0]) if columns else 0
        self._check_size(size)
        feeds: dict[str, np.ndarray] = {}
        if self.numeric_at:
            feeds[NUMERIC_INPUT] = self._numbers([columns[k] for k in self.numeric_at], by_column=True)
        unknown: dict[str, int] = {}
        for k in self.category_at:
            feature = self.inputs[k]
            feeds[feature.name], misses = _texts(feature, zip(columns[k]), 0)
            if misses:
                unknown[feature.name] = misses
        return Batch(feeds, size, unknown)

    def _batch(self, rows: list[list[Any]]) -> Batch:
        """Validate the values of rows in input order and build the ONNX feeds."""
        feeds: dict[str, np.ndarray] = {}
        if self.numeric_at:
            at = self.numeric_at
            numbers = rows if len(at) == len(self.names) else [[row[k] for k in at] for row in rows]
            feeds[NUMERIC_INPUT] = self._numbers(numbers)
        unknown: dict[str, int] = {}
        for k in self.category_at:
            feature = self.inputs[k]
            feeds[feature.name], misses = _texts(feature, rows, k)
            if misses:
                unknown[feature.name] = misses
        return Batch(feeds, len(rows), unknown)

    def _numbers(self, values: list[list[Any]], *, by_column: bool = False) -> np.ndarray:
        """The numeric features, given as rows (or as columns), as ``float32[n, k]``.

        One numpy conversion when every value is a valid number; a value-by-value check, which names the first bad
        value, otherwise.
        """
        flat = values[0] if len(values) == 1 else list(itertools.chain.from_iterable(values))
        if set(map(type, flat)) <= NUMBER_TYPES:
            with contextlib.suppress(OverflowError):  # an integer beyond any float: the slow path names it
                whole = self.integer_at
                if max(map(abs, flat)) <= FLOAT32_MAX and (  # false with NaN too
                    not whole  # whole numbers are checked before float32 rounds them
                    or (
                        all(float(v).is_integer() for k in whole for v in values[k])
                        if by_column
                        else all(float(row[k]).is_integer() for row in values for k in whole)
                    )
                ):
                    array = np.array(flat, dtype=np.float32).reshape(len(values), -1)  # flat: one conversion
                    return np.ascontiguousarray(array.T) if by_column else array
        features = [self.inputs[k] for k in self.numeric_at]
        limit = FLOAT32_MAX
        try:
            if by_column:
                pairs = zip(features, values, strict=True)
                checked = [[number(f, v, limit) for v in column] for f, column in pairs]
                return np.ascontiguousarray(np.array(checked, dtype=np.float32).T)
            checked = [[number(f, v, limit) for f, v in zip(features, row, strict=True)] for row in values]
        except Violation as exc:
            at = features.index(exc.rule)
            raise _refused(exc, values[at] if by_column else [row[at] for row in values]) from None
        return np.array(checked, dtype=np.float32)

    def predict(self, batch: Batch) -> list[dict[str, Any]]:
        """Run the model on a validated batch: ``{"label", "probabilities"}`` or ``{"value"}`` per instance."""
        return self.predictions(*self.infer(batch))

    def infer(self, batch: Batch) -> tuple[list[str] | None, list[list[float]]]:
        """Run the model on a validated batch: its labels (or None) and a row of numbers per instance, all finite.

        The labels and a row of probabilities per instance for classification; None and rows of one value for
        regression.
        """
        if self._run is None:
            raise RequestError(f"the model is not ready: {self.reason}", status=503)
        outputs = self._run(self.output_names, batch.feeds, None)
        if self.task == "classification":
            rows: list[list[float]] = outputs[1].tolist()
            _check_finite(rows)
            return outputs[0].ravel().tolist(), rows
        rows = outputs[0].tolist()
        _check_finite(rows)
        return None, rows

    def predictions(self, labels: list[str] | None, rows: list[list[float]]) -> list[dict[str, Any]]:
        """The outputs of ``infer`` as ``/predict`` answers them, one object per instance."""
        if labels is not None:
            classes = self.classes
            return [
                {"label": label, "probabilities": dict(zip(classes, row, strict=True))}
                for label, row in zip(labels, rows, strict=True)
            ]
        return [{"value": value} for (value,) in rows]
