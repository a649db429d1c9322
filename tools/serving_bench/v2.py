"""Our server on the Open Inference Protocol (KServe v2 REST, issue 11): ``POST /v2/models/{name}/infer``.

The same server and rows as ``/predict``, sent as JSON tensors, one input per feature: each input's name, datatype
and order come from the model metadata the running server answers at ``GET /v2/models/{name}`` (read once it is
ready, before its first request), its shape is ``[n]`` and its ``data`` the feature's values. The answer's ``label``
and ``probabilities`` outputs (the probabilities in the order of the metadata's ``classes``) must equal what
``/predict`` answers for the same rows, exactly: the very same model run, encoded the same way.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from tools.benchmark import StepError
from tools.serving_bench.procs import http_request
from tools.serving_bench.servers import Answers, Server, ours

V2_TOLERANCE = 0.0  # the same process, model and floats as /predict: equal, not merely close
NAME = "ours-v2"


def v2_request(rows: list[dict[str, float]], metadata: dict[str, Any]) -> dict[str, Any]:
    """An inference request for ``rows``: one tensor per input of the model metadata, in its order and datatype."""
    inputs = []
    for tensor in metadata["inputs"]:
        name, datatype = tensor["name"], tensor["datatype"]
        if name not in rows[0]:
            raise StepError(f"the model metadata has an input {name!r} that the rows do not have")
        convert = {"BYTES": str, "INT64": int}.get(datatype, float)
        inputs.append(
            {"name": name, "datatype": datatype, "shape": [len(rows)], "data": [convert(r[name]) for r in rows]}
        )
    return {"inputs": inputs}


def v2_answers(doc: Any, classes: list[str], metadata: dict[str, Any]) -> Answers:
    """Labels and probabilities (in the order of ``classes``) from an inference response."""
    outputs = {output["name"]: output for output in doc.get("outputs", [])}
    if set(outputs) != {"label", "probabilities"}:
        raise StepError(f"the v2 infer route answered outputs {sorted(outputs)}, not label and probabilities")
    served = [str(c) for c in metadata.get("classes", [])]
    if sorted(served) != sorted(classes):
        raise StepError(f"the model metadata's classes {served} are not the model's {classes}")
    labels, flat, width = outputs["label"]["data"], outputs["probabilities"]["data"], len(served)
    if outputs["probabilities"]["shape"] != [len(labels), width] or len(flat) != len(labels) * width:
        raise StepError(f"probabilities of shape {outputs['probabilities']['shape']} for {len(labels)} labels")
    order = [served.index(c) for c in classes]
    return [(str(label), [float(flat[i * width + k]) for k in order]) for i, label in enumerate(labels)]


class OpenInference:
    """Requests for our server's v2 infer route, built from the model metadata it serves."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.metadata: dict[str, Any] | None = None

    def configure(self, port: int) -> None:
        """Read the model metadata from the running server."""
        path = f"/v2/models/{self.model}"
        status, body = http_request(port, "GET", path)
        if status != 200:
            raise StepError(f"{NAME}: GET {path} answered {status}: {body[:500]!r}")
        metadata = json.loads(body)
        if metadata.get("name") != self.model or not metadata.get("inputs"):
            raise StepError(f"{NAME}: GET {path} is not this model's metadata: {body[:500]!r}")
        self.metadata = metadata

    def _described(self) -> dict[str, Any]:
        if self.metadata is None:
            raise StepError(f"{NAME}: a request was built before the model metadata was read")
        return self.metadata

    def request(self, rows: list[dict[str, float]]) -> dict[str, Any]:
        """The v2 infer request for ``rows``."""
        return v2_request(rows, self._described())

    def answers(self, doc: Any, classes: list[str]) -> Answers:
        """The labels and probabilities of a v2 infer answer."""
        return v2_answers(doc, classes, self._described())


def ours_v2(project: Path, package: str, venv: Path) -> Server:
    """Our server, measured on its v2 infer route (the model is named after the package: ``serving/v2.py``)."""
    client = OpenInference(package)
    server = ours(project, package, venv)
    return replace(
        server,
        name=NAME,
        title=f"{server.title}, v2 `…/infer`",
        predict_path=f"/v2/models/{package}/infer",
        request=client.request,
        answers=client.answers,
        configure=client.configure,
        tolerance=V2_TOLERANCE,
    )
