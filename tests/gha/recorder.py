"""Stand-ins for what only GitHub, a registry or Sigstore does, run as ``recorder.py TOOL ARGS…`` by the wrappers the
lab puts on ``PATH`` (``git``, ``gh``, ``cml``, ``docker``, ``cosign``, ``syft``). Each appends what it was asked to
a JSON-lines log and answers as the real tool would, refusing what GitHub refuses:

- ``git push`` needs the credentials ``actions/checkout`` persisted, a token with ``contents: write``, and a token
  allowed past the branch rules (a protected ``main`` takes pushes only from a bypass actor); then it really pushes,
  to the lab's bare repository that stands for github.com.
- ``gh`` plays issues, pull requests, labels and ``gh api`` for environments and pull requests, against the lab's
  state; it needs ``GH_TOKEN`` with the right permission, and refuses a pull request opened with the workflow's
  own token unless the repository allows that.
- ``cml comment update`` fails, as CML 0.20 does, without a git remote or a ``--repo`` URL, and without a token;
  it updates the one comment carrying its watermark.
- ``docker``, ``cosign`` and ``syft`` record builds, pushes (with a made-up digest), signatures and attestations;
  ``docker buildx build --platform A,B --push`` builds and pushes one manifest list, which ``docker buildx imagetools
  inspect`` reads back; ``docker run`` starts the project's real server.

Only the standard library: it runs with whatever Python runs the tests.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Any, NoReturn

STATE = Path(os.environ.get("LAB_STATE", "."))
DEFAULT_BRANCH = "main"


def load() -> dict[str, Any]:
    github: dict[str, Any] = json.loads((STATE / "github.json").read_text())
    return github


def save(github: dict[str, Any]) -> None:
    tmp = STATE / "github.json.tmp"
    tmp.write_text(json.dumps(github, indent=1))
    tmp.replace(STATE / "github.json")


def log(tool: str, args: list[str], **extra: Any) -> None:
    entry = {"tool": tool, "argv": args, "cwd": os.getcwd(), **extra}
    with open(os.environ["RECORDER_LOG"], "a") as handle:
        handle.write(json.dumps(entry) + "\n")


def fail(message: str, code: int = 1) -> NoReturn:
    print(message, file=sys.stderr)
    sys.exit(code)


def option(args: list[str], name: str) -> str | None:
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def token_info(github: dict[str, Any], token: str | None) -> dict[str, Any] | None:
    info: dict[str, Any] | None = github["tokens"].get(token or "")
    return info


def may(github: dict[str, Any], token: str | None, scope: str, level: str) -> bool:
    """Whether ``token`` has ``scope: level`` (write implies read; a public repository is readable by anyone)."""
    info = token_info(github, token)
    if info is None:
        return level == "read" and not github["private"]
    granted = info["permissions"].get(scope, "none")
    return granted == "write" or (level == "read" and (granted == "read" or not github["private"]))


def real_git(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([os.environ["RECORDER_REAL_GIT"], *args], capture_output=True, text=True, check=check)


# --- git ---------------------------------------------------------------------------------------------------------


def persisted_token() -> str | None:
    """The token ``actions/checkout`` wrote into the repository's config (persist-credentials), if any."""
    header = real_git("config", "--get", "http.https://github.com/.extraheader", check=False).stdout.strip()
    if not header.lower().startswith("authorization: basic "):
        return None
    user_token = base64.b64decode(header.split()[-1]).decode()
    return user_token.split(":", 1)[1]


def push_destinations(args: list[str]) -> list[str]:
    """The branches ``git push [options] REMOTE REFSPEC…`` writes."""
    positional = [a for a in args[1:] if not a.startswith("-")]
    refspecs = positional[1:] or ["HEAD"]
    branches = []
    for spec in refspecs:
        destination = spec.lstrip("+").split(":", 1)[-1]
        if destination == "HEAD":
            destination = real_git("branch", "--show-current").stdout.strip()
        branches.append(destination.removeprefix("refs/heads/"))
    return branches


