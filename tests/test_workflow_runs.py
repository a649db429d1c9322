"""The generated workflows' ``run:`` steps, executed in order in a baked project (``workflow_runner``), with recorders
for what only GitHub, the registry and Sigstore do. One baked "origin" (set up, pipeline run, artifacts pushed to its
local DVC remote, committed) is cloned for each workflow, as GitHub's checkout would.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import bake_into, free_port, project_env, run, wait_for_http
from workflow_runner import JobResult, Recorders, WorkflowRunner, describe

PACKAGE = "churn_model"
IMAGE = "ghcr.io/your-org/churn-model"
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
PR_NUMBER = "7"


def github_context(**extra: Any) -> dict[str, Any]:
    github = {
        "token": "fake-github-token",
        "actor": "octocat",
        "repository": "your-org/churn-model",
        "event_name": "push",
        "ref": "refs/heads/main",
        "event": {},
        **extra,
    }
    return {"github": github, "vars": {}, "secrets": {}, "inputs": {}}


class Lab:
    """The origin, its clones, the recorders and the artifact store of one test."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.origin = root / "churn-model"
        self.tracking = f"sqlite:///{root / 'mlflow-server.db'}"  # the "shared MLflow server"
        self.recorders = Recorders(root / "recorders", serve=f"uv run --frozen {PACKAGE} serve")
        self.artifacts = root / "artifacts"
        self.artifacts.mkdir()
        self.temp = root / "runner-temp"
        self.temp.mkdir()
        self.env = self.recorders.env(project_env())

    def clone(self, name: str) -> Path:
        # Beside the origin, so the relative DVC remote (../churn-model-dvc-remote) is the same folder.
        run(["git", "clone", "--quiet", str(self.origin), str(self.root / name)], cwd=self.root)
        return self.root / name

    def workflow(self, workspace: Path, name: str, context: dict[str, Any]) -> dict[str, JobResult]:
        """Run workflow ``name`` of the origin in ``workspace`` (a clone, or an empty folder for a job that checks
        nothing out).
        """
        workflow = self.origin / ".github" / "workflows" / name
        return WorkflowRunner(workflow, workspace, self.env, context, self.artifacts, self.temp).run()


def ok(results: dict[str, JobResult], *jobs: str) -> None:
    assert list(results) == list(jobs), f"ran {list(results)}, expected {list(jobs)}: {describe(results)}"
    assert not any(r.failed for r in results.values()), describe(results)


def overlay_digest(checkout: Path, env: str) -> str:
    text = (checkout / "deploy" / "overlays" / env / "kustomization.yaml").read_text()
    match = re.search(r"^\s*digest:\s*(\S+)", text, re.MULTILINE)
    assert match
    return match.group(1)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Lab:
    root = tmp_path_factory.mktemp("workflow-runs")
    project = bake_into(root)
    lab = Lab(root)
    assert project == lab.origin
    env = project_env(MLFLOW_TRACKING_URI=lab.tracking)
    run(["make", "setup"], cwd=project, env=env)
    run(["make", "repro"], cwd=project, env=env)
    run(["make", "push"], cwd=project, env=env)
    run("git add -A && git commit --quiet --no-verify -m 'Initial commit'", cwd=project, env=env)
    return lab


