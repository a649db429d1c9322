"""The generated workflows, run as GitHub runs them (``tests/gha``): each job in a fresh checkout of the lab's
github.com made the way ``actions/checkout`` makes it, with a token holding exactly the job's permissions, GitHub's
default shell, artifacts that keep their names for the whole run, and recorders that refuse what GitHub refuses
(pushes to a protected main with the workflow's token, pull requests opened by it, CML without a repository).

One baked origin (set up, pipeline run, artifacts pushed to its DVC remote, committed) is published once per module;
each test runs workflows against it and reads the result back from github.com.
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
from conftest import bake_into, project_env, run
from gha.lab import PACKAGE, Lab, job_annotations, ok
from gha.runner import JobResult, describe

from tools.shared import free_port, wait_for_http

IMAGE = "ghcr.io/your-org/churn-model"
PLATFORMS = ["linux/amd64", "linux/arm64"]  # what the release builds: one manifest list
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
RELEASE_JOBS = ("build", "promote-dev", "promote-staging", "promote-prod")
APP = {"RELEASE_APP_CLIENT_ID": "Iv23liExample"}
APP_SECRETS = {"RELEASE_APP_PRIVATE_KEY": "-----BEGIN RSA PRIVATE KEY-----\nlab\n-----END RSA PRIVATE KEY-----"}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Lab:
    root = tmp_path_factory.mktemp("workflow-runs")
    project = bake_into(root)
    # The developer's own MLflow store: the release runner never sees it (the default setup, sqlite in the clone).
    env = project_env()
    run(["make", "setup"], cwd=project, env=env)
    run(["make", "repro"], cwd=project, env=env)
    run(["make", "push"], cwd=project, env=env)
    run("git add -A && git commit --quiet --no-verify -m 'Initial commit'", cwd=project, env=env)
    lab = Lab(root, project_env())
    assert project == lab.origin
    lab.github.publish(project)
    for environment in ("dev", "staging", "prod"):
        lab.github.environment(environment, reviewers=environment == "prod")
    lab.github.protect("main", bypass=("app",))
    return lab


def overlay_digest(lab: Lab, env: str, ref: str = "main") -> str:
    text = lab.github.show(f"deploy/overlays/{env}/kustomization.yaml", ref)
    match = re.search(r"^\s*digest:\s*(\S+)", text, re.MULTILINE)
    assert match
    return match.group(1)


def subjects(lab: Lab, since: str) -> list[str]:
    return [s.split(":")[0] for s in lab.github.git("log", "--format=%s", f"{since}..main").splitlines()]


# --- pull requests ------------------------------------------------------------------------------------------------


def push_branch(lab: Lab, branch: str, message: str, refs: tuple[str, ...] = ()) -> str:
    """A commit on top of main in a clone of the developer's, pushed to github.com as ``branch`` (and ``refs``)."""
    clone = lab.root / f"dev-{branch}"
    run(["git", "clone", "--quiet", str(lab.github.remote), str(clone)], cwd=lab.root)
    run(["git", "switch", "--quiet", "-c", branch], cwd=clone)
    run(["git", "commit", "--quiet", "--allow-empty", "-m", message], cwd=clone, env=project_env())
    sha = run(["git", "rev-parse", "HEAD"], cwd=clone).stdout.strip()
    for ref in (f"refs/heads/{branch}", *refs):
        run(["git", "push", "--quiet", str(lab.github.remote), f"HEAD:{ref}"], cwd=clone)
    return sha


def workflow_run_event(run_id: int, head: dict[str, str], numbers: list[int], conclusion: str = "success") -> Any:
    return {
        "workflow_run": {
            "id": run_id,
            "run_attempt": 1,
            "event": "pull_request",
            "conclusion": conclusion,
            "head_repository": {"full_name": head["repository"]},
            "head_branch": head["branch"],
            "head_sha": head["sha"],
            # GitHub leaves this empty for pull requests from forks.
            "pull_requests": [{"number": n} for n in numbers],
        }
    }


def comment(lab: Lab, payload: Any) -> dict[str, JobResult]:
    return lab.run("pr-comment.yml", "workflow_run", payload=payload)


def comments(lab: Lab, number: int) -> list[dict[str, str]]:
    found: list[dict[str, str]] = lab.github.read()["comments"].get(str(number), [])
    return found


