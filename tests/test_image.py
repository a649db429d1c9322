"""The serving image, built and run for real: no Docker engine, but Debian's ``buildah`` with ``--isolation chroot``.

A session fixture makes the base image with ``debootstrap`` (Debian bookworm, minbase, whose ``python3`` is 3.11, the
default ``python_version`` answer) while the test bakes a project and runs its pipeline. The project's own
``make image`` then builds its ``Dockerfile`` on that base; the test inspects the image (user, labels from
``models/metadata.json``, healthcheck, no pipeline library in it), runs the server from inside it, checks ``/readyz``
and that ``/predict`` answers what the pipeline's ONNX model gives in the project's environment, stops it with
SIGTERM, and checks that the container wrote nothing to its root filesystem.

The base image is kept in buildah's storage under a name that hashes its recipe, so later sessions reuse it;
``buildah rmi localhost/template-test-base`` (any tag) drops it. Everything else the test creates is removed.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import re
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from conftest import UV, UV_RUN, Steps, bake_into, project_env, run

from tools.shared import ServerNotReadyError, descendants, free_port, wait_for_http

pytestmark = pytest.mark.slow

SUITE = "bookworm"  # Debian 12; its python3 is 3.11, the default python_version answer
HOST_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())  # Debian's name
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates")
BASE_REPOSITORY = "localhost/template-test-base"
# The host's CA bundle goes into the base: pip and uv inside the build reach PyPI through whatever the host trusts.
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
# buildah needs root here (debootstrap too); GitHub's runners are a user with passwordless sudo.
SUDO = () if os.geteuid() == 0 else ("sudo", "--non-interactive")
BUILDAH = (*SUDO, "buildah")
ISOLATION = ("--isolation", "chroot")
# Runtime of the server only: the pipeline's and the dev group's libraries must not be in the image.
FORBIDDEN_MODULES = ("sklearn", "mlflow", "pandas", "pyarrow", "scipy", "skl2onnx", "onnx", "dvc", "matplotlib")
MAX_IMAGE_MB = 450  # the whole image, base included (about 290 MB on the debootstrap base)
MAX_VENV_MB = 200  # the runtime environment (/opt/venv), the budget
TEST_ROWS = 64

BASE_SCRIPT = r"""
ctr=$(buildah from --arch "$ARCH" scratch)
trap 'buildah rm "$ctr" >/dev/null 2>&1 || true' EXIT
root=$(buildah mount "$ctr")
debootstrap --arch="$ARCH" --variant=minbase --include="$PACKAGES" "$SUITE" "$root" "$MIRROR"
if [ -f "$HOST_CA" ]; then cp "$HOST_CA" "$root/etc/ssl/certs/ca-certificates.crt"; fi
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
    "$root"/usr/share/doc "$root"/usr/share/man "$root"/usr/share/info "$root"/usr/share/locale
