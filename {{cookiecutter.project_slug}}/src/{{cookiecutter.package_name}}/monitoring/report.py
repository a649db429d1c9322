"""The monitoring report: the verdict as Markdown (the monitor workflow posts it as an issue).

The verdict and its summary first, then the window, drift, predictions, decay, data quality and thresholds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from {{ cookiecutter.package_name }}.contracts import markdown
from {{ cookiecutter.package_name }}.contracts.markdown import BETTER, FAILED, NEUTRAL, PASSED, WARNING, WORSE
from {{ cookiecutter.package_name }}.monitoring.verdict import SeriesResult, Verdict

RESULT = {
    "ok": f"{PASSED} ok",
    "drift": f"{FAILED} **drift**",
    "small": f"{WARNING} shifted, PSI below the threshold",
    "insufficient": f"{NEUTRAL} too few values",
    "skipped": f"{NEUTRAL} skipped",
    "decay": f"{FAILED} **decay**",
    "missing": f"{NEUTRAL} no reference value",
}
"""How the report shows a series' or a metric's result."""


def _names(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def summarise(verdict: Verdict) -> str:
    """The one-line summary: what to do, and why."""
    window = verdict["window"]
    drifted = [n for n, r in verdict["features"].items() if r["status"] == "drift"]
    predicted = [n for n, r in verdict["predictions"].items() if r["status"] == "drift"]
    decayed = {n: m for n, m in verdict["performance"]["metrics"].items() if m["status"] == "decay"}
    reasons = []
    if drifted or predicted:
        what = list(drifted) + ([f"the predictions ({', '.join(predicted)})"] if predicted else [])
        reasons.append(f"drift in {_names(what)}")
    if decayed:
        falls = [f"{n} {m['reference']:.4g} → {m['live']:.4g}" for n, m in decayed.items()]
        reasons.append(f"decay of {_names(falls)}")
    span = (
        f"{window['in_window']:,} predictions"
        + (f" from {window['first']} to {window['last']}" if window["first"] else "")
        + f", {window['malformed']:,} malformed line(s)"
    )
    flagged = [p for p in verdict["quality"]["problems"] if p["flagged"]]
    issues = f"; {len(flagged)} data-quality problem(s)" if flagged else ""
    reference = verdict["reference"]
    if window["in_window"] and not reference["rows_in_window"]:
        issues += f"; no prediction of the profiled model {reference['model_version']}: predictions and decay unjudged"
    if reasons:
        return f"Retrain: {'; '.join(reasons)} ({span}{issues})."
    if not verdict["tests"]:
        least = verdict["thresholds"]["min_window"]
        return f"Healthy, but too few predictions to judge drift (fewer than {least:,} values): {span}{issues}."
    return f"Healthy: no drift or decay beyond the thresholds ({span}{issues})."


def _fmt(value: Any) -> str:
    """A cell as the pull-request report formats it, with yes/no for booleans and thousands separators in counts."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    return markdown.cell(value)


def table(header: list[str], rows: list[list[Any]]) -> str:
    """A Markdown table in the pull-request report's layout."""
    return markdown.table(header, rows, _fmt)


def _code(text: str) -> str:
    return text.replace("`", "'")


def _pct(share: float) -> str:
    return f"{100 * share:.2f}%"


def _heading(verdict: Verdict) -> str:
    drifted = [f"`{n}`" for n, r in verdict["features"].items() if r["status"] == "drift"]
    if any(r["status"] == "drift" for r in verdict["predictions"].values()):
        drifted.append("the predictions")
    decayed = [f"`{n}`" for n, m in verdict["performance"]["metrics"].items() if m["status"] == "decay"]
    flagged = sum(1 for p in verdict["quality"]["problems"] if p["flagged"])
    note = f" ({WARNING} {flagged} data-quality problem(s))" if flagged else ""
    if verdict["retrain"]:
        parts = ([f"drift in {_names(drifted)}"] if drifted else []) + (
            [f"decay of {_names(decayed)}"] if decayed else []
        )
        return f"### {FAILED} Retrain: {'; '.join(parts)}{note}"
    if not verdict["tests"]:
        return f"### {NEUTRAL} Too few predictions to judge drift{note}"
    return f"### {PASSED} No drift or decay beyond the thresholds{note}"


def _window_section(verdict: Verdict) -> str:
    w = verdict["window"]
    labels = verdict["labels"]
    reference = verdict["reference"]
    versions = ", ".join(f"`{v}`: {n:,}" for v, n in list(w["model_versions"].items())[:10]) or "–"
    bounds = f"{w['since'] or 'the first line'} to {w['until'] or 'the last line'}"
    rows: list[list[Any]] = [
        ["window (from `--since` to `--until`)", bounds],
        ["log files", w["files"]],
        ["lines read", w["lines"]],
        ["malformed lines (left out)", w["malformed"]],
        ["lines before / after the window", f"{w['before_since']:,} / {w['after_until']:,}"],
        ["predictions in the window", w["in_window"]],
        ["first / last", f"{w['first'] or '–'} / {w['last'] or '–'}"],
        ["model versions", versions],
        [f"predictions of the profiled model `{reference['model_version']}`", reference["rows_in_window"]],
        ["labels read (files)", f"{labels['rows']:,} ({labels['files']:,})"],
        ["labels joined to these predictions", labels["joined"]],
        ["labels matching no prediction in the window", labels["unmatched"]],
    ]
    section = f"### Window\n\n{table(['', ''], rows)}"
    if w["malformed_examples"]:
        shown = "\n".join(
            f"- `{e['file']}` line {e['line']}: {e['problem']}: `{_code(e['text'])}`" for e in w["malformed_examples"]
        )
        section += f"\n\nMalformed lines (first {len(w['malformed_examples'])}):\n\n{shown}"
    return section