@pytest.mark.slow
def test_ci_pr_training_and_comment(lab: Lab) -> None:
    sha = push_branch(lab, "better-model", "Try a change", refs=("refs/pull/7/merge",))
    lab.github.open_pull(7, "better-model", sha)
    pr_event: dict[str, Any] = {"ref": "refs/pull/7/merge", "sha": sha, "payload": {"pull_request": {"number": 7}}}

    # CI: the project's tests run in full in the template's end-to-end tests; one module keeps this short.
    lab.env["PYTEST_ADDOPTS"] = "-k test_prepare"
    try:
        ok(lab.run("ci.yml", "pull_request", **pr_event), "checks")
    finally:
        del lab.env["PYTEST_ADDOPTS"]

    # PR training in a shallow-by-default checkout that asked for main's history: the report compares with main.
    training = lab.workflow("pr-training.yml", "pull_request", **pr_event)
    results = training.run()
    ok(results, "train")
    report = (results["train"].workspace / "reports" / "report.md").read_text()  # type: ignore[operator]
    assert "gate" in report.lower()
    assert "main" in report
    artifact = lab.github.artifact(training.run_id, "pr-report-1")
    assert (artifact / "report.md").read_text() == report
    assert (artifact / "pr-number").read_text().strip() == "7"
    assert not lab.github.calls("cml"), "the job that runs PR code must not comment"

    # The trusted comment job finds the PR through the API and posts with --repo, no image upload, no telemetry.
    head = {"repository": "your-org/churn-model", "branch": "better-model", "sha": sha}
    ok(comment(lab, workflow_run_event(training.run_id, head, [7])), "comment")
    (call,) = lab.github.calls("cml")
    assert call["argv"][:2] == ["comment", "update"]
    assert "--no-publish" in call["argv"]
    assert call["argv"][call["argv"].index("--repo") + 1] == "https://github.com/your-org/churn-model"
    assert call["argv"][call["argv"].index("--target") + 1] == "pr/7"
    assert call["posted"] == report
    assert not call["publish"]
    assert not call["telemetry"]
    # Posting again (a re-run) updates the one comment in place.
    ok(comment(lab, workflow_run_event(training.run_id, head, [7])), "comment")
    assert [c["body"] for c in comments(lab, 7)] == [report]

    # "Re-run all jobs" of the training run uploads its report under the attempt's own name.
    ok(training.rerun_all(), "train")
    assert (lab.github.artifact(training.run_id, "pr-report-2") / "report.md").exists()

    # A fork: GitHub gives no pull-request number, and the fork's own code wrote the artifact.
    fork_sha = push_branch(lab, "fork-patch", "A fork's change", refs=("refs/pull/8/head",))
    lab.github.open_pull(8, "patch-1", fork_sha, head_repository="forker/churn-model")
    fork_head = {"repository": "forker/churn-model", "branch": "patch-1", "sha": fork_sha}

    def forks_report(number: str, text: str) -> int:
        run_id = lab.github.new_run_id()
        folder = lab.root / f"fork-artifact-{run_id}"
        folder.mkdir()
        (folder / "report.md").write_text(text)
        (folder / "pr-number").write_text(number + "\n")
        lab.github.upload(run_id, "pr-report-1", folder, overwrite=False)
        return run_id

    ok(comment(lab, workflow_run_event(forks_report("8", "fork report"), fork_head, [])), "comment")
    assert [c["body"] for c in comments(lab, 8)] == ["fork report"]
    # ... and a fork whose artifact names another pull request is refused: PR 7's report is untouched.
    forged = comment(lab, workflow_run_event(forks_report("7", "forged"), fork_head, []))
    assert forged["comment"].failed
    assert "belongs to pull request 8" in describe(forged)
    assert [c["body"] for c in comments(lab, 7)] == [report]
    # A number that is not a number is refused before anything is asked.
    junk = comment(lab, workflow_run_event(forks_report("7; echo owned", "junk"), fork_head, []))
    assert junk["comment"].failed
    assert "no valid pull-request number" in describe(junk)
    # A run whose head the pull request has moved past posts nothing (the newer run will).
    stale = dict(fork_head, sha="0" * 40)
    results = comment(lab, workflow_run_event(forks_report("8", "stale"), stale, []))
    ok(results, "comment")
    assert any("nothing to post" in a for a in job_annotations(results["comment"], "notice"))
    assert [c["body"] for c in comments(lab, 8)] == ["fork report"]

    # A cancelled training run, or a run that was not for a pull request, gets no comment (the job's if:).
    for kind, conclusion in (("pull_request", "cancelled"), ("push", "success")):
        event = workflow_run_event(training.run_id, head, [7], conclusion)
        event["workflow_run"]["event"] = kind
        assert comment(lab, event)["comment"].skipped, (kind, conclusion)


