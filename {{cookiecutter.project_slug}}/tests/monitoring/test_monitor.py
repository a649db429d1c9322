"""Command ``monitor``: drift, decay and data quality of logged predictions against the reference profile.

Windows are real prediction logs (JSON lines in the server's format) of synthetic rows from the schema, with the
predictions of the trained workspace's exported model; labels are CSV files joined by request id.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import CliResult, Workspace

from {{ cookiecutter.package_name }}.monitoring import monitor
from {{ cookiecutter.package_name }}.monitoring.judge import psi
from {{ cookiecutter.package_name }}.monitoring.labelled import labelled_frame
from {{ cookiecutter.package_name }}.monitoring.series import Sample
from {{ cookiecutter.package_name }}.pipeline import synthetic
from {{ cookiecutter.package_name }}.pipeline.prepare import validate
from {{ cookiecutter.package_name }}.pipeline.schema import Feature, Schema

START = "2026-11-21T10:00:00Z"
ROWS = 3000
FALSE_ALARM_WINDOWS = 40


# --------------------------------------------------------------------------------------------------------------------
# Helpers: windows, labels, runs
# --------------------------------------------------------------------------------------------------------------------


def window(schema: Schema, seed: int, rows: int = ROWS) -> pd.DataFrame:
    """Rows from the distribution the model was trained on (``trained`` draws its raw data the same way)."""
    return synthetic.frame(schema, rows, seed=seed)


def write_log(ws: Workspace, directory: Path, frame: pd.DataFrame, prefix: str = "req", start: str = START) -> Path:
    """The log the server would write for ``frame``: request ``{prefix}-{i}`` for row ``i``, 1 ms apart."""
    path = directory / f"predictions-{prefix}.jsonl"
    return synthetic.write_log(path, frame, ws.schema, ws.path("onnx").parent, start=start, prefix=prefix)


def write_labels(directory: Path, frame: pd.DataFrame, schema: Schema, prefix: str = "req") -> Path:
    """Ground truth for ``frame``'s rows, as a labelling service would deliver it."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"labels-{prefix}.csv"
    truth = frame[schema.target.name]
    pd.DataFrame(
        {"request_id": [f"{prefix}-{i}" for i in range(len(frame))], "index": 0, schema.target.name: truth}
    ).to_csv(path, index=False)
    return path


def run_monitor(ws: Workspace, out: Path, *args: str) -> tuple[CliResult, dict[str, Any], str]:
    """Run ``monitor`` with ``--output out``; return the result, the verdict and the report."""
    result = ws.cli("monitor", *args, "--output", str(out))
    assert result.code in (0, 1), f"monitor exited {result.code}: {result.err}"
    verdict = json.loads((out / "verdict.json").read_text())
    return result, verdict, (out / "report.md").read_text()


def drifted(verdict: dict[str, Any]) -> list[str]:
    return [name for name, r in verdict["features"].items() if r["status"] == "drift"]


def first(schema: Schema, numeric: bool) -> Feature:
    features = [f for f in schema.features if f.numeric == numeric]
    if not features:
        pytest.skip(f"the schema has no {'numeric' if numeric else 'category'} feature")
    return features[0]


def squeezed_to_the_top(frame: pd.DataFrame, feature: Feature) -> pd.DataFrame:
    """``feature``'s values moved into the top 30 % of their range (``synthetic`` draws them uniformly over it)."""
    low = feature.min if feature.min is not None else 0.0
    high = feature.max if feature.max is not None else low + 100.0
    shifted = frame.copy()
    values = pd.to_numeric(frame[feature.name]).astype("float64")
    moved = low + (high - low) * (0.7 + 0.3 * (values - low) / ((high - low) or 1.0))
    shifted[feature.name] = moved.round().astype("Int64") if feature.type == "integer" else moved
    return shifted


