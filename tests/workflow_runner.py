"""Run a generated project's GitHub workflows here: each job's ``run:`` steps in order, with bash, as the runner would.

What only GitHub has is replaced: ``${{ ... }}`` expressions in ``env:``, ``with:``, ``outputs:`` are resolved from a
small context (``github``, ``vars``, ``secrets``, ``inputs``, ``steps``, ``needs``); the two artifact actions copy a
folder in and out of a local store; every other ``uses:`` step is skipped and recorded with its resolved ``with:``;
and the binaries that would talk to GitHub, a registry or Sigstore (``cml``, ``docker``, ``cosign``, ``syft``, ``gh``
and ``git push``) are recorders on ``PATH`` that append what they were asked to a JSON-lines log (``Recorders``).

A ``run:`` script must not contain ``${{`` itself (values reach it through ``env:``, which is also what keeps it safe
from injection): the runner refuses one that does. All jobs of a workflow run in the same checkout, one after the
other in the order of ``needs:``, since a recorded ``git push`` does not reach a remote the next job could check out.
Conditions (a job's or a step's ``if:``) are evaluated when they are ``always()``, ``!cancelled()``, ``success()``
or comparisons ``<context value> == '<literal>'`` / ``!=`` joined by ``&&``; the runner refuses any other. A job whose
condition is false, or that needs a skipped job, is skipped, as on GitHub.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
COMPARISON = re.compile(r"^([\w.\-\[\]]+)\s*(==|!=)\s*'([^']*)'$")
STATUS = {"always()": True, "!cancelled()": True, "success()": None}  # None: only when nothing failed before
ARTIFACT_ACTIONS = ("actions/upload-artifact", "actions/download-artifact")
# What the skipped setup actions would output.
ACTION_OUTPUTS = {"anchore/sbom-action/download-syft": {"cmd": "syft"}}

# --------------------------------------------------------------------------------------------------------------------
# Recorders: one Python script, linked under each name; it logs its argv and plays its part.
# --------------------------------------------------------------------------------------------------------------------

RECORDER = textwrap.dedent(
    r"""
    import hashlib, json, os, signal, subprocess, sys, time
    from pathlib import Path

    tool, args = Path(sys.argv[0]).name, sys.argv[1:]
    state = Path(os.environ["RECORDER_STATE"])
    entry = {"tool": tool, "argv": args, "cwd": os.getcwd()}

    def log(**extra):
        entry.update(extra)
        with open(os.environ["RECORDER_LOG"], "a") as handle:
            handle.write(json.dumps(entry) + "\n")

    def option(name):
        return args[args.index(name) + 1] if name in args else None

    if tool == "git":
        if args[:1] == ["push"]:
            log()
            sys.exit(0)
        os.execv(os.environ["RECORDER_REAL_GIT"], ["git", *args])
    elif tool == "cml":
        log(posted=Path(args[-1]).read_text())
    elif tool == "gh":
        # Plays GitHub's issues and pull requests: `list` answers the number of the open one (state/gh-<noun>, written
        # by `create`); a --body-file is logged with its content.
        noun, verb = (args + ["", ""])[:2]
        if option("--body-file"):
            entry["body"] = Path(option("--body-file")).read_text()
        known = state / f"gh-{noun}"
        if verb == "list":
            print(known.read_text() if known.exists() else "")
        elif verb == "create" and noun in ("issue", "pr"):
            number = {"issue": "41", "pr": "42"}[noun]
            known.write_text(number)
            print(f"https://github.com/your-org/churn-model/{'issues' if noun == 'issue' else 'pull'}/{number}")
        log()
    elif tool == "syft":
        for spec in [a for a in args if "=" in a and not a.startswith("-")]:
            Path(spec.split("=", 1)[1]).write_text('{"spdxVersion": "SPDX-2.3", "packages": []}\n')
        log()
    elif tool == "cosign" and args[:1] == ["attest"]:
        log(predicate=Path(option("--predicate")).read_text())
    elif tool == "docker" and args[:1] == ["login"]:
        log(password_given=bool(sys.stdin.read()))
    elif tool == "docker" and args[:1] == ["build"]:
        ref = option("--tag")
        image_id = "sha256:" + hashlib.sha256(f"{ref} {time.time_ns()}".encode()).hexdigest()
        Path(option("--iidfile")).write_text(image_id)
        (state / "built.json").write_text(json.dumps({ref: image_id}))
        log(image_id=image_id)
    elif tool == "docker" and args[:1] == ["push"]:
        ref = args[-1]
        built = json.loads((state / "built.json").read_text())
        digest = "sha256:" + hashlib.sha256(f"pushed {built[ref]}".encode()).hexdigest()
        pushed = json.loads((state / "pushed.json").read_text()) if (state / "pushed.json").exists() else {}
        pushed[ref] = digest
        (state / "pushed.json").write_text(json.dumps(pushed))
        print(f"{ref.rsplit(':', 1)[1]}: digest: {digest} size: 1234")
        log(digest=digest)
    elif tool == "docker" and args[:2] == ["image", "inspect"]:
        ref = args[-1]
        digest = json.loads((state / "pushed.json").read_text())[ref]
        print(json.dumps([{"RepoTags": [ref], "RepoDigests": [f"{ref.rsplit(':', 1)[0]}@{digest}"]}]))
    elif tool == "docker" and args[:1] == ["run"]:
        # Start the real server from the checkout's models/ on the published port, as the image would.
        port = option("--publish").split(":")[1]
        env = dict(os.environ, HOST="127.0.0.1", PORT=port, MODEL_DIR="models")
        out = open(state / "server.log", "w")
        server = subprocess.Popen(os.environ["RECORDER_SERVE"].split(), env=env, stdout=out, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, start_new_session=True)
        (state / "server.pid").write_text(str(server.pid))
        print(f"container{server.pid}")
        log()
    elif tool == "docker" and args[:1] == ["rm"]:
        pid = int((state / "server.pid").read_text())
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        log()
    elif tool == "docker" and args[:1] == ["logs"]:
        print((state / "server.log").read_text())
    else:
        log()
    """
).lstrip()

TOOLS = ("cml", "docker", "cosign", "syft", "gh", "git")


@dataclass
class Recorders:
    """A ``bin/`` of recorders and the log they write."""

    root: Path
    serve: str  # the command the ``docker run`` recorder starts (the project's server)

    def __post_init__(self) -> None:
        self.bin = self.root / "bin"
        self.state = self.root / "state"
        self.log = self.root / "calls.jsonl"
        self.bin.mkdir(parents=True, exist_ok=True)
        self.state.mkdir(exist_ok=True)
        script = self.root / "recorder.py"
        script.write_text(f"#!{sys.executable}\n" + RECORDER)
        script.chmod(0o755)
        for tool in TOOLS:  # a link named after the tool, so the script knows what it plays (argv[0])
            (self.bin / tool).symlink_to(script)

    def env(self, base: dict[str, str]) -> dict[str, str]:
        real_git = shutil.which("git", path=base.get("PATH"))
        assert real_git, "git is not installed"
        return {
            **base,
            "PATH": f"{self.bin}{os.pathsep}{base.get('PATH', '')}",
            "RECORDER_LOG": str(self.log),
            "RECORDER_STATE": str(self.state),
            "RECORDER_REAL_GIT": real_git,
            "RECORDER_SERVE": self.serve,
        }

    def calls(self, tool: str | None = None) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        entries = [json.loads(line) for line in self.log.read_text().splitlines()]
        return [e for e in entries if tool is None or e["tool"] == tool]


# --------------------------------------------------------------------------------------------------------------------
# Expressions and the runner
# --------------------------------------------------------------------------------------------------------------------


def _lookup(path: str, context: dict[str, Any]) -> Any:
    literal = re.fullmatch(r"'([^']*)'", path)
    if literal:
        return literal.group(1)
    value: Any = context
    parts = re.findall(r"[A-Za-z_][\w-]*|\[\d+\]", path)
    assert "".join(p if p.startswith("[") else "." + p for p in parts).lstrip(".") == path, f"unsupported: {path}"
    for i, part in enumerate(parts):
        if part.startswith("["):
            value = value[int(part[1:-1])] if isinstance(value, list) and len(value) > int(part[1:-1]) else None
        elif isinstance(value, dict) and part in value:
            value = value[part]
        elif (i == 1 and parts[0] in ("vars", "secrets", "inputs")) or parts[0] in ("steps", "needs"):
            return ""  # unset, or not set by a step or job: empty, as on GitHub
        else:
            raise KeyError(f"the runner has no value for ${{{{ {path} }}}}")
    return value


def condition(text: Any, context: dict[str, Any], failed: bool) -> bool:
    """Whether a job or step with ``if: text`` runs (``failed``: an earlier step of the job failed)."""
    text = str(text or "").strip()
    inner = EXPRESSION.fullmatch(text)
    terms = [t.strip() for t in (inner.group(1) if inner else text).split("&&") if t.strip()]
    runs_after_failure = any(STATUS.get(term) for term in terms)
    if failed and not runs_after_failure:
        return False
    for term in terms:
        if term in STATUS:
            continue
        match = COMPARISON.match(term)
        assert match, f"the runner cannot evaluate if: {text}"
        value = _lookup(match.group(1), context)
        value = "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
        if (value == match.group(3)) != (match.group(2) == "=="):
            return False
    return True


def resolve(text: Any, context: dict[str, Any]) -> str:
    """``text`` with each ``${{ a.b || 'default' }}`` replaced from ``context``."""

    def one(match: re.Match[str]) -> str:
        for alternative in match.group(1).split("||"):
            value = _lookup(alternative.strip(), context)
            if value not in (None, "", False):
                return str(value)
        return ""

    return EXPRESSION.sub(one, str(text))


@dataclass
class StepResult:
    name: str
    skipped: bool
    returncode: int = 0
    stdout: str = ""
    stderr: str = ""


@dataclass
class JobResult:
    name: str
    skipped: bool = False
    steps: list[StepResult] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)
    skipped_actions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failed(self) -> StepResult | None:
        return next((s for s in self.steps if s.returncode != 0), None)


@dataclass
class WorkflowRunner:
    """Run the jobs of one workflow file in ``workspace``, with ``env`` (recorders on PATH) and ``context``."""

    workflow: Path
    workspace: Path
    env: dict[str, str]
    context: dict[str, Any]
    artifacts: Path
    temp: Path
    timeout: float = 900

    def __post_init__(self) -> None:
        self.data = yaml.safe_load(self.workflow.read_text())
        self.needs: dict[str, Any] = {}

    def run(self, only: list[str] | None = None) -> dict[str, JobResult]:
        """Every job (or ``only`` those), in file order, which must respect ``needs:``; stop at the first failure."""
        results: dict[str, JobResult] = {}
        for name, job in self.data["jobs"].items():
            if only is not None and name not in only:
                continue
            needs = job.get("needs") or []
            needs = [needs] if isinstance(needs, str) else needs
            for need in needs:
                assert need in results, f"{name} needs {need}, which did not run before it"
            context = {**self.context, "needs": self.needs}
            if any(results[n].skipped for n in needs) or not condition(job.get("if"), context, False):
                results[name] = JobResult(name, skipped=True)
                self.needs[name] = {"outputs": {}}
                continue
            result = self.run_job(name, job)
            results[name] = result
            if result.failed:
                break
        return results

    def run_job(self, name: str, job: dict[str, Any]) -> JobResult:
        result = JobResult(name)
        steps: dict[str, Any] = {}
        context = {**self.context, "steps": steps, "needs": self.needs}
        job_env = {k: resolve(v, context) for k, v in {**self.data.get("env", {}), **job.get("env", {})}.items()}
        failed = False
        for index, step in enumerate(job["steps"]):
            label = step.get("name") or step.get("uses") or f"step {index}"
            if not condition(step.get("if"), context, failed):
                result.steps.append(StepResult(label, skipped=True))
                continue
            step_env = {k: resolve(v, context) for k, v in step.get("env", {}).items()}
            if "uses" in step:
                self._action(step, context, result, steps)
                result.steps.append(StepResult(label, skipped=False))
                continue
            script = step["run"]
            assert "${{" not in script, f"{name}/{label}: pass values through env:, not ${{{{ }}}} in run:"
            output = self.temp / f"{name}-{index}.output"
            output.write_text("")
            env = {**self.env, **job_env, **step_env, "GITHUB_OUTPUT": str(output), "RUNNER_TEMP": str(self.temp)}
            proc = subprocess.run(
                ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
                cwd=self.workspace,
                env=env,
                capture_output=True,
                text=True,
                timeout=self.timeout,
                stdin=subprocess.DEVNULL,
                check=False,
            )
            result.steps.append(StepResult(label, False, proc.returncode, proc.stdout, proc.stderr))
            outputs = dict(line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)
            if step.get("id"):
                steps[step["id"]] = {"outputs": outputs}
            failed = failed or proc.returncode != 0
        result.outputs = {k: resolve(v, context) for k, v in (job.get("outputs") or {}).items()}
        self.needs[name] = {"outputs": result.outputs}
        return result

    def _action(self, step: dict[str, Any], context: dict[str, Any], result: JobResult, steps: dict[str, Any]) -> None:
        action = step["uses"].split("@", 1)[0]
        inputs = {k: resolve(v, context) for k, v in (step.get("with") or {}).items()}
        if action == "actions/upload-artifact":
            source = self.workspace / inputs["path"]
            assert source.exists(), f"upload-artifact: {inputs['path']} does not exist"
            if source.is_dir():
                shutil.copytree(source, self.artifacts / inputs["name"], dirs_exist_ok=True)
            else:  # a single file lands at the artifact's root
                (self.artifacts / inputs["name"]).mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, self.artifacts / inputs["name"] / source.name)
        elif action == "actions/download-artifact":
            shutil.copytree(self.artifacts / inputs["name"], self.workspace / inputs["path"], dirs_exist_ok=True)
        else:
            result.skipped_actions.append({"uses": action, "with": inputs})
        if step.get("id"):
            steps[step["id"]] = {"outputs": dict(ACTION_OUTPUTS.get(action, {}))}


def describe(results: dict[str, JobResult]) -> str:
    """The failing step's output, for an assertion message."""
    for job in results.values():
        step = job.failed
        if step:
            return f"{job.name} / {step.name} exited {step.returncode}\n{step.stdout[-3000:]}\n{step.stderr[-3000:]}"
    return "no step failed"
