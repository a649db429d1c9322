"""The command line: one registry of commands, light to start, one rule for exit codes (0 done, 1 the answer is no,
2 an error, in one line on stderr) and ``--json`` wherever a script reads a command's answer."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import CliResult, Workspace, require_impossible

from {{ cookiecutter.package_name }}.cli import parser
from {{ cookiecutter.package_name }}.cli.registry import COMMANDS
from {{ cookiecutter.package_name }}.pipeline import synthetic
from {{ cookiecutter.package_name }}.pipeline.schema import Schema

HEAVY = ("pandas", "sklearn", "pydantic", "yaml", "mlflow", "scipy", "skl2onnx", "onnx", "dvc")
START = "2026-11-21T10:00:00Z"


def is_error(result: CliResult, *words: str) -> None:
    """Exit 2 with one line on stderr that starts with ``error:`` and names the problem, and no traceback."""
    assert result.code == 2, result
    assert result.err.startswith("error: "), result.err
    assert result.err.count("\n") == 1, result.err
    assert "Traceback" not in result.err
    for word in words:
        assert word in result.err, result.err


# --- the registry -------------------------------------------------------------------------------------------------


def test_the_commands_and_their_order_are_kept() -> None:
    (sub,) = (a for a in parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert list(sub.choices) == [
        *("prepare", "train", "evaluate", "export", "profile", "validate", "track", "report", "card", "gate"),
        *("fork-notice", "register", "synth", "check-remote", "remote"),
        *("serve", "healthcheck", "promote", "rollback", "history", "follow-registry", "probe"),
        *("monitor", "retrain-data"),
    ]
    for name, command in COMMANDS.items():
        assert command.help, name
        assert command.help == (command.handler.__doc__ or "").splitlines()[0], name


def test_help_imports_no_heavy_library_and_states_the_exit_codes() -> None:
    code = (
        "import sys, contextlib, io\n"
        "from {{ cookiecutter.package_name }}.cli import main\n"
        "out = io.StringIO()\n"
        "for argv in (['--help'], *([name, '--help'] for name in sys.argv[1:])):\n"
        "    with contextlib.suppress(SystemExit), contextlib.redirect_stdout(out):\n"
        "        main(argv)\n"
        f"heavy = {HEAVY!r}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
        "print(out.getvalue())\n"
    )
    result = subprocess.run([sys.executable, "-c", code, *COMMANDS], capture_output=True, text=True, check=True)
    imported, _, text = result.stdout.partition("\n")
    assert imported == "[]", f"--help imported {imported}"
    assert "exit status, every command:" in text
    for line in ("0  done", "1  the answer is no", "2  an error"):
        assert line in text


# --- exit codes ---------------------------------------------------------------------------------------------------


def test_gate_exits_0_when_it_passes_1_when_it_fails_2_on_bad_input(trained: Workspace, tmp_path: Path) -> None:
    ws = trained.copy(tmp_path / "ws")
    assert ws.cli("gate").code == 0

    name, _ = require_impossible(ws)
    ws.ok("validate")
    failed = ws.cli("gate")
    assert failed.code == 1
    assert f"gate failed: {name}" in failed.err
    assert "error" not in failed.err

    ws.path("verdict").unlink()
    is_error(ws.cli("gate"), str(trained.params.paths.verdict))

    ws.set_params({"gate.nonsense": 1})
    result = ws.cli("gate")
    assert result.code == 2
    assert result.err.startswith("error: ")
    assert "gate.nonsense" in result.err
    assert "Traceback" not in result.err


def test_fork_notice_writes_the_report_and_exits_1(workspace: Workspace) -> None:
    """A fork's pull request is not trained: the notice takes the report's place (what pr-handover hands over) and
    says what was skipped and how a maintainer trains it; the command says no, as nothing was judged."""
    result = workspace.cli(
        "fork-notice", "--pr", "12", "--head-repository", "someone/churn-fork", "--repository", "acme/churn"
    )
    assert result.code == 1, result
    assert "not trained: pull request #12 comes from the fork someone/churn-fork" in result.err
    notice = workspace.path("report").read_text(encoding="utf-8")
    assert notice.startswith("# Not trained: this pull request comes from a fork\n")
    for phrase in (
        "**someone/churn-fork**",
        "**Skipped:**",
        "git fetch origin pull/12/head:fork-pr-12",
        "git push origin fork-pr-12",
        "no cloud credentials and no OIDC id token",
    ):
        assert phrase in notice, phrase
    is_error(workspace.cli("fork-notice", "--pr", "12", "--head-repository", "not a repository"), "owner/name")


def test_a_stage_without_its_input_exits_2_naming_the_file(trained: Workspace, tmp_path: Path) -> None:
    ws = trained.copy(tmp_path / "ws")
    ws.path("model").unlink()

    is_error(ws.cli("evaluate"), str(trained.params.paths.model))


def test_register_of_a_failed_gate_is_a_no(trained: Workspace, tmp_path: Path) -> None:
    ws = trained.copy(tmp_path / "ws")
    require_impossible(ws)
    ws.ok("validate")

    result = ws.cli("register", "--json")

    assert (result.code, result.out) == (1, "")
    assert "the gate failed" in result.err
    assert not result.err.startswith("error")


def test_probe_of_unreadable_metadata_is_an_error(tmp_path: Path) -> None:
    result = Workspace(tmp_path).cli("probe", "--url", "http://127.0.0.1:9", "--metadata", str(tmp_path / "none.json"))

    is_error(result, "cannot read the model metadata", "none.json")


def test_a_release_command_refused_is_an_error(tmp_path: Path) -> None:
    is_error(Workspace(tmp_path).cli("history", "--env", "dev"), "deploy/ is absent")


# --- --json -------------------------------------------------------------------------------------------------------


def test_register_json(trained: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = trained.copy(tmp_path / "ws")
    flags = [] if ws.read_json("verdict")["passed"] else ["--allow-failed-gate"]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'a.db'}")
    ws.ok("track")

    first = json.loads(ws.ok("register", "--json", *flags).out)
    second = json.loads(ws.ok("register", "--alias", "champion", "--json", *flags).out)

    name = ws.params.mlflow.registered_model
    run_id = ws.read_json("run")["run_id"]
    assert first == {"name": name, "version": "1", "alias": "challenger", "run_id": run_id, "stand_in": None}
    assert second == {**first, "version": "2", "alias": "champion"}

    # Another store: the stand-in run is named.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'b.db'}")
    other = json.loads(ws.ok("register", "--json", *flags).out)
    assert other["version"] == "1"
    assert other["run_id"] != run_id
    assert other["stand_in"].startswith(f"run {run_id} (tracked in ")


def _window(ws: Workspace, logs: Path, labels: Path | None, rows: int) -> pd.DataFrame:
    """A window of the training distribution logged as the server would, and its ground truth if ``labels``."""
    frame = synthetic.frame(ws.schema, rows, seed=111)
    synthetic.write_log(logs / "predictions.jsonl", frame, ws.schema, ws.path("onnx").parent, start=START)
    if labels is not None:
        labels.mkdir(parents=True, exist_ok=True)
        target = ws.schema.target.name
        truth = {"request_id": [f"req-{i}" for i in range(rows)], "index": 0, target: frame[target]}
        pd.DataFrame(truth).to_csv(labels / "labels.csv", index=False)
    return frame


def _pinned(frame: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """``frame`` with each feature set to one value: its largest for numbers, its first category otherwise."""
    pinned = frame.copy()
    for feature in schema.features:
        pinned[feature.name] = frame[feature.name].max() if feature.numeric else sorted(feature.categories)[0]
    return pinned


def test_monitor_json_and_its_exit_code(trained: Workspace, tmp_path: Path) -> None:
    ws = trained.copy(tmp_path / "ws")
    logs, out = tmp_path / "log", tmp_path / "out"
    frame = _window(ws, logs, None, 1000)

    calm = ws.cli("monitor", "--predictions", str(logs), "--output", str(out), "--json")
    summary = json.loads((out / "verdict.json").read_text())["summary"]
    expected = {"retrain": False, "summary": summary, "report": f"{out}/report.md", "verdict": f"{out}/verdict.json"}
    assert (calm.code, json.loads(calm.out)) == (0, expected)

    drifted = tmp_path / "drifted"  # every feature pinned to one value: drift whatever the data set
    synthetic.write_log(drifted / "predictions.jsonl", _pinned(frame, ws.schema), ws.schema, ws.path("onnx").parent)
    alarmed = ws.cli("monitor", "--predictions", str(drifted), "--output", str(out), "--json")
    assert alarmed.code == 1, alarmed
    assert json.loads(alarmed.out)["retrain"] is True

    missing = ws.cli("monitor", "--predictions", str(tmp_path / "nowhere"), "--json")
    is_error(missing, "nowhere")
    assert missing.out == ""


def test_retrain_data_json(trained: Workspace, tmp_path: Path) -> None:
    ws = trained.copy(tmp_path / "ws")
    logs, labels = tmp_path / "log", tmp_path / "labels"
    _window(ws, logs, labels, 40)
    args = ("retrain-data", "--predictions", str(logs), "--labels", str(labels), "--json")

    first = json.loads(ws.ok(*args).out)
    again = json.loads(ws.ok(*args).out)

    raw = str(trained.params.paths.raw)
    assert first == {"added": first["added"], "known": 40 - first["added"], "window": 40, "raw": raw}
    assert first["added"] > 0
    assert again == {"added": 0, "known": 40, "window": 40, "raw": raw}
    prose = ws.ok(*args[:-1]).out
    assert prose.startswith("added 0 labelled rows to ")
