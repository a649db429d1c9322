"""The peers from PyPI on the same model: KServe's ModelServer and Seldon's MLServer (``mlflow`` is in ``servers``).

None of the servers measured writes a log line per request: ours has none, the ASGI servers run without access log,
MLflow's uvicorn gets ``UVICORN_ACCESS_LOG=false``, and each peer's switch is used, as below.

- KServe (``kserve``, ``KSERVE``): a custom ``kserve.Model`` around onnxruntime on ``models/model.onnx``, the way
  KServe documents a custom predictor without Triton (``ModelServer().start([model])``), answering the v1 REST
  protocol (``POST /v1/models/model:predict`` with ``{"instances": [...]}``, the same rows as ours). gRPC is off (not
  measured, and it would need a port of its own); ``--enable_latency_logging false`` and ``--configure_logging
  false`` (no line per request: uvicorn's access log has no handler then). It listens on 0.0.0.0 (hard-coded).
- MLServer (``mlserver`` + ``mlserver-sklearn``, ``MLSERVER``): ``mlserver_sklearn.SKLearnModel`` on the pipeline's
  scikit-learn ``models/model.joblib`` (scikit-learn pinned to the project's lock, so the pickle loads as trained),
  the Open Inference Protocol (``POST /v2/models/model/infer``, one input per feature with ``parameters.content_type:
  "pd"`` so the pipeline gets a DataFrame with its column names; the ``predict_proba`` output only, the label being
  the likeliest class: asking for ``predict`` too would run the pipeline twice). ``parallel_workers: 0``: inference
  in the server's process, faster for a model this cheap than handing each request to a worker process (the
  default, 1); ``debug: false`` (no access log). It crashes with uvloop 0.22 and later (SeldonIO/MLServer#2286):
  uvloop is pinned below that in its venv. Its metrics and gRPC servers run as by default, each on a spare port.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tools.benchmark import StepError, clean_env
from tools.serving_bench.common import SKLEARN_TOLERANCE
from tools.serving_bench.servers import Answers, Server

KSERVE = ("kserve==0.21.0",)  # with onnxruntime pinned to the project's lock
MLSERVER = ("mlserver==1.7.1", "mlserver-sklearn==1.7.1", "uvloop<0.22")  # with scikit-learn pinned to the lock
MODEL_NAME = "model"

KSERVE_MODEL = '''"""A KServe custom predictor: the ONNX model with onnxruntime (KServe's documented custom model)."""

import argparse
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
from kserve import Model, ModelServer, model_server


class OnnxModel(Model):
    def __init__(self, name, model_dir, inputs):
        super().__init__(name)
        self.model_dir = Path(model_dir)
        self.spec = json.loads(Path(inputs).read_text())
        self.load()

    def load(self):
        self.session = ort.InferenceSession(str(self.model_dir / "model.onnx"), providers=["CPUExecutionProvider"])
        self.ready = True
        return self.ready

    async def predict(self, payload, headers=None, response_headers=None):
        rows = payload["instances"]
        feed = {}
        for tensor in self.spec["inputs"]:
            name = tensor["name"]
            if name in rows[0]:
                feed[name] = np.array([[row[name]] for row in rows], dtype=np.float32)
            else:
                feed[name] = np.array([[row[f] for f in self.spec["numeric"]] for row in rows], dtype=np.float32)
        labels, probabilities = self.session.run(["label", "probabilities"], feed)
        return {
            "predictions": [
                {"label": str(label), "probabilities": row}
                for label, row in zip(labels.ravel().tolist(), probabilities.tolist())
            ]
        }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(parents=[model_server.parser])
    parser.add_argument("--model_dir", required=True)
    parser.add_argument("--inputs", required=True)
    args, _ = parser.parse_known_args()
    ModelServer().start([OnnxModel(args.model_name, args.model_dir, args.inputs)])
'''


def kserve(work: Path, project: Path, venv: Path, inputs: list[dict[str, Any]], numeric: list[str]) -> Server:
    """KServe's ModelServer with a custom ``kserve.Model`` around onnxruntime, v1 REST, from ``venv``."""
    folder = work / "kserve"
    folder.mkdir(parents=True, exist_ok=True)
    script, spec = folder / "onnx_model.py", folder / "inputs.json"
    script.write_text(KSERVE_MODEL)
    spec.write_text(json.dumps({"inputs": inputs, "numeric": numeric}))
    return Server(
        name="kserve",
        title="KServe ModelServer",
        group="peer",
        command=[
            *(str(venv / "bin" / "python"), str(script), "--model_dir", str(project / "models"), "--inputs", str(spec)),
            *("--model_name", MODEL_NAME, "--http_port", "{port}", "--enable_grpc", "false"),
            *("--enable_latency_logging", "false", "--configure_logging", "false"),
        ],
        env=clean_env(),
        cwd=folder,
        ready_path=f"/v1/models/{MODEL_NAME}",
        predict_path=f"/v1/models/{MODEL_NAME}:predict",
        request=lambda rows: {"instances": rows},
        answers=lambda doc, classes: [
            (str(p["label"]), [float(x) for x in p["probabilities"]]) for p in doc["predictions"]
        ],
    )


def mlserver_request(rows: list[dict[str, float]]) -> dict[str, Any]:
    """An Open Inference Protocol request: one FP64 input per feature, decoded as a DataFrame (``content_type: pd``)."""
    return {
        "parameters": {"content_type": "pd"},
        "inputs": [
            {"name": name, "shape": [len(rows)], "datatype": "FP64", "data": [row[name] for row in rows]}
            for name in rows[0]
        ],
        "outputs": [{"name": "predict_proba"}],
    }


def mlserver_answers(doc: Any, classes: list[str]) -> Answers:
    """Labels and probabilities from MLServer's ``predict_proba`` output: the label is the likeliest class.

    Only ``predict_proba`` is asked for: asking for ``predict`` too runs the scikit-learn pipeline twice per request
    (about 5 ms each here), and the likeliest class is what ``predict`` answers for these classifiers.
    """
    outputs = {output["name"]: output for output in doc["outputs"]}
    if set(outputs) != {"predict_proba"}:
        raise StepError(f"MLServer answered outputs {sorted(outputs)}, not predict_proba")
    flat, width = outputs["predict_proba"]["data"], len(classes)
    answers = []
    for i in range(len(flat) // width):
        row = [float(p) for p in flat[i * width : (i + 1) * width]]
        answers.append((classes[row.index(max(row))], row))
    return answers


def mlserver(work: Path, project: Path, venv: Path) -> Server:
    """MLServer with ``mlserver-sklearn`` on the pipeline's ``model.joblib``, Open Inference Protocol, from ``venv``."""
    folder = work / "mlserver"
    (folder / MODEL_NAME).mkdir(parents=True, exist_ok=True)
    settings = {"debug": False, "parallel_workers": 0, "host": "127.0.0.1"}
    (folder / "settings.json").write_text(json.dumps(settings))
    model_settings = {
        "name": MODEL_NAME,
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": str(project / "models" / "model.joblib")},
    }
    (folder / MODEL_NAME / "model-settings.json").write_text(json.dumps(model_settings))
    return Server(
        name="mlserver",
        title="MLServer (`mlserver-sklearn`)",
        group="peer",
        command=[str(venv / "bin" / "mlserver"), "start", str(folder)],
        env={**clean_env(), "MLSERVER_HTTP_PORT": "{port}"},
        cwd=folder,
        ready_path=f"/v2/models/{MODEL_NAME}/ready",
        predict_path=f"/v2/models/{MODEL_NAME}/infer",
        request=mlserver_request,
        answers=mlserver_answers,
        tolerance=SKLEARN_TOLERANCE,
        spare_ports=("MLSERVER_GRPC_PORT", "MLSERVER_METRICS_PORT"),
    )