def _drift_rows(results: dict[str, SeriesResult], label: Callable[[str, SeriesResult], str]) -> list[list[Any]]:
    return [
        [
            label(name, r),
            r.get("type"),
            r["test"],
            r["statistic"],
            r["p_value"],
            r["psi"],
            r["values"],
            RESULT[r["status"]],
        ]
        for name, r in results.items()
    ]


def _prediction_name(name: str, what: str | None) -> str:
    return name if not what or what == name else f"{name} ({what})"


def _drift_section(verdict: Verdict) -> str:
    t = verdict["thresholds"]
    tests = verdict["tests"]
    rule = (
        f"A series drifted when its test rejects at α/m = {t['alpha']:g}/{tests} = {t['alpha'] / max(tests, 1):.3g} "
        f"(Bonferroni over the {tests} tests of this window: the chance of any false alarm is at most {t['alpha']:g}) "
        f"**and** its PSI is at least {t['psi_threshold']:g}. Series with fewer than {t['min_window']:,} values are "
        "not judged; nulls are counted under data quality."
    )
    header = ["feature", "type", "test", "statistic", "p-value", "PSI", "values", "result"]
    features = table(header, _drift_rows(verdict["features"], lambda n, _: f"`{n}`"))
    names = {"class": "predicted class", "score": "score", "value": "predicted value"}
    predictions = table(
        ["prediction", *header[1:]],
        _drift_rows(verdict["predictions"], lambda n, r: _prediction_name(names.get(n, n), r.get("what"))),
    )
    skipped = [r["detail"] for r in verdict["predictions"].values() if r.get("detail")]
    note = f"\n\n_{skipped[0]}: the predictions are not compared._" if skipped else ""
    return (
        f"### Drift\n\n{rule}\n\n{features}\n\n### Predictions\n\nThe model's predictions against its predictions on "
        f"held-out data.\n\n{predictions}{note}"
    )


def _decay_section(verdict: Verdict) -> str:
    perf = verdict["performance"]
    n, needed = perf["labelled"], perf["min_labels"]
    if n < needed:
        why = "No label joined" if n == 0 else f"{n:,} labelled predictions, fewer than `min_labels` ({needed:,})"
        return f"### Decay\n\n_{why}: decay is not judged._"
    rows = []
    for name, m in perf["metrics"].items():
        change = "–"
        drop, live, reference = m.get("drop"), m["live"], m["reference"]
        if drop is not None and live is not None and reference is not None:
            delta = live - reference
            change = "0" if abs(delta) < 1e-12 else f"{delta:+.4g} {WORSE if drop > 0 else BETTER}"
        rows.append(
            [name, m["reference"], m["live"], change, m["max_drop"], RESULT[m["status"]] if m["judged"] else "–"]
        )
    intro = (
        f"On {n:,} labelled predictions of the profiled model, against its test-set metrics "
        f"({BETTER} better, {WORSE} worse)."
    )
    return f"### Decay\n\n{intro}\n\n{table(['metric', 'reference', 'live', 'change', 'max drop', 'result'], rows)}"


def _quality_section(verdict: Verdict) -> str:
    problems = verdict["quality"]["problems"]
    if not problems:
        return "### Data quality\n\nNo data-quality problem in the window."
    rows = [
        [
            f"`{p['feature']}`" if p["feature"] else "–",
            p["problem"],
            p["count"],
            _pct(p["share"]),
            _pct(p["limit"]),
            ", ".join(f"`{e}`" for e in p["examples"]) or "–",
            f"{WARNING} **above the limit**" if p["flagged"] else f"{PASSED} within",
        ]
        for p in problems
    ]
    intro = (
        "Shares of the predictions in the window (of the lines read for malformed lines); null limits are the training "
        "data's null rate plus the tolerance. Data-quality problems do not ask for retraining: fix their source."
    )
    header = ["feature", "problem", "rows", "share", "limit", "examples", "result"]
    return f"### Data quality\n\n{intro}\n\n{table(header, rows)}"


def _thresholds_section(verdict: Verdict) -> str:
    t = verdict["thresholds"]
    q = t["quality"]
    drops = ", ".join(f"{k} {v:g}" for k, v in t["max_drop"].items()) or "none"
    reference = verdict["reference"]
    return (
        "### Thresholds\n\n"
        f"From `params.yaml` (`monitor:`): alpha {t['alpha']:g}, PSI threshold {t['psi_threshold']:g}, min window "
        f"{t['min_window']:,}, min labels {t['min_labels']:,}, max drop: {drops}; quality: malformed "
        f"{_pct(q['max_malformed'])}, null increase {_pct(q['max_null_increase'])}, out of range "
        f"{_pct(q['max_out_of_range'])}, unseen {_pct(q['max_unseen'])}, invalid {_pct(q['max_invalid'])}.\n\n"
        f"Reference profile `{reference['path']}`: model `{reference['model_version']}`, "
        f"{reference['train_rows']:,} training rows, {reference['test_rows']:,} held-out predictions."
    )


def render(verdict: Verdict, title: str) -> str:
    """The Markdown report: verdict and summary first, then window, drift, predictions, decay, quality."""
    sections = [
        f"## {title}",
        _heading(verdict),
        verdict["summary"],
        _window_section(verdict),
        _drift_section(verdict),
        _decay_section(verdict),
        _quality_section(verdict),
        _thresholds_section(verdict),
    ]
    return "\n\n".join(sections) + "\n"