# --- releases -----------------------------------------------------------------------------------------------------


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


def release_vars(staging_url: str, rollout_wait: str = "30", **more: str) -> dict[str, str]:
    return {**APP, "STAGING_URL": staging_url, "ROLLOUT_WAIT_SECONDS": rollout_wait, **more}


@pytest.mark.slow
def test_release_rerun_and_rollback(lab: Lab, staging_url: str) -> None:
    start = lab.github.sha()

    # A release on a protected main, pushing with the release App's token; its build's push (buildx pushes the
    # manifest list as it builds it) fails once, and "Re-run failed jobs" finishes it (the model metadata artifact is
    # uploaded again under the attempt's name).
    lab.env["LAB_FAIL_ONCE"] = "docker-push"
    try:
        release = lab.workflow("release.yml", "push", vars=release_vars(staging_url), secrets=APP_SECRETS)
        first = release.run()
    finally:
        del lab.env["LAB_FAIL_ONCE"]
    failed = first["build"].failed
    assert failed, describe(first)
    assert failed.name.startswith("Build the image"), describe(first)  # pipefail: `make image | tee`
    assert all(first[j].skipped for j in RELEASE_JOBS[1:])
    assert lab.github.sha() == start
    first = release.rerun_failed()
    ok(first, *RELEASE_JOBS)
    assert first["build"].attempt == 2
    assert first["promote-dev"].attempt == 2
    probed = first["promote-staging"].step("Check the model")
    assert "pass  serves the release's model version" in probed.stdout, probed.stdout

    # The default MLflow setup: the runner's store does not have the developer's run, and the version is registered.
    assert first["build"].outputs["model-version"] == "1", describe(first)
    digest = first["build"].outputs["digest"]
    assert DIGEST.match(digest)
    assert first["build"].outputs["image"] == IMAGE

    # Built once per attempt, for both platforms, by buildx with QEMU set up first; pushed once as one manifest list
    # (plus the failed try), whose digest push-image read back and everything after names.
    docker = lab.github.calls("docker")
    builds = [c for c in docker if c["argv"][:2] == ["buildx", "build"]]
    assert len(builds) == 2
    assert not [c for c in docker if c["argv"][:1] in (["build"], ["push"])]
    assert all(b["platforms"] == PLATFORMS and "--push" in b["argv"] for b in builds), builds
    assert [b.get("digest") for b in builds if not b.get("failed")] == [digest]
    assert any(c["argv"][:3] == ["buildx", "imagetools", "inspect"] for c in docker)
    qemu = first["build"].step("docker/setup-qemu-action")
    assert "arm64" in qemu.inputs["platforms"]
    assert qemu.inputs["cache-image"] == "false"
    ref = f"{IMAGE}@{digest}"
    cosign = [c["argv"] for c in lab.github.calls("cosign")]
    assert ["sign", "--yes", ref] in cosign
    attest = next(c for c in lab.github.calls("cosign") if c["argv"][0] == "attest")
    assert attest["argv"][-1] == ref
    assert "spdxVersion" in attest["predicate"]
    provenance = first["build"].step("actions/attest-build-provenance")
    assert provenance.inputs == {"subject-name": IMAGE, "subject-digest": digest, "push-to-registry": "true"}
    runs = [c["argv"] for c in docker if c["argv"][0] == "run"]
    assert len(runs) == 1
    assert runs[0][-1] == ref

    # Each promotion moves its environment's registry alias; the default store (SQLite in the runner's checkout) holds
    # no version on a fresh runner, so the move is skipped with its reason (a tracking server is tested in the project).
    follow = first["promote-prod"].step("Promote the digest to prod")
    assert "@champion not moved: the registry sqlite:///mlflow.db holds no version 1 of" in follow.stdout, follow.stdout

    # One promotion commit per environment on github.com's main, each pushed with the App's token.
    assert subjects(lab, start) == ["promote prod", "promote staging", "promote dev"]
    for env in ("dev", "staging", "prod"):
        assert overlay_digest(lab, env) == digest
    pushes = [c for c in lab.github.calls("git") if c["argv"][0] == "push"]
    assert [c["token_kind"] for c in pushes] == ["app"] * 3
    assert all(c["returncode"] == 0 for c in pushes)

    # Without the App the workflow's own token is refused by main's rules, and the job says what to set up.
    second_start = lab.github.sha()
    no_app = lab.run("release.yml", "push", vars={"STAGING_URL": staging_url, "ROLLOUT_WAIT_SECONDS": "30"})
    assert no_app["promote-dev"].failed, describe(no_app)
    assert no_app["promote-staging"].skipped, describe(no_app)
    assert any("RELEASE_APP_CLIENT_ID" in a for a in job_annotations(no_app["promote-dev"], "error"))
    assert lab.github.sha() == second_start
    refused = [c for c in lab.github.calls("git") if c.get("refused")]
    assert refused
    assert refused[-1]["token_kind"] == "default"

    # A second release reaches staging; prod, whose environment lost its reviewers, refuses to deploy unreviewed.
    lab.github.environment("prod", reviewers=False)
    second = lab.run("release.yml", "push", vars=release_vars(staging_url), secrets=APP_SECRETS)
    assert second["promote-prod"].failed, describe(second)
    assert not second["promote-staging"].failed, describe(second)
    assert any("no required reviewers" in a for a in job_annotations(second["promote-prod"], "error"))
    new_digest = second["build"].outputs["digest"]
    assert overlay_digest(lab, "staging") == new_digest
    assert overlay_digest(lab, "prod") == digest
    # ... unless the team says so explicitly.
    allowed = lab.run(
        "release.yml", "push", vars=release_vars(staging_url, ALLOW_UNREVIEWED_PROD="true"), secrets=APP_SECRETS
    )
    ok(allowed, *RELEASE_JOBS)
    assert any("unreviewed" in a for a in job_annotations(allowed["promote-prod"], "warning"))
    lab.github.environment("prod", reviewers=True)
    new_digest = allowed["build"].outputs["digest"]
    assert overlay_digest(lab, "prod") == new_digest

    # Rollback by hand: the checkout has the overlay's history, so prod returns to the first release.
    rolled = lab.run(
        "rollback.yml", "workflow_dispatch", inputs={"environment": "prod", "to": ""}, vars=APP, secrets=APP_SECRETS
    )
    ok(rolled, "rollback")
    assert overlay_digest(lab, "prod") == digest
    assert overlay_digest(lab, "staging") == new_digest
    assert lab.github.git("log", "-1", "--format=%s", "main").startswith("roll back prod")
    shown = rolled["rollback"].steps[-1].stdout  # the step ends with `make history`
    assert digest in shown, shown
    assert new_digest in shown, shown
    assert "(current)" in shown, shown
    bad = lab.run("rollback.yml", "workflow_dispatch", inputs={"environment": "prod", "to": "x"}, vars=APP)
    assert bad["rollback"].failed
    assert overlay_digest(lab, "prod") == digest

    # A release whose model never becomes healthy in staging: staging is rolled back, prod is never promoted.
    third = lab.run(
        "release.yml",
        "push",
        vars=release_vars(f"http://127.0.0.1:{free_port()}", rollout_wait="1"),
        secrets=APP_SECRETS,
    )
    assert third["promote-staging"].failed, describe(third)
    assert third["promote-prod"].skipped, describe(third)
    assert "FAIL  ready" in third["promote-staging"].failed.stdout
    assert overlay_digest(lab, "dev") == third["build"].outputs["digest"]
    assert overlay_digest(lab, "staging") == new_digest
    assert overlay_digest(lab, "prod") == digest
    log = lab.github.git("log", "--format=%s", "-3", "main").splitlines()
    assert [s.split(":")[0] for s in log] == ["roll back staging", "promote staging", "promote dev"], log


