"""Serving benchmark (issues 3, 5 and 11, "Speed").

The generated project's server side by side with the same application on well-kept ASGI servers and with other model
servers, on the same model; and what its prediction log and its attack protections cost it.

One run, one server at a time:

1. writes a deterministic 30-feature numeric classification CSV, bakes a project with it (``task=classification``,
   ``model_family=linear``) and runs its pipeline up to ``track`` (``uv sync --frozen``, ``make setup``,
   ``dvc repro track``): ``models/model.onnx`` for our server, ``models/model.joblib`` (the scikit-learn pipeline),
   and an MLflow run holding the same ONNX model;
2. builds each server's runtime environment in a fresh venv from the shared uv cache and measures it on disk
   (``envs``): ours is the project's base dependencies only, what the image installs;
3. for each server (``--servers``, default all):

   - ``ours``: ``<package> serve``, the hand-written HTTP/1.1 layer (``serving/protocol.py``, ``serving/server.py``);
   - ``ours-v2``: the same server on ``POST /v2/models/{name}/infer`` (the Open Inference Protocol, ``v2``), the same
     rows as JSON tensors built from its model metadata (``GET /v2/models/{name}``), answers equal to ``/predict``'s;
   - ``uvicorn``, ``granian``: the very same ``App`` and ``Routes`` behind a bare ASGI callable
     (``serving/asgi.py``) on uvicorn (httptools, uvloop) and on granian (uvloop, HTTP/1): the issue's measurement of
     whether the hand-written layer stays. These servers are installed in the benchmark's venvs only;
   - ``mlflow``: ``mlflow models serve --env-manager local`` of the logged ONNX model (its tensor input, built from
     the graph's inputs: its ONNX flavour maps a dataframe onto the inputs only in simple cases);
   - ``kserve``, ``mlserver``: KServe's ModelServer with a custom ``kserve.Model`` around onnxruntime, and Seldon
     MLServer with ``mlserver-sklearn`` on ``model.joblib``, from PyPI (``peers``);

   starts it ``--starts`` times; cold start = process start to the first 200 from its readiness endpoint, polled
   every 5 ms; idle resident memory = the resident set (MB = 10^6 bytes) summed over the process tree once ready.
   Then each answers the same rows as ours (the same labels and probabilities within a tolerance, or the run is
   invalid), and ``wrk -t1 -c16 --latency`` posts a batch-1 request of a real row: a warm-up, then ``--duration``
   seconds measured: requests/s, latency percentiles, errors, and the server's CPU time per request (utime + stime of
   the process and every descendant, read with psutil, over the measured window, per request wrk completed);
4. the prediction log (issue 5, ``logcost``): our server twice more, side by side, with ``PREDICTION_LOG_DIR`` at the
   default sample rate and without, started afresh for each of ``--log-rounds`` rounds of ``--log-seconds`` of load
   on each, in alternating order (``rounds``); the median of the rounds' throughput ratios is the cost (under 5 %);
5. the attack protections (issue 11, ``hardening``): our server against the same project's server before the
   hardening (the template at ``--hardening-baseline``, baked into a runtime venv of its own, on the same model), on
   ``/predict``, in ``--hardening-rounds`` rounds of ``--hardening-seconds`` the same way (at most 10 %);
6. writes the figures, ours' ratios against each server, against the best of the three peers and against the best
   ASGI server, and the issues' targets, as JSON and Markdown (``markdown``; optionally into the README, between
   ``<!-- serving-benchmark:begin -->`` and ``<!-- serving-benchmark:end -->``).

Every server is started in its own process group and stopped with it (SIGTERM, then SIGKILL), also when the run
fails or is interrupted. Linux only (``/proc``); needs ``wrk``, and PyPI (or a warm uv cache) for the peers' and the
ASGI servers' venvs.

    python -m tools.serving_benchmark [--duration 10] [--servers ours,ours-v2,uvicorn,granian,mlflow,kserve,mlserver]
                                      [--log-rounds 8] [--log-seconds 3] [--hardening-rounds 8]
                                      [--hardening-seconds 3] [--hardening-baseline b7b716b]
                                      [--output benchmarks/serving.json] [--readme README.md] [--check]
    python -m tools.serving_benchmark --render [--output benchmarks/serving.json] [--readme README.md]

Exit status: 0; 1 if the run is invalid (different predictions, errors from our application on any server, non-2xx
from a peer, an empty prediction log, a server before the hardening that answers differently) or, with ``--check``, a
measured target is missed; 2 if a step failed.
"""