def git(args: list[str]) -> None:
    if args[:1] != ["push"]:
        os.execv(os.environ["RECORDER_REAL_GIT"], ["git", *args])
    github = load()
    token = persisted_token()
    repo = github["repository"]
    if token is None:
        fail("fatal: could not read Username for 'https://github.com': No such device or address", 128)
    if not may(github, token, "contents", "write"):
        fail(
            f"remote: Permission to {repo}.git denied to github-actions[bot].\n"
            f"fatal: unable to access 'https://github.com/{repo}/': The requested URL returned error: 403",
            128,
        )
    kind = token_info(github, token)["kind"]  # type: ignore[index]
    for branch in push_destinations(args):
        rule = github["rulesets"].get(branch)
        if rule and kind not in rule["bypass"]:
            log("git", args, refused=branch, token_kind=kind)
            fail(
                f"remote: error: GH013: Repository rule violations found for refs/heads/{branch}.\n"
                "remote: - Changes must be made through a pull request.\n"
                f" ! [remote rejected] HEAD -> {branch} (push declined due to repository rule violations)"
            )
    result = subprocess.run([os.environ["RECORDER_REAL_GIT"], *args], check=False)
    log("git", args, token_kind=kind, returncode=result.returncode)
    sys.exit(result.returncode)


# --- gh ----------------------------------------------------------------------------------------------------------


def gh_output(value: Any, args: list[str]) -> None:
    """Print ``value`` as gh does with ``--json``/``--jq`` (the real jq evaluates the filter)."""
    text = json.dumps(value)
    jq = option(args, "--jq")
    if jq is not None:
        text = subprocess.run(["jq", "-r", jq], input=text, capture_output=True, text=True, check=True).stdout
        sys.stdout.write(text)
    else:
        print(text)


VALUED = ("-X", "--method", "-f", "-F", "--field", "--raw-field", "-H", "--header", "--jq", "-q", "--input")


def gh_api(github: dict[str, Any], token: str, args: list[str]) -> Any:
    positional, fields, i = [], {}, 1
    while i < len(args):
        if args[i] in VALUED:
            if args[i] in ("-f", "-F", "--field", "--raw-field"):
                key, _, value = args[i + 1].partition("=")
                fields[key] = value
            i += 2
        elif args[i].startswith("-"):
            i += 1
        else:
            positional.append(args[i])
            i += 1
    path, _, query = positional[0].lstrip("/").partition("?")
    fields.update(urllib.parse.parse_qsl(query))
    parts = path.split("/")
    repo = github["repository"]
    if parts[:3] != ["repos", *repo.split("/")]:
        fail(f"gh: Not Found (HTTP 404): {path}")
    rest = parts[3:]
    if rest[:1] == ["environments"] and len(rest) == 2:
        if not may(github, token, "actions", "read"):
            fail("gh: Resource not accessible by integration (HTTP 403)")
        environment = github["environments"].get(rest[1])
        if environment is None:
            fail("gh: Not Found (HTTP 404)")
        return {"name": rest[1], **environment}
    if rest == ["pulls"]:
        if not may(github, token, "pull_requests", "read"):
            fail("gh: Resource not accessible by integration (HTTP 403)")
        pulls = [p for p in github["pulls"] if p["state"] == fields.get("state", "open")]
        if "head" in fields:
            owner, _, branch = fields["head"].partition(":")
            pulls = [p for p in pulls if p["head"]["repo"]["owner"]["login"] == owner and p["head"]["ref"] == branch]
        return pulls
    fail(f"gh: the lab does not play {path}")
    return None


def gh(args: list[str]) -> None:
    github = load()
    token = os.environ.get("GH_TOKEN") or os.environ.get("GITHUB_TOKEN")
    if not token:
        fail("gh: To use GitHub CLI in a GitHub Actions workflow, set the GH_TOKEN environment variable.", 4)
    noun, verb = [*args, "", ""][:2]
    body_file = option(args, "--body-file")
    body = Path(body_file).read_text() if body_file else option(args, "--body")
    if noun == "api":
        result = gh_api(github, token, args)
        log("gh", args)
        gh_output(result, args)
        return
    scopes = {"issue": ["issues"], "pr": ["pull_requests"], "label": ["issues", "pull_requests"]}.get(noun)
    if scopes is None:
        fail(f"gh: the lab does not play `gh {noun}`")
        return
    level = "read" if verb in ("list", "view") else "write"
    if not any(may(github, token, scope, level) for scope in scopes):
        fail(f"gh: Resource not accessible by integration (HTTP 403) ({noun} {verb})")
    items = github["issues" if noun == "issue" else "pulls"]
    labels = [v for i, v in enumerate(args) if i and args[i - 1] == "--label"]
    if noun == "label":
        github["labels"] = sorted(set(github["labels"]) | {args[2]})
    elif verb == "list":
        found = [i for i in items if i["state"] == (option(args, "--state") or "open")]
        found = [i for i in found if all(label in i["labels"] for label in labels)]
        if option(args, "--head"):
            found = [p for p in found if p["head"]["ref"] == option(args, "--head")]
        gh_output([{"number": i["number"]} for i in found], args)
    elif verb == "create" and noun == "pr":
        kind = token_info(github, token)
        if kind is not None and kind["kind"] == "default" and not github["actions_can_create_prs"]:
            log("gh", args, refused="default token may not create pull requests")
            fail(
                "pull request create failed: GraphQL: GitHub Actions is not permitted to create or approve pull "
                "requests (createPullRequest)"
            )
        number = 42 + len(github["pulls"])
        github["pulls"].append(
            {
                "number": number,
                "state": "open",
                "labels": labels,
                "body": body,
                "head": {
                    "ref": option(args, "--head"),
                    "repo": {"full_name": github["repository"], "owner": {"login": github["repository"].split("/")[0]}},
                },
            }
        )
        print(f"https://github.com/{github['repository']}/pull/{number}")
    elif verb == "create":
        number = 41 + len(github["issues"])
        github["issues"].append({"number": number, "state": "open", "labels": labels, "body": body, "comments": []})
        print(f"https://github.com/{github['repository']}/issues/{number}")
    elif verb in ("edit", "comment"):
        item = next(i for i in items if str(i["number"]) == args[2])
        if verb == "edit":
            item["body"] = body
        else:
            item.setdefault("comments", []).append(body)
    save(github)
    log("gh", args, body=body, token_kind=(token_info(github, token) or {}).get("kind"))


