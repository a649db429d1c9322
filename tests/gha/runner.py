"""Run a generated project's workflow here as GitHub runs it: jobs in the order of ``needs:``, each in a fresh empty
workspace with a token of its own (exactly its ``permissions:``), ``if:`` conditions and ``${{ }}`` expressions
evaluated by GitHub's rules (``expressions``), steps run by GitHub's default shell (``bash -e {0}``, without
``pipefail``) unless the step or ``defaults.run.shell`` names one, ``uses:`` steps played as their actions behave by
default (``actions``), and what only GitHub, a registry or Sigstore does answered by recorders (``recorder``).

A failed job skips the jobs that need it (unless their ``if:`` says ``always()`` or ``failure()``); independent jobs
still run. ``rerun_failed`` is "Re-run failed jobs": a new attempt of the same run that re-runs the failed jobs and
those that need them, and keeps the others' results and outputs.
"""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .actions import ActionFailedError, Step, play
from .expressions import Status, condition, evaluate, interpolate
from .platform import GitHub

DEFAULT_SHELL = ["bash", "-e"]  # GitHub's default on Linux: `bash -e {0}`
SHELLS = {"bash": ["bash", "--noprofile", "--norc", "-eo", "pipefail"], "sh": ["sh", "-e"]}
ANNOTATION = re.compile(r"^::(error|warning|notice)(?: [^:]*)?::(.*)$", re.MULTILINE)


@dataclass
class StepResult:
    name: str
    skipped: bool
    returncode: int = 0
    stdout: str = ""
    stderr: str = ""
    uses: str | None = None
    inputs: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    tolerated: bool = False  # failed under continue-on-error
    exported: dict[str, str] = field(default_factory=dict)  # what the step wrote to $GITHUB_ENV
    env: dict[str, str] = field(default_factory=dict)  # the environment a `run:` step's shell ran in

    @property
    def outcome(self) -> str:
        return "skipped" if self.skipped else "success" if self.returncode == 0 else "failure"


@dataclass
class JobResult:
    name: str
    skipped: bool = False
    attempt: int = 1
    steps: list[StepResult] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)
    workspace: Path | None = None
    annotations: list[tuple[str, str]] = field(default_factory=list)

    @property
    def failed(self) -> StepResult | None:
        return next((s for s in self.steps if s.returncode != 0 and not s.tolerated), None)

    @property
    def result(self) -> str:
        return "skipped" if self.skipped else "failure" if self.failed else "success"

    def step(self, prefix: str) -> StepResult:
        return next(s for s in self.steps if s.name.startswith(prefix) or (s.uses or "").startswith(prefix))

    @property
    def actions(self) -> list[StepResult]:
        return [s for s in self.steps if s.uses and not s.skipped]


