"""Lineage that cannot lie, in a git copy of the project where DVC runs the real pipeline (SQLite tracking stores).

- A forced ``dvc repro`` of every stage leaves ``dvc.lock`` as it was, but for the measurements declared below.
- A module only the report runs, changed: ``dvc status`` names ``report`` and nothing upstream of it.
- Another tracking URI (the environment's override): ``dvc repro`` reruns ``track`` into it instead of restoring, from
  DVC's run cache, the record of a run logged elsewhere.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import BIN, PACKAGE, PROJECT, commit_all, copy_project, run, tool_env

from {{ cookiecutter.package_name }}.pipeline.config import Params, load_params

pytestmark = pytest.mark.slow

# Outputs a forced rerun may change, and why; everything else must keep its hash. Keep this list short: an entry here
# is a place where the same inputs do not give the same bytes.
# The gate's measured latency is not among them: it goes to paths.timings, which neither git nor DVC tracks.
NONDETERMINISTIC = {
    "run": "track logs a new MLflow run on every execution: a new run id, model id and link",
    "report": "it shows the run's link (and the latency measured, read from the untracked paths.timings)",
}
ALWAYS_CHANGED = "tracking-target"  # runs on every repro by design: it records the tracking URI DVC cannot see
REPORT_ONLY_MODULE = f"src/{PACKAGE}/pipeline/report.py"


@dataclass(frozen=True)
class Project:
    root: Path
    store: Path  # the folder of the SQLite tracking stores

    def env(self, store: str = "a") -> dict[str, str]:
        return tool_env(MLFLOW_TRACKING_URI=self.uri(store))

    def uri(self, store: str) -> str:
        return f"sqlite:///{self.store / store}.db"

    @property
    def params(self) -> Params:
        return load_params(self.root / "params.yaml")

    def dvc(self, *args: str, store: str = "a") -> str:
        result = run([BIN / "dvc", *args], self.root, self.env(store), timeout=1200)
        return result.stdout + result.stderr

    def status(self, store: str = "a") -> dict[str, Any]:
        found: dict[str, Any] = json.loads(self.dvc("status", "--json", store=store) or "{}")
        assert found.pop(ALWAYS_CHANGED, None) == ["always changed"], found
        return found

    def lock(self) -> dict[str, dict[str, str]]:
        """Every path of ``dvc.lock`` with its hash, by stage, and each stage's params."""
        found: dict[str, dict[str, str]] = {}
        for name, stage in yaml.safe_load((self.root / "dvc.lock").read_text())["stages"].items():
            entries = found.setdefault(name, {})
            for kind in ("deps", "outs"):
                entries.update({f"{kind}:{entry['path']}": entry["md5"] for entry in stage.get(kind, [])})
            for file, values in stage.get("params", {}).items():
                entries[f"params:{file}"] = json.dumps(values, sort_keys=True)
        return found

    def cached(self, md5: str) -> Path:
        return self.root / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """The pipeline, run once by DVC in a committed git copy of the project, tracked into SQLite store ``a``."""
    if not (PROJECT / load_params(PROJECT / "params.yaml").paths.raw).exists():
        pytest.skip("the raw data is not in the working tree: run `make pull` (or `make setup`) first")
    base = tmp_path_factory.mktemp("lineage")
    root = copy_project(base / PROJECT.name)
    (base / "stores").mkdir()
    found = Project(root, base / "stores")
    run(["git", "init", "--quiet", "--initial-branch=main"], root)
    raw = found.params.paths.raw
    run([BIN / "dvc", "commit", "--force", "--quiet", raw.with_name(raw.name + ".dvc")], root)
    commit_all(root, "the project")
    found.dvc("repro")
    return found


def test_a_module_only_the_report_runs_reruns_only_the_report(project: Project) -> None:
    stages = yaml.safe_load((project.root / "dvc.yaml").read_text())["stages"]
    assert [name for name, stage in stages.items() if REPORT_ONLY_MODULE in stage.get("deps", [])] == ["report"]
    assert project.status() == {}
    module = project.root / REPORT_ONLY_MODULE
    original = module.read_text()
    module.write_text(original + "\n# changed\n")
    try:
        status = project.status()
    finally:
        module.write_text(original)

    assert list(status) == ["report"], status
    assert {"changed deps": {REPORT_ONLY_MODULE: "modified"}} in status["report"], status
    assert project.status() == {}


def test_a_forced_repro_changes_nothing_but_the_declared_measurements(project: Project) -> None:
    paths = project.params.paths
    declared = {getattr(paths, name).as_posix() for name in NONDETERMINISTIC}
    before = project.lock()

    output = project.dvc("repro", "--force")

    after = project.lock()
    assert set(re.findall(r"Running stage '([\w-]+)'", output)) == set(before), output
    assert after.keys() == before.keys()
    changed = {
        f"{stage}: {key}"
        for stage in before
        for key in before[stage].keys() | after[stage].keys()
        if before[stage].get(key) != after[stage].get(key) and key.partition(":")[2] not in declared
    }
    assert not changed, "a forced rerun changed outputs that must be deterministic:\n" + "\n".join(sorted(changed))
    # The latency was measured again, into the untracked timings file, not into the verdict.
    assert json.loads((project.root / paths.timings).read_text())["p99_ms"] > 0


def test_another_tracking_uri_reruns_track_instead_of_restoring_an_old_record(project: Project) -> None:
    from mlflow import MlflowClient

    paths = project.params.paths
    record_a = json.loads((project.root / paths.run).read_text())
    assert record_a["tracking_uri"] == project.uri("a")

    output = project.dvc("repro", store="b")

    assert "Running stage 'track'" in output, output
    record_b = json.loads((project.root / paths.run).read_text())
    assert record_b["tracking_uri"] == project.uri("b")
    assert MlflowClient(tracking_uri=project.uri("b")).get_run(record_b["run_id"]).info.status == "FINISHED"
    assert project.status(store="b") == {}

    # back to store a: the run cache may restore a's record, which names a run that store a holds
    project.dvc("repro", store="a")
    record = json.loads((project.root / paths.run).read_text())
    assert record["tracking_uri"] == project.uri("a")
    assert MlflowClient(tracking_uri=project.uri("a")).get_run(record["run_id"]).info.status == "FINISHED"
