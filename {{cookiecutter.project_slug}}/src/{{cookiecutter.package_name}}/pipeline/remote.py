"""The DVC remote: a preflight that fails in seconds (``check-remote``), and setting the default one (``remote``).

``check-remote`` lists the default remote's root through DVC's own filesystem for it (the code and credentials that
``dvc pull`` and ``dvc push`` use), with a deadline, and names the remote, its URL and what to do when:

* it is a local path and this is CI (``CI`` or ``GITHUB_ACTIONS`` is ``true``) and the path is not there: a folder on
  a developer's disk is out of a hosted runner's reach. Locally a local path is fine (``dvc push`` creates it), and
  so is one that exists in CI (a self-hosted runner's shared disk);
* the host does not answer, or the bucket (container, folder) does not exist;
* no credentials were found, or the remote refused them.

A remote that answers is fine even when it is empty: nothing has been pushed yet.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from {{ cookiecutter.package_name }}.contracts.errors import ProjectError

DEADLINE_S = 10.0
"""How long the check waits for the remote to answer."""
ENDPOINT_SCHEMES = ("s3", "gs")
"""The remotes whose endpoint (an S3- or GCS-compatible server) ``remote --endpoint`` sets: option ``endpointurl``."""
WHAT_TO_DO = "`make remote URL=<url> [ENDPOINT=<url>]` sets the default remote (README: 'For the team')"
ENDPOINT_AT = "the endpoint (.dvc/config.local; in CI, for S3, the variable AWS_ENDPOINT_URL_S3)"


class RemoteError(ProjectError):
    """The default DVC remote cannot be used from here: the message names it, its URL, the problem and what to do."""


@dataclass(frozen=True)
class Remote:
    """The default remote: its name, its URL as configured, and where it points once resolved."""

    name: str
    url: str
    protocol: str  # DVC's filesystem protocol: local, s3, gs, azure, ssh, http...
    path: str


def in_ci() -> bool:
    """Whether this runs in CI (GitHub Actions sets both variables)."""
    return any(os.environ.get(name, "").lower() == "true" for name in ("CI", "GITHUB_ACTIONS"))


def _default_remote(repo: Any) -> tuple[Remote, Any]:
    name = repo.config["core"].get("remote")
    if not name:
        raise RemoteError(f"no default DVC remote is configured (.dvc/config, core.remote): {WHAT_TO_DO}")
    url = repo.config["remote"].get(name, {}).get("url", "")
    try:
        odb = repo.cloud.get_remote(name)
    except Exception as exc:  # an unknown remote, a missing plugin (dvc[s3] ...): DVC's message names it
        raise RemoteError(f"DVC remote {name!r} ({url}) cannot be opened: {exc}") from None
    return Remote(name, url, odb.fs.protocol, odb.path), odb.fs


def _named(remote: Remote) -> str:
    return f"DVC remote {remote.name!r} ({remote.url})"


def _check_local(remote: Remote) -> str:
    path = Path(remote.path)
    if path.is_dir():
        where = " (a folder on this machine: CI jobs reach it only on a self-hosted runner)" if in_ci() else ""
        return f"{_named(remote)} is a local folder{where}"
    if path.exists():
        raise RemoteError(f"{_named(remote)} is a local path that is not a folder: {WHAT_TO_DO}")
    if in_ci():
        raise RemoteError(
            f"{_named(remote)} is a local path that is not on this CI runner: a folder on a developer's disk is out "
            f"of CI's reach. Use a remote CI can reach (S3, GCS, Azure, SSH...): {WHAT_TO_DO}, commit "
            ".dvc/config, and give the CI jobs their credentials (README: 'Workflows and their set-up')"
        )
    if not path.parent.is_dir():
        raise RemoteError(
            f"{_named(remote)} is a local path, and neither it nor its parent folder exists (a drive not mounted?): "
            f"mount it, or {WHAT_TO_DO}"
        )
    return f"{_named(remote)} is a local folder, not created yet (`make push` creates it); CI cannot reach it"


def _list(fs: Any, path: str) -> str:
    """List the remote's root (an empty prefix of a bucket is fine: nothing pushed yet); return what was found."""
    try:
        found = fs.ls(path, detail=False)
        return f"lists {len(found)} entr{'y' if len(found) == 1 else 'ies'} at its root"
    except FileNotFoundError:
        pass
    bucket = path.strip("/").split("/")[0]
    try:
        fs.ls(bucket, detail=False)
    except FileNotFoundError:
        raise FileNotFoundError(f"the bucket (or container) {bucket!r} does not exist") from None
    return "answers and is empty (nothing pushed yet)"


