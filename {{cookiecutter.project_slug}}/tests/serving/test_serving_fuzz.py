"""Property-based fuzzing of ``POST /predict``: over a thousand malformed requests to the real server, real HTTP.

The requests are built from the model's own input schema, read from the running server's ``/metadata``. Hypothesis
draws them derandomized (the same requests on every run, so CI is reproducible) and keeps no example database. An
oracle written from the validation contract at the top of ``serving/model.py`` says what each request must get: a
200 with one well-formed prediction per instance when it is valid, else a 4xx whose JSON body has a non-empty
``error`` string (naming the feature, the instance or the rule when exactly one thing is wrong); never a 5xx, a
dropped connection or a hang. Raw sockets send HTTP-level garbage, where the server may close the connection but must
answer the next request. Every test ends by checking that the server still answers ``/healthz`` and that
``/metrics`` counts no server error.
"""

from __future__ import annotations

import functools
import http.client
import json
import math
import socket
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from conftest import model_dir, ready_server
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.fuzz

LIMITS = {"MAX_BATCH": "50", "MAX_BODY_BYTES": str(64 * 1024)}  # small, so requests above them stay cheap

# Hypothesis examples per property: each sends one request. Mutations and broken bytes are sometimes still valid, so
# fewer of them are malformed; each property asserts its count of malformed requests, and their sum is asserted.
BUDGET = {"wrong_value": 500, "structure": 400, "document": 250, "mutation": 600, "bytes": 500, "raw": 250}
MALFORMED = {"wrong_value": 500, "structure": 400, "document": 250, "mutation": 400, "bytes": 300}
MIN_MALFORMED = 1000
FLOAT32_MAX = 3.4028234663852886e38  # numpy.finfo(numpy.float32).max
NOT_FINITE = "output is not a finite number"  # the 422 for a valid request whose prediction overflows float32
TIMEOUT = 5.0  # seconds a request may take before it counts as a hang
RAW_TIMEOUT = 3.0


def fuzz_settings(examples: int) -> settings:
    """Derandomized, no database, no per-example deadline (the machine may be busy)."""
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
    )


# --------------------------------------------------------------------------------------------------------------------
# The contract: the model's inputs and the server's limits, and what a request must get
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Feature:
    """One input of the model, as ``/metadata`` lists it."""

    name: str
    type: str  # integer, number or category
    nullable: bool
    categories: tuple[str, ...]

    @property
    def numeric(self) -> bool:
        return self.type != "category"


@dataclass(frozen=True)
class Contract:
    """What the running server accepts."""

    features: tuple[Feature, ...]
    task: str
    classes: tuple[str, ...]
    max_batch: int
    max_body: int

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]


@dataclass(frozen=True)
class Expect:
    """What a request must get: ``count`` predictions when it is valid, else (``None``) a 4xx."""

    count: int | None
    either: bool = False  # JSON leaves validity open (a lone surrogate, a duplicate key): a 200 or a 4xx conform


REFUSED = Expect(None)


def value_ok(feature: Feature, value: Any) -> bool:
    """Whether ``value`` is a valid value of ``feature`` (the contract's rules, written independently)."""
    if value is None:
        return feature.nullable
    if feature.numeric:
        if type(value) is not int and type(value) is not float:
            return False
        try:
            number = float(value)
        except OverflowError:
            return False
        return -FLOAT32_MAX <= number <= FLOAT32_MAX and (feature.type != "integer" or number.is_integer())
    if type(value) is not str:
        return False
    return value != "" or feature.nullable


