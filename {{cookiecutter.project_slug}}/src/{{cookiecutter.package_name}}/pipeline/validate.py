"""Stage ``validate``: the gate. Every limit lives in ``params.yaml`` (section ``gate``).

It writes a machine-readable verdict listing each check with its measured value, its limit and by how much it
passed or failed (the latency check's figures, which differ run to run, go to ``paths.timings``, untracked). The
limits that fit any data come first: the model must beat a naive baseline (scored by ``evaluate`` on the same test
rows) by a share of the way from the baseline's score to a perfect one; every default limit is free of the target's
units (R², or an error relative to the naive baseline's).

The stage itself always records the verdict; ``{{ cookiecutter.package_name }} gate`` is the command that fails
(exit 1) when any check failed, so a failed gate still gets its report.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pandas as pd

from {{ cookiecutter.package_name }}.contracts import evaluation, verdict
from {{ cookiecutter.package_name }}.contracts.io import read_json, write_json
from {{ cookiecutter.package_name }}.contracts.scoring import HIGHER_IS_BETTER, worsening
from {{ cookiecutter.package_name }}.contracts.verdict import Check, failures
from {{ cookiecutter.package_name }}.pipeline import lineage
from {{ cookiecutter.package_name }}.pipeline.config import ConfigError, GateParams, Params
from {{ cookiecutter.package_name }}.pipeline.features import model_inputs, onnx_feeds
from {{ cookiecutter.package_name }}.pipeline.schema import Schema
from {{ cookiecutter.package_name }}.serving.session import session

__all__ = ["failures", "run"]


def _bounded(name: str, value: float, limit: float, *, upper: bool, detail: str) -> Check:
    margin = limit - value if upper else value - limit
    return Check(name, "pass" if margin >= 0 else "fail", value, limit, margin, detail)


def _metric(metrics: dict[str, float], name: str, where: str) -> float:
    if name not in metrics:
        known = ", ".join(sorted(metrics))
        raise ConfigError(f"params.yaml {where} names metric {name!r}, which this task does not compute ({known})")
    return metrics[name]


def threshold_checks(metrics: dict[str, float], params: GateParams) -> list[Check]:
    """Absolute limits on the test-set metrics."""
    checks = []
    for name, bound in params.thresholds.items():
        value = _metric(metrics, name, "gate.thresholds")
        if bound.min is not None:
            checks.append(_bounded(f"{name} >= {bound.min:g}", value, bound.min, upper=False, detail="absolute"))
        if bound.max is not None:
            checks.append(_bounded(f"{name} <= {bound.max:g}", value, bound.max, upper=True, detail="absolute"))
    return checks


def best_score(name: str) -> float:
    """A perfect value of a metric: 1 for the scores (accuracy ... roc_auc, r2), 0 for the errors (rmse, log_loss)."""
    return 1.0 if HIGHER_IS_BETTER.get(name, True) else 0.0


def naive_checks(scores: evaluation.Evaluation, params: GateParams) -> list[Check]:
    """The model must beat the naive baseline by the share of ``gate.beat_naive`` of the gap to a perfect score.

    For each metric there, the model closes at least that share of the gap between the baseline's value and a perfect
    one (0.2: an error 20% below the baseline's; accuracy 0.6 -> at least 0.68). A share of the gap, not a fixed
    amount, so that a limit always exists below a perfect score and does not depend on the target's units.
    """
    naive = scores["naive_baseline"]
    checks = []
    for name, share in params.beat_naive.items():
        value = _metric(scores["model"], name, "gate.beat_naive")
        best = best_score(name)
        label = f"{name} beats the naive baseline by {share * 100:g}% of its gap to {best:g}"
        if name not in naive["metrics"]:
            checks.append(Check(label, "skip", value, None, None, f"the naive baseline has no {name} on this test set"))
            continue
        base = naive["metrics"][name]
        limit = base + share * (best - base)
        formula = f"{base:.4g} + {share:g} * ({best:g} - {base:.4g})"
        detail = f"naive baseline {naive['estimator']}: {base:.4g}; limit {formula}"
        checks.append(_bounded(label, value, limit, upper=not HIGHER_IS_BETTER[name], detail=detail))
    return checks


def regression_checks(
    metrics: dict[str, float], baseline: dict[str, float] | None, ref: str, params: GateParams
) -> list[Check]:
    """No metric may worsen against the baseline by more than allowed."""
    checks = []
    for name, allowed in params.max_regression.items():
        value = _metric(metrics, name, "gate.max_regression")
        label = f"{name} vs {ref} (worsening <= {allowed:g})"
        if not baseline or name not in baseline:
            checks.append(Check(label, "skip", None, allowed, None, f"no committed {name} on {ref}"))
            continue
        checks.append(
            _bounded(
                label,
                worsening(name, value, baseline[name]),
                allowed,
                upper=True,
                detail=f"{ref}: {baseline[name]:.4g}",
            )
        )
    return checks


def slice_checks(slices: dict[str, dict[str, dict[str, Any]]], params: GateParams, min_size: int) -> list[Check]:
    """Largest gap of each metric between the best and the worst slice of a column."""
    checks = []
    for name, allowed in params.max_slice_gap.items():
        for column, groups in slices.items():
            sized = {k: v[name] for k, v in groups.items() if v["n"] >= min_size and v.get(name) is not None}
            label = f"{name} gap across {column} <= {allowed:g}"
            if len(sized) < 2:
                checks.append(Check(label, "skip", None, allowed, None, f"fewer than 2 slices with {min_size}+ rows"))
                continue
            best, worst = max(sized, key=sized.__getitem__), min(sized, key=sized.__getitem__)
            gap = sized[best] - sized[worst]
            checks.append(
                _bounded(
                    label, gap, allowed, upper=True, detail=f"{best} {sized[best]:.3f} vs {worst} {sized[worst]:.3f}"
                )
            )
    return checks


def parity_checks(parity: dict[str, Any], params: GateParams) -> list[Check]:
    """ONNX must reproduce scikit-learn."""
    checks = [
        _bounded(
            "ONNX parity: max difference",
            parity["max_diff"],
            params.parity.max_diff,
            upper=True,
            detail=f"on {parity['rows']} test rows",
        )
    ]
    if "label_agreement" in parity:
        checks.append(
            _bounded(
                "ONNX parity: label agreement",
                parity["label_agreement"],
                params.parity.min_label_agreement,
                upper=False,
                detail="share of identical labels",
            )
        )
    return checks


def measure_latency(sess: ort.InferenceSession, test: pd.DataFrame, schema: Schema, runs: int) -> verdict.Timings:
    """In-process latency of one prediction (batch of 1), in milliseconds."""
    inputs = model_inputs(test, schema)
    feeds = [onnx_feeds(inputs.iloc[[i % len(inputs)]], schema) for i in range(min(runs, len(inputs)))]
    for feed in feeds[:10]:
        sess.run(None, feed)
    timings = []
    for i in range(runs):
        start = time.perf_counter()
        sess.run(None, feeds[i % len(feeds)])
        timings.append((time.perf_counter() - start) * 1000)
    return {"p50_ms": float(np.percentile(timings, 50)), "p99_ms": float(np.percentile(timings, 99)), "runs": runs}


def runtime_checks(
    onnx_path: Path, test: pd.DataFrame, schema: Schema, params: GateParams, timings_path: Path
) -> tuple[list[Check], verdict.Timings | None]:
    """Model size, and latency under the serving runtime.

    The latency check records its pass or fail alone: the figures differ run to run, so they go to ``timings_path``
    (untracked), not into the verdict, which then stays the same for the same inputs.
    """
    size_mb = onnx_path.stat().st_size / 1e6
    checks = [_bounded("model size (MB)", size_mb, params.max_model_mb, upper=True, detail=onnx_path.name)]
    try:
        sess = session(onnx_path.read_bytes())
    except Exception as exc:  # any load failure is a failed check, with its reason
        checks.append(Check("loads in onnxruntime", "fail", None, None, None, str(exc)))
        return checks, None
    timings = measure_latency(sess, test, schema, params.latency_runs)
    passed = timings["p99_ms"] <= params.max_latency_ms
    detail = f"over {params.latency_runs} runs; the figures measured are in {timings_path} (untracked)"
    checks.append(
        Check("latency p99 (ms, batch 1)", "pass" if passed else "fail", limit=params.max_latency_ms, detail=detail)
    )
    return checks, timings


def run(params: Params, schema: Schema) -> verdict.Verdict:
    """Run every check of ``params.gate`` on the pipeline's outputs and write the verdict to ``paths.verdict``."""
    paths, gate = params.paths, params.gate
    scores = evaluation.read(paths.metrics)
    metrics = scores["model"]
    commit = lineage.resolve_ref(gate.baseline_ref)
    baseline = evaluation.committed_model_scores(lineage.json_at(commit, paths.metrics))
    paths.timings.unlink(missing_ok=True)  # no figures of an older model beside this verdict
    runtime, timings = runtime_checks(paths.onnx, pd.read_parquet(paths.test), schema, gate, paths.timings)
    checks = (
        naive_checks(scores, gate)
        + threshold_checks(metrics, gate)
        + regression_checks(metrics, baseline, gate.baseline_ref, gate)
        + slice_checks(read_json(paths.slices), gate, params.evaluate.min_slice_size)
        + parity_checks(read_json(paths.parity), gate)
        + runtime
    )
    result = verdict.verdict(checks, {"ref": gate.baseline_ref, "commit": commit, "metrics": baseline})
    verdict.write(paths.verdict, result)
    if timings is not None:
        write_json(paths.timings, timings)
    return result
