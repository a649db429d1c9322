"""Stage ``report``: one GitHub-flavoured Markdown file a reviewer can decide from.

Order: the gate's verdict, metrics (beside a naive baseline's) and params against the baseline ref, slices, plots,
data lineage, and how to reproduce. Plots are Mermaid charts and tables, which GitHub renders itself, so nothing is
uploaded to a third-party image host unless ``report.images`` is turned on (PNG files for ``cml comment --publish``).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from {{ cookiecutter.package_name }}.contracts import evaluation
from {{ cookiecutter.package_name }}.contracts import metadata as model_metadata
from {{ cookiecutter.package_name }}.contracts.io import read_json, write_text
from {{ cookiecutter.package_name }}.contracts.markdown import FAILED, NEUTRAL, PASSED, WARNING, cell, change, estimate, table
from {{ cookiecutter.package_name }}.contracts.scoring import HIGHER_IS_BETTER, worsening
from {{ cookiecutter.package_name }}.contracts.verdict import Timings, Verdict, read_timings
from {{ cookiecutter.package_name }}.contracts.verdict import read as read_verdict
from {{ cookiecutter.package_name }}.pipeline import lineage
from {{ cookiecutter.package_name }}.pipeline.config import PARAMS_FILE, Params
from {{ cookiecutter.package_name }}.pipeline.schema import Schema
from {{ cookiecutter.package_name }}.pipeline.tracking import flatten

RESULT = {"pass": f"{PASSED} pass", "fail": f"{FAILED} **fail**", "skip": f"{NEUTRAL} skipped"}
MAX_ROWS = 40
SLICE_METRICS = ("accuracy", "f1_macro", "roc_auc", "rmse", "mae", "r2")  # the columns shown per slice


def verdict_section(verdict: Verdict, timings: Timings | None = None) -> str:
    """The gate's verdict first: the one thing a reviewer must not miss (with the latency measured, if known)."""
    failed = [c for c in verdict["checks"] if c["status"] == "fail"]
    head = (
        f"### {PASSED} Gate passed"
        if not failed
        else f"### {FAILED} Gate failed: {len(failed)} check(s) outside their limits"
    )
    rows = [
        [
            c["name"],
            timings["p99_ms"] if timings and c["name"].startswith("latency") else c["value"],
            *(c["limit"], RESULT[c["status"]], c["detail"]),
        ]
        for c in verdict["checks"]
    ]
    return f"{head}\n\n{table(['check', 'measured', 'limit', 'result', 'detail'], rows)}"


def _delta(name: str, new: float | None, old: float | None) -> str:
    if new is None or old is None:
        return "–"
    delta = new - old
    return change(delta, (delta > 0) == HIGHER_IS_BETTER.get(name, True))


def metrics_section(
    scores: evaluation.Evaluation, baseline: dict[str, float] | None, ref: str, averaged: str | None = None
) -> str:
    """Each metric of the naive baseline, on the baseline ref and here (with its confidence interval), and the change.

    ``averaged`` names the classes of a multiclass model, whose ROC AUC and average precision are micro-averaged.
    """
    base, naive, ci = baseline or {}, scores["naive_baseline"], scores["bootstrap"]

    def row(name: str, value: float) -> list[Any]:
        here = estimate(value, evaluation.bounds(ci, name))
        return [name, naive["metrics"].get(name), base.get(name), here, _delta(name, value, base.get(name))]

    rows = [row(name, value) for name, value in sorted(scores["model"].items())]
    notes = [f"_Naive baseline: `{naive['estimator']}` fitted on the training split, which ignores the features._"]
    notes.append("_" + " ".join(evaluation.interval_notes(ci)) + "_")
    if averaged:
        notes.append(f"_`roc_auc` and `average_precision` are micro-averaged over {averaged} (one-vs-rest, pooled)._")
    if not baseline:
        notes.append(f"_No committed metrics on `{ref}` yet: this is the first baseline._")
    head = table(["metric", "naive baseline", ref, "this change", "change"], rows)
    return "### Metrics (test set)\n\n" + "\n\n".join([head, *notes])


def params_section(current: dict[str, Any], baseline: dict[str, Any] | None, ref: str) -> str:
    """Only the parameters that differ from the baseline."""
    if baseline is None:
        return f"### Parameters\n\n_No `params.yaml` on `{ref}` to compare with._"
    new, old = flatten(current), flatten(baseline)
    changed = [[k, old.get(k), new.get(k)] for k in sorted(set(new) | set(old)) if new.get(k) != old.get(k)]
    if not changed:
        return f"### Parameters\n\nNo parameter differs from `{ref}`."
    return f"### Parameters changed\n\n{table(['parameter', ref, 'this change'], changed)}"