@pytest.mark.slow
def test_ci_pr_and_comment_workflows(lab: Lab) -> None:
    checkout = lab.clone("pr-checkout")

    # CI: the project's tests are run in full by the template's end-to-end tests; here one module keeps it short.
    env_before = dict(lab.env)
    lab.env["PYTEST_ADDOPTS"] = "-k test_prepare"
    try:
        ok(lab.workflow(checkout, "ci.yml", github_context(event_name="pull_request")), "checks")
    finally:
        lab.env.clear()
        lab.env.update(env_before)
    # ... and the lock check refuses a params change that dvc.lock does not record.
    params = checkout / "params.yaml"
    original = params.read_text()
    params.write_text(original.replace("curve_points: 21", "curve_points: 22"))
    assert params.read_text() != original
    refused = run(["make", "check-lock"], cwd=checkout, env=lab.env, check=False)
    assert refused.returncode != 0 and "param evaluate modified" in refused.stderr, refused.stdout + refused.stderr
    params.write_text(original)

    # PR training: pull from the remote, reproduce, judge, report; the report goes out as an artifact.
    context = github_context(event_name="pull_request", event={"pull_request": {"number": int(PR_NUMBER)}})
    ok(lab.workflow(checkout, "pr-training.yml", context), "train")
    report = (checkout / "reports" / "report.md").read_text()
    assert "gate" in report.lower()
    assert (lab.artifacts / "pr-report" / "report.md").read_text() == report
    assert (lab.artifacts / "pr-report" / "pr-number").read_text().strip() == PR_NUMBER
    assert not lab.recorders.calls("cml"), "the job that runs PR code must not comment"

    # The comment job: in an empty workspace (it never checks out PR code), from the artifact alone.
    trusted = lab.root / "comment-workspace"
    trusted.mkdir()
    event = {
        "workflow_run": {
            "id": 1,
            "event": "pull_request",
            "conclusion": "success",
            "pull_requests": [{"number": int(PR_NUMBER)}],
        }
    }
    ok(lab.workflow(trusted, "pr-comment.yml", github_context(event_name="workflow_run", event=event)), "comment")
    (call,) = lab.recorders.calls("cml")
    assert call["argv"] == [
        "comment",
        "update",
        f"--target=pr/{PR_NUMBER}",
        "--watermark-title=model report",
        "pr-report/report.md",
    ]
    assert call["posted"] == report

    # A PR number that is not a number, or names another pull request, is refused before CML runs.
    for number, event_pr in (("7; echo owned", PR_NUMBER), ("8", PR_NUMBER)):
        (lab.artifacts / "pr-report" / "pr-number").write_text(number + "\n")
        event = {
            "workflow_run": {
                "id": 2,
                "event": "pull_request",
                "conclusion": "failure",
                "pull_requests": [{"number": int(event_pr)}],
            }
        }
        results = lab.workflow(trusted, "pr-comment.yml", github_context(event_name="workflow_run", event=event))
        assert results["comment"].failed, f"PR number {number!r} was accepted"
        assert len(lab.recorders.calls("cml")) == 1

    # A cancelled training run, or a run that was not for a pull request, gets no comment (the job's if:).
    for kind, conclusion in (("pull_request", "cancelled"), ("push", "success")):
        event = {"workflow_run": {"id": 3, "event": kind, "conclusion": conclusion, "pull_requests": []}}
        results = lab.workflow(trusted, "pr-comment.yml", github_context(event_name="workflow_run", event=event))
        assert results["comment"].skipped, (kind, conclusion)
    assert len(lab.recorders.calls("cml")) == 1


def release(lab: Lab, checkout: Path, staging_url: str, rollout_wait: str = "30") -> dict[str, JobResult]:
    context = github_context()
    context["vars"].update(MLFLOW_TRACKING_URI=lab.tracking, STAGING_URL=staging_url, ROLLOUT_WAIT_SECONDS=rollout_wait)
    return lab.workflow(checkout, "release.yml", context)


