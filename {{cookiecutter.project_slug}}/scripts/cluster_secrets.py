"""The two Secrets the cluster needs and git must never hold, printed as manifests from environment variables.

``pull-secret ENV``: the image pull Secret that ``deploy/base/serviceaccount.yaml`` names, for the namespace of
``deploy/overlays/ENV`` (and that Namespace, so the Secret can be there before Argo CD's first sync). GHCR packages
are private by default: without it the pods cannot pull the image. From ``REGISTRY_USERNAME`` and ``REGISTRY_TOKEN``
(on GHCR: a personal access token (classic) with only the ``read:packages`` scope).

``repo-secret``: Argo CD's credentials for this repository (a Secret labelled
``argocd.argoproj.io/secret-type: repository`` in the Applications' namespace, for the Applications' ``repoURL``),
needed when the repository is private. From a GitHub App (``GITHUB_APP_ID``, ``GITHUB_APP_INSTALLATION_ID``,
``GITHUB_APP_PRIVATE_KEY_FILE``: the app's ``.pem``; the app needs read access to Contents) or else a token
(``REPO_USERNAME``, ``REPO_TOKEN``: a fine-grained token with read access to this repository's Contents).

The manifest goes to stdout, for ``kubectl apply --server-side -f -`` (``make pull-secret ENV=dev APPLY=1``,
``make repo-secret APPLY=1``) or a sealing tool; nothing is written to disk. Exit 1, naming the problem, when a
variable is missing or malformed; the credentials are never part of a message.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
from pathlib import Path
from typing import Any

import yaml

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
IMAGE = "{{ cookiecutter.image_name }}"
ENVIRONMENTS = ("dev", "staging", "prod")
REPOSITORY_LABEL = "argocd.argoproj.io/secret-type"
REPOSITORY_SECRET = "{{ cookiecutter.project_slug }}-repository"


class SecretError(Exception):
    """A Secret that cannot be made: the message names the missing or malformed input."""


def _load(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _required(env: dict[str, str], *names: str) -> list[str]:
    missing = [name for name in names if not env.get(name)]
    if missing:
        raise SecretError(f"set {', '.join(missing)} in the environment")
    return [env[name] for name in names]


def pull_secret(environment: str, env: dict[str, str]) -> list[dict[str, Any]]:
    """The Namespace of ``environment`` and the image pull Secret its ServiceAccount names."""
    if environment not in ENVIRONMENTS:
        raise SecretError(f"unknown environment {environment!r}: use one of {', '.join(ENVIRONMENTS)}")
    namespace = yaml.safe_load((DEPLOY / "overlays" / environment / "kustomization.yaml").read_text())["namespace"]
    (account,) = [d for d in _load(DEPLOY / "base" / "serviceaccount.yaml") if d["kind"] == "ServiceAccount"]
    (name,) = [s["name"] for s in account["imagePullSecrets"]]
    username, token = _required(env, "REGISTRY_USERNAME", "REGISTRY_TOKEN")
    registry = IMAGE.split("/", 1)[0]
    auth = base64.b64encode(f"{username}:{token}".encode()).decode()
    config = {"auths": {registry: {"username": username, "password": token, "auth": auth}}}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": namespace},
            "type": "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": base64.b64encode(json.dumps(config).encode()).decode()},
        },
    ]


def repo_secret(env: dict[str, str]) -> list[dict[str, Any]]:
    """Argo CD's repository Secret for the Applications' ``repoURL``: a GitHub App's or a token's."""
    applications = [d for path in sorted((DEPLOY / "argocd").glob("*.yaml")) for d in _load(path)]
    applications = [d for d in applications if d.get("kind") == "Application"]
    urls = {a["spec"]["source"]["repoURL"] for a in applications}
    namespaces = {a["metadata"]["namespace"] for a in applications}
    if len(urls) != 1 or len(namespaces) != 1:
        raise SecretError(f"deploy/argocd: expected one repoURL and one namespace, found {sorted(urls | namespaces)}")
    (url,), (namespace,) = urls, namespaces
    data = {"type": "git", "url": url}
    if env.get("GITHUB_APP_ID"):
        app_id, installation, key_file = _required(
            env, "GITHUB_APP_ID", "GITHUB_APP_INSTALLATION_ID", "GITHUB_APP_PRIVATE_KEY_FILE"
        )
        for name, value in (("GITHUB_APP_ID", app_id), ("GITHUB_APP_INSTALLATION_ID", installation)):
            if not value.isdigit():
                raise SecretError(f"{name} must be a number (the app's settings page shows it)")
        path = Path(key_file).expanduser()
        if not path.is_file():
            raise SecretError(f"GITHUB_APP_PRIVATE_KEY_FILE {key_file}: no such file")
        key = path.read_text()
        first = key.lstrip().split("\n", 1)[0]
        if not (first.startswith("-----BEGIN") and "PRIVATE KEY" in first):
            raise SecretError(f"GITHUB_APP_PRIVATE_KEY_FILE {key_file}: not a PEM private key (the app's .pem)")
        data |= {"githubAppID": app_id, "githubAppInstallationID": installation, "githubAppPrivateKey": key}
    elif env.get("REPO_TOKEN") or env.get("REPO_USERNAME"):
        username, token = _required(env, "REPO_USERNAME", "REPO_TOKEN")
        data |= {"username": username, "password": token}
    else:
        raise SecretError(
            "set GITHUB_APP_ID, GITHUB_APP_INSTALLATION_ID and GITHUB_APP_PRIVATE_KEY_FILE (a GitHub App), "
            "or REPO_USERNAME and REPO_TOKEN (a read-only token) in the environment"
        )
    metadata = {"name": REPOSITORY_SECRET, "namespace": namespace, "labels": {REPOSITORY_LABEL: "repository"}}
    return [{"apiVersion": "v1", "kind": "Secret", "metadata": metadata, "type": "Opaque", "stringData": data}]


def main(argv: list[str] | None = None) -> int:
    """Print the manifest; 1 with the problem on stderr when an input is missing or malformed."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    pull = commands.add_parser("pull-secret", help="the image pull Secret of an environment's namespace")
    pull.add_argument("environment", help=", ".join(ENVIRONMENTS))
    commands.add_parser("repo-secret", help="Argo CD's credentials for this repository")
    args = parser.parse_args(argv)
    env = dict(os.environ)
    try:
        docs = pull_secret(args.environment, env) if args.command == "pull-secret" else repo_secret(env)
    except SecretError as exc:
        print(f"error: {args.command}: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(yaml.safe_dump_all(docs, sort_keys=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