Slices = dict[str, dict[str, dict[str, Any]]]


def _slice_cell(name: str, value: Any, old: Any, allowed: float | None) -> str:
    """A slice's metric beside the baseline's: ``0.81 (+0.02 🟢)``; a worsening beyond ``allowed`` is marked."""
    if not isinstance(value, int | float):
        return cell(value)
    if not isinstance(old, int | float):
        return cell(float(value))
    fell = allowed is not None and worsening(name, float(value), float(old)) > allowed
    mark = f" {FAILED} **fell by more than {allowed:g}**" if fell else ""
    return f"{float(value):.4g} ({_delta(name, float(value), float(old))}){mark}"


def slices_section(
    slices: Slices,
    min_size: int,
    gated: set[str],
    baseline: Slices | None = None,
    ref: str = "main",
    allowed: dict[str, float] | None = None,
) -> str:
    """Per-slice metrics beside the baseline's, so a gain on average cannot hide a loss for a group.

    A slice whose metric worsened against ``ref`` by more than the gate's ``max_regression`` for it is marked.
    """
    if not slices:
        return ""
    parts = ["### Slices", "", f"Slices with fewer than {min_size} test rows are shown but not gated."]
    if baseline is None:
        parts.append(f"No committed slices on `{ref}` to compare with.")
    else:
        parts.append(f"Each value is followed by its change against `{ref}`.")
    for column, groups in slices.items():
        names = sorted({k for g in groups.values() for k in g if k in SLICE_METRICS or k in gated})
        before = (baseline or {}).get(column) or {}
        rows = [
            [
                category,
                g["n"],
                *(_slice_cell(n, g.get(n), (before.get(category) or {}).get(n), (allowed or {}).get(n)) for n in names),
            ]
            for category, g in groups.items()
        ]
        parts += ["", f"**{column}**", "", table(["category", "rows", *names], rows[:MAX_ROWS])]
    return "\n".join(parts)


def _series(values: np.ndarray) -> str:
    return "[" + ", ".join(f"{v:.3f}" for v in values) + "]"


def _curve(csv: str | None, x: str, y: str, grid: np.ndarray) -> np.ndarray | None:
    if not csv:
        return None
    frame = pd.read_csv(io.StringIO(csv)).sort_values([x, y])
    curve: np.ndarray = np.interp(grid, frame[x].to_numpy(), frame[y].to_numpy())
    return curve


# The colours of a chart's series, in order, set explicitly: Mermaid's default theme draws a second series in a grey
# barely visible on white, and its charts have no legend, so each title names the colours.
THIS, BASE = ("blue", "#0969DA"), ("orange", "#BC4C00")


def _palette(*colours: tuple[str, str]) -> str:
    """A Mermaid directive giving the chart's series these colours, in order."""
    config = {"themeVariables": {"xyChart": {"plotColorPalette": ", ".join(code for _, code in colours)}}}
    return "%%{init: " + json.dumps(config) + "}%%"


def _line_chart(title: str, x: str, y: str, lines: list[np.ndarray]) -> str:
    body = "\n".join(f"    line {_series(line)}" for line in lines)
    return (
        f'```mermaid\n{_palette(THIS, BASE)}\nxychart-beta\n    title "{title}"\n    x-axis "{x}" 0 --> 1\n'
        f'    y-axis "{y}" 0 --> 1\n{body}\n```'
    )


CURVES = (("roc.csv", "fpr", "tpr", "ROC"), ("precision_recall.csv", "recall", "precision", "PR"))


def curve_title(title: str, binary: bool) -> str:
    """A curve's title: a multiclass model's curves pool every class's one-vs-rest pairs (micro-average)."""
    return title if binary else f"{title}, micro-averaged over classes"


def curves_section(plots: Path, commit: str | None, ref: str, points: int, binary: bool = True) -> str:
    """ROC and precision-recall curves of this change, over the baseline's where it has them."""
    grid = np.linspace(0, 1, points)
    charts = []
    for name, x, y, title in CURVES:
        path = plots / name
        here = _curve(path.read_text(), x, y, grid)
        there = _curve(lineage.show_at(commit, path) if commit else None, x, y, grid)
        assert here is not None
        lines = [here] if there is None else [here, there]
        suffix = f": this change ({THIS[0]})" if there is None else f": this change ({THIS[0]}) vs {ref} ({BASE[0]})"
        charts.append(_line_chart(f"{curve_title(title, binary)}{suffix}", x, y, lines))
    return "\n\n".join(charts)