def utf8(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def instances_of(contract: Contract, document: Any) -> list[dict[str, Any]] | None:
    """The instances of a decoded request as feature -> value, or ``None`` if its shape is wrong."""
    if not isinstance(document, dict):
        return None
    names = contract.names
    if "instances" in document:
        instances = document["instances"]
        if set(document) != {"instances"} or not isinstance(instances, list):
            return None
        if not all(isinstance(r, dict) and sorted(r) == sorted(names) for r in instances):
            return None
        return instances
    if "rows" in document:
        if not set(document) <= {"rows", "columns"}:
            return None
        columns = document.get("columns")
        if columns is None:
            columns = names
        elif not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
            return None
        if sorted(columns) != sorted(names):
            return None
        rows = document["rows"]
        if not isinstance(rows, list) or not all(isinstance(r, list) and len(r) == len(columns) for r in rows):
            return None
        return [dict(zip(columns, row, strict=True)) for row in rows]
    return None


def expect(contract: Contract, document: Any) -> Expect:
    """What the server must answer to ``document``."""
    instances = instances_of(contract, document)
    if instances is None or not 1 <= len(instances) <= contract.max_batch:
        return REFUSED
    either = False
    for values in instances:
        for feature in contract.features:
            value = values[feature.name]
            if not value_ok(feature, value):
                return REFUSED
            either = either or (isinstance(value, str) and not utf8(value))
    return Expect(len(instances), either)


def plain(value: Any) -> bool:
    """Whether ``value`` has only finite doubles and UTF-8 strings, which every JSON parser takes."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return abs(value) <= sys.float_info.max
    if isinstance(value, str):
        return utf8(value)
    if isinstance(value, list):
        return all(plain(v) for v in value)
    if isinstance(value, dict):
        return all(plain(k) and plain(v) for k, v in value.items())
    return True


def lenient(found: Expect) -> Expect:
    """What a request must get when the contract leaves it open: a valid one may be refused too."""
    return found if found.count is None else Expect(found.count, either=True)


def refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def decode(body: bytes) -> tuple[bool, Any]:
    """``(True, document)`` if ``body`` is JSON in UTF-8 without a BOM (NaN and Infinity are not JSON), else
    ``(False, None)``."""
    try:
        return True, json.loads(body.decode(), parse_constant=refuse_constant)
    except (ValueError, RecursionError):
        return False, None


def expect_body(contract: Contract, body: bytes) -> Expect:
    ok, document = decode(body)
    return expect(contract, document) if ok else REFUSED


@dataclass(frozen=True)
class Case:
    """One request body, what it must get and, when refused, strings one of which the error must contain."""

    body: bytes
    expect: Expect
    names: tuple[str, ...] = ()

    @classmethod
    def of(cls, contract: Contract, document: Any, names: Sequence[str] = ()) -> Case:
        """``document`` as JSON; if it holds what a parser may refuse (NaN, Infinity, numbers beyond a double, lone
        surrogates), the error may name the JSON instead of the problem."""
        names = [*names, "JSON"] if names and not plain(document) else names
        return cls(json.dumps(document).encode(), expect(contract, document), tuple(names))


# --------------------------------------------------------------------------------------------------------------------
# The client: one keep-alive connection, and the checks of every answer
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    status: int
    content_type: str
    body: bytes


def strict_json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data, parse_constant=refuse_constant)
    except ValueError:
        raise AssertionError(f"{what} is not strict JSON: {data[:300]!r}") from None


def error_of(status: int, content_type: str, body: bytes) -> str:
    """The ``error`` of a 4xx answer, which must be a JSON object with a non-empty string there."""
    assert content_type.startswith("application/json"), f"{status} with Content-Type {content_type!r}: {body[:200]!r}"
    document = strict_json(body, f"the body of a {status}")
    assert isinstance(document, dict), f"{status}: {document!r:.200}"
    error = document.get("error")
    assert isinstance(error, str), f"{status} without an error string: {document!r:.200}"
    assert error.strip(), f"{status} with an empty error"
    return error


def well_formed(contract: Contract, prediction: Any) -> bool:
    """A label of the model's classes with finite probabilities over them that sum to 1, or a finite value."""
    if contract.task == "regression":
        value = prediction.get("value") if isinstance(prediction, dict) else None
        return type(value) is float and math.isfinite(value)
    if not isinstance(prediction, dict) or prediction.get("label") not in contract.classes:
        return False
    probabilities = prediction.get("probabilities")
    if not isinstance(probabilities, dict) or sorted(probabilities) != sorted(contract.classes):
        return False
    values = list(probabilities.values())
    probable = all(type(p) is float and -1e-6 <= p <= 1 + 1e-6 for p in values)
    return probable and math.isclose(sum(values), 1, abs_tol=1e-3)


def check_predictions(contract: Contract, reply: Reply, count: int, shown: str) -> None:
    document = strict_json(reply.body, "a 200 answer")
    predictions = document.get("predictions") if isinstance(document, dict) else None
    assert isinstance(predictions, list), f"a 200 without a list of predictions: {document!r:.300}"
    assert len(predictions) == count, f"{len(predictions)} predictions for {count} instances: {shown}"
    wrong = [p for p in predictions if not well_formed(contract, p)]
    assert not wrong, f"a valid request got malformed predictions {wrong!r:.300} for {shown}"


def mentions(error: str, names: Sequence[str]) -> bool:
    """Whether the error names one of ``names`` (as is, or as Python's repr quotes it)."""
    return any(n in error or repr(n) in error for n in names)


class Client:
    """A keep-alive HTTP connection to the server that counts the requests it sends to ``/predict``."""

    def __init__(self, port: int, contract: Contract) -> None:
        self.port = port
        self.contract = contract
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
        self.sent = 0
        self.malformed = 0  # requests the contract refuses
        self.failed_before = self.server_errors()

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> Reply:
        try:
            self.conn.request(method, path, body, headers or {})
            response = self.conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.conn.close()
            raise AssertionError(f"{method} {path}: no answer ({exc!r}): the server dropped or hung") from None
        return Reply(response.status, response.getheader("Content-Type") or "", data)

    def predict(self, body: bytes) -> Reply:
        self.sent += 1
        return self.request("POST", "/predict", body, {"Content-Type": "application/json"})

    def check(self, case: Case) -> None:
        """Send ``case`` and check the answer against what it must get."""
        reply = self.predict(case.body)
        self.malformed += case.expect == REFUSED
        shown = f"{case.body[:300]!r}{' ...' if len(case.body) > 300 else ''}"
        assert reply.status < 500, f"{reply.status} {reply.body[:300]!r} for {shown}"
        if reply.status == 200:
            assert case.expect.count is not None, f"an invalid request got a 200: {shown} -> {reply.body[:300]!r}"
            check_predictions(self.contract, reply, case.expect.count, shown)
            return
        assert 400 <= reply.status < 500, f"{reply.status} for {shown}"
        error = error_of(reply.status, reply.content_type, reply.body)
        overflowed = reply.status == 422 and NOT_FINITE in error  # valid, but the model's output overflowed float32
        assert case.expect.count is None or case.expect.either or overflowed, (
            f"a valid request was refused: {shown} -> {error}"
        )
        if case.names:
            assert mentions(error, case.names), f"the error {error!r} names none of {case.names} for {shown}"

    def server_errors(self) -> int:
        """The server errors (5xx) ``/metrics`` counts, over every endpoint."""
        metrics = self.request("GET", "/metrics").body.decode()
        return sum(
            int(float(line.rsplit(" ", 1)[1]))
            for line in metrics.splitlines()
            if line.startswith("model_errors_total{") and 'kind="server"' in line
        )

    def assert_healthy(self) -> None:
        """The server answers ``/healthz`` and counted no server error since this client was made."""
        assert self.request("GET", "/healthz").status == 200
        failed = self.server_errors() - self.failed_before
        assert not failed, f"/metrics counts {failed} server errors (kind=server) during this test"

    def close(self) -> None:
        self.conn.close()


# --------------------------------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def running(trained: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The real server on the trained model, for this module."""
    with ready_server(model_dir(trained, tmp_path_factory.mktemp("fuzz-model")), **LIMITS) as server:
        yield server


@pytest.fixture(scope="module")
def contract(running: Any) -> Contract:
    """The model's inputs from ``/metadata``, the limits from the server's settings."""
    status, _, metadata = running.request("GET", "/metadata")
    assert status == 200, metadata
    features = tuple(
        Feature(i["name"], i["type"], bool(i.get("nullable")), tuple(i.get("categories") or ()))
        for i in metadata["inputs"]
    )
    limits = running.server.settings
    classes = tuple(metadata.get("classes") or ())
    return Contract(features, metadata["task"], classes, limits.max_batch, limits.max_body_bytes)


@pytest.fixture
def client(running: Any, contract: Contract) -> Iterator[Client]:
    """A fresh keep-alive connection to the module's server."""
    fresh = Client(running.port, contract)
    try:
        yield fresh
    finally:
        fresh.close()


# --------------------------------------------------------------------------------------------------------------------
# Strategies: values, records and documents from the contract
# --------------------------------------------------------------------------------------------------------------------

# Strings JSON can carry but UTF-8 cannot (lone surrogates, from \\ud800 escapes), NUL and other oddities: rare in
# st.text(), so drawn on purpose.
ODD_TEXT = st.lists(
    st.sampled_from(["a", "\ud800", "\udfff", "\udc00\ud800", "\x00", "\U0010ffff", "\u00e9", "\n", '"', "\\"]),
    min_size=1,
    max_size=4,
).map("".join)
TEXT = st.text(max_size=12) | ODD_TEXT
SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | TEXT
JSON_VALUES = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4), max_leaves=8
)
CONTAINERS = st.lists(SCALARS, max_size=3) | st.dictionaries(TEXT, SCALARS, max_size=3)
NON_FINITE = st.sampled_from([math.nan, math.inf, -math.inf])
BEYOND_FLOAT32 = st.floats(min_value=FLOAT32_MAX, exclude_min=True, allow_infinity=False).flatmap(
    lambda x: st.sampled_from([x, -x])
)
HUGE_INTEGERS = st.one_of(
    st.integers(min_value=2**128, max_value=10**400),
    st.integers(min_value=-(10**400), max_value=-(2**128)),
    st.sampled_from([2**1024, -(2**1024), 10**309]),
)
FRACTIONS = st.floats(-1e9, 1e9).filter(lambda x: not x.is_integer())
NUMERIC_STRINGS = st.sampled_from(["12", "1.5", "-0", "NaN", "Infinity", "1e3", "", " ", "true", "null"])


