"""The lab that runs workflows (``tests/gha``) behaves as GitHub does where a kinder runner would hide a defect:
expressions, the default shell, ``actions/checkout``'s defaults, per-job tokens and branch rules, artifact names,
CML and ``gh``, concurrency groups. Small workflows written here, a small repository; no baked project.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest
from conftest import project_env
from gha.concurrency import Simulation
from gha.expressions import ExpressionError, Status, condition, evaluate, interpolate
from gha.lab import Lab, job_annotations, ok
from gha.runner import describe

from tools.bake import TEMPLATE

CONTEXT: dict[str, Any] = {
    "github": {"ref": "refs/heads/main", "event": {"repository": {"private": False}, "pull_requests": []}},
    "vars": {"EMPTY": "", "ON": "on"},
    "steps": {"app": {"outputs": {"token": ""}}},
}


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("github.ref == 'refs/heads/MAIN'", True),  # strings compare ignoring case
        ("github.REF == 'refs/heads/main'", True),  # so do property names
        ("vars.MISSING", None),
        ("vars.MISSING || 'default'", "default"),
        ("vars.EMPTY || vars.ON", "on"),
        ("steps.app.outputs.token || 'github-token'", "github-token"),
        ("vars.ON && 'yes'", "yes"),
        ("vars.EMPTY && 'yes'", ""),
        ("!github.event.repository.private", True),
        ("vars.X != 'off' && !github.event.repository.private", True),
        ("github.event.pull_requests[0].number", None),
        ("1 == '1'", True),  # coerced to numbers
        ("'' == 0", True),
        ("null == 0", True),
        ("'abc' == 0", False),
        ("0x10 == 16", True),
        ("2 > 1 && 1 >= 1 && 1 < 2 && 2 <= 2", True),
        ("contains('Hello', 'ell')", True),
        ("startsWith('refs/heads/main', 'refs/heads/')", True),
        ("format('{0}-{1}', 'release-model', 2)", "release-model-2"),
        ("fromJSON('[1, 2]')[1]", 2),
        ("(false || null) == false", True),
    ],
)
def test_expressions(expression: str, value: Any) -> None:
    assert evaluate(expression, CONTEXT) == value


def test_expression_text_and_conditions() -> None:
    assert interpolate("name-${{ 1 }}-${{ vars.MISSING }}-${{ true }}", CONTEXT) == "name-1--true"
    # Without a status function GitHub adds success(): after a failure only always()/failure()/!cancelled() run.
    assert condition("vars.ON == 'on'", CONTEXT, Status()) is True
    assert condition("vars.ON == 'on'", CONTEXT, Status(failed=True)) is False
    assert condition("${{ !cancelled() }}", CONTEXT, Status(failed=True)) is True
    assert condition("failure() && vars.ON == 'on'", CONTEXT, Status(failed=True)) is True
    assert condition("", CONTEXT, Status(failed=True)) is False
    # `if: text ${{ expr }}` is a non-empty string, always true, as on GitHub.
    assert condition("x ${{ false }}", CONTEXT, Status()) is True
    for bad in ("hashFiles('x')", "github.event.*.number", "1 +", "vars.ON = 'on'"):
        with pytest.raises(ExpressionError):
            evaluate(bad, CONTEXT)


# --- a tiny repository on the lab's github.com -------------------------------------------------------------------


def workflow(lab: Lab, text: str) -> Path:
    path = lab.root / "wf.yml"
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def lab(tmp_path: Path) -> Lab:
    project = tmp_path / "churn-model"
    project.mkdir()
    env = project_env()
    for command in (
        ["git", "init", "--quiet", "-b", "main"],
        ["git", "commit", "--quiet", "--allow-empty", "-m", "one"],
        ["git", "tag", "v1"],
        ["git", "commit", "--quiet", "--allow-empty", "-m", "two"],
        ["git", "branch", "other"],
        ["git", "commit", "--quiet", "--allow-empty", "-m", "three"],
    ):
        subprocess.run(command, cwd=project, env=env, check=True)
    lab = Lab(tmp_path, env)
    lab.github.publish(project)
    return lab


def run_text(lab: Lab, text: str, event: str = "push", **kwargs: Any) -> Any:
    from gha.runner import WorkflowRun

    return WorkflowRun(lab.github, workflow(lab, text), dict(lab.env), event, **kwargs)


def test_default_shell_has_no_pipefail(lab: Lab) -> None:
    text = """
    on: push
    permissions: {}
    jobs:
      default:
        runs-on: ubuntu-latest
        permissions: {}
        steps:
          - run: false | cat
      bash:
        runs-on: ubuntu-latest
        permissions: {}
        defaults: {run: {shell: bash}}
        steps:
          - run: false | cat
    """
    results = run_text(lab, text).run()
    assert not results["default"].failed  # GitHub's `bash -e {0}`: the failure before the pipe is lost
    assert results["bash"].failed  # `shell: bash` adds -o pipefail


def test_checkout_defaults_and_pushes(lab: Lab) -> None:
    text = """
    on: push
    permissions: {}
    jobs:
      shallow:
        runs-on: ubuntu-latest
        permissions: {contents: read}
        steps:
          - uses: actions/checkout@0000000000000000000000000000000000000000
            with: {persist-credentials: false}
          - id: look
            run: |
              echo "commits=$(git rev-list --count HEAD)" >> "$GITHUB_OUTPUT"
              echo "tags=$(git tag | wc -l)" >> "$GITHUB_OUTPUT"
              echo "branches=$(git branch -r | wc -l)" >> "$GITHUB_OUTPUT"
          - run: git push origin HEAD:main
        outputs:
          commits: ${{ steps.look.outputs.commits }}
          tags: ${{ steps.look.outputs.tags }}
          branches: ${{ steps.look.outputs.branches }}
      full:
        runs-on: ubuntu-latest
        permissions: {contents: read}
        steps:
          - uses: actions/checkout@0000000000000000000000000000000000000000
            with: {fetch-depth: 0}
          - id: look
            run: echo "commits=$(git rev-list --count HEAD) tags=$(git tag | wc -l)" >> "$GITHUB_OUTPUT"
          - run: git push origin HEAD:main
        outputs:
          look: ${{ steps.look.outputs.commits }}
    """
    results = run_text(lab, text).run()
    shallow = results["shallow"]
    assert shallow.outputs == {"commits": "1", "tags": "0", "branches": "1"}
    assert "could not read Username" in shallow.failed.stderr  # no persisted token
    assert results["full"].outputs["look"] == "3 tags=1"
    assert "denied to github-actions[bot]" in results["full"].failed.stderr  # read token


def test_branch_rules_and_app_tokens(lab: Lab) -> None:
    lab.github.protect("main", bypass=("app",))
    text = """
    on: push
    permissions: {}
    jobs:
      push:
        runs-on: ubuntu-latest
        permissions: {contents: write}
        steps:
          - id: app
            if: vars.APP_ID != ''
            uses: actions/create-github-app-token@0000000000000000000000000000000000000000
            with:
              client-id: ${{ vars.APP_ID }}
              private-key: ${{ secrets.APP_KEY }}
          - uses: actions/checkout@0000000000000000000000000000000000000000
            with:
              token: ${{ steps.app.outputs.token || github.token }}
          - run: |
              git -c user.name=ci -c user.email=ci@example.com commit --quiet --allow-empty -m pushed
              git push origin HEAD:main
    """
    before = lab.github.sha()
    refused = run_text(lab, text).run()
    assert "GH013" in refused["push"].failed.stderr
    assert lab.github.sha() == before
    ok(run_text(lab, text, vars={"APP_ID": "1"}, secrets={"APP_KEY": "k"}).run(), "push")
    assert lab.github.git("log", "-1", "--format=%s", "main").strip() == "pushed"
    # GitHub's runners have no git identity: a commit without one fails.
    no_identity = text.replace("git -c user.name=ci -c user.email=ci@example.com commit", "git commit")
    failed = run_text(lab, no_identity, vars={"APP_ID": "1"}, secrets={"APP_KEY": "k"}).run()["push"].failed
    assert failed
    assert "tell me who you are" in failed.stderr.lower()


def test_artifact_names_are_unique_within_a_run(lab: Lab) -> None:
    text = """
    on: push
    permissions: {}
    jobs:
      make:
        runs-on: ubuntu-latest
        permissions: {}
        steps:
          - run: mkdir out && echo "$GITHUB_RUN_ATTEMPT" > out/attempt
          - uses: actions/upload-artifact@0000000000000000000000000000000000000000
            with: {name: fixed, path: out/}
          - uses: actions/upload-artifact@0000000000000000000000000000000000000000
            with: {name: "per-attempt-${{ github.run_attempt }}", path: out/}
          - run: test "$GITHUB_RUN_ATTEMPT" -gt 1
    """
    run = run_text(lab, text)
    assert run.run()["make"].failed.name.startswith("Run test")
    again = run.rerun_failed()["make"]
    assert again.attempt == 2
    assert "(409) Conflict" in again.failed.stderr
    assert (lab.github.artifact(run.run_id, "per-attempt-1") / "attempt").read_text() == "1\n"


def test_recorders_refuse_as_github_does(lab: Lab) -> None:
    lab.github.open_pull(5, "feature", "a" * 40)
    text = """
    on: push
    permissions: {}
    jobs:
      tools:
        runs-on: ubuntu-latest
        permissions: {pull-requests: write}
        steps:
          - run: echo report > report.md
          - id: no-repo
            continue-on-error: true
            env: {REPO_TOKEN: "${{ github.token }}"}
            run: cml comment update --target=pr/5 report.md
          - id: slug
            continue-on-error: true
            env: {REPO_TOKEN: "${{ github.token }}"}
            run: cml comment update --repo your-org/churn-model --target=pr/5 report.md
          - env: {REPO_TOKEN: "${{ github.token }}"}
            run: cml comment update --repo https://github.com/your-org/churn-model --target=pr/5 report.md
          - id: pr
            continue-on-error: true
            env: {GH_TOKEN: "${{ github.token }}"}
            run: gh pr create --base main --head feature --title t --body b
          - id: token
            continue-on-error: true
            run: gh pr list
        outputs:
          outcomes: ${{ steps.no-repo.outcome }} ${{ steps.slug.outcome }} ${{ steps.pr.outcome }} ${{ steps.token.outcome }}
    """  # noqa: E501 - one workflow line
    results = run_text(lab, text).run()
    ok(results, "tools")
    assert results["tools"].outputs["outcomes"] == "failure failure failure failure"
    steps = results["tools"].steps
    assert "remote.origin.url" in steps[1].stderr
    assert "Invalid URL" in steps[2].stderr
    assert "not permitted to create" in steps[4].stderr
    assert "GH_TOKEN" in steps[5].stderr
    assert [c["body"] for c in lab.github.read()["comments"]["5"]] == ["report\n"]
    lab.github.update(actions_can_create_prs=True)
    assert run_text(lab, text).run()["tools"].outputs["outcomes"] == "failure failure success failure"


def test_concurrency_simulation() -> None:
    folder = Path(__file__).parent
    path = folder / "gha" / "example-concurrency.yml"
    states = Simulation(path).play({1: 0, 2: 0, 3: 0}, until=10)
    # One workflow-level group: run 1 holds it, run 2 waits and is replaced by run 3.
    assert states[1]["only"] == "done"
    assert set(states[2].values()) == {"cancelled"}
    assert set(states[3].values()) == {"done"}


def test_template_comment_workflow_finds_the_pull_request(tmp_path: Path) -> None:
    """The template's own comment workflow posts its pipeline report with the generated project's script."""
    env = project_env()
    checkout = tmp_path / "template"  # the template as it is on disk (the code under test), committed as main
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=TEMPLATE,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for name in filter(None, files):
        if (TEMPLATE / name).is_file():
            (checkout / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(TEMPLATE / name, checkout / name)
    for command in (["git", "init", "--quiet", "-b", "main"], ["git", "add", "-A"], ["git", "commit", "-qm", "head"]):
        subprocess.run(command, cwd=checkout, env=env, check=True)
    lab = Lab(tmp_path, env, repository="your-org/gitops-mlops-template")
    lab.github.publish(checkout)
    head = lab.github.sha()
    lab.github.open_pull(3, "feature", head)
    report = tmp_path / "report"
    report.mkdir()
    (report / "report.md").write_text("figures\n")
    (report / "pr-number").write_text("3\n")
    source_run = lab.github.new_run_id()
    lab.github.upload(source_run, "template-report-1", report, overwrite=False)
    payload = {
        "workflow_run": {
            "id": source_run,
            "run_attempt": 1,
            "event": "pull_request",
            "conclusion": "success",
            "head_repository": {"full_name": "your-org/gitops-mlops-template"},
            "head_branch": "feature",
            "head_sha": head,
            "pull_requests": [],
        }
    }
    from gha.runner import WorkflowRun

    path = tmp_path / "pipeline-comment.yml"
    path.write_text(lab.github.show(".github/workflows/pipeline-comment.yml"))
    results = WorkflowRun(lab.github, path, dict(lab.env), "workflow_run", payload=payload).run()
    ok(results, "comment")
    (call,) = lab.github.calls("cml")
    assert call["posted"] == "figures\n", describe(results)
    assert "--no-publish" in call["argv"], describe(results)
    assert json.dumps(lab.github.read()["comments"]["3"]).count("figures") == 1
    assert not job_annotations(results["comment"], "error")


# --- the clouds' OIDC logins ---------------------------------------------------------------------------------------

AWS_KEYS = {"AWS_ACCESS_KEY_ID": "ASIALAB0PR", "AWS_SECRET_ACCESS_KEY": "lab-secret-pr", "AWS_SESSION_TOKEN": "lab-st"}
LOGINS = """
on: pull_request
permissions: {}
defaults: {run: {shell: bash}}
jobs:
  with-token:
    runs-on: ubuntu-latest
    permissions: {contents: read, id-token: write}
    steps:
      - uses: aws-actions/configure-aws-credentials@0000000000000000000000000000000000000000
        with: {role-to-assume: "${{ vars.ROLE }}", aws-region: eu-west-1}
      - run: echo "key=$AWS_ACCESS_KEY_ID region=$AWS_REGION" > "$RUNNER_TEMP/seen" && cat "$RUNNER_TEMP/seen"
  without-token:
    runs-on: ubuntu-latest
    permissions: {contents: read}
    steps:
      - uses: aws-actions/configure-aws-credentials@0000000000000000000000000000000000000000
        with: {role-to-assume: "${{ vars.ROLE }}", aws-region: eu-west-1}
  google:
    runs-on: ubuntu-latest
    permissions: {id-token: write}
    steps:
      - uses: google-github-actions/auth@0000000000000000000000000000000000000000
        with: {workload_identity_provider: projects/1/locations/global/workloadIdentityPools/p/providers/gh,
               service_account: "data@lab-project.iam.gserviceaccount.com"}
      - run: test -s "$GOOGLE_APPLICATION_CREDENTIALS" && echo "$CLOUDSDK_CORE_PROJECT"
  azure:
    runs-on: ubuntu-latest
    permissions: {id-token: write}
    steps:
      - uses: azure/login@0000000000000000000000000000000000000000
        with: {client-id: app-1, tenant-id: tenant-1, subscription-id: sub-1}
