"""Stage ``report``: the gate's verdict first, metrics and params against the baseline, charts GitHub draws
itself, and no image hosted elsewhere unless asked for."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from conftest import PIPELINE_ROWS, Workspace, commit_all, git, require_impossible, write_fake_run

from {{ cookiecutter.package_name }}.contracts.scoring import HIGHER_IS_BETTER
from {{ cookiecutter.package_name }}.pipeline import synthetic
from {{ cookiecutter.package_name }}.pipeline.schema import Schema

REMOTE_IMAGE = re.compile(r"!\[[^\]]*\]\(\s*<?\s*[a-zA-Z][a-zA-Z0-9+.-]*://")
IMAGE = re.compile(r"!\[[^\]]*\]\(([^)]*)\)")
DELTA = 0.05


@pytest.fixture
def reviewed(trained: Workspace, tmp_path: Path) -> tuple[Workspace, dict[str, float]]:
    """A copy of the trained workspace in git: the baseline ref has metrics ``DELTA`` worse than this change, another
    ``data.test_size`` and the same plots; the validate stage ran against it and the track stage left its record."""
    ws = trained.copy(tmp_path / "ws")
    current_metrics, current_params = ws.path("metrics").read_text(), (ws.root / "params.yaml").read_text()
    scores = json.loads(current_metrics)
    baseline = {name: value - DELTA for name, value in scores["model"].items()}
    ws.git_init()
    ws.path("metrics").write_text(json.dumps({**scores, "model": baseline}))
    ws.set_params({"data.test_size": 0.25})
    commit_all(ws.root, "baseline")
    ws.path("metrics").write_text(current_metrics)
    (ws.root / "params.yaml").write_text(current_params)
    ws.ok("validate")
    write_fake_run(ws)
    return ws, baseline


def section(text: str, heading: str) -> str:
    """The Markdown between ``heading`` and the next heading."""
    start = text.index(heading)
    end = text.find("\n### ", start + len(heading))
    return text[start : end if end != -1 else len(text)]


def table_rows(markdown: str) -> list[list[str]]:
    """Cells of every table row, header and separator excluded."""
    rows = [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in markdown.splitlines()
        if line.startswith("|")
    ]
    return rows[2:]


def test_verdict_comes_before_the_metrics(reviewed: tuple[Workspace, dict[str, float]]) -> None:
    ws, _ = reviewed
    ws.ok("report")
    text = ws.path("report").read_text()

    verdict = re.search(r"^### (✅ Gate passed|❌ Gate failed)", text, re.MULTILINE)
    assert verdict is not None
    assert verdict.start() < text.index("### Metrics") < text.index("### Parameters")
    for check in ws.read_json("verdict")["checks"]:
        assert f"| {check['name']} |" in section(text, verdict.group(0))


def test_a_failed_gate_is_announced_first(reviewed: tuple[Workspace, dict[str, float]]) -> None:
    ws, _ = reviewed
    name, _ = require_impossible(ws)
    ws.ok("validate")
    ws.ok("report")
    text = ws.path("report").read_text()

    headings = re.findall(r"^#{2,3} .*$", text, re.MULTILINE)
    assert headings[1] == "### ❌ Gate failed: 1 check(s) outside their limits"
    assert f"| {name} |" in text
    assert "❌ **fail**" in text


def test_metrics_are_compared_with_the_baseline(reviewed: tuple[Workspace, dict[str, float]]) -> None:
    ws, baseline = reviewed
    ref = ws.params.gate.baseline_ref
    ws.ok("report")
    metrics_md = section(ws.path("report").read_text(), "### Metrics")
    current = ws.read_json("metrics")["model"]
    naive = ws.read_json("metrics")["naive_baseline"]

    assert f"| metric | naive baseline | {ref} | this change | change |" in metrics_md
    assert f"_Naive baseline: `{naive['estimator']}` fitted on the training split" in metrics_md
    rows = {row[0]: row[1:] for row in table_rows(metrics_md)}
    assert set(rows) == set(current)
    for name, (simple, old, new, change) in rows.items():
        assert float(simple) == pytest.approx(naive["metrics"][name], rel=1e-3, abs=1e-4), name
        assert float(old) == pytest.approx(baseline[name], rel=1e-3), name
        assert float(new.split()[0]) == pytest.approx(current[name], rel=1e-3), name
        assert change == f"+{DELTA:.4g} {'🟢' if HIGHER_IS_BETTER[name] else '🔴'}", name


def test_each_headline_metric_shows_its_confidence_interval(reviewed: tuple[Workspace, dict[str, float]]) -> None:
    ws, _ = reviewed
    ws.ok("report")
    text = ws.path("report").read_text()
    metrics_md = section(text, "### Metrics")
    scores = ws.read_json("metrics")
    bootstrap = scores["bootstrap"]
    rows = {row[0]: row[3] for row in table_rows(metrics_md)}

    assert bootstrap["intervals"], "no metric got an interval"
    for name, value in scores["model"].items():
        interval = bootstrap["intervals"].get(name)
        if interval is None:
            assert rows[name] == f"{value:.4g}", name
        else:
            assert rows[name] == f"{value:.4g} ({interval['low']:.4g}–{interval['high']:.4g})", name
    confidence = f"{bootstrap['confidence'] * 100:g}%"
    assert f"Intervals: {confidence} percentile bootstrap over {bootstrap['resamples']:,} resamples" in metrics_md
    assert f"`{ws.params.paths.card}`" in text, "the report does not name the model card"


def test_changed_params_are_listed(reviewed: tuple[Workspace, dict[str, float]]) -> None:
    ws, _ = reviewed
    ref = ws.params.gate.baseline_ref
    ws.ok("report")
    params_md = section(ws.path("report").read_text(), "### Parameters")

    assert params_md.startswith("### Parameters changed")
    assert table_rows(params_md) == [["data.test_size", "0.25", f"{ws.params.data.test_size:.4g}"]]
    assert f"| parameter | {ref} | this change |" in params_md


def test_charts_are_mermaid_and_no_image_is_linked(
    reviewed: tuple[Workspace, dict[str, float]], schema: Schema
) -> None:
    ws, _ = reviewed
    ws.ok("report")
    text = ws.path("report").read_text()

    charts = re.findall(r"```mermaid\n(.*?)```", text, re.DOTALL)
    assert len(charts) >= 2
    for chart in charts:
        # Colours set explicitly, in the order of the series (Mermaid's default draws a second line near-white), and
        # named in the title, since a Mermaid chart has no legend.
        directive, kind, *body = chart.splitlines()
        palette = re.fullmatch(r"%%\{init: (.*)\}%%", directive)
        assert palette, directive
        colours = json.loads(palette.group(1))["themeVariables"]["xyChart"]["plotColorPalette"].split(", ")
        series = [line for line in body if re.match(r"\s+(line|bar) \[", line)]
        assert kind == "xychart-beta"
        assert series
        assert len(colours) >= len(series)
        assert all(re.fullmatch(r"#[0-9A-F]{6}", c) for c in colours)
        assert len(set(colours)) == len(colours)
    if schema.target.kind == "classification":
        ref = ws.params.gate.baseline_ref
        assert f"this change (blue) vs {ref} (orange)" in text  # the baseline's curve is drawn too, in its colour
        assert "**Confusion matrix**" in text
    assert REMOTE_IMAGE.search(text) is None
    assert IMAGE.search(text) is None
    assert not list(ws.path("report").parent.glob("*.png"))


def _chart_titles(text: str) -> list[str]:
    return re.findall(r'^\s+title "([^"]*)"', text, re.MULTILINE)


def test_binary_curves_keep_their_titles(reviewed: tuple[Workspace, dict[str, float]], schema: Schema) -> None:
    if not schema.target.binary:
        pytest.skip("the project's target is not binary")
    ws, _ = reviewed
    ws.ok("report")
    text = ws.path("report").read_text()

    titles = _chart_titles(text)
    assert [t.split(":")[0] for t in titles] == ["ROC", "PR"]
    assert "micro-averaged" not in text


def test_multiclass_curves_say_they_are_micro_averaged(trained: Workspace, tmp_path: Path) -> None:
    """A three-class target on the project's own features: the ROC and PR charts and the metrics table say that
    their curves and areas pool every class's one-vs-rest pairs, as ``evaluate`` computes them."""
    ws = trained.copy(tmp_path / "ws")
    schema_file = ws.path("schema_")
    contract = yaml.safe_load(schema_file.read_text())
    labels = ["low", "mid", "high"]
    contract["target"] = {"name": contract["target"]["name"], "kind": "classification", "labels": labels}
    schema_file.write_text(yaml.safe_dump(contract, sort_keys=False))
    ws.set_params(
        {
            "train.model": "random_forest",
            "train.random_forest": {"n_estimators": 20, "max_depth": 6, "n_jobs": 1},
            "gate.beat_naive": {"accuracy": 0.1, "roc_auc": 0.2},
            "gate.thresholds": {},
            "gate.max_regression": {},
            "gate.max_slice_gap": {},
        }
    )
    ws.write_raw(synthetic.frame(ws.schema, PIPELINE_ROWS, seed=0))
    for command in ("prepare", "train", "evaluate", "export", "profile", "validate"):
        ws.ok(command)
    write_fake_run(ws)

    ws.ok("report")
    text = ws.path("report").read_text()

    assert [t.split(":")[0] for t in _chart_titles(text)[:2]] == [
        "ROC, micro-averaged over classes",
        "PR, micro-averaged over classes",
    ]
    assert "_`roc_auc` and `average_precision` are micro-averaged over its 3 classes" in section(text, "### Metrics")
    assert ws.read_json("verdict")["passed"] is True, "a reasonable multiclass model passes the naive-baseline gate"