# Strategies are cached by feature and contract: building them afresh for every example costs more than the requests.


@functools.cache
def valid_value(feature: Feature) -> st.SearchStrategy[Any]:
    """Values the contract accepts for ``feature``, extreme ones included (ranges are not enforced)."""
    options: list[st.SearchStrategy[Any]]
    if feature.type == "integer":
        whole = st.integers(-(2**53), 2**53)
        options = [st.integers(-1000, 1000), whole, whole.map(float), st.sampled_from([-0.0, 1e30, -1e38])]
    elif feature.type == "number":
        options = [st.integers(-(10**6), 10**6), st.floats(-1e6, 1e6), st.floats(-FLOAT32_MAX, FLOAT32_MAX)]
    else:
        known = [st.sampled_from(feature.categories)] if feature.categories else []
        options = [*known, *known, TEXT.filter(bool), ODD_TEXT]  # unknown categories are accepted
    if feature.nullable:
        options.append(st.none())
        if not feature.numeric:
            options.append(st.just(""))
    return st.one_of(options)


@functools.cache
def invalid_value(feature: Feature) -> st.SearchStrategy[Any]:
    """Values the contract refuses for ``feature``."""
    options: list[st.SearchStrategy[Any]]
    if feature.numeric:
        options = [TEXT, NUMERIC_STRINGS, st.booleans(), CONTAINERS, NON_FINITE, BEYOND_FLOAT32, HUGE_INTEGERS]
        if feature.type == "integer":
            options.append(FRACTIONS)
    else:
        options = [st.integers(), HUGE_INTEGERS, st.floats(), st.booleans(), CONTAINERS]
    if not feature.nullable:
        options.append(st.none())
        if not feature.numeric:
            options.append(st.just(""))
    return st.one_of(options)


@functools.cache
def valid_record(contract: Contract) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({f.name: valid_value(f) for f in contract.features})


@functools.cache
def unknown_names(contract: Contract) -> st.SearchStrategy[str]:
    """Feature names the model does not have (some differ from one it has only in case)."""
    names = contract.names
    return TEXT.filter(lambda n: n not in names) | st.sampled_from([n.upper() for n in names if n.upper() != n])


