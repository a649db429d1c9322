"""The ``uses:`` steps, played as the real actions behave by default (their documented inputs and defaults):

- ``actions/checkout``: ``git init``, a fetch of only the ref to build at ``fetch-depth: 1`` without tags (all
  branches and tags at ``fetch-depth: 0``), a checkout of that ref, and the token written into the repository's
  config unless ``persist-credentials: false``;
- ``actions/upload-artifact`` / ``download-artifact``: names are unique within a run across its attempts (409
  without ``overwrite: true``); ``run-id`` reads another run's;
- ``actions/create-github-app-token``: an installation token of the lab's App, refused without ``private-key``;
- ``actions/attest-build-provenance``: fails as GitHub does where the repository's plan lacks attestations;
- the clouds' OIDC logins (``aws-actions/configure-aws-credentials``, ``google-github-actions/auth``,
  ``azure/login``): each asks GitHub for an id token (refused without ``id-token: write``, as GitHub injects no
  ``ACTIONS_ID_TOKEN_REQUEST_*`` then), exchanges it for an identity the test set up (``GitHub.cloud_identity``, whose
  trust names the token subjects it accepts) and exports that identity's temporary credentials as the real action
  does; every attempt is recorded (``GitHub.logins``) with the identity, audience, subject and whether the job had
  an id token;
- setup actions (uv, cml, cosign, syft, QEMU, buildx) are recorded with their inputs: the tools are already on PATH
  (the ``docker`` recorder plays ``docker buildx``).

Anything else is refused, so a new action in a workflow gets a player here before a test can pass.
"""

from __future__ import annotations

import base64
import fnmatch
import json
import secrets
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
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
    job: str = ""
    oidc: dict[str, str] | None = None  # the id token's claims (sub, repository, ref): only with id-token: write
    exported: dict[str, str] = field(default_factory=dict)  # what the action exports to the job's later steps

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


def _exchange(step: Step, cloud: str, identity: str, audience: str, *, no_token: str, refused: str) -> dict[str, Any]:
    """Exchange the job's id token for ``identity`` as the cloud's trust allows; record the attempt either way."""
    has_token = step.oidc is not None and bool(step.env.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN"))
    subject = (step.oidc or {}).get("sub", "")
    trusted = step.github.read()["cloud_identities"].get(identity) if identity else None
    error = ""
    if not has_token:
        error = no_token
    elif trusted is None or (
        trusted["subjects"] and not any(fnmatch.fnmatchcase(subject, p) for p in trusted["subjects"])
    ):
        error = refused
    step.github.record_login(
        {
            "cloud": cloud,
            "job": step.job,
            "run_id": step.run_id,
            "identity": identity,
            "audience": audience,
            "subject": subject,
            "id_token": has_token,
            "granted": not error,
        }
    )
    if error:
        raise ActionFailedError(error)
    assert trusted is not None
    return dict(trusted)


def aws_login(step: Step) -> dict[str, str]:
    """configure-aws-credentials: AssumeRoleWithWebIdentity, then AWS_* exported to the job's later steps."""
    region = step.inputs.get("aws-region", "")
    if not region:
        raise ActionFailedError("Input required and not supplied: aws-region")
    role = step.inputs.get("role-to-assume", "")
    audience = step.inputs.get("audience") or "sts.amazonaws.com"
    trusted = _exchange(
        step,
        "aws",
        role,
        audience,
        no_token="Credentials could not be loaded, please check your action inputs: Could not load credentials from "
        "any providers",
        refused="Not authorized to perform sts:AssumeRoleWithWebIdentity",
    )
    step.exported.update(trusted["env"])
    step.exported.update(AWS_REGION=region, AWS_DEFAULT_REGION=region)
    return {}


def gcp_login(step: Step) -> dict[str, str]:
    """google-github-actions/auth: Workload Identity Federation (impersonating ``service_account`` when given); the
    credentials file is written into the workspace and named by the variables gcloud and the client libraries read.
    """
    provider = step.inputs.get("workload_identity_provider", "")
    if not provider and not step.inputs.get("credentials_json"):
        raise ActionFailedError(
            'The GitHub Action workflow must specify exactly one of "workload_identity_provider" or "credentials_json"!'
        )
    account = step.inputs.get("service_account", "")
    audience = step.inputs.get("audience") or f"https://iam.googleapis.com/{provider}"
    trusted = _exchange(
        step,
        "gcp",
        account or provider,
        audience,
        no_token="GitHub Actions did not inject $ACTIONS_ID_TOKEN_REQUEST_TOKEN or $ACTIONS_ID_TOKEN_REQUEST_URL into "
        "this job. This most likely means the GitHub Actions workflow permissions are incorrect, or this job is being "
        "run from a fork.",
        refused="failed to generate Google Cloud federated token: The given credential is rejected by the attribute "
        "condition.",
    )
    path = step.workspace / f"gha-creds-{secrets.token_hex(8)}.json"
    path.write_text(trusted["credentials"] or json.dumps({"type": "external_account", "audience": audience}))
    project = step.inputs.get("project_id") or (account.split("@", 1)[1].split(".", 1)[0] if "@" in account else "")
    step.exported.update(trusted["env"])
    for name in ("CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE", "GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_GHA_CREDS_PATH"):
        step.exported[name] = str(path)
    if project:
        for name in (
            "CLOUDSDK_CORE_PROJECT",
            "CLOUDSDK_PROJECT",
            "GCLOUD_PROJECT",
            "GCP_PROJECT",
            "GOOGLE_CLOUD_PROJECT",
        ):
            step.exported[name] = project
    return {"project_id": project, "credentials_file_path": str(path)}


def azure_login(step: Step) -> dict[str, str]:
    """azure/login: ``az login --federated-token`` as the app registration ``client-id``. The real action keeps the
    session in the Azure CLI's profile and exports no variable; the lab exports what the test's identity names.
    """
    for key in ("client-id", "tenant-id"):
        if not step.inputs.get(key):
            raise ActionFailedError(f"Using auth-type: SERVICE_PRINCIPAL. Not all values are present: {key} is missing")
    if not step.inputs.get("subscription-id") and not _flag(step.inputs.get("allow-no-subscriptions", ""), False):
        raise ActionFailedError("Ensure subscriptionId is supplied.")
    audience = step.inputs.get("audience") or "api://AzureADTokenExchange"
    trusted = _exchange(
        step,
        "azure",
        step.inputs["client-id"],
        audience,
        no_token="Failed to fetch federated token from GitHub. Please make sure to give write permissions to "
        "id-token in the workflow.",
        refused="AADSTS700213: No matching federated identity record found for presented assertion subject",
    )
    step.exported.update(trusted["env"])
    return {}


PLAYERS: dict[str, Callable[[Step], dict[str, str]]] = {
    "actions/checkout": checkout,
    "actions/upload-artifact": upload_artifact,
    "actions/download-artifact": download_artifact,
    "actions/create-github-app-token": create_app_token,
    "actions/attest-build-provenance": attest_provenance,
    "aws-actions/configure-aws-credentials": aws_login,
    "google-github-actions/auth": gcp_login,
    "azure/login": azure_login,
}


def play(action: str, step: Step) -> dict[str, str]:
    """Run the action; its outputs. Raises ActionFailedError as the action would fail."""
    action = action.lower()  # GitHub resolves owner/name ignoring case (azure/login is Azure/login)
    if action in PLAYERS:
        return PLAYERS[action](step)
    if action in RECORDED:
        return dict(OUTPUTS.get(action, {}))
    raise AssertionError(f"the lab has no player for the action {action}: add one to tests/gha/actions.py")
