"""Each server's runtime environment: a fresh venv, linked from the shared uv cache, and its size on disk.

- ours: the project's base dependencies only (``uv sync --no-default-groups --no-editable``): what the image installs;
- uvicorn, granian: the same, plus that one server (``ASGI_SERVERS``): benchmark dependencies, never the project's;
- mlflow: the logged model's own ``requirements.txt``, pinned to the project's lock;
- kserve, mlserver: their packages from PyPI (``peers``), the model runtime pinned to the project's lock.

The interpreter (outside the venvs, the project's for all of them) is not counted. Sizes are taken as installed,
before anything runs in them and writes bytecode.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from tools.benchmark import clean_env
from tools.serving_bench.common import MB, run_step, shown
from tools.serving_bench.peers import KSERVE, MLSERVER
from tools.serving_bench.procs import disk_usage

ASGI_SERVERS = {"uvicorn": "uvicorn==0.54.0", "granian": "granian==2.8.9"}
# What a server needs to import to serve: checked in each environment before it is measured.
IMPORTS = {
    "mlflow": "import mlflow.pyfunc.scoring_server, onnxruntime, uvicorn",
    "uvicorn": "import uvicorn, httptools, uvloop, {package}.serving.asgi",
    "granian": "import granian, uvloop, {package}.serving.asgi",
    "kserve": "import kserve, onnxruntime",
    "mlserver": "import mlserver, mlserver_sklearn, sklearn",
    "ours": "import {package}.serving.server",
}


def _env_figures(venv: Path) -> dict[str, Any]:
    return {
        "path": shown(venv),
        "runtime_env_mb": round(disk_usage(venv) / MB, 1),
        "packages": len(list(venv.glob("lib/python*/site-packages/*.dist-info"))),
    }


def installed(venv: Path, *names: str) -> dict[str, str]:
    """The installed version of each of ``names`` in ``venv`` (from the ``.dist-info`` folders)."""
    found = {}
    for info in venv.glob("lib/python*/site-packages/*.dist-info"):
        name, _, version = info.name.removesuffix(".dist-info").partition("-")
        if name.lower().replace("_", "-") in names:
            found[name.lower().replace("_", "-")] = version
    return found


def _lock_pin(constraints: str, name: str) -> str:
    """``name==version`` as the project's lock (``uv export``) pins it."""
    match = re.search(rf"^{re.escape(name)}==([^\s;]+)", constraints, re.MULTILINE)
    if match is None:
        raise ValueError(f"{name} is not in the project's lock")
    return f"{name}=={match.group(1)}"


def runtime_envs(
    project: Path, package: str, artifacts: Path, work: Path, names: list[str]
) -> dict[str, dict[str, Any]]:
    """The runtime environment of each server in ``names``, built in ``work/envs/<name>``; their figures."""
    log = work / "logs" / "envs.log"
    envs = work / "envs"
    shutil.rmtree(envs, ignore_errors=True)
    constraints = work / "constraints.txt"
    export = ["uv", "export", "--frozen", "--all-groups", "--no-hashes", "--no-emit-project", "--no-header"]
    pins = run_step(export, project, log)
    constraints.write_text(pins)
    python = project / ".venv" / "bin" / "python"
    sync = ["uv", "sync", "--frozen", "--no-dev", "--no-default-groups", "--no-editable"]
    figures: dict[str, dict[str, Any]] = {}
    for name in names:
        venv = envs / name
        install = ["uv", "pip", "install", "--python", str(venv / "bin" / "python")]
        if name in ("ours", *ASGI_SERVERS):
            run_step(sync, project, log, env={**clean_env(), "UV_PROJECT_ENVIRONMENT": str(venv)})
            about = "= the project's base dependencies"
            if name in ASGI_SERVERS:
                run_step([*install, ASGI_SERVERS[name]], project, log)
                about += f" + `{ASGI_SERVERS[name]}` (a benchmark dependency, not the project's)"
        else:
            run_step(["uv", "venv", "--quiet", "--python", str(python), str(venv)], project, log)
            if name == "mlflow":
                requirements = (artifacts / "requirements.txt").read_text().splitlines()
                run_step([*install, "-r", str(artifacts / "requirements.txt"), "-c", str(constraints)], project, log)
                about = "= the logged model's `requirements.txt`: " + ", ".join(
                    r.strip() for r in requirements if r.strip()
                )
            else:
                pinned = _lock_pin(pins, "onnxruntime" if name == "kserve" else "scikit-learn")
                packages = [*(KSERVE if name == "kserve" else MLSERVER), pinned]
                run_step([*install, *packages], project, log)
                about = "= " + ", ".join(f"`{p}`" for p in packages) + " from PyPI"
        figures[name] = {**_env_figures(venv), "from": about}
        figures[name]["versions"] = installed(
            venv, name if name != "ours" else package.replace("_", "-"), "onnxruntime", "uvloop", "scikit-learn"
        )
    # Each environment must be enough to serve: what each server imports.
    for name in names:
        check = IMPORTS[name].format(package=package)
        run_step([str(envs / name / "bin" / "python"), "-B", "-c", check], project, log)
    return figures