@pytest.mark.slow
def test_release_only_from_main_and_provenance_switch(lab: Lab, staging_url: str) -> None:
    # A dispatch from another branch releases nothing.
    push_branch(lab, "experiment", "An experiment")
    before = lab.github.sha()
    results = lab.run("release.yml", "workflow_dispatch", ref="refs/heads/experiment", vars=release_vars(staging_url))
    assert all(r.skipped for r in results.values())
    assert lab.github.sha() == before
    rolled = lab.run("rollback.yml", "workflow_dispatch", ref="refs/heads/experiment", inputs={"environment": "dev"})
    assert rolled["rollback"].skipped

    # A private repository on a plan without attestations: the build skips provenance with a warning...
    lab.github.update(private=True, provenance_available=False)
    try:
        private = lab.workflow("release.yml", "push", vars=release_vars(staging_url), secrets=APP_SECRETS)
        build = private.run()["build"]
        assert not build.failed, describe(private.results)
        assert build.step("Build provenance").skipped
        assert any("No build provenance" in a for a in job_annotations(build, "warning"))
        # ... and BUILD_PROVENANCE=on asks for it anyway, failing where the plan lacks it.
        forced = lab.run("release.yml", "push", vars=release_vars(staging_url, BUILD_PROVENANCE="on"))
        assert forced["build"].failed
        assert "Feature not available" in forced["build"].failed.stderr
    finally:
        lab.github.update(private=False, provenance_available=True)