@functools.cache
def any_value(contract: Contract) -> st.SearchStrategy[Any]:
    """Any JSON value, or a valid or invalid value of one of the features."""
    features = contract.features
    return st.one_of(JSON_VALUES, *(valid_value(f) for f in features), *(invalid_value(f) for f in features))


OTHER_KEYS = TEXT.filter(lambda k: k not in ("instances", "rows"))
EXTRA_KEYS = OTHER_KEYS.filter(lambda k: k != "columns")


SHAPES = ("records", "rows", "columns")


def as_document(contract: Contract, records: list[dict[str, Any]], shape: str, order: Sequence[str]) -> Any:
    """``records`` as ``{"instances"}``, as ``{"rows"}`` in metadata order, or as ``{"columns", "rows"}``."""
    if shape == "records":
        return {"instances": records}
    if shape == "rows":
        return {"rows": [[r[n] for n in contract.names] for r in records]}
    return {"columns": list(order), "rows": [[r[n] for n in order] for r in records]}


@st.composite
def wrong_values(draw: st.DrawFn, contract: Contract) -> Case:
    """A valid batch (records or rows) with exactly one invalid value."""
    records = draw(st.lists(valid_record(contract), min_size=1, max_size=4))
    index = draw(st.integers(0, len(records) - 1))
    feature = draw(st.sampled_from(contract.features))
    bad = draw(invalid_value(feature))
    records[index] = records[index] | {feature.name: bad}
    shape = draw(st.sampled_from(SHAPES))
    document = as_document(contract, records, shape, draw(st.permutations(contract.names)))
    return Case.of(contract, document, [feature.name])


@st.composite
def wrong_structures(draw: st.DrawFn, contract: Contract) -> Case:
    """Missing and extra features, instances that are not objects, rows of the wrong length, wrong ``columns``."""
    names = contract.names
    records: list[Any] = draw(st.lists(valid_record(contract), min_size=1, max_size=4))
    index = draw(st.integers(0, len(records) - 1))
    record = records[index]
    unknown = unknown_names(contract)
    kind = draw(st.sampled_from(["missing", "extra", "swapped", "not an object", "row length", "not a row", "columns"]))
    if kind in ("missing", "swapped"):
        dropped = draw(st.lists(st.sampled_from(names), min_size=1, unique=True))
        added = {draw(unknown): draw(JSON_VALUES)} if kind == "swapped" else {}
        records[index] = {k: v for k, v in record.items() if k not in dropped} | added
        return Case.of(contract, {"instances": records}, dropped)
    if kind == "extra":
        extra = draw(st.dictionaries(unknown, JSON_VALUES, min_size=1, max_size=3))
        records[index] = record | extra
        return Case.of(contract, {"instances": records}, list(extra))
    if kind == "not an object":
        records[index] = draw(JSON_VALUES.filter(lambda v: not isinstance(v, dict)))
        return Case.of(contract, {"instances": records}, [f"instance {index}"])
    order = draw(st.permutations(names))
    document = as_document(contract, records, draw(st.sampled_from(SHAPES[1:])), order)
    rows = document["rows"]
    if kind == "row length":
        row = rows[index]
        if draw(st.booleans()) and row:
            del row[draw(st.integers(0, len(row) - 1)) :]
        else:
            row.extend(draw(st.lists(JSON_VALUES, min_size=1, max_size=3)))
        return Case.of(contract, document, [f"row {index}"])
    if kind == "not a row":
        rows[index] = draw(JSON_VALUES.filter(lambda v: not isinstance(v, list)))
        return Case.of(contract, document, [f"row {index}"])
    columns: list[Any] = list(order)
    change = draw(st.sampled_from(["drop", "unknown", "duplicate", "not a name", "not a list"]))
    if change == "drop":
        columns.remove(draw(st.sampled_from(columns)))
    elif change == "unknown":
        columns.insert(draw(st.integers(0, len(columns))), draw(unknown))
    elif change == "duplicate":
        columns.append(draw(st.sampled_from(columns)))
    elif change == "not a name":
        columns[draw(st.integers(0, len(columns) - 1))] = draw(SCALARS.filter(lambda v: not isinstance(v, str)))
    else:
        document["columns"] = draw(JSON_VALUES.filter(lambda v: not isinstance(v, list | type(None))))
        return Case.of(contract, document, ["columns"])
    document["columns"] = columns
    return Case.of(contract, document, ["columns"])


