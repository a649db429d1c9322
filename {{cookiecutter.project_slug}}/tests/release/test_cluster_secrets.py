"""The cluster's Secrets (``scripts/cluster_secrets.py``, ``make pull-secret`` / ``make repo-secret``): made from the
environment, valid Kubernetes objects, named and placed where the manifests and Argo CD look for them, and the same
image pull credentials ``kubectl create secret docker-registry`` writes. Nothing here talks to a cluster.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from conftest import PROJECT
from test_deploy import DEPLOY, IMAGE_NAME, KUBECTL, PULL_SECRET, one, render, rendered

from {{ cookiecutter.package_name }}.release.promote import ENVIRONMENTS

SCRIPT = PROJECT / "scripts" / "cluster_secrets.py"
CREDENTIALS = (
    "REGISTRY_USERNAME",
    "REGISTRY_TOKEN",
    "GITHUB_APP_ID",
    "GITHUB_APP_INSTALLATION_ID",
    "GITHUB_APP_PRIVATE_KEY_FILE",
    "REPO_USERNAME",
    "REPO_TOKEN",
)
# The keys of an Argo CD repository Secret (argo-cd v3.5.1, docs/operator-manual/declarative-setup.md).
ARGOCD_REPOSITORY_KEYS = {
    "type",
    "url",
    "username",
    "password",
    "githubAppID",
    "githubAppInstallationID",
    "githubAppPrivateKey",
}
TOKEN = "ghp_" + "x1" * 18  # a made-up token: it must reach the Secret and never a message
# Split so that no file holds a private key's header (the detect-private-key hook).
KEY = "-----BEGIN " + "RSA PRIVATE KEY-----\nMIIBOgIBAAJBAK\n-----END " + "RSA PRIVATE KEY-----\n"

pytestmark = pytest.mark.skipif(not DEPLOY.is_dir(), reason="generated without deploy/")


def secrets(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the script with only ``env``'s credentials."""
    base = {k: v for k, v in os.environ.items() if k not in CREDENTIALS}
    command = [sys.executable, str(SCRIPT), *args]
    return subprocess.run(command, capture_output=True, text=True, env=base | env, check=False)


def manifests(*args: str, **env: str) -> list[dict[str, Any]]:
    result = secrets(*args, **env)
    assert result.returncode == 0, result.stderr
    docs = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    for doc in docs:
        kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)
    return docs


def applications() -> list[dict[str, Any]]:
    return render(DEPLOY / "argocd")


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_pull_secret_is_the_one_the_pods_name_in_their_namespace(env: str) -> None:
    docs = manifests("pull-secret", env, REGISTRY_USERNAME="octocat", REGISTRY_TOKEN=TOKEN)
    namespace, secret = one(docs, "Namespace"), one(docs, "Secret")
    account = one(rendered(env), "ServiceAccount")
    assert namespace["metadata"]["name"] == secret["metadata"]["namespace"] == account["metadata"]["namespace"]
    assert secret["metadata"]["name"] == PULL_SECRET
    assert {"name": PULL_SECRET} in account["imagePullSecrets"]
    assert secret["type"] == "kubernetes.io/dockerconfigjson"
    config = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))
    assert list(config["auths"]) == [IMAGE_NAME.split("/")[0]], "credentials for the image's registry"

    # The same credentials kubectl writes for `kubectl create secret docker-registry`.
    server = IMAGE_NAME.split("/")[0]
    create = [KUBECTL, "create", "secret", "docker-registry", PULL_SECRET, f"--docker-server={server}"]
    credentials = ["--docker-username=octocat", f"--docker-password={TOKEN}"]
    command = [*create, *credentials, "--dry-run=client", "-o", "json"]
    reference = subprocess.run(command, capture_output=True, text=True, check=True)
    expected = json.loads(base64.b64decode(json.loads(reference.stdout)["data"][".dockerconfigjson"]))
    assert config == expected


def test_the_pull_secret_needs_its_credentials_and_a_known_environment() -> None:
    result = secrets("pull-secret", "dev", REGISTRY_TOKEN=TOKEN)
    assert result.returncode == 1
    assert "REGISTRY_USERNAME" in result.stderr
    assert TOKEN not in result.stderr + result.stdout
    result = secrets("pull-secret", "qa", REGISTRY_USERNAME="octocat", REGISTRY_TOKEN=TOKEN)
    assert result.returncode == 1
    assert "unknown environment 'qa'" in result.stderr


@pytest.mark.parametrize("auth", ["github-app", "token"])
def test_argo_cd_gets_credentials_for_the_applications_repository(auth: str, tmp_path: Path) -> None:
    key_file = tmp_path / "app.pem"
    key_file.write_text(KEY)
    env = (
        {"GITHUB_APP_ID": "12345", "GITHUB_APP_INSTALLATION_ID": "678", "GITHUB_APP_PRIVATE_KEY_FILE": str(key_file)}
        if auth == "github-app"
        else {"REPO_USERNAME": "octocat", "REPO_TOKEN": TOKEN}
    )
    (secret,) = manifests("repo-secret", **env)
    assert secret["kind"] == "Secret"
    assert secret["metadata"]["labels"] == {"argocd.argoproj.io/secret-type": "repository"}
    data = secret["stringData"]
    assert set(data) <= ARGOCD_REPOSITORY_KEYS
    for app in applications():
        assert secret["metadata"]["namespace"] == app["metadata"]["namespace"]
        assert data["url"] == app["spec"]["source"]["repoURL"]
    assert data["type"] == "git"
    if auth == "github-app":
        assert (data["githubAppID"], data["githubAppInstallationID"]) == ("12345", "678")
        assert data["githubAppPrivateKey"] == KEY
        assert "password" not in data
    else:
        assert (data["username"], data["password"]) == ("octocat", TOKEN)


def test_the_repository_secret_says_what_is_missing(tmp_path: Path) -> None:
    result = secrets("repo-secret")
    assert result.returncode == 1
    assert "GITHUB_APP_ID" in result.stderr
    assert "REPO_TOKEN" in result.stderr
    result = secrets("repo-secret", REPO_TOKEN=TOKEN)
    assert result.returncode == 1
    assert "REPO_USERNAME" in result.stderr
    assert TOKEN not in result.stderr
    not_a_key = tmp_path / "key.txt"
    not_a_key.write_text(TOKEN)
    app = {"GITHUB_APP_INSTALLATION_ID": "2", "GITHUB_APP_PRIVATE_KEY_FILE": str(not_a_key)}
    result = secrets("repo-secret", GITHUB_APP_ID="1", **app)
    assert result.returncode == 1
    assert "not a PEM private key" in result.stderr
    assert TOKEN not in result.stderr
    result = secrets("repo-secret", GITHUB_APP_ID="my-app", **app)
    assert result.returncode == 1
    assert "GITHUB_APP_ID must be a number" in result.stderr


@pytest.mark.parametrize(("target", "args"), [("pull-secret", ["ENV=prod"]), ("repo-secret", [])])
def test_make_prints_or_applies_the_secret(target: str, args: list[str]) -> None:
    def dry_run(*extra: str) -> str:
        command = ["make", "--dry-run", "-f", str(PROJECT / "Makefile"), target, *args, *extra]
        return subprocess.run(command, capture_output=True, text=True, check=True, cwd=PROJECT).stdout

    printed = dry_run()
    assert f"scripts/cluster_secrets.py {target}" in printed
    assert "kubectl apply" not in printed
    assert "kubectl apply --server-side -f -" in dry_run("APPLY=1")