buildah umount "$ctr"
buildah config --os linux --arch "$ARCH" --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt --cmd python3 "$ctr"
buildah commit --quiet --rm "$ctr" "$NAME"
"""

# Runs in the baked project's environment: the pipeline's own ONNX outputs (onnxruntime, default session) for test
# rows, as golden samples ({"inputs": record, "expected": outputs}): the export stage's format and code.
EXPECTED_SCRIPT = """
import json, sys
from importlib import import_module
import onnxruntime as ort
import pandas as pd
package, start, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
config, export, schema = (import_module(f"{package}.pipeline.{name}") for name in ("config", "export", "schema"))
params = config.load_params(config.PARAMS_FILE)
session = ort.InferenceSession(str(params.paths.onnx), providers=["CPUExecutionProvider"])
test = pd.read_parquet(params.paths.test).iloc[start:]
json.dump(export.golden(session, test, schema.load_schema(params.paths.schema_), count), sys.stdout)
"""

# Runs inside the image: what is installed, and where the package is imported from.
CONTENTS_SCRIPT = """
import importlib.metadata, importlib.util, json, os, shutil, sys
package, forbidden = sys.argv[1], sys.argv[2].split(",")
print(json.dumps({
    "distributions": sorted(d.metadata["Name"].lower() for d in importlib.metadata.distributions()),
    "forbidden": [name for name in forbidden if importlib.util.find_spec(name)],
    "package": importlib.util.find_spec(package).origin,
    "uv": shutil.which("uv") or os.path.exists("/opt/uv"),
    "python": sys.version.split()[0],
}))
"""

# Runs inside the image: one ONNX Runtime session on the baked model, as the server's first one.
SESSION_SCRIPT = """
import os, onnxruntime
onnxruntime.InferenceSession(os.path.join(os.environ["MODEL_DIR"], "model.onnx"), providers=["CPUExecutionProvider"])
"""


def debian_mirror(suite: str = SUITE) -> str:
    """The mirror apt uses here for ``suite`` (``DEBIAN_MIRROR`` overrides it), else deb.debian.org."""
    if os.environ.get("DEBIAN_MIRROR"):
        return os.environ["DEBIAN_MIRROR"]
    apt = Path("/etc/apt")
    for path in [apt / "sources.list", *sorted((apt / "sources.list.d").glob("*"))]:
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        if path.suffix == ".sources":  # deb822 stanzas
            for stanza in re.split(r"\n\s*\n", text):
                fields = {
                    key.strip().lower(): value.split()
                    for key, _, value in (line.partition(":") for line in stanza.splitlines())
                    if key and not key.startswith(("#", " ", "\t"))
                }
                if "deb" in fields.get("types", []) and suite in fields.get("suites", []) and fields.get("uris"):
                    return fields["uris"][0]
        elif path.suffix == ".list" or path.name == "sources.list":
            for line in text.splitlines():
                match = re.match(r"\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", line)
                if match and match.group(2) == suite:
                    return match.group(1)
    return "http://deb.debian.org/debian"


class BaseImage:
    """The debootstrap base, made in the background (it overlaps the project's pipeline) or found in storage."""

    def __init__(self, name: str, process: subprocess.Popen[bytes] | None, log: Path) -> None:
        self.name, self.process, self.log = name, process, log

    def ref(self, timeout: float = 600) -> str:
        """The image's name once it exists."""
        if self.process is not None:
            code = self.process.wait(timeout)
            if code != 0:
                tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-40:])
                pytest.fail(f"making the base image {self.name} failed (exit {code}):\n{tail}", pytrace=False)
            self.process = None
        return self.name


@pytest.fixture(scope="session")
def base_image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BaseImage]:
    """Debian bookworm minbase with python3 for the host's architecture, as a buildah image; reused while its recipe
    is unchanged."""
    yield from make_base(tmp_path_factory, HOST_ARCH)


def make_base(tmp_path_factory: pytest.TempPathFactory, arch: str) -> Iterator[BaseImage]:
    """The base image for the Debian architecture ``arch``, made in the background (debootstrap; another
    architecture than the host's runs its second stage under QEMU), or found in buildah's storage."""
    missing = [tool for tool in ("buildah", "debootstrap") if shutil.which(tool) is None]
    if missing:
        message = f"{' and '.join(missing)} not installed (.ci/run installs them)"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    mirror = debian_mirror()
    recipe = hashlib.sha256(
        "\n".join([SUITE, arch, mirror, *BASE_PACKAGES, BASE_SCRIPT]).encode()
        + (HOST_CA.read_bytes() if HOST_CA.is_file() else b"")
    ).hexdigest()[:12]
    name = f"{BASE_REPOSITORY}:{SUITE}-{arch}-{recipe}"
    log = tmp_path_factory.mktemp(f"base-image-{arch}") / "debootstrap.log"
    if run([*BUILDAH, "inspect", "--type", "image", name], cwd=Path.cwd(), check=False).returncode == 0:
        yield BaseImage(name, None, log)
        return
    env = project_env(
        ARCH=arch, PACKAGES=",".join(BASE_PACKAGES), SUITE=SUITE, MIRROR=mirror, HOST_CA=str(HOST_CA), NAME=name
    )
    env_args = [f"{key}={env[key]}" for key in ("ARCH", "PACKAGES", "SUITE", "MIRROR", "HOST_CA", "NAME")]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*SUDO, "env", *env_args, "bash", "-euo", "pipefail", "-c", BASE_SCRIPT],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
    base = BaseImage(name, process, log)
    yield base
    if base.process is not None:  # the test stopped before it needed the base: let it finish, it is cached
        base.process.wait(600)