def test_slices_and_lineage_are_reported(reviewed: tuple[Workspace, dict[str, float]], schema: Schema) -> None:
    ws, _ = reviewed
    ws.ok("report")
    text = ws.path("report").read_text()

    for column in schema.slices:
        assert f"**{column}**" in section(text, "### Slices")
    lineage = section(text, "### Data lineage")
    assert ws.read_json("data_profile")["raw_md5"] in lineage
    assert ws.read_json("run")["run_id"] in lineage


def test_a_slice_that_fell_against_the_baseline_is_marked(reviewed: tuple[Workspace, dict[str, float]]) -> None:
    """The baseline commit holds the same slices; this change makes one slice worse by more than the gate allows."""
    ws, _ = reviewed
    slices = ws.read_json("slices")
    allowed = ws.params.gate.max_regression
    groups = next(iter(slices.values()))
    category, group = next(iter(groups.items()))
    name = next(n for n in sorted(allowed) if isinstance(group.get(n), float))
    old = group[name]
    group[name] = old - 3 * allowed[name] if HIGHER_IS_BETTER[name] else old + 3 * allowed[name]
    ws.path("slices").write_text(json.dumps(slices))
    ws.ok("report")

    text = section(ws.path("report").read_text(), "### Slices")
    ref = ws.params.gate.baseline_ref
    assert f"Each value is followed by its change against `{ref}`." in text
    marked = [line for line in text.splitlines() if "fell by more than" in line]
    assert len(marked) == 1, text
    assert marked[0].startswith(f"| {category} |")
    assert f"{group[name]:.4g} ({group[name] - old:+.4g} 🔴) ❌ **fell by more than {allowed[name]:g}**" in marked[0]
    unchanged = [line for line in text.splitlines() if line.startswith("| ") and "(0)" in line]
    assert unchanged, "the other slices show no change"