# --- cml ---------------------------------------------------------------------------------------------------------


def cml(args: list[str]) -> None:
    repo_url = option(args, "--repo") or os.environ.get("CML_REPO")
    if repo_url:
        parsed = urllib.parse.urlparse(repo_url)
        if not (parsed.scheme and parsed.netloc):
            fail("TypeError [ERR_INVALID_URL]: Invalid URL")
    else:
        found = real_git("config", "--get", "remote.origin.url", check=False)
        if found.returncode != 0:
            fail("Error: Command failed: git config --get remote.origin.url")
        repo_url = found.stdout.strip()
    token = os.environ.get("REPO_TOKEN") or os.environ.get("GITHUB_TOKEN")
    if not token:
        fail("Error: repo_token not found")
    github = load()
    if args[:2] != ["comment", "update"]:
        fail(f"cml: the lab plays `cml comment update` only, not {args[:2]}")
    if urllib.parse.urlparse(repo_url).path.strip("/").removesuffix(".git") != github["repository"]:
        fail(f"HttpError: Not Found ({repo_url})")
    if not may(github, token, "pull_requests", "write"):
        fail("HttpError: Resource not accessible by integration")
    target = option(args, "--target") or ""
    number = target.removeprefix("pr/")
    if not any(str(p["number"]) == number for p in github["pulls"]):
        fail(f"HttpError: Not Found (pull request {number})")
    report = Path(args[-1]).read_text()
    watermark = option(args, "--watermark-title") or ""
    comments = github["comments"].setdefault(number, [])
    existing = [c for c in comments if c["watermark"] == watermark]
    if existing:
        existing[-1]["body"] = report
    else:
        comments.append({"watermark": watermark, "body": report})
    save(github)
    log(
        "cml",
        args,
        posted=report,
        publish="--no-publish" not in args,
        telemetry=not os.environ.get("ITERATIVE_DO_NOT_TRACK"),
    )


# --- registry and Sigstore -----------------------------------------------------------------------------------------


def built_image(args: list[str]) -> tuple[str, str]:
    """Record a build: the reference it tags and a new image id. The image's content that matters here is the model
    it bakes in (the build context's models/)."""
    ref = option(args, "--tag") or ""
    image_id = "sha256:" + hashlib.sha256(f"{ref} {time.time_ns()}".encode()).hexdigest()
    shutil.copytree(Path(args[-1]) / "models", STATE / "images" / image_id / "models")
    Path(option(args, "--iidfile") or "/dev/null").write_text(image_id)
    (STATE / "built.json").write_text(json.dumps({ref: image_id}))
    return ref, image_id


def pushed_image(args: list[str], ref: str, image_id: str, platforms: list[str]) -> str:
    """Record a push of ``image_id`` as ``ref`` (for several platforms, as one manifest list) and return the digest
    the registry stores it under; LAB_FAIL_ONCE=docker-push makes the first push of the lab fail, as a registry's 503
    would."""
    if os.environ.get("LAB_FAIL_ONCE") == "docker-push" and not (STATE / "failed-once").exists():
        (STATE / "failed-once").write_text("")
        log("docker", args, failed=True, platforms=platforms)
        fail("error: received unexpected HTTP status: 503 Service Unavailable")
    digest = "sha256:" + hashlib.sha256(f"pushed {image_id} {platforms}".encode()).hexdigest()
    pushed = json.loads((STATE / "pushed.json").read_text()) if (STATE / "pushed.json").exists() else {}
    pushed[ref] = {"digest": digest, "platforms": platforms}
    (STATE / "pushed.json").write_text(json.dumps(pushed))
    shutil.copytree(STATE / "images" / image_id, STATE / "images" / digest)  # the registry's copy
    return digest


