"""Judging a scanned window: drift, decay, and the verdict.

Drift by two-sample tests and PSI (Bonferroni over the window's tests), decay by the live metrics against the
test-set ones; the rules are told in :mod:`.monitor`.
"""

from __future__ import annotations

from pathlib import Path
from typing import cast

import numpy as np

from {{ cookiecutter.package_name }}.contracts.prediction_log import Parsed
from {{ cookiecutter.package_name }}.contracts.profile import Profile, classified
from {{ cookiecutter.package_name }}.contracts.scoring import worsening
from {{ cookiecutter.package_name }}.monitoring.labels import Truth
from {{ cookiecutter.package_name }}.monitoring.quality import quality
from {{ cookiecutter.package_name }}.monitoring.report import summarise
from {{ cookiecutter.package_name }}.monitoring.scan import Scan
from {{ cookiecutter.package_name }}.monitoring.series import NumericSeries, Series
from {{ cookiecutter.package_name }}.monitoring.verdict import MetricResult, Performance, SeriesResult, Thresholds, Verdict
from {{ cookiecutter.package_name }}.pipeline.config import MonitorParams
from {{ cookiecutter.package_name }}.pipeline.schema import Schema

PSI_EPSILON = 1e-4


def psi(reference: np.ndarray, window: np.ndarray) -> float:
    """Population stability index of two count vectors over the same bins (proportions floored at ``1e-4``)."""
    expected = np.maximum(reference / max(reference.sum(), 1), PSI_EPSILON)
    actual = np.maximum(window / max(window.sum(), 1), PSI_EPSILON)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def _test_name(series: Series) -> str:
    return "Kolmogorov-Smirnov" if isinstance(series, NumericSeries) else "chi-squared"


def _test(series: Series, min_window: int) -> SeriesResult:
    """The two-sample test and PSI of one series (``p_value`` None when not judged)."""
    from scipy import stats

    result: SeriesResult = {
        "test": _test_name(series),
        "values": series.n,
        "statistic": None,
        "p_value": None,
        "psi": None,
    }
    if series.n < min_window:
        result["status"] = "insufficient"
        return result
    if isinstance(series, NumericSeries):
        ks = stats.ks_2samp(np.asarray(series.reference["sample"]), series.sample.values)
        result["statistic"], result["p_value"] = float(ks.statistic), float(ks.pvalue)
        result["psi"] = psi(np.asarray(series.reference["counts"], dtype=np.float64), series.counts.astype(np.float64))
        return result
    reference = np.array([series.reference["counts"].get(c, 0) for c in series.categories], dtype=np.float64)
    window = np.array([series.counts.get(c, 0) for c in series.categories], dtype=np.float64)
    result["psi"] = psi(reference, window)
    seen = (reference + window) > 0
    if seen.sum() < 2:  # one category only, on both sides: nothing to compare
        result["statistic"], result["p_value"] = 0.0, 1.0
        return result
    chi2 = stats.chi2_contingency(np.vstack([reference[seen], window[seen]]))
    result["statistic"], result["p_value"] = float(chi2.statistic), float(chi2.pvalue)
    return result


def drift(
    scan_: Scan, params: MonitorParams, version: str | None
) -> tuple[dict[str, SeriesResult], dict[str, SeriesResult], int]:
    """Per-feature and prediction results, Bonferroni over every test run on the window."""
    features = {name: _test(series, params.min_window) for name, series in scan_.features.items()}
    for name, result in features.items():
        result["type"] = scan_.features[name].reference.get("type")
    predictions: dict[str, SeriesResult] = {}
    for name, series in scan_.predictions.items():
        if scan_.reference_rows == 0:
            predictions[name] = {
                "test": _test_name(series),
                "values": 0,
                "statistic": None,
                "p_value": None,
                "psi": None,
                "status": "skipped",
                "detail": f"no prediction of the profiled model version {version} in the window",
            }
        else:
            predictions[name] = _test(series, params.min_window)
        predictions[name]["type"] = "number" if isinstance(series, NumericSeries) else "category"
        if isinstance(series, NumericSeries) and "name" in series.reference:
            predictions[name]["what"] = series.reference["name"]
    results = [*features.values(), *predictions.values()]
    tests = sum(1 for r in results if r["p_value"] is not None)
    level = params.alpha / max(tests, 1)
    for result in results:
        if "status" in result or result["p_value"] is None or result["psi"] is None:
            continue
        significant = result["p_value"] < level
        large = result["psi"] >= params.psi_threshold
        result["status"] = "drift" if significant and large else "small" if significant else "ok"
    return features, predictions, tests


