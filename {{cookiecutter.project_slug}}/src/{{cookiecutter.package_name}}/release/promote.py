"""Promotion: which image each environment runs, changed one git commit at a time.

Git is the record. ``deploy/overlays/<env>/kustomization.yaml`` pins the serving image by digest (``images:``) and
names its model version (the ``model-version`` annotation). ``promote`` and ``rollback`` rewrite those two lines, and
nothing else, then commit that one file; ``history`` reads them back from ``git log`` of the file. Argo CD deploys
what the commit says. Environments are promoted in order: a digest reaches staging only from dev, and prod only from
staging, unless forced.

Each command runs under a lock and each commit lands all at once or not at all, whatever runs beside it or
interrupts it: see ``gitops``.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from {{ cookiecutter.package_name }}.contracts.errors import ProjectError
from {{ cookiecutter.package_name }}.contracts.git import GitError
from {{ cookiecutter.package_name }}.release import gitops

ENVIRONMENTS = ("dev", "staging", "prod")
"""In promotion order: each one takes its digest from the one before."""
DEPLOY_DIR = Path("deploy")
IMAGE = "model-server"
"""The image name in ``deploy/base``, which each overlay's ``images:`` entry pins."""
VERSION_ANNOTATION = "model-version"
NOTHING = "sha256:" + "0" * 64
"""The digest of an overlay nothing was promoted to yet."""
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
MODEL_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")
UNKNOWN_VERSION = "unknown"


class PromotionError(ProjectError):
    """A promotion, rollback or history request that cannot be done: the message names the problem."""


@dataclass(frozen=True)
class Release:
    """What an overlay says its environment runs."""

    digest: str
    model_version: str


@dataclass(frozen=True)
class Deployment:
    """One change of digest in an environment's history."""

    digest: str
    model_version: str
    date: str
    commit: str
    author: str
    subject: str


@dataclass(frozen=True)
class Outcome:
    """What a promotion or rollback did: the commit it made, or None when the environment already ran the digest."""

    message: str
    commit: str | None


# --------------------------------------------------------------------------------------------------------------------
# The overlay file
# --------------------------------------------------------------------------------------------------------------------


def overlay(env: str, deploy_dir: Path = DEPLOY_DIR) -> Path:
    """The kustomization file that pins ``env``'s image."""
    if env not in ENVIRONMENTS:
        raise PromotionError(f"unknown environment {env!r}: expected one of {', '.join(ENVIRONMENTS)}")
    if not deploy_dir.is_dir():
        raise PromotionError(
            f"{deploy_dir}/ is absent: this project was generated without deploy files (include_deploy=no)"
        )
    path = deploy_dir / "overlays" / env / "kustomization.yaml"
    if not path.is_file():
        raise PromotionError(f"{path} is absent: environment {env} has no overlay")
    return path


def read_release(text: str, where: str) -> Release:
    """The digest and model version an overlay pins."""
    import yaml  # here, not at the top: the CLI's parser imports this module, and the serving image has no YAML

    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise PromotionError(f"{where} is not valid YAML: {exc}") from None
    images = [i for i in data.get("images") or [] if isinstance(i, dict) and i.get("name") == IMAGE]
    if len(images) != 1 or not isinstance(images[0].get("digest"), str):
        raise PromotionError(f"{where} has no `images:` entry for {IMAGE} with a digest")
    version = (data.get("commonAnnotations") or {}).get(VERSION_ANNOTATION, UNKNOWN_VERSION)
    return Release(images[0]["digest"], str(version))


def with_release(text: str, release: Release, where: str) -> str:
    """``text`` with its digest and model-version lines rewritten; comments and layout are kept."""
    new = text
    for key, value in (("digest", release.digest), (VERSION_ANNOTATION, json.dumps(release.model_version))):
        found = list(re.finditer(rf'^[ \t]*{re.escape(key)}:[ \t]*("[^"\n]*"|[^\s#]+)', new, re.MULTILINE))
        if len(found) != 1:
            raise PromotionError(f"{where} must have exactly one `{key}:` line for the CLI to rewrite")
        new = new[: found[0].start(1)] + value + new[found[0].end(1) :]  # the rest of the line (a comment) stays
    if read_release(new, where) != release or _without_release(new) != _without_release(text):
        raise PromotionError(f"{where}: the `digest:` or `{VERSION_ANNOTATION}:` line is not where the CLI expects it")
    return new


def _without_release(text: str) -> Any:
    import yaml

    data = yaml.safe_load(text)
    for image in data.get("images") or []:
        if isinstance(image, dict) and image.get("name") == IMAGE:
            image.pop("digest", None)
    (data.get("commonAnnotations") or {}).pop(VERSION_ANNOTATION, None)
    return data


def check_digest(digest: str) -> str:
    """``digest`` if it is a real image digest, else a clear refusal."""
    if not DIGEST.fullmatch(digest):
        raise PromotionError(f"malformed digest {digest!r}: expected sha256: followed by 64 lowercase hex digits")
    if digest == NOTHING:
        raise PromotionError("the all-zero digest only marks an environment nothing was promoted to")
    return digest


# --------------------------------------------------------------------------------------------------------------------
# Git
# --------------------------------------------------------------------------------------------------------------------


def _check_clean(git: gitops.Session, path: Path) -> None:
    status = git.run("status", "--porcelain", "--", git.rel(path))
    if status.strip():
        discard = f"git checkout HEAD -- {path}" if status[0] not in " ?" else f"git checkout -- {path}"
        raise PromotionError(
            f"{path} has uncommitted changes: `{discard}` discards them (promote and rollback commit the overlay)"
        )


