"""The lab's stand-in for github.com: a bare repository that ``https://github.com/<owner>/<name>`` resolves to, the
repository's settings and objects (branch rules, environments, pull requests, issues, comments, tokens) in one JSON
file that the recorders read and write, the artifact store of every run, and the recorders' ``bin/``.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RECORDER = Path(__file__).with_name("recorder.py")
TOOLS = ("git", "gh", "cml", "docker", "cosign", "syft")
# Every job gets a token of its own with exactly the permissions its `permissions:` block grants.
PERMISSION_SCOPES = (
    "actions",
    "attestations",
    "checks",
    "contents",
    "deployments",
    "id-token",
    "issues",
    "packages",
    "pages",
    "pull-requests",
    "security-events",
    "statuses",
)


class ArtifactConflictError(Exception):
    """upload-artifact of a name the run already holds, without ``overwrite``: GitHub answers 409."""


@dataclass
class GitHub:
    """One repository on the lab's github.com."""

    root: Path
    repository: str = "your-org/churn-model"
    serve: str = "true"  # the command the ``docker run`` recorder starts (the project's server)
    private: bool = False
    settings: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.remote = self.root / "github.com" / f"{self.repository}.git"
        self.state = self.root / "github-state"
        self.bin = self.root / "github-bin"
        self.log = self.root / "calls.jsonl"
        self.artifacts = self.root / "artifacts"
        self.gitconfig = self.root / "gitconfig"
        for folder in (self.state, self.bin, self.artifacts):
            folder.mkdir(parents=True, exist_ok=True)
        self.url = f"https://github.com/{self.repository}"
        self.gitconfig.write_text(
            f'[url "file://{self.remote}"]\n\tinsteadOf = {self.url}\n\tinsteadOf = {self.url}.git\n'
            "[init]\n\tdefaultBranch = main\n[advice]\n\tdetachedHead = false\n"
        )
        for tool in TOOLS:
            wrapper = self.bin / tool
            wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{RECORDER}" {tool} "$@"\n')
            wrapper.chmod(0o755)
        self.write(
            {
                "repository": self.repository,
                "private": self.private,
                "rulesets": {},
                "actions_can_create_prs": False,
                "environments": {},
                "pulls": [],
                "issues": [],
                "labels": [],
                "comments": {},
                "tokens": {},
                "provenance_available": True,
                "cloud_identities": {},
                "logins": [],
                **self.settings,
            }
        )
        self._run_ids = 1000

    # --- state shared with the recorders ------------------------------------------------------------------------

    def read(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.state / "github.json").read_text())
        return data

    def write(self, data: dict[str, Any]) -> None:
        (self.state / "github.json").write_text(json.dumps(data, indent=1))

    def update(self, **changes: Any) -> None:
        data = self.read()
        data.update(changes)
        self.write(data)

    def protect(self, branch: str = "main", bypass: tuple[str, ...] = ("app",)) -> None:
        """A ruleset on ``branch`` that requires pull requests; ``bypass`` lists the token kinds allowed past it."""
        data = self.read()
        data["rulesets"][branch] = {"bypass": list(bypass)}
        self.write(data)

    def environment(self, name: str, *, reviewers: bool) -> None:
        data = self.read()
        data["environments"][name] = {"protection_rules": [{"type": "required_reviewers"}] if reviewers else []}
        self.write(data)

    def open_pull(self, number: int, branch: str, sha: str, head_repository: str | None = None) -> dict[str, Any]:
        head_repository = head_repository or self.repository
        pull = {
            "number": number,
            "state": "open",
            "labels": [],
            "head": {
                "ref": branch,
                "sha": sha,
                "repo": {"full_name": head_repository, "owner": {"login": head_repository.split("/")[0]}},
            },
            "base": {"ref": "main", "repo": {"full_name": self.repository}},
        }
        data = self.read()
        data["pulls"].append(pull)
        self.write(data)
        return pull

    def token(self, kind: str, permissions: dict[str, str]) -> str:
        """A new token of ``kind`` (``default``: a job's GITHUB_TOKEN; ``app``: a GitHub App installation token)."""
        value = f"ghs_{kind}_{secrets.token_hex(8)}"
        data = self.read()
        data["tokens"][value] = {"kind": kind, "permissions": {k.replace("-", "_"): v for k, v in permissions.items()}}
        self.write(data)
        return value

    # --- the clouds' OIDC trust (what the cloud login actions exchange a job's id token for) ---------------------

    def cloud_identity(
        self, identity: str, env: dict[str, str], subjects: tuple[str, ...] = (), credentials: str = ""
    ) -> None:
        """A role (AWS ARN), service account (GCP) or app registration (Azure client id) that trusts this repository's
        id tokens whose subject matches one of ``subjects`` (fnmatch patterns such as ``repo:o/n:pull_request``; none:
        any). A login as it hands out ``env`` (temporary credentials); ``credentials`` is the JSON of GCP's file.
        """
        data = self.read()
        data["cloud_identities"][identity] = {"env": env, "subjects": list(subjects), "credentials": credentials}
        self.write(data)

    def record_login(self, login: dict[str, Any]) -> None:
        data = self.read()
        data["logins"].append(login)
        self.write(data)

    def logins(self) -> list[dict[str, Any]]:
        """Every cloud login a job attempted: the action, job, identity, audience, subject, id token, outcome."""
        logins: list[dict[str, Any]] = self.read()["logins"]
        return logins

    def new_run_id(self) -> int:
        self._run_ids += 1
        return self._run_ids

    # --- the repository -------------------------------------------------------------------------------------------

    def publish(self, project: Path) -> None:
        """Make ``project``'s main the repository on github.com (a bare clone)."""
        self.remote.parent.mkdir(parents=True, exist_ok=True)
        git = shutil.which("git")
        assert git, "git is not installed"
        subprocess.run([git, "clone", "--quiet", "--bare", str(project), str(self.remote)], check=True)
        # GitHub serves any commit of the repository by its id (actions/checkout fetches the event's sha).
        self.git("config", "uploadpack.allowAnySHA1InWant", "true")

    def git(self, *args: str) -> str:
        git = shutil.which("git")
        assert git
        result = subprocess.run(
            [git, "--git-dir", str(self.remote), *args], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, f"git {' '.join(args)}: {result.stderr}"
        return result.stdout

    def sha(self, ref: str = "main") -> str:
        return self.git("rev-parse", ref).strip()

    def show(self, path: str, ref: str = "main") -> str:
        return self.git("show", f"{ref}:{path}")

    # --- artifacts ---------------------------------------------------------------------------------------------------

    def upload(self, run_id: int, name: str, source: Path, *, overwrite: bool) -> None:
        target = self.artifacts / str(run_id) / name
        if target.exists():
            if not overwrite:
                raise ArtifactConflictError(
                    "Failed to CreateArtifact: Received non-retryable error: Failed request: (409) Conflict: an "
                    "artifact with this name already exists on the workflow run"
                )
            shutil.rmtree(target)
        if source.is_dir():
            shutil.copytree(source, target)
        else:  # a single file lands at the artifact's root
            target.mkdir(parents=True)
            shutil.copy2(source, target / source.name)

    def artifact(self, run_id: int, name: str) -> Path:
        path = self.artifacts / str(run_id) / name
        if not path.exists():
            raise FileNotFoundError(f"Unable to download artifact(s): Artifact not found for name: {name}")
        return path

    # --- recorders ---------------------------------------------------------------------------------------------------

    def env(self, base: dict[str, str]) -> dict[str, str]:
        """``base`` as a job sees it: recorders first on PATH, github.com resolved to the bare repository, and no
        git identity (GitHub's runners have none: a workflow that commits must configure one).
        """
        real_git = shutil.which("git", path=base.get("PATH"))
        assert real_git, "git is not installed"
        env = {k: v for k, v in base.items() if not k.startswith(("GIT_AUTHOR_", "GIT_COMMITTER_"))}
        return {
            **env,
            "PATH": f"{self.bin}{os.pathsep}{base.get('PATH', '')}",
            "GIT_CONFIG_GLOBAL": str(self.gitconfig),
            "GIT_CONFIG_NOSYSTEM": "1",
            "RECORDER_LOG": str(self.log),
            "LAB_STATE": str(self.state),
            "RECORDER_REAL_GIT": real_git,
            "RECORDER_SERVE": self.serve,
        }

    def calls(self, tool: str | None = None) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        entries = [json.loads(line) for line in self.log.read_text().splitlines()]
        return [e for e in entries if tool is None or e["tool"] == tool]