@dataclass
class WorkflowRun:
    """One run of one workflow file, triggered by ``event`` (``event_name``, ``ref``, ``sha``, ``payload``)."""

    github: GitHub
    workflow: Path
    env: dict[str, str]
    event_name: str
    ref: str = "refs/heads/main"
    sha: str = ""
    payload: dict[str, Any] = field(default_factory=dict)
    vars: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    inputs: dict[str, str] = field(default_factory=dict)
    actor: str = "octocat"
    timeout: float = 900

    def __post_init__(self) -> None:
        self.data = yaml.safe_load(self.workflow.read_text())
        # A pull request from a fork: GitHub gives its run no secrets, no id token and at most a read-only token.
        head = ((self.payload.get("pull_request") or {}).get("head") or {}).get("repo") or {}
        self.fork = self.event_name == "pull_request" and head.get("full_name", self.github.repository) != (
            self.github.repository
        )
        self.run_id = self.github.new_run_id()
        self.attempt = 0
        self.sha = self.sha or self.github.sha(self.ref)
        self.results: dict[str, JobResult] = {}

    # --- contexts ----------------------------------------------------------------------------------------------------

    def github_context(self, token: str) -> dict[str, Any]:
        owner = self.github.repository.split("/")[0]
        return {
            "token": token,
            "actor": self.actor,
            "repository": self.github.repository,
            "repository_owner": owner,
            "event_name": self.event_name,
            "event": {
                "repository": {"full_name": self.github.repository, "private": self.github.read()["private"]},
                **self.payload,
            },
            "ref": self.ref,
            "ref_name": self.ref.rsplit("/", 1)[-1],
            "sha": self.sha,
            "run_id": str(self.run_id),
            "run_attempt": str(self.attempt),
            "workflow": self.data.get("name", self.workflow.name),
            "server_url": "https://github.com",
            "api_url": "https://api.github.com",
        }

    def context(self, token: str, temp: Path) -> dict[str, Any]:
        needs = {n: {"result": r.result, "outputs": r.outputs} for n, r in self.results.items()}
        return {
            "github": self.github_context(token),
            "vars": self.vars,
            "secrets": {"GITHUB_TOKEN": token, **({} if self.fork else self.secrets)},
            "inputs": self.inputs,
            "needs": needs,
            "runner": {"temp": str(temp), "os": "Linux"},
            "env": {},
            "steps": {},
        }

    # --- the run -----------------------------------------------------------------------------------------------------

    def run(self) -> dict[str, JobResult]:
        """The first attempt: every job."""
        return self._attempt(set(self.data["jobs"]))

    def rerun_all(self) -> dict[str, JobResult]:
        """Re-run all jobs: a new attempt of the whole run."""
        return self._attempt(set(self.data["jobs"]))

    def rerun_failed(self) -> dict[str, JobResult]:
        """Re-run failed jobs: a new attempt of the failed jobs and the jobs that need them; the others are kept."""
        again = {n for n, r in self.results.items() if r.result == "failure"}
        changed = True
        while changed:
            changed = False
            for name, job in self.data["jobs"].items():
                if name not in again and again & set(_needs(job)):
                    again.add(name)
                    changed = True
        return self._attempt(again)

    def _attempt(self, jobs: set[str]) -> dict[str, JobResult]:
        self.attempt += 1
        for name in [n for n in self.data["jobs"] if n in jobs]:
            self.results.pop(name, None)
        for name, job in self.data["jobs"].items():
            if name not in jobs:
                continue
            needs = _needs(job)
            for need in needs:
                assert need in self.results, f"{name} needs {need}, which does not come before it in the file"
            failed = any(self.results[n].result == "failure" for n in needs)
            skipped_need = any(self.results[n].skipped for n in needs)
            token = "none"
            temp = self.github.root / f"runner-temp-{self.run_id}-{self.attempt}-{name}"
            context = self.context(token, temp)
            runs = condition(job.get("if"), context, Status(failed=failed))
            if not runs or (skipped_need and not _status_aware(job.get("if"))):
                self.results[name] = JobResult(name, skipped=True, attempt=self.attempt)
                continue
            self.results[name] = self._job(name, job, temp)
        return self.results

    def _job(self, name: str, job: dict[str, Any], temp: Path) -> JobResult:
        result = JobResult(name, attempt=self.attempt)
        workspace = self.github.root / f"ws-{self.run_id}-{self.attempt}-{name}"
        for folder in (workspace, temp):
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
        result.workspace = workspace
        permissions = _permissions(job.get("permissions", self.data.get("permissions", {})))
        if self.fork:
            permissions = {k: "read" for k, v in permissions.items() if k != "id-token" and v in ("read", "write")}
        token = self.github.token("default", permissions)
        context = self.context(token, temp)
        # With id-token: write GitHub injects the id token's request URL and token into every step, and signs the
        # token with these claims (the subject a cloud's trust policy matches).
        oidc: dict[str, str] | None = None
        id_env: dict[str, str] = {}
        if permissions.get("id-token") == "write":
            oidc = self._claims(job, context)
            id_env = {
                "ACTIONS_ID_TOKEN_REQUEST_URL": "https://pipelines.actions.githubusercontent.com/lab/idtoken",
                "ACTIONS_ID_TOKEN_REQUEST_TOKEN": f"lab-id-token-request-{self.run_id}-{name}",
            }
        steps: dict[str, Any] = {}
        context["steps"] = steps
        defaults = {**(self.data.get("defaults") or {}).get("run", {}), **(job.get("defaults") or {}).get("run", {})}
        env: dict[str, str] = {}
        for key, value in {**self.data.get("env", {}), **job.get("env", {})}.items():
            env[key] = interpolate(value, {**context, "env": env})
        context["env"] = env
        failed = False
        for index, step in enumerate(job["steps"]):
            label = step.get("name") or step.get("uses") or f"Run {str(step.get('run', '')).strip().splitlines()[0]}"
            if not condition(step.get("if"), context, Status(failed=failed)):
                result.steps.append(StepResult(label, skipped=True, uses=step.get("uses")))
                if step.get("id"):
                    steps[step["id"]] = {"outputs": {}, "outcome": "skipped", "conclusion": "skipped"}
                continue
            step_env = {**id_env, **env, **{k: interpolate(v, context) for k, v in (step.get("env") or {}).items()}}
            if "uses" in step:
                outcome = self._action(step, context, workspace, temp, token, step_env, name, oidc)
            else:
                outcome = self._script(name, index, step, defaults, workspace, temp, step_env)
            outcome.name = label
            tolerated = outcome.returncode != 0 and evaluate(str(step.get("continue-on-error", False)), context)
            outcome.tolerated = bool(tolerated)
            result.steps.append(outcome)
            result.annotations += ANNOTATION.findall(outcome.stdout + outcome.stderr)
            if step.get("id"):
                steps[step["id"]] = {
                    "outputs": outcome.outputs,
                    "outcome": outcome.outcome,
                    "conclusion": "success" if tolerated else outcome.outcome,
                }
            env.update(outcome.exported)
            failed = failed or (outcome.returncode != 0 and not tolerated)
        result.outputs = {k: interpolate(v, context) for k, v in (job.get("outputs") or {}).items()}
        return result

    def _action(
        self,
        step: dict[str, Any],
        context: dict[str, Any],
        workspace: Path,
        temp: Path,
        token: str,
        env: dict[str, str],
        job: str = "",
        oidc: dict[str, str] | None = None,
    ) -> StepResult:
        action = step["uses"].split("@", 1)[0]
        inputs = {k: interpolate(v, context) for k, v in (step.get("with") or {}).items()}
        event = {"ref": self.ref, "sha": self.sha}
        outcome = StepResult(action, skipped=False, uses=action, inputs=inputs)
        played = Step(
            self.github, inputs, workspace, token, self.run_id, event, {**self.env, **env}, job=job, oidc=oidc
        )
        try:
            outputs = play(action, played)
        except ActionFailedError as exc:
            outcome.returncode, outcome.stderr, outputs = 1, f"::error::{exc}", {}
        outcome.outputs = outputs
        outcome.exported = dict(played.exported) if outcome.returncode == 0 else {}
        return outcome

    def _claims(self, job: dict[str, Any], context: dict[str, Any]) -> dict[str, str]:
        """The id token's claims GitHub signs for this job: ``sub`` names its environment, else a pull request, else
        the ref (what a cloud's trust policy matches)."""
        repository = self.github.repository
        environment = job.get("environment")
        if isinstance(environment, dict):
            environment = environment.get("name")
        if environment:
            subject = f"repo:{repository}:environment:{interpolate(str(environment), context)}"
        elif self.event_name == "pull_request":
            subject = f"repo:{repository}:pull_request"
        else:
            subject = f"repo:{repository}:ref:{self.ref}"
        return {"sub": subject, "repository": repository, "ref": self.ref, "event_name": self.event_name}

    def _script(
        self,
        job: str,
        index: int,
        step: dict[str, Any],
        defaults: dict[str, Any],
        workspace: Path,
        temp: Path,
        env: dict[str, str],
    ) -> StepResult:
        script = step["run"]
        assert "${{" not in script, f"{job}/{index}: pass values through env:, not ${{{{ }}}} in run:"
        shell_name = step.get("shell") or defaults.get("shell")
        shell = SHELLS[shell_name] if shell_name else DEFAULT_SHELL
        cwd = workspace / (step.get("working-directory") or defaults.get("working-directory") or "")
        files = {n: temp / f"{n.lower()}-{index}" for n in ("GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_STEP_SUMMARY")}
        for path in files.values():
            path.write_text("")
        script_file = temp / f"step-{index}.sh"
        script_file.write_text(script)
        process_env = {
            **self.env,
            **env,
            **{k: str(v) for k, v in files.items()},
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_REPOSITORY": self.github.repository,
            "GITHUB_SHA": self.sha,
            "GITHUB_REF": self.ref,
            "GITHUB_EVENT_NAME": self.event_name,
            "GITHUB_RUN_ID": str(self.run_id),
            "GITHUB_RUN_ATTEMPT": str(self.attempt),
            "GITHUB_SERVER_URL": "https://github.com",
            "GITHUB_API_URL": "https://api.github.com",
            "GITHUB_WORKSPACE": str(workspace),
            "RUNNER_TEMP": str(temp),
        }
        proc = subprocess.run(
            [*shell, str(script_file)],
            cwd=cwd,
            env=process_env,
            capture_output=True,
            text=True,
            timeout=self.timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        outcome = StepResult("", False, proc.returncode, proc.stdout, proc.stderr, env=process_env)
        outcome.outputs = _key_values(files["GITHUB_OUTPUT"].read_text())
        outcome.exported = _key_values(files["GITHUB_ENV"].read_text())
        return outcome


def _key_values(text: str) -> dict[str, str]:
    """``name=value`` lines and ``name<<EOF`` blocks, as GitHub reads $GITHUB_OUTPUT."""
    values: dict[str, str] = {}
    lines = iter(text.splitlines())
    for line in lines:
        if "<<" in line and "=" not in line.split("<<", 1)[0]:
            key, marker = line.split("<<", 1)
            block = []
            for inner in lines:
                if inner == marker:
                    break
                block.append(inner)
            values[key] = "\n".join(block)
        elif "=" in line:
            key, value = line.split("=", 1)
            values[key] = value
    return values


def _needs(job: dict[str, Any]) -> list[str]:
    needs = job.get("needs") or []
    return [needs] if isinstance(needs, str) else list(needs)


def _status_aware(text: Any) -> bool:
    return bool(re.search(r"\b(always|failure|cancelled)\s*\(", str(text or "")))


def _permissions(block: Any) -> dict[str, str]:
    """The token's permissions from a ``permissions:`` block (``read-all``/``write-all`` or a mapping)."""
    if block in ("read-all", "write-all"):
        level = block.split("-")[0]
        return dict.fromkeys(("actions", "contents", "issues", "packages", "pull-requests"), level)
    return copy.deepcopy(dict(block or {}))


def describe(results: dict[str, JobResult]) -> str:
    """The failing step's output, for an assertion message."""
    for job in results.values():
        step = job.failed
        if step:
            return f"{job.name} / {step.name} exited {step.returncode}\n{step.stdout[-3000:]}\n{step.stderr[-3000:]}"
    return "no step failed"