def buildah(*args: str, cwd: Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """``buildah ARGS`` (through sudo when not root), failing the test with its output if it fails."""
    return run([*BUILDAH, *args], cwd=cwd, **kwargs)


def server_pid(launcher: subprocess.Popen[Any]) -> int:
    """The server's own process under ``buildah run`` (chroot isolation keeps the host's PID namespace)."""
    for pid in descendants(launcher.pid):
        try:
            argv0 = (psutil.Process(pid).cmdline() or [""])[0]
        except psutil.Error:
            continue
        if "buildah" not in argv0 and argv0 not in ("sudo", "env"):
            return pid
    raise AssertionError("no server process under buildah run")


def post_json(url: str, document: Any) -> Any:
    """POST ``document`` as JSON; the decoded JSON answer (fails on a non-2xx status)."""
    request = urllib.request.Request(
        url, json.dumps(document).encode(), {"Content-Type": "application/json"}, method="POST"
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=10) as response:
        return json.loads(response.read())


def assert_predictions(predictions: list[dict[str, Any]], samples: list[dict[str, Any]], classes: list[str]) -> None:
    """The server's answers equal the samples' expected ONNX outputs: same labels, values equal to float32 precision."""
    assert len(predictions) == len(samples)
    for i, (got, sample) in enumerate(zip(predictions, samples, strict=True)):
        expected = sample["expected"]
        if "label" in expected:
            assert got["label"] == expected["label"], f"row {i}: {got} != {expected}"
            pairs = zip([got["probabilities"][c] for c in classes], expected["probabilities"], strict=True)
        else:
            pairs = zip([got["value"]], [expected["value"]], strict=True)
        for value, reference in pairs:
            assert math.isclose(value, reference, rel_tol=1e-6, abs_tol=1e-7), f"row {i}: {got} != {expected}"


def snapshot(root: str, cwd: Path) -> dict[str, str]:
    """Path -> mtime and size of everything in a mounted root filesystem (one file system: no /proc, no /sys)."""
    listing = run([*SUDO, "find", root, "-xdev", "-mindepth", "1", "-printf", r"%P\t%T@ %s\n"], cwd=cwd).stdout
    return dict(line.split("\t", 1) for line in listing.splitlines() if "\t" in line)


def changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """What appeared, changed or disappeared between two snapshots."""
    return sorted(
        [f"new {p}" for p in after.keys() - before.keys()]
        + [f"removed {p}" for p in before.keys() - after.keys()]
        + [f"changed {p}" for p in before.keys() & after.keys() if before[p] != after[p]]
    )


def test_image_builds_runs_and_predicts_like_the_pipeline(
    tmp_path: Path, base_image: BaseImage, record_property: Callable[[str, Any], None]
) -> None:
    step = Steps(record_property)
    project = bake_into(tmp_path / "out", model_family="linear")
    package = next((project / "src").iterdir()).name
    step("sync", [UV, "sync", "--frozen"], cwd=project)
    step("commit", "git add -A && git commit --quiet --no-verify -m 'Bake the project from the template'", cwd=project)
    step("setup", ["make", "setup"], cwd=project)
    step("repro", [*UV_RUN, "dvc", "repro"], cwd=project)
    metadata = json.loads((project / "models" / "metadata.json").read_text())
    classes = [str(c) for c in metadata.get("classes") or []]
    revision = run(["git", "rev-parse", "HEAD"], cwd=project).stdout.strip()

    started = time.monotonic()
    base = base_image.ref()
    record_property("step:base-image", round(time.monotonic() - started, 1))
    started = time.monotonic()
    containers = set(buildah("containers", "--quiet", "--notruncate", cwd=project).stdout.split())
    try:
        built = step("image", ["make", "image", f"BUILDER={' '.join(BUILDAH)}", f"BASE_IMAGE={base}"], cwd=project)
    except BaseException:  # a failed build leaves its working containers behind (--force-rm needs --layers)
        leftovers = set(buildah("containers", "--quiet", "--notruncate", cwd=project).stdout.split()) - containers
        for container in sorted(leftovers):
            buildah("rm", container, cwd=project, check=False)
        raise
    build_seconds = time.monotonic() - started
    image_id = re.search(r"^id: (sha256:[0-9a-f]{64})$", built.stdout, re.MULTILINE)
    reference = re.search(r"^image: (\S+)$", built.stdout, re.MULTILINE)
    assert image_id, f"make image printed no image id:\n{built.stdout[-2000:]}"
    assert reference, f"make image printed no image reference:\n{built.stdout[-2000:]}"
    try:
        assert reference.group(1) == f"ghcr.io/your-org/{project.name}:{metadata['version']}"
        check_image(project, image_id.group(1), metadata, classes, package, revision, build_seconds, step)
    finally:
        buildah("rmi", "--force", image_id.group(1), cwd=project, check=False)


def check_image(
    project: Path,
    image: str,
    metadata: dict[str, Any],
    classes: list[str],
    package: str,
    revision: str,
    build_seconds: float,
    step: Steps,
) -> None:
    info = json.loads(buildah("inspect", "--type", "image", image, cwd=project).stdout)
    config = info["Docker"]["config"]  # built with --format docker, which keeps HEALTHCHECK
    user = config.get("User", "")
    uid = (user or "").split(":")[0]
    assert uid.isdigit(), f"not a numeric user: {user}"
    assert int(uid) != 0, f"not a non-root user: {user}"
    labels = config.get("Labels") or {}
    assert labels.get("org.opencontainers.image.version") == metadata["version"], labels
    assert labels.get("org.opencontainers.image.revision") == revision, labels
    assert labels.get("org.opencontainers.image.source", "").startswith("https://github.com/"), labels
    assert labels.get("org.opencontainers.image.title"), labels
    assert labels.get("org.opencontainers.image.created"), labels
    data_hash = [value for key, value in labels.items() if key.endswith(".model.data-hash")]
    assert data_hash == [metadata["lineage"]["data.raw.md5"]], labels
    healthcheck = (config.get("Healthcheck") or {}).get("Test") or []
    assert healthcheck[:1] == ["CMD"], f"no exec-form HEALTHCHECK: {config.get('Healthcheck')}"
    assert config.get("Entrypoint"), "no ENTRYPOINT"
    assert "8080/tcp" in (config.get("ExposedPorts") or {})
    env = dict(item.split("=", 1) for item in config.get("Env") or [])
    assert env.get("ORT_DISABLE_TELEMETRY") == "1", env
    assert env.get("PYTHONDONTWRITEBYTECODE") == "1", env

    container = buildah("from", "--pull-never", "--quiet", image, cwd=project).stdout.strip()
    try:
        root = buildah("mount", container, cwd=project).stdout.strip()
        image_mb = int(run([*SUDO, "du", "-sxb", root], cwd=project).stdout.split()[0]) / 1e6
        venv_mb = int(run([*SUDO, "du", "-sb", f"{root}/opt/venv"], cwd=project).stdout.split()[0]) / 1e6
        contents = json.loads(
            buildah(
                "run",
                *ISOLATION,
                container,
                "--",
                "python",
                "-c",
                CONTENTS_SCRIPT,
                package,
                ",".join(FORBIDDEN_MODULES),
                cwd=project,
            ).stdout
        )
        assert contents["forbidden"] == [], f"pipeline libraries in the image: {contents['forbidden']}"
        assert not contents["uv"], "uv is in the runtime image"
        assert contents["package"].startswith("/opt/venv/lib/"), f"package not installed in the venv: {contents}"
        samples = json.loads(
            run([*UV_RUN, "python", "-c", EXPECTED_SCRIPT, package, "8", str(TEST_ROWS)], cwd=project).stdout
        )
        assert len(samples) == TEST_ROWS
        # What buildah itself changes at each run (the modification time of /run, where it mounts its own files).
        before = snapshot(root, project)
        buildah("run", *ISOLATION, container, "--", "true", cwd=project)
        noise = set(changes(before, snapshot(root, project)))
        before = snapshot(root, project)
        ready_seconds = serve_and_predict(project, container, config, metadata, classes, samples, step)
        written = [c for c in changes(before, snapshot(root, project)) if c not in noise]
        assert written == [], "the server wrote to the container's filesystem"
        # As root, so that nothing but the image's settings stops a write (HOME, ONNX Runtime's telemetry):
        buildah("run", *ISOLATION, "--user", "0:0", container, "--", "python", "-c", SESSION_SCRIPT, cwd=project)
        written = [c for c in changes(before, snapshot(root, project)) if c not in noise]
        assert written == [], "onnxruntime wrote to the filesystem (as root)"
    finally:
        buildah("rm", container, cwd=project, check=False)

    print(
        f"\nimage: {image_mb:.0f} MB ({venv_mb:.0f} MB in /opt/venv; python {contents['python']}; "
        f"{', '.join(contents['distributions'])}), built in {build_seconds:.1f} s, "
        f"ready {ready_seconds:.2f} s after buildah run"
    )
    step.record("figure:image", f"{image_mb:.0f} MB")
    step.record("figure:venv", f"{venv_mb:.0f} MB")
    step.record("figure:ready", f"{ready_seconds:.2f} s")
    assert image_mb < MAX_IMAGE_MB, f"the image is {image_mb:.0f} MB"
    assert venv_mb < MAX_VENV_MB, f"the runtime environment is {venv_mb:.0f} MB"


def serve_and_predict(
    project: Path,
    container: str,
    config: dict[str, Any],
    metadata: dict[str, Any],
    classes: list[str],
    samples: list[dict[str, Any]],
    step: Steps,
) -> float:
    """Run the image's entrypoint in ``container``, check it, stop it with SIGTERM; seconds to ready."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [*(config.get("Entrypoint") or []), *(config.get("Cmd") or [])]
    net = ["--network", "host", "--env", f"PORT={port}", "--env", "HOST=127.0.0.1"]
    log = project / "server.log"
    with log.open("wb") as out:
        started = time.monotonic()
        launcher = subprocess.Popen(
            [*BUILDAH, "run", *ISOLATION, *net, container, "--", *command],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=project_env(),
        )
    try:
        try:
            wait_for_http(f"{url}/readyz", 60, launcher)
        except ServerNotReadyError as exc:
            raise AssertionError(f"{exc}\n--- server log ---\n{log.read_text(errors='replace')[-3000:]}") from None
        ready_seconds = time.monotonic() - started

        health = config["Healthcheck"]["Test"][1:]
        buildah("run", *ISOLATION, *net, container, "--", *health, cwd=project)  # the HEALTHCHECK passes
        answer = post_json(f"{url}/predict", {"instances": [g["inputs"] for g in metadata["golden"]]})
        assert answer["model_version"] == metadata["version"]
        assert_predictions(answer["predictions"], metadata["golden"], classes)
        answer = post_json(f"{url}/predict", {"instances": [s["inputs"] for s in samples]})
        assert_predictions(answer["predictions"], samples, classes)

        run([*SUDO, "kill", "-TERM", str(server_pid(launcher))], cwd=project)
        assert launcher.wait(30) == 0, f"the server did not stop cleanly:\n{log.read_text(errors='replace')[-3000:]}"
        stopped = buildah("run", *ISOLATION, *net, container, "--", *health, cwd=project, check=False)
        assert stopped.returncode != 0, "the HEALTHCHECK passes with no server"
    finally:
        if launcher.poll() is None:
            for pid in reversed(descendants(launcher.pid)):
                subprocess.run([*SUDO, "kill", "-KILL", str(pid)], check=False, capture_output=True)
            launcher.send_signal(signal.SIGKILL)
            launcher.wait(30)
    return ready_seconds
