"""The model registry follows the deployments: each environment's alias names the model version its overlay runs.

Git is the record of what runs where (``promote``); MLflow's registry repeats it so that whoever reads the registry
sees what production serves: ``follow`` reads the model version an environment's overlay names and moves that
environment's alias (``mlflow.aliases`` in ``params.yaml``: prod's is ``champion``) to it. It is idempotent, so the
release runs it after every promotion and rollback, and anyone can run it again to repair a registry that missed one.

With a tracking server, a version the registry does not hold is an error: the registry and the deployments disagree.
With a local store (``sqlite:``, ``file:``, a path) the registry lives in one machine's file, not the team's: a version
it does not hold is skipped with a warning, as is an overlay whose model version is unknown.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from {{ cookiecutter.package_name }}.contracts.errors import ProjectError
from {{ cookiecutter.package_name }}.pipeline.config import Params
from {{ cookiecutter.package_name }}.pipeline.tracking import tracking_uri
from {{ cookiecutter.package_name }}.pipeline.tracking_server import (
    check_reachable,
    http_settings,
    is_outage,
    public_uri,
    reason,
)
from {{ cookiecutter.package_name }}.release.promote import DEPLOY_DIR, UNKNOWN_VERSION, overlay, read_release


class RegistryError(ProjectError):
    """The registry cannot follow the deployment: the message names the model, version and store."""


@dataclass(frozen=True)
class AliasMove:
    """What ``follow`` did to one environment's alias: moved it, found it in place, or skipped it (and why)."""

    env: str
    alias: str
    model: str
    version: str
    previous: str | None  # the version the alias named before; None when it named none
    moved: bool
    skipped: str | None = None  # why nothing was asked of the registry

    @property
    def message(self) -> str:
        """One line for the log."""
        where = f"{self.model}@{self.alias}"
        if self.skipped:
            return f"{where} not moved: {self.skipped}"
        if not self.moved:
            return f"{where} already names version {self.version}, which {self.env} runs"
        before = f"from version {self.previous}" if self.previous else "(it named no version)"
        return f"moved {where} to version {self.version} {before}: {self.env} runs it"


def is_local(uri: str) -> bool:
    """Whether the store is a file of this machine rather than a server the team shares."""
    return not uri.startswith(("http://", "https://", "databricks"))


def follow(env: str, params: Params, deploy_dir: Path = DEPLOY_DIR) -> AliasMove:
    """Point ``env``'s alias at the model version its overlay names."""
    path = overlay(env, deploy_dir)
    release = read_release(path.read_text(), str(path))
    alias: str = getattr(params.mlflow.aliases, env)
    model = params.mlflow.registered_model
    if release.model_version == UNKNOWN_VERSION:
        why = f"{path} names no model version (promote with --model-version)"
        return AliasMove(env, alias, model, release.model_version, None, moved=False, skipped=why)
    uri = tracking_uri(params.mlflow)
    check_reachable(uri, params.track)
    with http_settings(params.track) as http:
        try:
            return _move(env, alias, model, release.model_version, uri)
        except RegistryError:
            raise
        except Exception as exc:
            if not is_outage(exc):
                raise
            raise RegistryError(
                f"the MLflow registry {public_uri(uri)} failed: {reason(exc, http['timeout'])}"
            ) from None


def _move(env: str, alias: str, model: str, version: str, uri: str) -> AliasMove:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri=uri)
    try:
        client.get_model_version(model, version)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        missing = f"the registry {public_uri(uri)} holds no version {version} of {model}"
        if is_local(uri):
            return AliasMove(env, alias, model, version, None, moved=False, skipped=f"{missing} (a local store)")
        raise RegistryError(f"{missing}, which {env} runs: register it, or promote the version that was") from None
    try:
        previous: str | None = str(client.get_model_version_by_alias(model, alias).version)
    except MlflowException as exc:
        if exc.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise
        previous = None
    if previous == version:
        return AliasMove(env, alias, model, version, previous, moved=False)
    client.set_registered_model_alias(model, alias, version)
    return AliasMove(env, alias, model, version, previous, moved=True)