@st.composite
def wrong_documents(draw: st.DrawFn, contract: Contract) -> Case:
    """Wrong top-level shapes, keys and batch sizes."""
    record = draw(valid_record(contract))
    rows = [[record[n] for n in contract.names]]
    kind = draw(
        st.sampled_from(["not an object", "no batch", "extra key", "not a list", "empty", "too large", "nested"])
    )
    if kind == "not an object":
        top = draw(
            st.one_of(
                JSON_VALUES.filter(lambda v: not isinstance(v, dict)),
                st.just([record]),
                st.just([{"instances": [record]}]),
                st.just(json.dumps({"instances": [record]})),
            )
        )
        return Case.of(contract, top, ["JSON object"])
    if kind == "no batch":
        return Case.of(contract, draw(st.dictionaries(OTHER_KEYS, JSON_VALUES, max_size=3)), ["instances"])
    if kind == "extra key":
        base: dict[str, Any] = draw(
            st.sampled_from([{"instances": [record]}, {"rows": rows}, {"columns": contract.names, "rows": rows}])
        )
        extra = draw(st.dictionaries(EXTRA_KEYS, JSON_VALUES, min_size=1, max_size=2))
        if "instances" in base and draw(st.booleans()):
            extra = {"rows": rows}
        return Case.of(contract, base | extra, ["unexpected top-level keys"])
    if kind == "not a list":
        key = draw(st.sampled_from(["instances", "rows"]))
        value = draw(st.one_of(JSON_VALUES.filter(lambda v: not isinstance(v, list)), st.just(record)))
        return Case.of(contract, {key: value}, [key])
    if kind == "empty":
        document = draw(st.sampled_from([{"instances": []}, {"rows": []}, {"columns": contract.names, "rows": []}]))
        return Case.of(contract, document, ["empty"])
    if kind == "too large":
        size = draw(st.integers(contract.max_batch + 1, contract.max_batch + 30))
        shape = draw(st.sampled_from(SHAPES))
        return Case.of(contract, as_document(contract, [record] * size, shape, contract.names), ["MAX_BATCH"])
    key = draw(st.sampled_from(["instances", "rows"]))
    inner = {"instances": [record]} if key == "instances" else {"rows": rows}
    wrapped = draw(st.sampled_from([[inner], [[record]], inner, [rows]]))
    return Case.of(contract, {key: wrapped}, [key, "instance 0", "row 0"])


@functools.cache
@st.composite
def valid_documents(draw: st.DrawFn, contract: Contract) -> Any:
    records = draw(st.lists(valid_record(contract), min_size=1, max_size=4))
    return as_document(contract, records, draw(st.sampled_from(SHAPES)), draw(st.permutations(contract.names)))


