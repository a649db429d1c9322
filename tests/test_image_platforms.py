"""One serving image for linux/amd64 and linux/arm64, as the release builds it: the project's own ``make image
PLATFORMS=linux/amd64,linux/arm64`` with buildah makes one manifest list, the arm64 half built under QEMU. The test
checks that the list holds both platforms, that each image's native code (onnxruntime's extension) is built for its
platform, and runs the arm64 image's server under QEMU: ready, its HEALTHCHECK passes, and it answers the model's
golden predictions exactly.

Needs QEMU's aarch64 interpreter registered with binfmt_misc (Debian: ``qemu-user-static`` and ``binfmt-support``,
with /proc/sys/fs/binfmt_misc mounted), on an amd64 host; skipped otherwise. The bases are Debian bookworm made with
debootstrap for each architecture (``test_image.make_base``), kept in buildah's storage like the amd64 one.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import UV, UV_RUN, Steps, bake_into, project_env, run
from test_image import (
    BUILDAH,
    HOST_ARCH,
    SUDO,
    BaseImage,
    assert_predictions,
    base_image,  # noqa: F401 - the amd64 base, a fixture
    buildah,
    make_base,
    post_json,
)

from tools.shared import ServerNotReadyError, descendants, free_port, wait_for_http

pytestmark = pytest.mark.slow

BINFMT = Path("/proc/sys/fs/binfmt_misc/qemu-aarch64")
PLATFORMS = {"amd64": "linux/amd64", "arm64": "linux/arm64"}
ELF_MACHINES = {62: "amd64", 183: "arm64"}  # e_machine: EM_X86_64, EM_AARCH64
# The QEMU here (7.2, Debian 12's) passes the host's x86 /proc/cpuinfo through to an arm64 process, which the cpuinfo
# library inside onnxruntime cannot parse: it crashes at import. The arm64 server is shown a plausible aarch64 one.
CPUINFO = "".join(
    f"processor\t: {n}\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp "
    "cpuid asimdrdm lrcpc dcpop asimddp\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x3\n"
    "CPU part\t: 0xd0c\nCPU revision\t: 1\n\n"
    for n in range(64)
)


@pytest.fixture(scope="session")
def arm64_base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BaseImage]:
    if HOST_ARCH != "amd64":
        pytest.skip(f"the host is {HOST_ARCH}: this test builds arm64 under emulation from amd64")
    if not BINFMT.is_file() or "enabled" not in BINFMT.read_text():
        pytest.skip(f"no QEMU for arm64 registered ({BINFMT}): install qemu-user-static and binfmt-support")
    yield from make_base(tmp_path_factory, "arm64")


def elf_machine(path: Path) -> str:
    """The architecture an ELF file is built for."""
    header = path.read_bytes()[:20]
    assert header[:4] == b"\x7fELF", f"{path} is not an ELF file"
    return ELF_MACHINES.get(int.from_bytes(header[18:20], "little"), "other")


def test_one_image_for_amd64_and_arm64(
    tmp_path: Path,
    base_image: BaseImage,  # noqa: F811 - the fixture imported above
    arm64_base: BaseImage,
    record_property: Callable[[str, Any], None],
) -> None:
    step = Steps(record_property)
    project = bake_into(tmp_path / "out")
    step("sync", [UV, "sync", "--frozen"], cwd=project)
    step("commit", "git add -A && git commit --quiet --no-verify -m 'Bake the project from the template'", cwd=project)
    step("setup", ["make", "setup"], cwd=project)
    step("repro", [*UV_RUN, "dvc", "repro"], cwd=project)
    metadata = json.loads((project / "models" / "metadata.json").read_text())
    classes = [str(c) for c in metadata.get("classes") or []]

    # The Dockerfile's FROM names one base for every platform: a local manifest list of the two debootstrap bases.
    bases = f"localhost/template-test-bases:{tmp_path.name.lower()}"
    buildah("manifest", "create", bases, cwd=project)
    images: list[str] = []
    try:
        for base in (base_image.ref(), arm64_base.ref()):
            buildah("manifest", "add", bases, f"containers-storage:{base}", cwd=project)
        started = time.monotonic()
        built = step(
            "image",
            [
                "make",
                "image",
                f"BUILDER={' '.join(BUILDAH)}",
                f"PLATFORMS={','.join(PLATFORMS.values())}",
                f"BASE_IMAGE={bases}",
            ],
            cwd=project,
        )
        record_property("figure:multi-platform-build", f"{time.monotonic() - started:.0f} s")
        reference = re.search(r"^image: (\S+)$", built.stdout, re.MULTILINE)
        assert reference, f"make image printed no image:\n{built.stdout[-2000:]}"
        ref = reference.group(1)
        try:
            listing = json.loads(buildah("manifest", "inspect", ref, cwd=project).stdout)
            found = sorted(f"{m['platform']['os']}/{m['platform']['architecture']}" for m in listing["manifests"])
            assert found == sorted(PLATFORMS.values()), listing
            for arch in PLATFORMS:
                images.append(check_platform(project, ref, arch, metadata, classes))
        finally:
            buildah("manifest", "rm", ref, cwd=project, check=False)
    finally:
        buildah("manifest", "rm", bases, cwd=project, check=False)
        for image in images:
            buildah("rmi", "--force", image, cwd=project, check=False)


def check_platform(project: Path, ref: str, arch: str, metadata: dict[str, Any], classes: list[str]) -> str:
    """Check the list's image for ``arch`` (and, for arm64, serve it under QEMU); its image id."""
    container = buildah("from", "--pull-never", "--quiet", "--arch", arch, ref, cwd=project).stdout.strip()
    try:
        info = json.loads(buildah("inspect", "--type", "container", container, cwd=project).stdout)
        assert info["OCIv1"]["architecture"] == arch, info["OCIv1"]
        root = Path(buildah("mount", container, cwd=project).stdout.strip())
        (extension,) = root.glob("opt/venv/lib/python3*/site-packages/onnxruntime/capi/onnxruntime_pybind11_state*.so")
        assert elf_machine(extension) == arch, f"{extension.name} in the {arch} image is not built for {arch}"
        if arch == "arm64":
            serve_under_qemu(project, root, info["Docker"]["config"], metadata, classes)
        return str(info["FromImageID"])
    finally:
        buildah("rm", container, cwd=project, check=False)


