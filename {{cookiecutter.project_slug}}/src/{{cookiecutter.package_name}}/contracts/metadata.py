"""The model metadata (``models/metadata.json``): what travels with ``model.onnx`` into the serving image.

Written by the ``export`` stage; read by the server, the report, the monitor's tools and ``probe``. Its input schema,
opset, labels, lineage and a few golden predictions that the server reproduces before it reports ready.
Standard library only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal, TypedDict, cast

from {{ cookiecutter.package_name }}.contracts.errors import ProjectError
from {{ cookiecutter.package_name }}.contracts.io import write_json
from {{ cookiecutter.package_name }}.contracts.rules import FEATURE_TYPES, FeatureSpec

FORMAT = 2
"""2: the numeric features arrive packed in one input (``contracts.onnx.NUMERIC_INPUT``)."""

Task = Literal["classification", "regression"]


class Expected(TypedDict, total=False):
    """A golden sample's output: ``label`` and ``probabilities`` (in ``classes`` order), or ``value``."""

    label: str
    probabilities: list[float]
    value: float


class Golden(TypedDict):
    """A test row as a client sends it (JSON numbers and strings, null when missing) and the model's output."""

    inputs: dict[str, float | str | None]
    expected: Expected


class Metadata(TypedDict):
    """Everything the server needs to know about the model besides its graph (its test metrics included)."""

    format: int
    version: str
    task: Task
    target: str
    classes: list[str]
    positive: str | None
    inputs: list[FeatureSpec]
    outputs: list[str]
    opset: dict[str, int]
    producer: dict[str, str]
    golden: list[Golden]
    metrics: dict[str, float]
    lineage: dict[str, str | None]


_TYPES: dict[str, type | tuple[type, ...]] = {
    "version": str,
    "task": str,
    "target": str,
    "classes": list,
    "positive": (str, type(None)),
    "inputs": list,
    "outputs": list,
    "opset": dict,
    "producer": dict,
    "golden": list,
    "metrics": dict,
    "lineage": dict,
}
_INPUT_TYPES: dict[str, type | tuple[type, ...]] = {
    "name": str,
    "type": str,
    "nullable": bool,
    "min": (int, float, type(None)),
    "max": (int, float, type(None)),
    "categories": list,
}


class MetadataError(ProjectError, ValueError):
    """A metadata file that cannot be read or is not model metadata this code reads: the message names the problem."""


def parse(document: Any, source: Path | str, reader: str = "code") -> Metadata:
    """``document`` (decoded JSON) as model metadata, or a :class:`MetadataError` naming what is wrong in ``source``.

    ``reader`` names what reads it in the message about a format it does not read (``this server reads ...``).
    """
    if not isinstance(document, dict):
        raise MetadataError(f"{source} is not model metadata: a JSON object is expected")
    if document.get("format") != FORMAT:
        raise MetadataError(
            f"the metadata has format {document.get('format')!r} but this {reader} reads format {FORMAT}: "
            "export the model again with this version of the pipeline"
        )
    for key, kind in _TYPES.items():
        if not isinstance(document.get(key, ...), kind):
            raise MetadataError(f"{source} is not model metadata: missing or invalid {key!r}")
    for index, spec in enumerate(document["inputs"]):
        wrong = not isinstance(spec, dict) or any(not isinstance(spec.get(k, ...), t) for k, t in _INPUT_TYPES.items())
        if wrong or spec["type"] not in FEATURE_TYPES:
            raise MetadataError(f"{source} is not model metadata: missing or invalid 'inputs' ({index}: {spec!r:.80})")
    if document["task"] not in ("classification", "regression"):
        raise MetadataError(f"unknown task {document['task']!r} in the metadata")
    return cast(Metadata, document)  # checked above, key by key


def read(path: Path, reader: str = "code") -> Metadata:
    """The model metadata in ``path``, or a :class:`MetadataError` naming the file and the problem."""
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise MetadataError(f"cannot read the model: {path}: {exc}") from exc
    return parse(document, path, reader)


def write(path: Path, metadata: Metadata) -> None:
    """Write the model metadata (stable, sorted JSON, written atomically)."""
    write_json(path, metadata)