def test_the_confusion_matrix_shows_the_change_against_the_baseline(
    reviewed: tuple[Workspace, dict[str, float]], schema: Schema
) -> None:
    if schema.target.kind != "classification":
        pytest.skip("a regression model has no confusion matrix")
    ws, _ = reviewed
    confusion = ws.path("plots") / "confusion.csv"
    lines = confusion.read_text().splitlines()
    header = lines[0].split(",")
    actual, predicted = header.index("actual"), header.index("predicted")
    first = lines[1].split(",")
    wrong = next(str(label) for label in schema.target.labels if str(label) != first[predicted])
    before = (first[actual], first[predicted])
    first[predicted] = wrong
    confusion.write_text("\n".join([lines[0], ",".join(first), *lines[2:]]) + "\n")
    ws.ok("report")

    text = ws.path("report").read_text()
    start = text.index("**Confusion matrix**")
    matrix = text[start : text.index("\n\n###", start)]
    ref = ws.params.gate.baseline_ref
    assert f"each count is followed by its change against `{ref}`" in matrix
    columns = [
        c.strip() for c in next(line for line in matrix.splitlines() if line.startswith("|")).strip("|").split("|")
    ]
    rows = {row[0].strip("*"): dict(zip(columns[1:], row[1:], strict=True)) for row in table_rows(matrix)}
    assert rows[before[0]][before[1]].endswith("(-1)"), matrix
    assert rows[before[0]][wrong].endswith("(+1)"), matrix
    assert sum(cell.endswith(")") for row in rows.values() for cell in row.values()) == 2, matrix