"""


def test_cloud_logins_need_an_id_token_and_a_trusting_identity(lab: Lab) -> None:
    role = "arn:aws:iam::111122223333:role/pr-data"
    lab.github.cloud_identity(role, AWS_KEYS, subjects=(f"repo:{lab.github.repository}:pull_request",))
    lab.github.cloud_identity("data@lab-project.iam.gserviceaccount.com", {}, credentials='{"type": "x"}')
    lab.github.cloud_identity("app-1", {"AZURE_LAB_SESSION": "app-1"})
    results = run_text(lab, LOGINS, "pull_request", vars={"ROLE": role}).run()
    seen = results["with-token"].steps[-1]
    assert seen.stdout.strip() == "key=ASIALAB0PR region=eu-west-1", describe(results)
    refused = results["without-token"].failed
    assert refused is not None
    assert "Could not load credentials from any providers" in refused.stderr
    assert results["google"].steps[-1].stdout.strip() == "lab-project", describe(results)
    assert not results["azure"].failed, describe(results)
    logins = {login["job"]: login for login in lab.github.logins()}
    assert logins["with-token"] | {"run_id": 0} == {
        "cloud": "aws",
        "job": "with-token",
        "run_id": 0,
        "identity": role,
        "audience": "sts.amazonaws.com",
        "subject": f"repo:{lab.github.repository}:pull_request",
        "id_token": True,
        "granted": True,
    }
    assert logins["without-token"]["id_token"] is False
    assert logins["without-token"]["granted"] is False
    assert logins["google"]["audience"] == (
        "https://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/gh"
    )
    assert logins["azure"]["audience"] == "api://AzureADTokenExchange"

    # The role trusts pull requests only: a push's token (subject ref:refs/heads/main) is refused, as STS would.
    pushed = run_text(lab, LOGINS.replace("on: pull_request", "on: push"), vars={"ROLE": role}).run()
    assert "Not authorized to perform sts:AssumeRoleWithWebIdentity" in pushed["with-token"].failed.stderr


def test_a_forks_pull_request_gets_no_id_token_and_no_secrets(lab: Lab) -> None:
    """Even a job that asks for id-token: write gets none on a fork's pull request, nor secrets nor a write token."""
    role = "arn:aws:iam::111122223333:role/pr-data"
    lab.github.cloud_identity(role, AWS_KEYS)
    payload = {"pull_request": {"number": 3, "head": {"repo": {"full_name": "someone/churn-model"}}}}
    run = run_text(lab, LOGINS, "pull_request", vars={"ROLE": role}, secrets={"KEY": "s3cr3t"}, payload=payload)
    results = run.run()
    assert "Could not load credentials from any providers" in results["with-token"].failed.stderr
    assert not any(login["id_token"] for login in lab.github.logins())
    assert run.context("t", lab.root)["secrets"] == {"GITHUB_TOKEN": "t"}
