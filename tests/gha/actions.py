"""The ``uses:`` steps, played as the real actions behave by default (their documented inputs and defaults):

- ``actions/checkout``: ``git init``, a fetch of only the ref to build at ``fetch-depth: 1`` without tags (all
  branches and tags at ``fetch-depth: 0``), a checkout of that ref, and the token written into the repository's
  config unless ``persist-credentials: false``;
- ``actions/upload-artifact`` / ``download-artifact``: names are unique within a run across its attempts (409
  without ``overwrite: true``); ``run-id`` reads another run's;
- ``actions/create-github-app-token``: an installation token of the lab's App, refused without ``private-key``;
- ``actions/attest-build-provenance``: fails as GitHub does where the repository's plan lacks attestations;
- setup actions (uv, cml, cosign, syft, QEMU, buildx) are recorded with their inputs: the tools are already on PATH
  (the ``docker`` recorder plays ``docker buildx``).

Anything else is refused, so a new action in a workflow gets a player here before a test can pass.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .platform import ArtifactConflictError, GitHub

RECORDED = (
    "astral-sh/setup-uv",
    "iterative/setup-cml",
    "sigstore/cosign-installer",
    "anchore/sbom-action/download-syft",
    "docker/setup-qemu-action",
    "docker/setup-buildx-action",
)
OUTPUTS = {"anchore/sbom-action/download-syft": {"cmd": "syft"}}


class ActionFailedError(Exception):
    """The action failed; the message is what it would print."""


@dataclass
class Step:
    """What an action step gets: its inputs (resolved), the job's workspace, token, run and environment."""

    github: GitHub
    inputs: dict[str, str]
    workspace: Path
    token: str
    run_id: int
    event: dict[str, Any]
    env: dict[str, str]

    def git(self, *args: str, cwd: Path | None = None) -> str:
        result = subprocess.run(
            ["git", *args], cwd=cwd or self.workspace, env=self.env, capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise ActionFailedError(f"git {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout


def _flag(value: str, default: bool) -> bool:
    return default if value == "" else value.lower() == "true"


def checkout(step: Step) -> dict[str, str]:
    inputs = step.inputs
    repository = inputs.get("repository") or step.github.repository
    if repository != step.github.repository:
        raise ActionFailedError(f"the lab has no repository {repository}")
    path = step.workspace / inputs.get("path", "")
    path.mkdir(parents=True, exist_ok=True)
    depth = int(inputs.get("fetch-depth") or "1")
    ref, sha = inputs.get("ref", ""), ""
    if not ref:
        ref, sha = step.event["ref"], step.event["sha"]
    elif not ref.startswith("refs/") and len(ref) != 40:
        ref = f"refs/heads/{ref}"
    step.git("init", "--quiet", str(path))
    step.git("remote", "add", "origin", step.github.url, cwd=path)
    if _flag(inputs.get("persist-credentials", ""), True):
        secret = base64.b64encode(f"x-access-token:{inputs.get('token') or step.token}".encode()).decode()
        step.git(
            "config", "--local", "http.https://github.com/.extraheader", f"AUTHORIZATION: basic {secret}", cwd=path
        )
    local = ref.replace("refs/heads/", "refs/remotes/origin/") if ref.startswith("refs/heads/") else ref
    local = local.replace("refs/pull/", "refs/remotes/pull/")
    if depth == 0:
        specs = ["+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"]
        if not ref.startswith("refs/heads/"):
            specs.append(f"+{ref}:{local}")
        step.git("fetch", "--quiet", "--prune", "origin", *specs, cwd=path)
    else:
        step.git("fetch", "--quiet", "--no-tags", f"--depth={depth}", "origin", f"+{sha or ref}:{local}", cwd=path)
    if ref.startswith("refs/heads/"):
        step.git("checkout", "--quiet", "--force", "-B", ref.removeprefix("refs/heads/"), local, cwd=path)
    else:
        step.git("checkout", "--quiet", "--force", "--detach", local, cwd=path)
    return {"ref": ref, "commit": step.git("rev-parse", "HEAD", cwd=path).strip()}


def upload_artifact(step: Step) -> dict[str, str]:
    source = step.workspace / step.inputs["path"]
    name = step.inputs.get("name") or "artifact"
    if not source.exists():
        if step.inputs.get("if-no-files-found", "warn") == "error":
            raise ActionFailedError(f"No files were found with the provided path: {step.inputs['path']}")
        return {}
    try:
        step.github.upload(step.run_id, name, source, overwrite=_flag(step.inputs.get("overwrite", ""), False))
    except ArtifactConflictError as exc:
        raise ActionFailedError(str(exc)) from None
    return {"artifact-id": name}


def download_artifact(step: Step) -> dict[str, str]:
    run_id = int(step.inputs.get("run-id") or step.run_id)
    if step.inputs.get("run-id") and not step.inputs.get("github-token"):
        raise ActionFailedError("github-token is required to download artifacts of another run")
    try:
        source = step.github.artifact(run_id, step.inputs["name"])
    except FileNotFoundError as exc:
        raise ActionFailedError(str(exc)) from None
    shutil.copytree(source, step.workspace / step.inputs.get("path", "."), dirs_exist_ok=True)
    return {"download-path": step.inputs.get("path", ".")}


def create_app_token(step: Step) -> dict[str, str]:
    if not step.inputs.get("private-key"):
        raise ActionFailedError("Input required and not supplied: private-key")
    if not (step.inputs.get("client-id") or step.inputs.get("app-id")):
        raise ActionFailedError("Either 'client-id' or 'app-id' input must be set")
    permissions = {k.removeprefix("permission-"): v for k, v in step.inputs.items() if k.startswith("permission-")}
    app = step.github.read().get("app_permissions", {"contents": "write", "pull-requests": "write"})
    return {"token": step.github.token("app", permissions or app)}


def attest_provenance(step: Step) -> dict[str, str]:
    data = step.github.read()
    if data["private"] and not data["provenance_available"]:
        raise ActionFailedError(
            "Failed to persist attestation: Feature not available for the "
            f"{step.github.repository.split('/')[0]} organization. To enable this feature, please upgrade your "
            "billing plan"
        )
    for key in ("subject-name", "subject-digest"):
        if not step.inputs.get(key):
            raise ActionFailedError(f"Input required and not supplied: {key}")
    return {"attestation-id": "1"}


PLAYERS: dict[str, Callable[[Step], dict[str, str]]] = {
    "actions/checkout": checkout,
    "actions/upload-artifact": upload_artifact,
    "actions/download-artifact": download_artifact,
    "actions/create-github-app-token": create_app_token,
    "actions/attest-build-provenance": attest_provenance,
}


def play(action: str, step: Step) -> dict[str, str]:
    """Run the action; its outputs. Raises ActionFailedError as the action would fail."""
    if action in PLAYERS:
        return PLAYERS[action](step)
    if action in RECORDED:
        return dict(OUTPUTS.get(action, {}))
    raise AssertionError(f"the lab has no player for the action {action}: add one to tests/gha/actions.py")
