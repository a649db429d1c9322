"""Every ``python_version`` answer installs the generated project's lock: each locked distribution that Linux x86-64
installs for that Python has a wheel for it (its CPython version, the stable ABI of an older one, or pure Python), or
is one of the few pure-Python projects published as a source archive only. An answer is offered only when this holds.
"""

from __future__ import annotations

import functools
import tomllib
from typing import Any

import pytest
from conftest import PROJECT_TEMPLATE
from packaging.markers import Marker
from packaging.tags import Tag
from packaging.utils import parse_wheel_filename

from tools.bake import choices

LOCK = PROJECT_TEMPLATE / "uv.lock"
# Source archives only, pure Python (no extension module): they build on any Python.
PURE_SOURCE_ONLY = {"antlr4-python3-runtime", "promise"}


@functools.cache
def locked() -> list[dict[str, Any]]:
    packages: list[dict[str, Any]] = tomllib.loads(LOCK.read_text())["package"]
    return packages


@functools.cache
def marker(text: str) -> Marker:
    return Marker(text)


@functools.cache
def wheel_tags(filename: str) -> frozenset[Tag]:
    return parse_wheel_filename(filename)[3]


def environment(version: str) -> dict[str, str]:
    return {
        "python_version": version,
        "python_full_version": f"{version}.0",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "platform_machine": "x86_64",
        "os_name": "posix",
    }


def installs_on(tag: Tag, version: str) -> bool:
    """Whether a wheel tag installs on CPython ``version`` on Linux x86-64 (glibc)."""
    minor = int(version.split(".")[1])
    platform = tag.platform == "any" or (
        tag.platform.endswith("x86_64") and tag.platform.startswith(("manylinux", "linux"))
    )
    if not platform:
        return False
    if tag.abi == "none":
        return tag.interpreter in {"py3", f"py3{minor}", f"cp3{minor}"}
    if tag.abi == "abi3":
        return tag.interpreter.startswith("cp3") and int(tag.interpreter[3:]) <= minor
    return tag.interpreter == f"cp3{minor}" and tag.abi == f"cp3{minor}"


def linux_package(package: dict[str, Any]) -> bool:
    """Whether any wheel of the package is for Linux or any platform (pywin32 is for Windows only, say)."""
    tags = [t for w in package.get("wheels", []) for t in wheel_tags(w["url"].rsplit("/", 1)[1])]
    return not tags or any(t.platform == "any" or "linux" in t.platform for t in tags)


def not_installable(version: str) -> list[str]:
    """The locked distributions Linux x86-64 installs for CPython ``version`` that have nothing to install there."""
    env = environment(version)
    missing = []
    for package in locked():
        markers = package.get("resolution-markers")
        if markers and not any(marker(m).evaluate(env) for m in markers):
            continue  # another Python's version of it
        if not linux_package(package) or package.get("source", {}).get("editable"):
            continue
        wheels = [wheel_tags(w["url"].rsplit("/", 1)[1]) for w in package.get("wheels", [])]
        if any(installs_on(tag, version) for tags in wheels for tag in tags):
            continue
        if not wheels and package["name"] in PURE_SOURCE_ONLY:
            continue
        missing.append(f"{package['name']} {package['version']}")
    return missing


@pytest.mark.parametrize("version", choices()["python_version"])
def test_every_locked_distribution_installs_on_each_python_answer(version: str) -> None:
    missing = not_installable(version)
    assert not missing, f"no wheel for CPython {version} on Linux x86-64: {', '.join(missing)}"


def test_a_python_the_lock_cannot_install_is_found() -> None:
    """The check can fail: a future CPython has no compiled wheels yet."""
    missing = not_installable("3.19")
    assert any(name.startswith("onnxruntime ") for name in missing), missing