# --- monitoring ---------------------------------------------------------------------------------------------------


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


def monitor(lab: Lab, bucket: Path, app: bool = True) -> dict[str, JobResult]:
    variables = {"PREDICTION_LOG_URL": str(bucket / "predictions"), "LABELS_URL": str(bucket / "labels")}
    return lab.run(
        "monitor.yml", "schedule", vars={**variables, **(APP if app else {})}, secrets=APP_SECRETS if app else {}
    )


@pytest.mark.slow
def test_monitor_workflow(lab: Lab) -> None:
    # Without a place to read logs from, there is nothing to watch: both jobs are skipped.
    idle = lab.run("monitor.yml", "schedule")
    assert idle["monitor"].skipped
    assert idle["retrain"].skipped

    # Live traffic like the training data: no alarm, no issue, no pull request.
    calm = lab.root / "bucket-calm"
    live_traffic(lab, calm, shift=1.0)
    results = monitor(lab, calm)
    ok(results, "monitor")
    assert results["monitor"].outputs["retrain"] == "false"
    assert results["retrain"].skipped
    github = lab.github.read()
    assert not github["issues"]
    assert not [p for p in github["pulls"] if "retraining" in p["labels"]]

    # A feature drifts. Without the App, the workflow's own token may not open the pull request (the repository
    # setting is off by default): the retraining job fails saying so, after the issue was opened.
    drifted = lab.root / "bucket-drifted"
    sent = live_traffic(lab, drifted, shift=1.8)
    start = lab.github.sha()
    refused = monitor(lab, drifted, app=False)
    assert refused["retrain"].failed
    assert "not permitted to create" in refused["retrain"].failed.stderr
    (issue,) = lab.github.read()["issues"]
    report = (refused["monitor"].workspace / "reports" / "monitoring" / "report.md").read_text()  # type: ignore[operator]
    assert "monthly_charges" in report
    assert issue["body"] == report
    assert "model-monitoring" in issue["labels"]

    # With the App: one retraining pull request, the next day's run updates the issue and the pull request.
    results = monitor(lab, drifted)
    ok(results, "monitor", "retrain")
    assert results["monitor"].outputs["retrain"] == "true"
    (pull,) = [p for p in lab.github.read()["pulls"] if "retraining" in p["labels"]]
    assert pull["head"]["ref"] == "retrain/auto"
    assert f"{sent} labelled rows" in pull["body"]
    branch = "retrain/auto"
    assert lab.github.git("rev-parse", f"{branch}~1").strip() == start  # main plus one commit
    changed = set(lab.github.git("diff", "--name-only", start, branch).split())
    assert {"data/raw/data.csv.dvc", "dvc.lock"} <= changed, changed
    assert not any(p.startswith(("monitoring/", "reports/monitoring/")) for p in changed), changed
    workspace = results["retrain"].workspace
    assert workspace is not None
    rows = (workspace / "data" / "raw" / "data.csv").read_text().count("\n")
    assert rows == (lab.origin / "data" / "raw" / "data.csv").read_text().count("\n") + sent
    status = run(["uv", "run", "--frozen", "dvc", "status", "--cloud", "data/raw/data.csv.dvc"], cwd=workspace)
    assert "new:" not in status.stdout, status.stdout  # pushed to the DVC remote
    assert "missing" not in status.stdout, status.stdout
    (issue,) = lab.github.read()["issues"]
    assert issue["comments"], "the open issue gets a comment with the new verdict"
    ok(monitor(lab, drifted), "monitor", "retrain")
    github = lab.github.read()
    assert len([p for p in github["pulls"] if "retraining" in p["labels"]]) == 1
    assert len(github["issues"]) == 1
    verbs = [c["argv"][:2] for c in lab.github.calls("gh") if c["argv"][:1] in (["issue"], ["pr"])]
    assert verbs.count(["pr", "edit"]) == 1, verbs
    assert verbs.count(["issue", "edit"]) == 2, verbs