def _credential_help(protocol: str) -> str:
    local = {
        "s3": "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE",
        "gs": "GOOGLE_APPLICATION_CREDENTIALS or `gcloud auth application-default login`",
        "azure": "AZURE_STORAGE_CONNECTION_STRING or `az login`",
    }.get(protocol, "the remote's credentials (`dvc remote modify --local`)")
    return (
        f"locally, set {local}; in CI, the job's cloud login (OIDC, with the role or identity named by the repository "
        "variables in the README) must run before this step"
    )


def _explain(remote: Remote, exc: BaseException) -> RemoteError:
    kind = type(exc).__name__
    message = (str(exc) or kind).rstrip(".")
    if "Credential" in kind:  # botocore's NoCredentialsError, google.auth's DefaultCredentialsError...
        help_ = _credential_help(remote.protocol)
        return RemoteError(f"{_named(remote)}: no credentials were found ({message}): {help_}")
    if isinstance(exc, PermissionError):
        return RemoteError(
            f"{_named(remote)} refused the credentials: {message}. Check the key (or the role's policy: listing and "
            f"reading the bucket for `make pr`, writing as well for `make push`); {_credential_help(remote.protocol)}"
        )
    if isinstance(exc, FileNotFoundError):
        return RemoteError(f"{_named(remote)}: {message}: create it, or {WHAT_TO_DO}")
    return RemoteError(
        f"{_named(remote)} is unreachable ({kind}: {message}): check the URL, {ENDPOINT_AT} and "
        f"the network, or {WHAT_TO_DO}"
    )


def check(root: Path = Path(), deadline_s: float = DEADLINE_S) -> str:
    """Check the default remote from here; return one line saying what it is, or raise a :class:`RemoteError`."""
    from dvc.repo import Repo

    # botocore retries a refused connection 4 times by default, with back-off: twice is enough to say "unreachable".
    os.environ.setdefault("AWS_MAX_ATTEMPTS", "2")
    with Repo(str(root)) as repo:
        remote, fs = _default_remote(repo)
        if remote.protocol == "local":
            return _check_local(remote)
        result: dict[str, Any] = {}

        def probe() -> None:
            try:
                result["found"] = _list(fs, remote.path)
            except BaseException as exc:  # reported by the caller, with what to do
                result["error"] = exc

        # A daemon thread: a host that never answers cannot keep the command past its deadline.
        thread = threading.Thread(target=probe, daemon=True)
        thread.start()
        thread.join(deadline_s)
        if thread.is_alive():
            raise RemoteError(
                f"{_named(remote)} did not answer within {deadline_s:g} s: it is unreachable from here; check the "
                f"URL, {ENDPOINT_AT} and the network, or {WHAT_TO_DO}"
            )
        if "error" in result:
            raise _explain(remote, result["error"])
        return f"{_named(remote)} {result['found']}"


def configure(url: str, endpoint: str | None, name: str | None, root: Path = Path()) -> list[str]:
    """Make ``url`` the default remote (``dvc remote add -d -f``), its endpoint private in ``.dvc/config.local``.

    Without ``endpoint``, an endpoint an earlier call left in ``.dvc/config.local`` for that remote is removed. Return
    what was done, one line each.
    """
    from dvc.repo import Repo

    scheme = url.split("://", 1)[0] if "://" in url else "local"
    if endpoint and scheme not in ENDPOINT_SCHEMES:
        raise RemoteError(f"ENDPOINT is for S3- or GCS-compatible remotes ({', '.join(ENDPOINT_SCHEMES)}), not {url}")
    with Repo(str(root)) as repo:
        name = name or repo.config["core"].get("remote") or "storage"
        had_endpoint = "endpointurl" in repo.config.read("local").get("remote", {}).get(name, {})
    _dvc(root, "remote", "add", "--default", "--force", name, url)
    done = [f"default DVC remote {name!r} -> {url} (.dvc/config: commit it)"]
    if endpoint:
        _dvc(root, "remote", "modify", "--local", name, "endpointurl", endpoint)
        done.append(f"endpoint of {name!r} -> {endpoint} (.dvc/config.local: private, not committed)")
    elif had_endpoint:
        _dvc(root, "remote", "modify", "--local", "--unset", name, "endpointurl")
        done.append(f"removed the endpoint of {name!r} from .dvc/config.local")
    return done


def _dvc(root: Path, *args: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=root, capture_output=True, text=True, check=False, timeout=60
    )
    if result.returncode != 0:
        raise RemoteError(f"`dvc {' '.join(args)}` failed: {(result.stderr or result.stdout).strip()}")
