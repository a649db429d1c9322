"""Data quality of the live inputs: every problem found, flagged above its limit.

Malformed lines, unknown keys, unreadable labels, and per feature missing values, wrong types, nulls above the
training data's rate, numbers out of range and unseen categories.

Each is a share of the window's predictions (of the lines read, for malformed lines), flagged above its limit in
``params.yaml``. Data-quality problems are reported but do not ask for retraining: a broken client is fixed, not
learned.
"""

from __future__ import annotations

from {{ cookiecutter.package_name }}.monitoring.scan import Scan
from {{ cookiecutter.package_name }}.monitoring.series import EXAMPLES, CategorySeries, NumericSeries
from {{ cookiecutter.package_name }}.monitoring.verdict import Problem
from {{ cookiecutter.package_name }}.pipeline.config import MonitorParams


def _problem(feature: str | None, problem: str, count: int, total: int, limit: float, examples: list[str]) -> Problem:
    share = count / total if total else 0.0
    return {
        "feature": feature,
        "problem": problem,
        "count": count,
        "share": share,
        "limit": limit,
        "examples": examples,
        "flagged": share > limit,
    }


def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:g}"


def quality(scan_: Scan, params: MonitorParams) -> list[Problem]:
    """Every data-quality problem found (flagged when above its limit)."""
    limits = params.quality
    window = scan_.window
    rows = window.rows
    problems = []
    if window.malformed:
        examples = [f"{e['file']}:{e['line']} {e['problem']}" for e in window.malformed_examples[:EXAMPLES]]
        problems.append(
            _problem(None, "malformed log lines", window.malformed, window.lines, limits.max_malformed, examples)
        )
    if scan_.lines_with_unknown_keys:
        keys = [k for k, _ in scan_.unknown_keys.most_common(EXAMPLES)]
        problems.append(
            _problem(None, "inputs not in the schema", scan_.lines_with_unknown_keys, rows, limits.max_invalid, keys)
        )
    if scan_.labels.invalid:
        problems.append(
            _problem(
                None,
                "unreadable labels",
                scan_.labels.invalid,
                scan_.labels.rows,
                limits.max_invalid,
                scan_.labels.examples,
            )
        )
    for name, series in scan_.features.items():
        if series.missing:
            problems.append(_problem(name, "missing from the inputs", series.missing, rows, limits.max_invalid, []))
        if series.invalid:
            problems.append(
                _problem(name, "wrong type", series.invalid, rows, limits.max_invalid, series.invalid_examples)
            )
        reference_rate = series.reference["nulls"] / max(series.reference["rows"], 1)
        rate = series.nulls / rows if rows else 0.0
        if rate > reference_rate + limits.max_null_increase:  # below that, the usual nulls of this feature
            entry = _problem(name, "nulls", series.nulls, rows, reference_rate + limits.max_null_increase, [])
            entry["reference_share"] = reference_rate
            problems.append(entry)
        if isinstance(series, NumericSeries) and series.out_of_range:
            bounds = f"[{_number(series.low)}, {_number(series.high)}]"
            learnt = [
                side for side, bound in (("min", series.schema_low), ("max", series.schema_high)) if bound is None
            ]
            source = f" (training data's {' and '.join(learnt)})" if learnt else ""
            problems.append(
                _problem(
                    name,
                    f"outside {bounds}{source}",
                    series.out_of_range,
                    rows,
                    limits.max_out_of_range,
                    series.range_examples,
                )
            )
        if isinstance(series, CategorySeries) and series.unseen_total:
            shown = [repr(k) for k, _ in series.unseen.most_common(EXAMPLES)]
            problems.append(_problem(name, "unseen categories", series.unseen_total, rows, limits.max_unseen, shown))
    return problems
