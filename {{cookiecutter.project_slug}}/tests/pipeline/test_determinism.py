"""The same inputs give the same bytes: the ONNX export of one ``model.joblib`` is identical from one process to the
next, so the model version (derived from those bytes) names the model, not the run that exported it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import onnx
from conftest import BIN, Workspace, run, tool_env

from {{ cookiecutter.package_name }}.pipeline.export import GRAPH_NAME


def export_in_a_new_process(ws: Workspace, hash_seed: str) -> tuple[bytes, bytes]:
    """``export`` in a fresh interpreter with its own string-hash seed; the ONNX file and the metadata it wrote."""
    run([BIN / "{{ cookiecutter.package_name }}", "export"], ws.root, tool_env(PYTHONHASHSEED=hash_seed))
    return ws.path("onnx").read_bytes(), ws.path("metadata").read_bytes()


def test_exporting_the_same_model_twice_gives_the_same_bytes(trained: Workspace, tmp_path: Path) -> None:
    ws = trained.copy(tmp_path / "ws")
    first_onnx, first_metadata = export_in_a_new_process(ws, "1")
    second_onnx, second_metadata = export_in_a_new_process(ws, "2")

    assert first_onnx == second_onnx, "two exports of the same model.joblib differ"
    assert first_metadata == second_metadata, "two exports of the same model.joblib wrote different metadata"
    proto = onnx.load_from_string(first_onnx)
    assert proto.graph.name == GRAPH_NAME  # not skl2onnx's random UUID
    domains = [i.domain for i in proto.opset_import]
    assert domains == sorted(domains)
    # the version is the ONNX file's content: the MD5 prefix dvc.lock records for it
    assert json.loads(first_metadata)["version"] == hashlib.md5(first_onnx).hexdigest()[:12]