@pytest.fixture
def staging_url(lab: Lab) -> Iterator[str]:
    """The server "running in staging": the project's real server on the model that the release builds."""
    port = free_port()
    env = dict(lab.env, HOST="127.0.0.1", PORT=str(port), ADMIN_PORT="off", MODEL_DIR=str(lab.origin / "models"))
    server = subprocess.Popen(
        ["uv", "run", "--frozen", PACKAGE, "serve"],
        cwd=lab.origin,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_http(f"{url}/readyz", 120, server)
        yield url
    finally:
        server.terminate()
        server.wait(30)


RELEASE_JOBS = ("build", "promote-dev", "promote-staging", "promote-prod")


@pytest.mark.slow
def test_release_and_rollback_workflows(lab: Lab, staging_url: str) -> None:
    checkout = lab.clone("main-checkout")
    head = run(["git", "rev-parse", "HEAD"], cwd=checkout).stdout.strip()

    first = release(lab, checkout, staging_url)
    ok(first, *RELEASE_JOBS)
    # Staging was checked against the release's own model metadata, handed over from the build job.
    probed = next(s for s in first["promote-staging"].steps if s.name.startswith("Check the model"))
    assert "pass  serves the release's model version" in probed.stdout, probed.stdout
    assert "healthy" in probed.stdout.splitlines(), probed.stdout  # (make may add "Leaving directory" lines)
    digest = first["build"].outputs["digest"]
    assert DIGEST.match(digest), first["build"].outputs
    assert first["build"].outputs["image"] == IMAGE
    assert first["build"].outputs["model-version"] == "1"

    # Built once, pushed once, and everything after names that one digest.
    builds = [c for c in lab.recorders.calls("docker") if c["argv"][0] == "build"]
    pushes = [c for c in lab.recorders.calls("docker") if c["argv"][0] == "push"]
    assert len(builds) == 1 and len(pushes) == 1
    assert pushes[0]["digest"] == digest
    ref = f"{IMAGE}@{digest}"
    cosign = [c["argv"] for c in lab.recorders.calls("cosign")]
    assert ["sign", "--yes", ref] in cosign
    attest = next(c for c in lab.recorders.calls("cosign") if c["argv"][0] == "attest")
    assert attest["argv"][-1] == ref and "--type" in attest["argv"] and "spdxVersion" in attest["predicate"]
    assert [c["argv"] for c in lab.recorders.calls("syft")] == [
        ["scan", f"registry:{ref}", "--output", "spdx-json=sbom.spdx.json"]
    ]
    provenance = [a for a in first["build"].skipped_actions if a["uses"] == "actions/attest-build-provenance"]
    assert provenance == [
        {
            "uses": "actions/attest-build-provenance",
            "with": {"subject-name": IMAGE, "subject-digest": digest, "push-to-registry": "True"},
        }
    ]
    # The smoke test started the image by digest (the recorder ran the real server) before staging.
    runs = [c["argv"] for c in lab.recorders.calls("docker") if c["argv"][0] == "run"]
    assert len(runs) == 1 and runs[0][-1] == ref

    # One promotion commit per environment, in order, each pushed; the overlays pin the digest.
    log = run(["git", "log", "--format=%s", f"{head}..HEAD"], cwd=checkout).stdout.splitlines()
    assert [s.split(":")[0] for s in log] == ["promote prod", "promote staging", "promote dev"], log
    for env in ("dev", "staging", "prod"):
        assert overlay_digest(checkout, env) == digest
    changed = run(["git", "diff", "--name-only", head, "HEAD"], cwd=checkout).stdout.split()
    assert changed == [f"deploy/overlays/{env}/kustomization.yaml" for env in ("dev", "prod", "staging")]
    pushed = [c["argv"] for c in lab.recorders.calls("git")]
    assert pushed == [["push", "origin", "HEAD:main"]] * 3

    # A second merge: a new build and digest, promoted the same way; then prod is rolled back to the first.
    second = release(lab, checkout, staging_url)
    ok(second, *RELEASE_JOBS)
    new_digest = second["build"].outputs["digest"]
    assert DIGEST.match(new_digest) and new_digest != digest
    assert overlay_digest(checkout, "prod") == new_digest

    context = github_context(event_name="workflow_dispatch")
    context["inputs"] = {"environment": "prod", "to": "not-a-digest"}
    refused = lab.workflow(checkout, "rollback.yml", context)
    assert refused["rollback"].failed and overlay_digest(checkout, "prod") == new_digest

    context["inputs"] = {"environment": "prod", "to": ""}
    rolled = lab.workflow(checkout, "rollback.yml", context)
    ok(rolled, "rollback")
    assert overlay_digest(checkout, "prod") == digest
    assert overlay_digest(checkout, "staging") == new_digest
    subject = run(["git", "log", "-1", "--format=%s"], cwd=checkout).stdout
    assert subject.startswith("roll back prod"), subject
    assert len(lab.recorders.calls("git")) == 7  # 3 + 3 promotions, 1 rollback
    shown = rolled["rollback"].steps[-1].stdout  # the step ends with `make history`
    assert f"{digest}" in shown and f"{new_digest}" in shown and "(current)" in shown, shown

    # A third merge whose model never becomes healthy in staging: staging is rolled back, prod is never promoted.
    third = release(lab, checkout, f"http://127.0.0.1:{free_port()}", rollout_wait="1")
    assert list(third) == list(RELEASE_JOBS[:3]) and third["promote-staging"].failed, describe(third)
    probed = third["promote-staging"].failed
    assert probed.name.startswith("Check the model") and "FAIL  ready" in probed.stdout, probed.stdout
    bad_digest = third["build"].outputs["digest"]
    assert overlay_digest(checkout, "dev") == bad_digest
    assert overlay_digest(checkout, "staging") == new_digest
    assert overlay_digest(checkout, "prod") == digest
    log = run(["git", "log", "--format=%s", "-3"], cwd=checkout).stdout.splitlines()
    assert [s.split(":")[0] for s in log] == ["roll back staging", "promote staging", "promote dev"], log
    assert len(lab.recorders.calls("git")) == 10  # promote dev, promote staging, roll back staging


def live_traffic(lab: Lab, bucket: Path, shift: float) -> int:
    """Serve the origin's model with prediction logging on, as a pod would, and send it 1,500 rows of the data with
    ``monthly_charges`` multiplied by ``shift``; write their true labels, joined by request id, as the labelling team
    would. The logs and labels land in ``bucket`` (what PREDICTION_LOG_URL and LABELS_URL name). Returns the rows sent.
    """
    schema = yaml.safe_load((lab.origin / "data" / "schema.yaml").read_text())
    kinds = {f["name"]: f["type"] for f in schema["features"]}
    target = schema["target"]["name"]
    with (lab.origin / "data" / "raw" / "data.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))[:1500]

    def value(name: str, raw: str) -> Any:
        if raw == "":
            return None
        if kinds[name] == "category":
            return raw
        number = float(raw) * (shift if name == "monthly_charges" else 1.0)
        return round(number) if kinds[name] == "integer" else round(number, 2)

    port = free_port()
    env = dict(
        lab.env,
        HOST="127.0.0.1",
        PORT=str(port),
        ADMIN_PORT="off",
        MODEL_DIR=str(lab.origin / "models"),
        PREDICTION_LOG_DIR=str(bucket / "predictions"),
        PREDICTION_LOG_SAMPLE="1",
    )
    server = subprocess.Popen(["uv", "run", "--frozen", PACKAGE, "serve"], cwd=lab.origin, env=env)
    labels = [["request_id", "index", target]]
    try:
        wait_for_http(f"http://127.0.0.1:{port}/readyz", 120, server)
        for start in range(0, len(rows), 50):
            batch = rows[start : start + 50]
            instances = [{k: value(k, v) for k, v in row.items() if k != target} for row in batch]
            request_id = f"shift{shift}-{start}"
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/predict",
                json.dumps({"instances": instances}).encode(),
                {"Content-Type": "application/json", "X-Request-ID": request_id},
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                assert json.load(response)["request_id"] == request_id
            labels += [[request_id, str(i), row[target]] for i, row in enumerate(batch)]
    finally:
        server.terminate()  # a graceful stop flushes the log
        assert server.wait(30) == 0
    (bucket / "labels").mkdir(parents=True, exist_ok=True)
    with (bucket / "labels" / f"labels-{shift}.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows(labels)
    return len(rows)


def monitor(lab: Lab, checkout: Path, bucket: Path) -> dict[str, JobResult]:
    context = github_context(event_name="schedule")
    context["vars"].update(
        MLFLOW_TRACKING_URI=lab.tracking,
        PREDICTION_LOG_URL=str(bucket / "predictions"),
        LABELS_URL=str(bucket / "labels"),
    )
    return lab.workflow(checkout, "monitor.yml", context)


@pytest.mark.slow
def test_monitor_workflow(lab: Lab) -> None:
    # Without a place to read logs from, there is nothing to watch: both jobs are skipped.
    idle = lab.workflow(lab.clone("idle-checkout"), "monitor.yml", github_context(event_name="schedule"))
    assert idle["monitor"].skipped and idle["retrain"].skipped

    # Live traffic like the training data: no alarm, no issue, no pull request.
    calm = lab.root / "bucket-calm"
    live_traffic(lab, calm, shift=1.0)
    results = monitor(lab, lab.clone("calm-checkout"), calm)
    ok(results, "monitor", "retrain")
    assert results["monitor"].outputs["retrain"] == "false" and results["retrain"].skipped
    assert not lab.recorders.calls("gh")

    # A feature drifts: one issue with the report naming it, and one retraining pull request.
    drifted = lab.root / "bucket-drifted"
    sent = live_traffic(lab, drifted, shift=1.8)
    checkout = lab.clone("monitor-checkout")
    head = run(["git", "rev-parse", "HEAD"], cwd=checkout).stdout.strip()
    results = monitor(lab, checkout, drifted)
    ok(results, "monitor", "retrain")
    assert results["monitor"].outputs["retrain"] == "true"
    report = (checkout / "reports" / "monitoring" / "report.md").read_text()
    assert "monthly_charges" in report
    assert (lab.artifacts / "monitoring-report" / "report.md").read_text() == report
    (issue,) = [c for c in lab.recorders.calls("gh") if c["argv"][:2] == ["issue", "create"]]
    assert issue["body"] == report and "model-monitoring" in issue["argv"]

    # The retraining branch: main plus one commit that adds the window's labelled rows as a new DVC version.
    assert run(["git", "branch", "--show-current"], cwd=checkout).stdout.strip() == "retrain/auto"
    assert run(["git", "rev-parse", "HEAD~1"], cwd=checkout).stdout.strip() == head
    changed = set(run(["git", "diff", "--name-only", head, "HEAD"], cwd=checkout).stdout.split())
    assert {"data/raw/data.csv.dvc", "dvc.lock"} <= changed, changed
    assert not any(p.startswith(("monitoring/", "reports/monitoring/")) for p in changed), changed
    rows = (checkout / "data" / "raw" / "data.csv").read_text().count("\n")
    before = (lab.origin / "data" / "raw" / "data.csv").read_text().count("\n")
    assert rows == before + sent
    status = run(
        ["uv", "run", "--frozen", "dvc", "status", "--cloud", "data/raw/data.csv.dvc"], cwd=checkout, env=lab.env
    )
    assert "new:" not in status.stdout and "missing" not in status.stdout, status.stdout  # pushed to the DVC remote
    pushes = [c["argv"] for c in lab.recorders.calls("git")]
    assert ["push", "--force", "origin", "HEAD:refs/heads/retrain/auto"] in pushes
    (pr,) = [c for c in lab.recorders.calls("gh") if c["argv"][:2] == ["pr", "create"]]
    assert "--head" in pr["argv"] and "retrain/auto" in pr["argv"] and "retraining" in pr["argv"]
    assert report in pr["body"] and f"{sent} labelled rows" in pr["body"]

    # The next day, still drifting: the open issue and the open pull request are updated, not duplicated.
    results = monitor(lab, lab.clone("monitor-checkout-2"), drifted)
    ok(results, "monitor", "retrain")
    verbs = [c["argv"][:2] for c in lab.recorders.calls("gh") if c["argv"][:1] in (["issue"], ["pr"])]
    assert verbs.count(["issue", "create"]) == 1 and verbs.count(["pr", "create"]) == 1
    assert ["issue", "edit"] in verbs and ["issue", "comment"] in verbs and ["pr", "edit"] in verbs