def decay(scan_: Scan, profile: Profile, schema: Schema, params: MonitorParams) -> Performance:
    """Live metrics on the labelled predictions against the reference metrics (each judged if it has a limit)."""
    labelled = scan_.labelled
    reference = profile["metrics"]
    section: Performance = {"labelled": len(labelled), "min_labels": params.min_labels, "metrics": {}}
    live: dict[str, float] = {}
    if labelled and len(labelled) >= params.min_labels:
        live = _metrics(labelled, profile, schema)
    for name in sorted(set(params.max_drop) | set(live)):
        entry: MetricResult = {
            "reference": reference.get(name),
            "live": live.get(name),
            "max_drop": params.max_drop.get(name),
            "judged": name in params.max_drop,
        }
        drop = None
        if entry["live"] is not None and entry["reference"] is not None:
            drop = entry["drop"] = worsening(name, entry["live"], entry["reference"])
        if entry["live"] is None:
            entry["status"] = "insufficient"
        elif not entry["judged"]:
            entry["status"] = "ok"
        elif entry["reference"] is None or drop is None:
            entry["status"] = "missing"
        else:
            entry["status"] = "decay" if drop > params.max_drop[name] else "ok"
        section["metrics"][name] = entry
    return section


def _metrics(labelled: list[tuple[Truth, Parsed]], profile: Profile, schema: Schema) -> dict[str, float]:
    """The ``evaluate`` stage's metrics on the labelled predictions (pandas and scikit-learn: only when needed)."""
    import pandas as pd

    from {{ cookiecutter.package_name }}.pipeline.evaluate import Predictions, compute

    predictions = classified(profile["predictions"])
    if predictions is not None:
        classes = predictions["classes"]
        known = set(classes)
        pairs = [(truth, pred) for truth, pred in labelled if truth in known]
        if not pairs:
            return {}
        actual = pd.Series([truth for truth, _ in pairs], dtype=object)
        predicted = np.asarray([pred[0] for _, pred in pairs])  # type: ignore[index]
        scores = np.array([pred[1] for _, pred in pairs], dtype=np.float64)  # type: ignore[index]
        scores /= np.maximum(scores.sum(axis=1, keepdims=True), 1e-12)  # float32 outputs sum to 1 only nearly
        return compute(Predictions(actual, predicted, scores, classes), schema)
    actual = pd.Series([float(truth) for truth, _ in labelled], dtype=np.float64)
    values = np.array([pred for _, pred in labelled], dtype=np.float64)
    return compute(Predictions(actual, values, None, []), schema)


def judge(scan_: Scan, profile: Profile, schema: Schema, params: MonitorParams, reference: Path) -> Verdict:
    """The verdict of a scanned window: ``retrain`` is drift or decay (data-quality problems are only reported)."""
    version = profile["model_version"]
    features, predictions, tests = drift(scan_, params, version)
    performance = decay(scan_, profile, schema, params)
    problems = quality(scan_, params)
    drifted = any(r["status"] == "drift" for r in [*features.values(), *predictions.values()])
    decayed = any(m["status"] == "decay" for m in performance["metrics"].values())
    verdict: Verdict = {
        "format": 1,
        "reference": {
            "path": str(reference),
            "model_version": version,
            "train_rows": profile["rows"]["train"],
            "test_rows": profile["rows"]["test"],
            "rows_in_window": scan_.reference_rows,
        },
        "window": scan_.window.summary(),
        "labels": {
            "files": scan_.labels.files,
            "rows": scan_.labels.rows,
            "invalid": scan_.labels.invalid,
            "joined": len(scan_.labelled) + scan_.labelled_other_versions,
            "joined_profiled_model": len(scan_.labelled),
            "unmatched": len(scan_.labels.values),
        },
        "thresholds": cast(Thresholds, params.model_dump()),
        "tests": tests,
        "features": features,
        "predictions": predictions,
        "performance": performance,
        "quality": {"problems": problems, "flagged": sum(1 for p in problems if p["flagged"])},
        "drift": drifted,
        "decay": decayed,
        "quality_problems": any(p["flagged"] for p in problems),
        "retrain": drifted or decayed,
        "summary": "",
    }
    verdict["summary"] = summarise(verdict)
    return verdict