def test_uncommitted_code_or_settings_are_flagged_but_the_pipeline_s_own_outputs_are_not(
    reviewed: tuple[Workspace, dict[str, float]],
) -> None:
    ws, _ = reviewed
    commit_all(ws.root, "this change")
    flag = "**with uncommitted changes**"

    ws.ok("report")  # rewrites the report, a tracked output, as every run does
    assert flag not in ws.path("report").read_text()
    ws.ok("validate")
    ws.path("metrics").write_text(ws.path("metrics").read_text() + "\n")  # outputs changed by a run: not the code
    ws.ok("report")
    assert flag not in ws.path("report").read_text()

    ws.set_params({"data.test_size": 0.3})
    ws.ok("report")
    lineage = section(ws.path("report").read_text(), "### Data lineage")
    head = git(ws.root, "rev-parse", "HEAD")
    assert f"- Code: commit `{head}` ⚠️ {flag}: the code or settings that ran are not that commit's" in lineage


def test_rows_without_a_label_are_reported(reviewed: tuple[Workspace, dict[str, float]]) -> None:
    ws, _ = reviewed
    profile = ws.read_json("data_profile")
    profile["rows"] = {**profile["rows"], "raw": profile["rows"]["raw"] + 12, "unlabelled": 12}
    ws.path("data_profile").write_text(json.dumps(profile))
    ws.ok("report")

    lineage = section(ws.path("report").read_text(), "### Data lineage")
    raw = profile["rows"]["raw"]
    assert f"12 of its {raw:,} rows have no label: they are left out of training and evaluation" in lineage
    assert [row[-1] for row in table_rows(lineage) if row[0] == "rows: unlabelled"] == ["12"]


def test_images_are_written_and_linked_relatively_when_enabled(reviewed: tuple[Workspace, dict[str, float]]) -> None:
    ws, _ = reviewed
    ws.set_params({"report.images": True})
    ws.ok("report")
    report = ws.path("report")
    text = report.read_text()

    links = IMAGE.findall(text)
    assert links
    assert REMOTE_IMAGE.search(text) is None
    for link in links:
        assert not Path(link).is_absolute()
        image = report.parent / link
        assert image.suffix == ".png"
        assert image.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert sorted(p.name for p in report.parent.glob("*.png")) == sorted(links)