def registry(ref: str) -> dict[str, Any]:
    """What the registry holds under ``ref``: its digest and platforms."""
    pushed = json.loads((STATE / "pushed.json").read_text()) if (STATE / "pushed.json").exists() else {}
    if ref not in pushed:
        fail(f"ERROR: {ref}: not found")
    found: dict[str, Any] = pushed[ref]
    return found


def docker(args: list[str]) -> None:
    state = STATE
    if args[:1] == ["login"]:
        log("docker", args, password_given=bool(sys.stdin.read()))
    elif args[:1] == ["build"]:
        _, image_id = built_image(args)
        log("docker", args, image_id=image_id)
    elif args[:1] == ["push"]:
        ref = args[-1]
        built = json.loads((state / "built.json").read_text())
        digest = pushed_image(args, ref, built[ref], [])
        print(f"{ref.rsplit(':', 1)[1]}: digest: {digest} size: 1234")
        log("docker", args, digest=digest)
    elif args[:2] == ["buildx", "build"]:
        # BuildKit builds each platform of --platform; with --push it pushes them as one manifest list, and nothing
        # stays in docker's image store.
        platforms = (option(args, "--platform") or "linux/amd64").split(",")
        ref, image_id = built_image(args)
        if "--push" not in args:
            log("docker", args, image_id=image_id, platforms=platforms)
            return
        digest = pushed_image(args, ref, image_id, platforms)
        print(f"pushing manifest for {ref}@{digest}", file=sys.stderr)
        log("docker", args, image_id=image_id, digest=digest, platforms=platforms)
    elif args[:3] == ["buildx", "imagetools", "inspect"]:
        ref = args[-1]
        held = registry(ref)
        several = len(held["platforms"]) > 1
        kind = "application/vnd.docker.distribution.manifest." + ("list.v2+json" if several else "v2+json")
        print(f"Name:      {ref}\nMediaType: {kind}\nDigest:    {held['digest']}")
        if several:
            print("\nManifests:")
            for platform in held["platforms"]:
                entry = "sha256:" + hashlib.sha256(f"{held['digest']} {platform}".encode()).hexdigest()
                print(f"  Name:      {ref.rsplit(':', 1)[0]}@{entry}\n  Platform:  {platform}\n")
        log("docker", args)
    elif args[:2] == ["image", "inspect"]:
        ref = args[-1]
        digest = registry(ref)["digest"]
        print(json.dumps([{"RepoTags": [ref], "RepoDigests": [f"{ref.rsplit(':', 1)[0]}@{digest}"]}]))
    elif args[:1] == ["run"]:
        # Start the real server on the published port with the model the pushed image holds, as the image would.
        port = (option(args, "--publish") or "").split(":")[1]
        image = state / "images" / args[-1].rsplit("@", 1)[1] / "models"
        if not image.is_dir():
            fail(f"Unable to find image '{args[-1]}' locally\ndocker: Error response from daemon: manifest unknown.")
        env = dict(os.environ, HOST="127.0.0.1", PORT=port, MODEL_DIR=str(image))
        out = open(state / "server.log", "w")  # noqa: SIM115 - the server keeps writing after we exit
        server = subprocess.Popen(
            os.environ["RECORDER_SERVE"].split(),
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        (state / "server.pid").write_text(str(server.pid))
        print(f"container{server.pid}")
        log("docker", args)
    elif args[:1] == ["rm"]:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(int((state / "server.pid").read_text()), signal.SIGTERM)
        log("docker", args)
    elif args[:1] == ["logs"]:
        print((state / "server.log").read_text())
    else:
        log("docker", args)


def syft(args: list[str]) -> None:
    for spec in [a for a in args if "=" in a and not a.startswith("-")]:
        Path(spec.split("=", 1)[1]).write_text('{"spdxVersion": "SPDX-2.3", "packages": []}\n')
    log("syft", args)


def cosign(args: list[str]) -> None:
    if args[:1] == ["attest"]:
        log("cosign", args, predicate=Path(option(args, "--predicate") or "").read_text())
    else:
        log("cosign", args)


TOOLS = {"git": git, "gh": gh, "cml": cml, "docker": docker, "syft": syft, "cosign": cosign}

if __name__ == "__main__":
    TOOLS[sys.argv[1]](sys.argv[2:])