def relabelled(frame: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """Another labelling function: each class becomes the next one, or a value is mirrored within its range."""
    target = schema.target
    changed = frame.copy()
    column = frame[target.name]
    if target.kind == "classification":
        following = dict(zip(target.labels, target.labels[1:] + target.labels[:1], strict=True))
        changed[target.name] = column.map(following)
    else:
        changed[target.name] = column.min() + column.max() - column
    return changed


def section(report: str, heading: str) -> str:
    start = report.index(heading)
    end = report.find("\n### ", start + len(heading))
    return report[start : end if end != -1 else len(report)]


# --------------------------------------------------------------------------------------------------------------------
# Detection
# --------------------------------------------------------------------------------------------------------------------


def test_a_shifted_numeric_feature_is_flagged_and_named(trained: Workspace, tmp_path: Path) -> None:
    feature = first(trained.schema, numeric=True)
    frame = squeezed_to_the_top(window(trained.schema, seed=101), feature)
    write_log(trained, tmp_path / "log", frame)

    result, verdict, report = run_monitor(trained, tmp_path / "out", "--predictions", str(tmp_path / "log"))

    assert result.code == 1
    assert verdict["drift"]
    assert verdict["retrain"]
    assert drifted(verdict) == [feature.name]
    entry = verdict["features"][feature.name]
    assert entry["test"] == "Kolmogorov-Smirnov"
    assert entry["psi"] >= trained.params.monitor.psi_threshold
    assert entry["p_value"] < trained.params.monitor.alpha / verdict["tests"]
    heading = next(line for line in report.splitlines() if line.startswith("### "))
    assert heading.startswith("### ❌ Retrain: drift in ")
    assert f"`{feature.name}`" in heading
    assert feature.name in verdict["summary"]
    assert f"| `{feature.name}` | {feature.type} | Kolmogorov-Smirnov |" in report
    assert "❌ **drift**" in section(report, "### Drift")


def test_a_category_frequency_change_is_flagged_and_named(trained: Workspace, tmp_path: Path) -> None:
    feature = first(trained.schema, numeric=False)
    frame = window(trained.schema, seed=102)
    rng = np.random.default_rng(0)
    common = frame[feature.name].notna() & (rng.random(len(frame)) < 0.6)
    frame.loc[common, feature.name] = feature.categories[0]  # one category from 1/k of the rows to 60 % and more
    write_log(trained, tmp_path / "log", frame)

    result, verdict, report = run_monitor(trained, tmp_path / "out", "--predictions", str(tmp_path / "log"))

    assert result.code == 1
    assert drifted(verdict) == [feature.name]
    entry = verdict["features"][feature.name]
    assert entry["test"] == "chi-squared"
    assert entry["psi"] >= trained.params.monitor.psi_threshold
    assert f"`{feature.name}`" in report.splitlines()[2]
    assert feature.name in verdict["summary"]


def test_a_new_labelling_function_is_decay_not_drift(trained: Workspace, tmp_path: Path) -> None:
    schema = trained.schema
    frame = window(schema, seed=103)
    write_log(trained, tmp_path / "log", frame)
    write_labels(tmp_path / "labels", relabelled(frame, schema), schema)

    result, verdict, report = run_monitor(
        trained, tmp_path / "out", "--predictions", str(tmp_path / "log"), "--labels", str(tmp_path / "labels")
    )

    assert result.code == 1
    assert verdict["decay"]
    assert verdict["retrain"]
    assert not verdict["drift"], drifted(verdict)
    assert all(r["status"] != "drift" for r in verdict["predictions"].values())
    assert verdict["labels"]["joined"] == len(frame)
    assert verdict["performance"]["labelled"] == len(frame)
    decayed = [name for name, m in verdict["performance"]["metrics"].items() if m["status"] == "decay"]
    assert decayed
    assert set(decayed) <= set(trained.params.monitor.max_drop)
    for name in decayed:
        metric = verdict["performance"]["metrics"][name]
        assert metric["drop"] > trained.params.monitor.max_drop[name]
        assert f"`{name}`" in report.splitlines()[2]
        assert name in verdict["summary"]
    assert "❌ **decay**" in section(report, "### Decay")


def test_decay_metrics_are_the_evaluate_stages(trained: Workspace, tmp_path: Path) -> None:
    """The test split logged with its true labels gives back the test-set metrics: the same definitions."""
    schema = trained.schema
    test = pd.read_parquet(trained.path("test"))
    write_log(trained, tmp_path / "log", test)
    write_labels(tmp_path / "labels", test, schema)
    ws = trained.copy(tmp_path / "ws")
    ws.set_params({"monitor.min_labels": len(test)})

    result, verdict, _ = run_monitor(
        ws, tmp_path / "out", "--predictions", str(tmp_path / "log"), "--labels", str(tmp_path / "labels")
    )

    assert result.code == 0, verdict["summary"]
    reference = ws.read_json("metrics")["model"]
    metrics = verdict["performance"]["metrics"]
    assert set(metrics) == set(reference)
    for name, value in reference.items():
        assert metrics[name]["live"] == pytest.approx(value, rel=1e-3, abs=1e-3), name
    assert not verdict["decay"]


def test_windows_from_the_training_distribution_rarely_alarm(trained: Workspace, tmp_path: Path) -> None:
    """Over repeated windows drawn as the training data was, the share with a drift alarm stays under alpha.

    The tests alone would not be enough: each controls the false-alarm rate over draws of both samples, but the
    reference is drawn once, and an unlucky one (a few thousand training rows) makes small p-values common across
    windows. The PSI requirement keeps those differences, too small to matter, from alarming.
    """
    alpha = trained.params.monitor.alpha
    alarms = 0
    for k in range(FALSE_ALARM_WINDOWS):
        logs = tmp_path / f"log-{k}"
        write_log(trained, logs, window(trained.schema, seed=1000 + k, rows=2000))
        result, verdict, _ = run_monitor(trained, tmp_path / f"out-{k}", "--predictions", str(logs))
        alarms += verdict["drift"]
        assert verdict["tests"] == len(trained.schema.features) + len(verdict["predictions"])
        assert result.code == int(verdict["retrain"])
    assert alarms / FALSE_ALARM_WINDOWS <= alpha


def test_predictions_of_other_model_versions_are_not_compared(trained: Workspace, tmp_path: Path) -> None:
    frame = window(trained.schema, seed=104)
    path = write_log(trained, tmp_path / "log", frame)
    lines = path.read_bytes().splitlines(keepends=True)
    other = []
    for raw in lines[: len(lines) // 2]:  # half the traffic answered by another version, with other predictions
        record = json.loads(raw)
        record["model_version"] = "challenger"
        record["prediction"] = _constant_prediction(record["prediction"])
        other.append(json.dumps(record).encode() + b"\n")
    path.write_bytes(b"".join(other + lines[len(lines) // 2 :]))

    _, verdict, report = run_monitor(trained, tmp_path / "out", "--predictions", str(tmp_path / "log"))

    version = trained.read_json("metadata")["version"]
    assert verdict["window"]["model_versions"] == {"challenger": len(other), version: len(lines) - len(other)}
    assert verdict["reference"]["rows_in_window"] == len(lines) - len(other)
    assert not verdict["drift"]
    assert "`challenger`" in report


def _constant_prediction(prediction: dict[str, Any]) -> dict[str, Any]:
    if "value" in prediction:
        return {"value": 0.0}
    classes = list(prediction["probabilities"])
    return {"label": classes[0], "probabilities": {c: float(c == classes[0]) for c in classes}}


# --------------------------------------------------------------------------------------------------------------------
# Malformed lines and bad inputs
# --------------------------------------------------------------------------------------------------------------------


def _bad_inputs(schema: Schema, good: dict[str, Any]) -> list[dict[str, Any]]:
    """Inputs that break the contract in every way a client or a changed server could."""
    numeric = next((f for f in schema.features if f.numeric), None)
    category = next((f for f in schema.features if not f.numeric), None)
    cases = [{**good, "surprise": 1}, {k: v for k, v in good.items() if k != schema.features[0].name}]
    if numeric is not None:
        cases += [{**good, numeric.name: "12"}, {**good, numeric.name: True}, {**good, numeric.name: [1]}]
    if category is not None:
        cases += [{**good, category.name: 3}, {**good, category.name: {"a": 1}}]
    return cases


def test_malformed_lines_are_counted_never_drift_and_never_crash(trained: Workspace, tmp_path: Path) -> None:
    schema = trained.schema
    path = write_log(trained, tmp_path / "log", window(schema, seed=105, rows=2000))
    lines = path.read_bytes().splitlines(keepends=True)
    record = json.loads(lines[0])
    malformed = [
        b"not json at all\n",
        b"\x00\xff\xfe binary garbage\n",
        b"[1, 2, 3]\n",
        b'"a string"\n',
        json.dumps({k: v for k, v in record.items() if k != "time"}).encode() + b"\n",
        json.dumps({**record, "time": "21/11/2026 10:00"}).encode() + b"\n",
        json.dumps({**record, "time": 1763719200}).encode() + b"\n",
        json.dumps({**record, "inputs": [1, 2]}).encode() + b"\n",
        json.dumps({k: v for k, v in record.items() if k != "prediction"}).encode() + b"\n",
        json.dumps({**record, "prediction": {"nothing": 1}}).encode() + b"\n",
        json.dumps({**record, "prediction": "yes"}).encode() + b"\n",
        b'{"time": "2026-11-21T10:00:00.000000Z", "inputs": {"a": NaN}}\n',
    ]
    bad_inputs = [
        json.dumps({**record, "inputs": inputs}).encode() + b"\n" for inputs in _bad_inputs(schema, record["inputs"])
    ]
    mixed = []
    for i, line in enumerate(lines):
        mixed.append(line)
        if i % 150 == 0 and i // 150 < len(malformed):
            mixed.append(malformed[i // 150])
    truncated = lines[1][: len(lines[1]) // 2]  # the process was killed mid-line
    path.write_bytes(b"".join([*mixed, *bad_inputs, b"\n", truncated]))
    (tmp_path / "log" / "empty.jsonl").write_bytes(b"")
    (tmp_path / "log" / "nested").mkdir()
    (tmp_path / "log" / "nested" / "garbage.jsonl").write_bytes(b"[[[[\n]]]]\n\x00\xff no newline at the end")

    result, verdict, report = run_monitor(trained, tmp_path / "out", "--predictions", str(tmp_path / "log"))

    expected = len(malformed) + 1 + 3  # + the truncated line + the nested file's 3 lines
    w = verdict["window"]
    assert w["files"] == 3
    assert w["malformed"] == expected
    assert w["lines"] == len(lines) + len(bad_inputs) + expected
    assert w["in_window"] == len(lines) + len(bad_inputs)
    problems = {e["problem"] for e in w["malformed_examples"]}
    assert problems <= {
        "not valid JSON",
        "truncated",
        "not a JSON object",
        "no time in the log's format",
        "no inputs object",
        "no prediction in the log's format",
    }
    assert not verdict["drift"], drifted(verdict)
    assert result.code == 0
    quality = {(p["feature"], p["problem"]): p for p in verdict["quality"]["problems"]}
    assert quality[(None, "malformed log lines")]["count"] == expected
    assert quality[(None, "inputs not in the schema")]["examples"] == ["surprise"]
    assert quality[(schema.features[0].name, "missing from the inputs")]["count"] == 1
    numeric = next((f for f in schema.features if f.numeric), None)
    if numeric is not None:
        assert quality[(numeric.name, "wrong type")]["count"] == 3
    category = next((f for f in schema.features if not f.numeric), None)
    if category is not None:
        assert quality[(category.name, "wrong type")]["count"] == 2
    assert verdict["quality_problems"]
    assert "malformed log lines" in section(report, "### Data quality")
    assert "Malformed lines (first 5)" in section(report, "### Window")


def test_a_window_of_garbage_is_too_small_to_judge(trained: Workspace, tmp_path: Path) -> None:
    logs = tmp_path / "log"
    path = write_log(trained, logs, window(trained.schema, seed=106, rows=100))
    path.write_bytes(path.read_bytes() + b"garbage\n" * 5000)

    result, verdict, report = run_monitor(trained, tmp_path / "out", "--predictions", str(logs))

    assert result.code == 0
    assert not verdict["drift"]
    assert {r["status"] for r in verdict["features"].values()} == {"insufficient"}
    assert verdict["window"]["malformed"] == 5000
    assert "too few" in verdict["summary"]
    assert "➖ too few values" in report
    assert report.splitlines()[2].startswith("### ➖ Too few predictions to judge drift (⚠️ ")


def test_out_of_range_and_unseen_values_are_quality_problems(trained: Workspace, tmp_path: Path) -> None:
    schema = trained.schema
    frame = window(schema, seed=107, rows=2000)
    numeric = next((f for f in schema.features if f.numeric and f.max is not None), None)
    category = next((f for f in schema.features if not f.numeric), None)
    if numeric is None or category is None:
        pytest.skip("needs a numeric feature with a maximum and a category feature")
    path = write_log(trained, tmp_path / "log", frame)
    records = [json.loads(line) for line in path.read_bytes().splitlines()]
    for record in records[:100]:
        record["inputs"][numeric.name] = numeric.max + 1000
        record["inputs"][category.name] = "never-seen"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))

    _, verdict, report = run_monitor(trained, tmp_path / "out", "--predictions", str(tmp_path / "log"))

    quality = {(p["feature"], p["problem"].split(" [")[0]): p for p in verdict["quality"]["problems"]}
    outside = quality[(numeric.name, "outside")]
    assert outside["count"] == 100
    assert outside["flagged"]
    unseen = quality[(category.name, "unseen categories")]
    assert unseen["count"] == 100
    assert unseen["examples"] == ["'never-seen'"]
    assert unseen["flagged"]
    assert "⚠️" in report.splitlines()[2]


# --------------------------------------------------------------------------------------------------------------------
# The window, the command line and the report
# --------------------------------------------------------------------------------------------------------------------


def test_the_window_is_chosen_by_time(trained: Workspace, tmp_path: Path) -> None:
    """10:00-11:00 as trained, 11:00-12:00 shifted: only a window over the second hour drifts."""
    schema = trained.schema
    feature = first(schema, numeric=True)
    logs = tmp_path / "log"
    write_log(trained, logs, window(schema, seed=108, rows=1200), prefix="a", start="2026-11-21T10:00:00Z")
    shifted = squeezed_to_the_top(window(schema, seed=109, rows=1200), feature)
    write_log(trained, logs, shifted, prefix="b", start="2026-11-21T11:00:00Z")

    for until in ("2026-11-21T11:00:00Z", "2026-11-21T11:00:00+00:00", "2026-11-21T12:00:00+01:00"):
        result, verdict, _ = run_monitor(trained, tmp_path / "first", "--predictions", str(logs), "--until", until)
        assert result.code == 0, verdict["summary"]
        assert verdict["window"]["in_window"] == 1200
        assert verdict["window"]["after_until"] == 1200
        assert verdict["window"]["last"] < "2026-11-21T11:00:00.000000Z"
    result, verdict, _ = run_monitor(
        trained, tmp_path / "second", "--predictions", str(logs), "--since", "2026-11-21T11:00:00Z"
    )
    assert result.code == 1
    assert drifted(verdict) == [feature.name]
    assert verdict["window"]["before_since"] == 1200
    assert verdict["window"]["first"] == "2026-11-21T11:00:00.000000Z"


def test_parse_time_takes_iso_dates_and_durations() -> None:
    now = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    assert monitor.parse_time("2026-11-21T10:00:00Z") == "2026-11-21T10:00:00.000000Z"
    assert monitor.parse_time("2026-11-21T11:00:00+01:00") == "2026-11-21T10:00:00.000000Z"
    assert monitor.parse_time("2026-11-21T10:00:00") == "2026-11-21T10:00:00.000000Z"
    assert monitor.parse_time("2026-11-21") == "2026-11-21T00:00:00.000000Z"
    assert monitor.parse_time("7d", now) == "2026-11-14T12:00:00.000000Z"
    assert monitor.parse_time("12h", now) == "2026-11-21T00:00:00.000000Z"
    assert monitor.parse_time("30m", now) == "2026-11-21T11:30:00.000000Z"
    assert monitor.parse_time("") is None
    assert monitor.parse_time(None) is None
    with pytest.raises(monitor.MonitorError, match="not a time"):
        monitor.parse_time("yesterday")


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("no-log-directory", "does not exist"),
        ("no-log-file", "no prediction log"),
        ("no-labels-directory", "labels directory"),
        ("no-profile", "no reference profile"),
        ("bad-time", "not a time"),
        ("empty-window", "the window is empty"),
        ("label-columns", "needs the columns request_id"),
        ("unknown-metric", "monitor.max_drop names"),
    ],
)
def test_usage_and_input_errors_exit_2_with_a_message(
    trained: Workspace, tmp_path: Path, case: str, message: str
) -> None:
    ws = trained.copy(tmp_path / "ws")
    logs = tmp_path / "log"
    write_log(ws, logs, window(ws.schema, seed=110, rows=50))
    args = ["--predictions", str(logs)]
    if case == "no-log-directory":
        args = ["--predictions", str(tmp_path / "nowhere")]
    elif case == "no-log-file":
        (tmp_path / "empty").mkdir()
        args = ["--predictions", str(tmp_path / "empty")]
    elif case == "no-labels-directory":
        args += ["--labels", str(tmp_path / "nowhere")]
    elif case == "no-profile":
        ws.path("reference").unlink()
    elif case == "bad-time":
        args += ["--since", "last tuesday"]
    elif case == "empty-window":
        args += ["--since", "2026-11-21T12:00:00Z", "--until", "2026-11-21T11:00:00Z"]
    elif case == "label-columns":
        (tmp_path / "labels").mkdir()
        (tmp_path / "labels" / "l.csv").write_text("id,label\nreq-0,1\n")
        args += ["--labels", str(tmp_path / "labels")]
    elif case == "unknown-metric":
        ws.set_params({"monitor.max_drop": {"no_such_metric": 0.1}})

    result = ws.cli("monitor", *args, "--output", str(tmp_path / "out"))

    assert result.code == 2
    assert result.err.startswith("error: ")
    assert message in result.err
    assert not (tmp_path / "out").exists()


def test_a_crash_exits_2_not_1(trained: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Exit 1 asks for retraining: an unexpected error must never look like it."""
    write_log(trained, tmp_path / "log", window(trained.schema, seed=113, rows=50))

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(monitor, "judge", boom)
    result = trained.cli("monitor", "--predictions", str(tmp_path / "log"), "--output", str(tmp_path / "out"))

    assert result.code == 2
    assert "RuntimeError: boom" in result.err
    assert "error: the monitor failed" in result.err


def test_labels_for_a_subset_and_unreadable_ones(trained: Workspace, tmp_path: Path) -> None:
    schema = trained.schema
    frame = window(schema, seed=114, rows=1000)
    write_log(trained, tmp_path / "log", frame)
    labelled = frame.iloc[:300]
    path = write_labels(tmp_path / "labels", labelled, schema)
    target = schema.target.name
    with path.open("a") as handle:
        handle.write(f"req-400,0,not-a-label\n,0,{labelled[target].iloc[0]}\nreq-401,x,{labelled[target].iloc[0]}\n")
        handle.write(f"req-402,0,\nnobody,0,{labelled[target].iloc[0]}\n")  # not labelled yet; no such request
    (tmp_path / "labels" / "empty.csv").write_text("")

    _, verdict, report = run_monitor(
        trained, tmp_path / "out", "--predictions", str(tmp_path / "log"), "--labels", str(tmp_path / "labels")
    )

    labels = verdict["labels"]
    assert labels["files"] == 2
    assert labels["rows"] == len(labelled) + 4
    assert labels["invalid"] == 3
    assert labels["joined"] == len(labelled)
    assert labels["unmatched"] == 1
    assert verdict["performance"]["labelled"] == len(labelled)
    assert all(m["live"] is not None for m in verdict["performance"]["metrics"].values())
    quality = {p["problem"]: p for p in verdict["quality"]["problems"]}
    assert quality["unreadable labels"]["count"] == 3
    assert quality["unreadable labels"]["flagged"]
    assert "unreadable labels" in report


def test_predictions_option_is_required(trained: Workspace) -> None:
    with pytest.raises(SystemExit) as exit_:
        trained.cli("monitor")
    assert exit_.value.code == 2


def test_report_leads_with_the_verdict_and_a_one_line_summary(trained: Workspace, tmp_path: Path) -> None:
    logs = tmp_path / "log"
    write_log(trained, logs, window(trained.schema, seed=111, rows=1000))

    result, verdict, report = run_monitor(trained, tmp_path / "out", "--predictions", str(logs))

    assert result.code == 0
    assert result.out.splitlines()[0] == verdict["summary"]
    lines = report.splitlines()
    assert lines[0].startswith("## ")
    assert lines[0].endswith("monitoring report")
    assert lines[2] == "### ✅ No drift or decay beyond the thresholds"
    # The first line that is neither a heading nor blank is the summary (the monitoring issue quotes it).
    assert next(line for line in lines if line and not line.startswith("#")) == verdict["summary"]
    assert verdict["summary"].startswith("Healthy: no drift or decay")
    for heading in ("### Window", "### Drift", "### Predictions", "### Decay", "### Data quality", "### Thresholds"):
        assert heading in report
    assert {"drift", "decay", "retrain", "summary", "window", "features", "predictions", "quality"} <= set(verdict)
    assert verdict["retrain"] is False
    assert verdict["window"]["files"] == 1
    assert verdict["window"]["in_window"] == 1000
    assert verdict["window"]["model_versions"] == {trained.read_json("metadata")["version"]: 1000}
    assert not list((tmp_path / "out").glob(".*.tmp"))


# --------------------------------------------------------------------------------------------------------------------
# Labelled rows for retraining
# --------------------------------------------------------------------------------------------------------------------


def test_labelled_frame_is_valid_raw_data(trained: Workspace, tmp_path: Path) -> None:
    schema = trained.schema
    frame = window(schema, seed=112, rows=400)
    path = write_log(trained, tmp_path / "log", frame)
    records = [json.loads(line) for line in path.read_bytes().splitlines()]
    first_feature = schema.features[0]
    broken = {0, 1, 2}
    records[0]["inputs"][first_feature.name] = "not a value"
    del records[1]["inputs"][first_feature.name]
    records[2]["inputs"]["extra"] = None
    records[2]["time"] = "2026-11-20T00:00:00.000000Z"  # before the window
    records.append(dict(records[5]))  # the same request logged twice: used once
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + '{"truncated": ')
    labelled = frame.iloc[: len(frame) // 2]
    write_labels(tmp_path / "labels", labelled, schema)

    rows = labelled_frame(tmp_path / "log", tmp_path / "labels", schema, since="2026-11-21")

    assert list(rows.columns) == schema.columns
    assert len(rows) == len(labelled) - len(broken)
    expected = labelled.drop(index=list(broken)).reset_index(drop=True)
    pd.testing.assert_frame_equal(rows, expected, check_dtype=False, check_exact=False, rtol=1e-6)
    csv_file = tmp_path / "rows.csv"
    rows.to_csv(csv_file, index=False)
    raw = pd.read_csv(csv_file, dtype=str, keep_default_na=False, na_values=[""])
    validate(raw, schema, csv_file)  # the prepare stage accepts it as raw data
    before = labelled_frame(tmp_path / "log", tmp_path / "labels", schema, until="2026-11-21")
    assert len(before) == 1  # the line logged the day before; a key the schema does not know is ignored


def test_statistics_helpers() -> None:
    assert psi(np.array([50.0, 50.0]), np.array([50.0, 50.0])) == 0.0
    assert psi(np.array([50.0, 50.0]), np.array([90.0, 10.0])) == pytest.approx(
        0.4 * np.log(0.9 / 0.5) + (-0.4) * np.log(0.1 / 0.5)
    )
    sample = Sample(100, np.random.default_rng(0))
    for start in range(0, 100_000, 7_000):
        sample.add(np.arange(start, min(start + 7_000, 100_000), dtype=np.float64))
    assert sample.values.size == 100
    assert len(set(sample.values.tolist())) == 100
    assert 30_000 < sample.values.mean() < 70_000  # uniform over the stream, not its head or tail