def _release_at(git: gitops.Session, commit: str, path: Path) -> Release:
    return read_release(git.run("cat-file", "blob", f"{commit}:{git.rel(path)}"), f"{path} at {commit[:12]}")


def _history(git: gitops.Session, path: Path) -> list[Deployment]:
    log = git.run("log", "--format=%H%x1f%cI%x1f%an <%ae>%x1f%s", "--", git.rel(path))
    deployments: list[Deployment] = []
    for line in reversed(log.splitlines()):  # oldest first, to keep the first commit of each digest
        commit, date, author, subject = line.split("\x1f", 3)
        try:
            release = _release_at(git, commit, path)
        except (PromotionError, GitError):
            continue  # a commit where the file was removed or broken: it deployed nothing
        if release.digest != NOTHING and (not deployments or deployments[-1].digest != release.digest):
            deployments.append(Deployment(release.digest, release.model_version, date, commit, author, subject))
    return deployments[::-1]


def history(env: str, deploy_dir: Path = DEPLOY_DIR) -> list[Deployment]:
    """Every digest ``env`` ran, newest first: the commits of its overlay that changed the digest."""
    path = overlay(env, deploy_dir)
    with gitops.session(f"history {env}", change=False) as git:
        return _history(git, path)


def _commit(git: gitops.Session, path: Path, head: str, env: str, action: str, before: Release, after: Release) -> str:
    """Commit ``after`` in the overlay, alone, on top of ``head``; the working file follows once the commit landed."""
    subject = f"{action} {env}: {after.digest[:19]} (model {after.model_version})"
    body = (
        f"Environment: {env}\nDigest: {after.digest}\nModel-Version: {after.model_version}\n"
        f"Previous-Digest: {before.digest}\nPrevious-Model-Version: {before.model_version}"
    )
    text = with_release(path.read_text(encoding="utf-8"), after, str(path))
    return git.commit_file(git.rel(path), text, subject, body, head)


# --------------------------------------------------------------------------------------------------------------------
# The commands
# --------------------------------------------------------------------------------------------------------------------


def promote(
    env: str, digest: str, model_version: str | None = None, *, force: bool = False, deploy_dir: Path = DEPLOY_DIR
) -> Outcome:
    """Pin ``digest`` in ``env``'s overlay and commit; refuse a digest the previous environment does not run."""
    path = overlay(env, deploy_dir)
    check_digest(digest)
    if model_version is not None and not MODEL_VERSION.fullmatch(model_version):
        raise PromotionError(f"model version {model_version!r}: use letters, digits and . _ + - (at most 64)")
    with gitops.session(f"promote {env}", change=True) as git:
        _check_clean(git, path)
        head = git.head()
        before = _release_at(git, head, path)
        if before.digest == digest:
            return Outcome(f"{env} already runs {digest} (model {before.model_version}): nothing to do", None)
        inherited = None
        position = ENVIRONMENTS.index(env)
        if position > 0:
            source_env = ENVIRONMENTS[position - 1]
            source = _release_at(git, head, overlay(source_env, deploy_dir))
            if source.digest == digest:
                inherited = source.model_version
            elif not force:
                running = "nothing yet" if source.digest == NOTHING else source.digest
                raise PromotionError(
                    f"refusing to promote {digest} to {env}: {source_env} runs {running}, and {env} only takes what "
                    f"{source_env} runs (promote it to {source_env} first, or pass --force)"
                )
        after = Release(digest, model_version or inherited or UNKNOWN_VERSION)
        commit = _commit(git, path, head, env, "promote", before, after)
    return Outcome(f"promoted {env} to {digest} (model {after.model_version}) in commit {commit[:12]}", commit)


def rollback(env: str, to: str | None = None, *, deploy_dir: Path = DEPLOY_DIR) -> Outcome:
    """Return ``env`` to the digest it ran before the current one, or to ``to`` if it ran there before."""
    path = overlay(env, deploy_dir)
    if to is not None:
        check_digest(to)
    with gitops.session(f"roll back {env}", change=True) as git:
        _check_clean(git, path)
        head = git.head()
        before = _release_at(git, head, path)
        if to == before.digest:
            return Outcome(f"{env} already runs {to} (model {before.model_version}): nothing to do", None)
        earlier = [d for d in _history(git, path) if d.digest != before.digest]
        if to is None:
            if not earlier:
                raise PromotionError(f"{env} has no earlier deployment to roll back to (see `history --env {env}`)")
            target = earlier[0]
        else:
            matches = [d for d in earlier if d.digest == to]
            if not matches:
                raise PromotionError(
                    f"{to} never ran in {env}: refusing to roll back to it (see `history --env {env}`)"
                )
            target = matches[0]
        after = Release(target.digest, target.model_version)
        commit = _commit(git, path, head, env, "roll back", before, after)
    return Outcome(f"rolled {env} back to {after.digest} (model {after.model_version}) in commit {commit[:12]}", commit)


def history_table(env: str, deployments: list[Deployment]) -> str:
    """``history`` for people: one line per deployment, newest first, the current one marked."""
    if not deployments:
        return f"{env}: nothing was promoted yet"
    rows = [("DIGEST", "MODEL", "WHEN", "COMMIT", "BY")]
    rows += [(d.digest, d.model_version, d.date, d.commit[:12], d.author) for d in deployments]
    widths = [max(len(cell) for cell in column) for column in zip(*rows, strict=True)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines[1] += "  (current)"
    return f"{env}: {len(deployments)} deployment(s), newest first\n" + "\n".join(lines)


def history_records(deployments: list[Deployment]) -> list[dict[str, str]]:
    """``history --json``: one object per deployment, newest first."""
    return [asdict(d) for d in deployments]