def serve_under_qemu(
    project: Path, root: Path, config: dict[str, Any], metadata: dict[str, Any], classes: list[str]
) -> None:
    """Run the image's entrypoint as its user in a chroot of ``root`` (the kernel hands each arm64 binary to QEMU)."""
    cpuinfo = project / "cpuinfo-aarch64"
    cpuinfo.write_text(CPUINFO)
    mounts = [
        ["-t", "proc", "proc", str(root / "proc")],
        ["--bind", "/sys", str(root / "sys")],
        ["--bind", str(cpuinfo), str(root / "proc" / "cpuinfo")],
    ]
    mounted: list[str] = []
    port = free_port()
    env = [*(config.get("Env") or []), f"PORT={port}", "HOST=127.0.0.1", "ADMIN_PORT=off"]
    chroot = [*SUDO, "chroot", f"--userspec={config['User']}", str(root), "/usr/bin/env", "-i", *env]
    log = project / "arm64-server.log"
    launcher = None
    try:
        for mount in mounts:
            run([*SUDO, "mount", *mount], cwd=project)
            mounted.append(mount[-1])
        with log.open("wb") as out:
            launcher = subprocess.Popen(
                [*chroot, *config["Entrypoint"]], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_for_http(f"{url}/readyz", 120, launcher)
        except ServerNotReadyError as exc:
            raise AssertionError(f"{exc}\n--- server log ---\n{log.read_text(errors='replace')[-3000:]}") from None
        run([*chroot, *config["Healthcheck"]["Test"][1:]], cwd=project, env=project_env())
        answer = post_json(f"{url}/predict", {"instances": [g["inputs"] for g in metadata["golden"]]})
        assert answer["model_version"] == metadata["version"]
        assert_predictions(answer["predictions"], metadata["golden"], classes)
        server = descendants(launcher.pid)[-1] if SUDO else launcher.pid  # chroot and env exec the server
        run([*SUDO, "kill", "-TERM", str(server)], cwd=project)
        assert launcher.wait(60) == 0, f"the server did not stop cleanly:\n{log.read_text(errors='replace')[-3000:]}"
    finally:
        if launcher is not None and launcher.poll() is None:
            for pid in [*reversed(descendants(launcher.pid)), launcher.pid]:
                subprocess.run([*SUDO, "kill", "-KILL", str(pid)], check=False, capture_output=True)
            launcher.wait(30)
        for target in reversed(mounted):
            run([*SUDO, "umount", target], cwd=project, check=False)