def _confusion(csv: str, classes: list[str]) -> tuple[pd.DataFrame, int]:
    frame = pd.read_csv(io.StringIO(csv), dtype=str)
    matrix = pd.crosstab(frame["actual"], frame["predicted"]).reindex(index=classes, columns=classes, fill_value=0)
    return matrix, len(frame)


def confusion_section(plots: Path, classes: list[str], commit: str | None = None, ref: str = "main") -> str:
    """The confusion matrix as a table (rows: actual labels, columns: predicted).

    Each count is followed by its change against ``ref`` when both were counted on the same number of test rows.
    """
    path = plots / "confusion.csv"
    matrix, rows_here = _confusion(path.read_text(), classes)
    committed = lineage.show_at(commit, path) if commit else None
    before, rows_there = _confusion(committed, classes) if committed else (None, 0)
    title = f"**Confusion matrix** on {rows_here:,} test rows (rows: actual, columns: predicted)"
    if before is None:
        title += f"; no committed matrix on `{ref}` to compare with"
    elif rows_there != rows_here:
        title += f"; `{ref}` counted {rows_there:,} test rows, so counts are not compared"
        before = None
    else:
        title += f"; each count is followed by its change against `{ref}`"

    def count(actual: str, predicted: str) -> str:
        value = int(matrix.loc[actual, predicted])
        if before is None:
            return str(value)
        delta = value - int(before.loc[actual, predicted])
        return f"{value} ({delta:+d})" if delta else str(value)

    rows = [[f"**{a}**", *(count(a, p) for p in classes[:MAX_ROWS])] for a in classes[:MAX_ROWS]]
    return f"{title}\n\n" + table(["", *classes[:MAX_ROWS]], rows)


def regression_section(plots: Path, points: int) -> str:
    """Mean prediction per decile of the actual value, and the residual histogram."""
    frame = pd.read_csv(plots / "predictions.csv")
    deciles = pd.qcut(frame["actual"], q=min(10, frame["actual"].nunique()), duplicates="drop")
    grouped = frame.groupby(deciles, observed=True)[["actual", "predicted"]].mean()
    low, high = float(grouped.min().min()), float(grouped.max().max())
    calibration = (
        f"```mermaid\n{_palette(THIS, BASE)}\nxychart-beta\n"
        f'    title "Mean predicted ({THIS[0]}) vs mean actual ({BASE[0]}) by decile of the actual value"\n'
        f'    x-axis "decile of actual value" [{", ".join(str(i + 1) for i in range(len(grouped)))}]\n'
        f'    y-axis "value" {low:.4g} --> {high:.4g}\n    line {_series(grouped["predicted"].to_numpy())}\n'
        f"    line {_series(grouped['actual'].to_numpy())}\n```"
    )
    counts, edges = np.histogram(frame["residual"], bins=min(points, 30))
    centres = (edges[:-1] + edges[1:]) / 2
    histogram = (
        f'```mermaid\n{_palette(THIS)}\nxychart-beta\n    title "Residuals (actual - predicted)"\n'
        f'    x-axis "residual" [{", ".join(f"{c:.3g}" for c in centres)}]\n'
        f'    y-axis "rows" 0 --> {int(counts.max())}\n    bar [{", ".join(str(int(c)) for c in counts)}]\n```'
    )
    return f"{calibration}\n\n{histogram}"


def lineage_section(
    profile: dict[str, Any],
    baseline: dict[str, Any] | None,
    ref: str,
    run: dict[str, Any],
    commit: str | None,
    dirty: bool = False,
) -> str:
    """What data this model was trained on, what changed against the baseline, and the code that ran.

    ``dirty``: the code or settings had changes not committed, so the commit alone does not reproduce the run.
    """
    if baseline is None:
        changed = f"no data profile on `{ref}` to compare with"
    elif baseline.get("raw_md5") == profile["raw_md5"]:
        changed = f"**unchanged** from `{ref}`"
    else:
        changed = f"**changed** from `{ref}` (`{str(baseline.get('raw_md5'))[:12]}` → `{profile['raw_md5'][:12]}`)"
    rows = [["raw data (DVC md5)", (baseline or {}).get("raw_md5"), profile["raw_md5"]]]
    for split, count in profile["rows"].items():
        rows.append([f"rows: {split}", ((baseline or {}).get("rows") or {}).get(split), count])
    for label, count in (profile.get("labels") or {}).items():
        rows.append([f"label `{label}`", ((baseline or {}).get("labels") or {}).get(label), count])
    link = (
        f"[MLflow run `{run['run_id'][:12]}`]({run['url']})"
        if run.get("url")
        else (
            f"MLflow run `{run['run_id']}` in `{run['tracking_uri']}` (open it with `mlflow ui --backend-store-uri "
            f"{run['tracking_uri']}`)"
        )
    )
    unlabelled = int(profile["rows"].get("unlabelled") or 0)
    if unlabelled:
        changed += (
            f". {unlabelled:,} of its {profile['rows']['raw']:,} rows have no label: they are left out of training and "
            "evaluation (the schema's `target.missing: drop`)"
        )
    code = f"commit `{commit}`" if commit else "not committed yet"
    if commit and dirty:
        code += (
            f" {WARNING} **with uncommitted changes**: the code or settings that ran are not that commit's, so it does "
            "not reproduce this report (commit them and rerun)"
        )
    return (
        f"### Data lineage\n\nRaw data: {changed}.\n\n{table(['', ref, 'this change'], rows)}\n\n"
        f"- Code: {code}\n- {link}\n"
        f"- Reproduce: `git checkout {(commit or 'HEAD')[:12]} && dvc pull && dvc repro`"
    )