def containers(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """Every list and object in a document, with its path."""
    if isinstance(node, dict | list):
        yield path, node
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, child in items:
            yield from containers(child, (*path, key))


@st.composite
def mutated_documents(draw: st.DrawFn, contract: Contract) -> Case:
    """A valid request with one to three random edits anywhere in its tree (the oracle says what it must get)."""
    document = draw(valid_documents(contract))
    keys = st.sampled_from([*contract.names, "instances", "rows", "columns"]) | TEXT
    values = any_value(contract)
    for _ in range(draw(st.integers(1, 3))):
        if not isinstance(document, dict | list) or draw(st.integers(0, 30)) == 0:
            document = draw(values)  # the whole document replaced
            continue
        _, node = draw(st.sampled_from(list(containers(document))))
        op = draw(st.sampled_from(["replace", "delete", "insert", "duplicate"]))
        if isinstance(node, dict):
            if op in ("replace", "delete", "duplicate") and node:
                key = draw(st.sampled_from(sorted(node)))
                if op == "delete":
                    del node[key]
                else:
                    node[key] = draw(values) if op == "replace" else json.loads(json.dumps(node[key]))
            else:
                node[draw(keys)] = draw(values)
        elif op in ("replace", "delete", "duplicate") and node:
            index = draw(st.integers(0, len(node) - 1))
            if op == "delete":
                del node[index]
            elif op == "replace":
                node[index] = draw(values)
            else:
                node.insert(index, json.loads(json.dumps(node[index])))
        else:
            node.insert(draw(st.integers(0, len(node))), draw(values))
    return Case.of(contract, document)


PLACEHOLDER = "@@fuzz@@"
TOKENS = [
    b"NaN",
    b"Infinity",
    b"-Infinity",
    b"1e309",
    b"-1e400",
    b"1" + b"0" * 400,
    b"-0",
    b"0e0",
    b"1E2",
    b"01",
    b".5",
    b"1.",
    b"+1",
    b"-",
    b"0x1F",
    b"1_000",
    b"tru",
    b"nul",
    b"true",
    b"[]",
    b"{}",
    b"'single'",
    b'"12"',
    b'"\\ud800"',
    b'"\\udc00\\ud800"',
    b'"\\u12"',
    b'"\\q"',
    b'"\x01"',
    b'"\xff"',
    b'"\xed\xa0\x80"',
    b'"\xc0\x80"',
    b'"unterminated',
]
BYTES = st.sampled_from([b"\xff", b"\xfe", b"\xc0\x80", b"\x00", b'"', b",", b"}", b"]", b"{", b"[", b"\\", b":"])


@st.composite
def broken_bodies(draw: st.DrawFn, contract: Contract) -> Case:
    """Bytes that are not the JSON they claim to be: truncated, corrupted, mis-encoded, deeply nested, with
    duplicate keys, NaN and friends, or plain garbage. The oracle decodes them as the contract says."""
    document = draw(valid_documents(contract))
    body = json.dumps(document).encode()
    kind = draw(
        st.sampled_from(
            ["truncated", "bytes", "token", "encoding", "padding", "nested", "duplicate key", "duplicate batch", "junk"]
        )
    )
    if kind == "truncated":
        body = body[: draw(st.integers(0, len(body) - 1))]
    elif kind == "bytes":
        for _ in range(draw(st.integers(1, 3))):
            at = draw(st.integers(0, len(body)))
            new = draw(BYTES | st.binary(min_size=1, max_size=3))
            cut = draw(st.integers(0, 2))
            body = body[:at] + new + body[at + cut :]
    elif kind == "token":
        record = draw(valid_record(contract))
        name = draw(st.sampled_from(contract.names))
        shape = draw(st.sampled_from(SHAPES))
        document = as_document(contract, [record | {name: PLACEHOLDER}], shape, draw(st.permutations(contract.names)))
        body = json.dumps(document).encode().replace(json.dumps(PLACEHOLDER).encode(), draw(st.sampled_from(TOKENS)))
    elif kind == "encoding":  # RFC 8259: JSON is UTF-8, but a server MAY ignore a BOM (and may accept UTF-16, -32)
        text = body.decode()
        encoded = [b"\xef\xbb\xbf" + body, text.encode("utf-16"), text.encode("utf-16-le"), text.encode("utf-32")]
        return Case(draw(st.sampled_from(encoded)), lenient(expect(contract, document)))
    elif kind == "padding":
        before = draw(st.sampled_from([b"", b" ", b"\n\t\r ", b"\x00", b"\x0b"]))
        after = draw(st.sampled_from([b"", b"\n", b" x", b"}", b"]", b",", b"\x00", b" {}", b"//", b"/* */"]))
        body = before + body + after
    elif kind == "nested":
        depth = draw(st.integers(1, 40_000) | st.integers(900, 1100) | st.integers(2000, 3500))
        record = draw(valid_record(contract))
        name = draw(st.sampled_from(contract.names))
        opened, closed = draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")]))
        depth = min(depth, (contract.max_body - 1000) // len(opened + closed))  # a 413 is another property
        nest = opened * depth + b"0" + closed * depth
        where = draw(st.sampled_from(["top", "instances", "value", "row"]))
        if where == "top":
            body = nest
        elif where == "instances":
            body = b'{"instances": [' + nest + b"]}"
        elif where == "row":
            body = b'{"rows": [' + nest + b"]}"
        else:
            body = json.dumps({"instances": [record | {name: PLACEHOLDER}]}).encode()
            body = body.replace(json.dumps(PLACEHOLDER).encode(), nest)
    elif kind == "duplicate key":
        record = draw(valid_record(contract))
        feature = draw(st.sampled_from(contract.features))
        other = draw(valid_value(feature) | invalid_value(feature))
        items = [json.dumps(k) + ": " + json.dumps(v) for k, v in record.items()]
        twice = json.dumps(feature.name) + ": " + json.dumps(other)
        items.insert(draw(st.integers(0, len(items))), twice)
        body = ('{"instances": [{' + ", ".join(items) + "}]}").encode()
        return Case(body, lenient(expect_body(contract, body)))  # valid if the last value is (as Python decodes it)
    elif kind == "duplicate batch":
        body = b'{"instances": [], ' + body[1:]
        return Case(body, lenient(expect_body(contract, body)))
    else:
        body = draw(st.binary(max_size=300))
    return Case(body, expect_body(contract, body))


# --------------------------------------------------------------------------------------------------------------------
# Raw HTTP
# --------------------------------------------------------------------------------------------------------------------


def exchange(port: int, data: bytes | Sequence[bytes]) -> bytes:
    """Send ``data`` (pieces sent one by one) on a new connection, end the sending, and read until the server closes
    the connection (which it must do, having answered what it could)."""
    pieces = [data] if isinstance(data, bytes) else list(data)
    received = []
    with socket.create_connection(("127.0.0.1", port), timeout=RAW_TIMEOUT) as sock:
        try:
            for piece in pieces:
                sock.sendall(piece)
            sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered early and closed: read what it sent
        try:
            while chunk := sock.recv(65536):
                received.append(chunk)
        except ConnectionResetError:
            pass
        except TimeoutError:
            raise AssertionError(
                f"no end of the answer within {RAW_TIMEOUT} s (the server hung) after {b''.join(pieces)[:300]!r}; "
                f"received {b''.join(received)[:300]!r}"
            ) from None
    return b"".join(received)


def responses(stream: bytes, sent: bytes = b"") -> list[tuple[int, str, bytes]]:
    """Split what the server sent into ``(status, content type, body)`` by their Content-Length.

    An interim answer (``100 Continue``) has no body and is skipped; nor has the answer to a ``HEAD`` request: where
    ``sent`` holds one, an answer followed at once by the next status line (or by the end) is taken as bodiless.
    """
    found = []
    head_request = b"HEAD " in sent
    while stream:
        head, separator, rest = stream.partition(b"\r\n\r\n")
        assert separator, f"a truncated response: {stream[:300]!r}"
        status_line, *lines = head.decode("latin-1").split("\r\n")
        version, status, _ = status_line.split(" ", 2)
        assert version == "HTTP/1.1", status_line
        if status.startswith("1"):
            stream = rest
            continue
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
        length = int(headers["content-length"])
        if head_request and (not rest or rest.startswith(b"HTTP/1.1 ")):
            length = 0  # the answer to a HEAD request (a malformed one is answered in full)
        assert len(rest) >= length, f"a truncated body: {stream[:300]!r}"
        found.append((int(status), headers.get("content-type", ""), rest[:length]))
        stream = rest[length:]
    return found


def check_raw(stream: bytes, sent: bytes) -> list[int]:
    """Every answer is a 2xx or a 4xx with a JSON error; return the statuses."""
    statuses = []
    for status, content_type, body in responses(stream, sent):
        assert status < 500, f"{status} {body[:300]!r} for {sent[:300]!r}"
        if status >= 400 and not (b"HEAD " in sent and not body):
            error_of(status, content_type, body)
        statuses.append(status)
    return statuses


METHODS = [b"POST", b"GET", b"PUT", b"HEAD", b"OPTIONS", b"P0ST", b"post", b"", b"POST POST", b"CONNECT", b"\x00"]
TARGETS = [
    b"/predict",
    b"/predict?x=1",
    b"/predict#f",
    b"predict",
    b"*",
    b"http://127.0.0.1/predict",
    b"/%00",
    b"/pre dict",
    b"/\xff",
    b"",
    b"/" + b"a" * 2000,
    b"/healthz",
    b"/metrics",
]
VERSIONS = [b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.1x", b"", b"HTTP/9.9", b"http/1.1", b"HTTP/1"]
HEADERS = [
    b"Host: x",
    b"Content-Type: application/json",
    b"Content-Length: abc",
    b"Content-Length: -1",
    b"Content-Length: 99999999999999999999999",
    b"Content-Length: 1, 2",
    b"Content-Length: 2",
    b"Content-Length:",
    b"Transfer-Encoding: chunked",
    b"Transfer-Encoding: gzip",
    b"Transfer-Encoding: chunked, identity",
    b"Connection: close",
    b"Connection: keep-alive",
    b"Connection: Upgrade",
    b"Upgrade: h2c",
    b"Expect: 100-continue",
    b"X-Request-ID: \x01\xff\x7f",
    b"X-Request-ID: " + b"r" * 500,
    b"NoColon",
    b" Leading-Space: x",
    b"Bad Name: x",
    b"X-Null: a\x00b",
    b"X-Fold: a\r\n b",
    b":",
    b"X-Long: " + b"v" * 8000,
]


def chunked(body: bytes, size: int) -> bytes:
    pieces = [body[i : i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


@st.composite
def raw_requests(draw: st.DrawFn, contract: Contract) -> bytes:
    """One to three pipelined requests with malformed request lines, headers, lengths or chunks; or plain garbage."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=300))
    requests = []
    for _ in range(draw(st.integers(1, 3))):
        body = json.dumps(draw(valid_documents(contract))).encode()
        body = draw(st.sampled_from([body, body[: len(body) // 2], b"", b"garbage", b"\xff" * 10]))
        method = draw(st.sampled_from(METHODS))
        target = draw(st.sampled_from(TARGETS))
        version = draw(st.sampled_from(VERSIONS))
        space = draw(st.sampled_from([b" ", b" ", b"  ", b"\t"]))
        end = draw(st.sampled_from([b"\r\n", b"\r\n", b"\n", b"\r"]))
        headers = draw(st.lists(st.sampled_from(HEADERS), max_size=4))
        framing = draw(st.sampled_from(["length", "length", "chunked", "bad chunks", "none", "wrong length"]))
        if framing == "length":
            headers.append(b"Content-Length: %d" % len(body))
        elif framing == "wrong length":
            headers.append(b"Content-Length: %d" % draw(st.integers(0, len(body) + 10)))
        elif framing == "chunked":
            headers.append(b"Transfer-Encoding: chunked")
            body = chunked(body, draw(st.integers(1, 64)))
        elif framing == "bad chunks":
            headers.append(b"Transfer-Encoding: chunked")
            body = draw(
                st.sampled_from([b"zz\r\nab\r\n0\r\n\r\n", b"5\r\nab\r\n", b"-1\r\n", b"ffffffffffffffffff\r\n"])
            )
        head = method + space + target + space + version + end + b"".join(h + end for h in headers) + end
        requests.append(head + body)
    return b"".join(requests)


# --------------------------------------------------------------------------------------------------------------------
# The properties
# --------------------------------------------------------------------------------------------------------------------


def test_the_budget_is_at_least_a_thousand_malformed_requests() -> None:
    assert sum(MALFORMED.values()) >= MIN_MALFORMED


def fuzz(client: Client, name: str, cases: st.SearchStrategy[Case], *, all_malformed: bool = True) -> None:
    """Send ``BUDGET[name]`` requests drawn from ``cases``; check each answer, then the count and the server."""

    @fuzz_settings(BUDGET[name])
    @given(case=cases)
    def send(case: Case) -> None:
        assert not all_malformed or case.expect == REFUSED, "the strategy made a valid request"
        client.check(case)

    send()
    assert client.sent >= BUDGET[name]
    assert client.malformed >= MALFORMED[name], f"{client.malformed} malformed requests of {client.sent}"
    client.assert_healthy()


def test_one_wrong_value_is_refused_naming_its_feature(client: Client, contract: Contract) -> None:
    fuzz(client, "wrong_value", wrong_values(contract))


def test_missing_extra_and_misplaced_features_are_refused(client: Client, contract: Contract) -> None:
    fuzz(client, "structure", wrong_structures(contract))


def test_wrong_documents_and_batch_sizes_are_refused(client: Client, contract: Contract) -> None:
    fuzz(client, "document", wrong_documents(contract))


def test_mutated_valid_requests_get_what_the_contract_says(client: Client, contract: Contract) -> None:
    fuzz(client, "mutation", mutated_documents(contract), all_malformed=False)


def test_broken_json_bytes_get_what_the_contract_says(client: Client, contract: Contract) -> None:
    fuzz(client, "bytes", broken_bodies(contract), all_malformed=False)


def found(contract: Contract, problem: str) -> Case | None:
    """The minimal request behind a problem the properties found (``None`` if the model has no such feature)."""
    record = plain_record(contract)
    numeric = [f for f in contract.features if f.numeric]
    categories = [f for f in contract.features if not f.numeric]
    if problem == "an integer beyond float64" and numeric:  # was a 500: float() raised OverflowError
        return Case.of(contract, {"instances": [record | {numeric[0].name: 10**309}]}, [numeric[0].name])
    if problem == "a lone surrogate in a category" and categories:  # was a 500: onnxruntime cannot encode it
        return Case.of(contract, {"instances": [record | {categories[0].name: "\ud800"}]})
    if problem == "valid numbers the model overflows on" and numeric:  # a linear regression answers "value": null
        return Case.of(contract, {"instances": [record | {f.name: sign * 1e37 for f in numeric} for sign in (1, -1)]})
    return None


@pytest.mark.parametrize(
    "problem", ["an integer beyond float64", "a lone surrogate in a category", "valid numbers the model overflows on"]
)
def test_the_requests_behind_problems_found(client: Client, contract: Contract, problem: str) -> None:
    """Plain regression cases for what the fuzzing found, whatever the properties above draw in the future."""
    case = found(contract, problem)
    if case is None:
        pytest.skip("the model has no feature of that type")
    client.check(case)
    client.assert_healthy()


def test_raw_http_garbage_never_takes_the_server_down(client: Client, contract: Contract) -> None:
    sent = 0

    @fuzz_settings(BUDGET["raw"])
    @given(data=raw_requests(contract))
    def fuzz(data: bytes) -> None:
        nonlocal sent
        sent += 1
        check_raw(exchange(client.port, data), data)
        assert client.request("GET", "/healthz").status == 200, "the server stopped answering"

    fuzz()
    assert sent >= BUDGET["raw"]
    client.assert_healthy()


def plain_record(contract: Contract) -> dict[str, Any]:
    """A valid record: null where allowed, else 0 or the first known category."""
    return {f.name: None if f.nullable else 0 if f.numeric else (*f.categories, "x")[0] for f in contract.features}


def raw_cases(contract: Contract) -> list[tuple[str, list[bytes], list[list[int]]]]:
    """(case, pieces sent, the conforming lists of statuses, the server's answers in order)."""
    body = json.dumps({"instances": [plain_record(contract)]}).encode()
    big = contract.max_body + 1
    post = b"POST /predict HTTP/1.1\r\nHost: x\r\n"
    bad = b'{"instances": []}'
    return [
        ("not HTTP", [b"NOT HTTP AT ALL\r\n\r\n"], [[400]]),
        ("POST without a length, so without a body", [post + b"\r\n"], [[411], [400]]),
        ("invalid Content-Length", [post + b"Content-Length: abc\r\n\r\n" + body], [[400]]),
        ("two Content-Lengths", [post + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n" + body], [[400]]),
        ("bad chunk size", [post + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n" + body + b"\r\n0\r\n\r\n"], [[400]]),
        # Refused, or the Upgrade header ignored; never both (two answers to one request).
        ("protocol upgrade", [b"GET /healthz HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"], [[400], [200]]),
        ("header without a colon", [post + b"NoColon\r\nContent-Length: 2\r\n\r\n{}"], [[400]]),
        # The body's first 10 bytes are not JSON (400), the rest is not an HTTP request (400, closed).
        ("Content-Length shorter than the body", [post + b"Content-Length: 10\r\n\r\n" + body], [[400, 400]]),
        # Announced above MAX_BODY_BYTES: refused from the headers; below it, the server waits for the rest, then EOF.
        ("Content-Length above the limit, then EOF", [post + b"Content-Length: 100000\r\n\r\n" + body], [[413]]),
        ("Content-Length longer than the body, then EOF", [post + b"Content-Length: 60000\r\n\r\n" + body], [[]]),
        ("body above MAX_BODY_BYTES", [post + b"Content-Length: %d\r\n\r\n" % big, b" " * big], [[413]]),
        (
            "chunked body above MAX_BODY_BYTES",
            [post + b"Transfer-Encoding: chunked\r\n\r\n", chunked(b" " * big, 8192)],
            [[413]],
        ),
        (
            "pipelined: valid, invalid, valid",
            [b"".join(post + b"Content-Length: %d\r\n\r\n" % len(b) + b for b in (body, bad, body))],
            [[200, 400, 200]],
        ),
        (
            "a valid request byte by byte",
            [bytes([c]) for c in post + b"Content-Length: %d\r\n\r\n" % len(body) + body],
            [[200]],
        ),
    ]


def test_raw_http_edge_cases_get_the_documented_answers(client: Client, contract: Contract) -> None:
    failures = []
    for case, pieces, conforming in raw_cases(contract):
        got = check_raw(exchange(client.port, pieces), b"".join(pieces))
        if got not in conforming:
            failures.append(f"{case}: answered {got}, expected {' or '.join(map(str, conforming))}")
        assert client.request("GET", "/healthz").status == 200, f"the server stopped answering after {case}"
    assert not failures, "\n".join(failures)
    client.assert_healthy()


def test_a_body_above_the_limit_is_refused_before_it_is_sent(client: Client, contract: Contract) -> None:
    """The server refuses a ``Content-Length`` above ``MAX_BODY_BYTES`` from the headers alone (413), so a client
    does not upload a body that will be refused (and one waiting for ``100 Continue`` does not hang)."""
    head = b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (contract.max_body + 1)
    with socket.create_connection(("127.0.0.1", client.port), timeout=RAW_TIMEOUT) as sock:
        sock.sendall(head)
        try:
            answer = sock.recv(65536)
        except TimeoutError:
            answer = b""
    assert answer.startswith(b"HTTP/1.1 413"), f"no 413 within {RAW_TIMEOUT} s of the headers: {answer[:200]!r}"
    client.assert_healthy()