def images(plots: Path, out_dir: Path, schema: Schema) -> list[str]:
    """Opt-in PNG plots for ``cml comment --publish``; returns Markdown image lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines = []
    if schema.target.kind == "classification":
        specs = [(name, x, y, curve_title(title, schema.target.binary)) for name, x, y, title in CURVES]
    else:
        specs = [("predictions.csv", "actual", "predicted", "Predicted vs actual")]
    for name, x, y, title in specs:
        frame = pd.read_csv(plots / name)
        fig, ax = plt.subplots(figsize=(4, 4))
        ax.plot(
            frame[x],
            frame[y],
            marker="" if schema.target.kind == "classification" else ".",
            linestyle="-" if schema.target.kind == "classification" else "",
        )
        ax.set_title(title)
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        target = out_dir / name.replace(".csv", ".png")
        target.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(target, dpi=100, bbox_inches="tight")
        plt.close(fig)
        lines.append(f"![{name}]({target.name})")
    return lines


def _averaged(schema: Schema) -> str | None:
    """The classes a multiclass model's ROC AUC and average precision average over, in words; None otherwise."""
    if schema.target.kind != "classification" or schema.target.binary:
        return None
    return f"its {len(schema.target.labels)} classes"


def _without_paths(params: Any) -> Any:
    return {k: v for k, v in params.items() if k != "paths"} if isinstance(params, dict) else params


def build(params: Params, schema: Schema, title: str) -> str:
    """The whole report as Markdown."""
    paths = params.paths
    ref = params.gate.baseline_ref
    verdict = read_verdict(paths.verdict)
    commit = verdict["baseline"]["commit"]
    raw_params = yaml.safe_load(PARAMS_FILE.read_text())
    base_params = lineage.yaml_at(commit, PARAMS_FILE)
    sections = [
        f"## {title}",
        verdict_section(verdict, read_timings(paths.timings)),
        metrics_section(evaluation.read(paths.metrics), verdict["baseline"]["metrics"], ref, _averaged(schema)),
        params_section(_without_paths(raw_params), _without_paths(base_params), ref),
        slices_section(
            read_json(paths.slices),
            params.evaluate.min_slice_size,
            set(params.gate.max_slice_gap),
            lineage.json_at(commit, paths.slices),
            ref,
            params.gate.max_regression,
        ),
        "### Plots",
    ]
    if schema.target.kind == "classification":
        points = params.evaluate.curve_points
        sections.append(curves_section(paths.plots, commit, ref, points, schema.target.binary))
        classes = model_metadata.read(paths.metadata)["classes"]
        sections.append(confusion_section(paths.plots, classes, commit, ref))
    else:
        sections.append(regression_section(paths.plots, params.evaluate.curve_points))
    if params.report.images:
        sections.append("\n".join(images(paths.plots, paths.report.parent, schema)))
    sections.append(
        lineage_section(
            read_json(paths.data_profile),
            lineage.json_at(commit, paths.data_profile),
            ref,
            read_json(paths.run),
            lineage.git_commit(),
            lineage.git_dirty(paths.outputs()),
        )
    )
    sections.append(f"Model card: `{paths.card}` (stage `card`; the team's sentences: `docs/model-card.md`).")
    return "\n\n".join(s for s in sections if s) + "\n"


def run(params: Params, schema: Schema, title: str) -> str:
    """Write the report file."""
    text = build(params, schema, title)
    write_text(params.paths.report, text)
    return text
