"""What the attack protections cost our server (issue 11).

The server as it is against the same project's server before the hardening, in paired rounds (``rounds``), on
``/predict``, batch 1.

"Before" is the template at a git ref (``--hardening-baseline``, by default ``BASELINE``: the split of
``serving/http.py`` into one module per job, the parent of the hardening commit): ``git archive`` of that ref, baked
with that ref's own ``tools.bake`` and the benchmark's answers (each of which the ref's ``cookiecutter.json`` must
know, or the bake would silently differ), and installed into a runtime venv of its own from that ref's lock, as ours
is (the base dependencies only). It serves the very same ``models/`` folder as ours (the export has not changed
since), from the same working folder and settings, and must give our answers for the same rows. The difference is
every commit between the ref and the working tree that touched the server: the protections (limits, timeouts, flow
control, the writer) and the rest merged since (the v2 routes beside ``/predict``, route templates tried only on a
miss), which the figures name by the ref.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import subprocess
import sys
import tarfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from tools.benchmark import ROOT, StepError, clean_env
from tools.serving_bench.common import TOLERANCE, run_step, shown
from tools.serving_bench.envs import installed
from tools.serving_bench.procs import http_request
from tools.serving_bench.report import parity
from tools.serving_bench.rounds import compare, paired_rounds
from tools.serving_bench.servers import Server, ours

BASELINE = "b7b716b"  # "Server: serving/http.py (744 lines, ten concerns) becomes one module per job"
RUNTIME = ("numpy", "onnxruntime", "orjson", "httptools", "uvloop", "protobuf")  # what the serve path imports


def git(*args: str) -> str:
    """Run git in the template's repository; StepError naming the command when it fails."""
    result = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise StepError(f"`git {' '.join(args)}` failed in {ROOT}: {result.stderr.strip()}")
    return result.stdout.strip()


def unknown_answers(cookiecutter_json: str, answers: dict[str, str]) -> list[str]:
    """The answers that a template's ``cookiecutter.json`` does not ask for (cookiecutter would ignore them)."""
    known = json.loads(cookiecutter_json)
    return sorted(key for key in answers if key not in known)


def bake_at(ref: str, answers: dict[str, str], work: Path, log: Path) -> tuple[Path, dict[str, Any]]:
    """Bake the template as it was at ``ref`` into ``work/baseline``; return the project and what the ref is."""
    commit = git("rev-parse", "--verify", f"{ref}^{{commit}}")
    about: dict[str, Any] = {"ref": ref, "commit": commit, "subject": git("log", "-1", "--format=%s", commit)}
    folder = work / "baseline"
    shutil.rmtree(folder, ignore_errors=True)
    template = folder / "template"
    template.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", "--format=tar", commit], cwd=ROOT, capture_output=True, check=False)
    if archive.returncode != 0:
        raise StepError(f"`git archive {commit}` failed: {archive.stderr.decode(errors='replace').strip()}")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        if hasattr(tarfile, "data_filter"):  # Python 3.11.4 and later
            tar.extractall(template, filter="data")
        else:  # our own repository's archive
            tar.extractall(template)
    unknown = unknown_answers((template / "cookiecutter.json").read_text(), answers)
    if unknown:
        raise StepError(
            f"the template at {ref} does not take the benchmark's answers {unknown}: it would bake another project"
        )
    command = [sys.executable, "-m", "tools.bake", str(folder / "projects"), *(f"{k}={v}" for k, v in answers.items())]
    output = run_step(command, template, log)  # that ref's own tools.bake, rendering that ref's template
    return Path(output.strip().splitlines()[-1]), about


def baseline_server(
    ref: str, answers: dict[str, str], project: Path, package: str, work: Path
) -> tuple[Server, dict[str, Any]]:
    """Our server as it was at ``ref``: baked, with a runtime venv of its own, serving ``project``'s model."""
    log = work / "logs" / "baseline.log"
    baked, about = bake_at(ref, answers, work, log)
    if not (baked / "src" / package).is_dir():
        raise StepError(f"the project baked at {ref} ({baked}) has no package {package!r}")
    venv = work / "envs" / "baseline"
    shutil.rmtree(venv, ignore_errors=True)
    sync = ["uv", "sync", "--frozen", "--no-dev", "--no-default-groups", "--no-editable"]
    run_step(sync, baked, log, env={**clean_env(), "UV_PROJECT_ENVIRONMENT": str(venv)})
    run_step([str(venv / "bin" / "python"), "-B", "-c", f"import {package}.serving.server"], baked, log)
    about.update({"project": shown(baked), "venv": shown(venv), "versions": installed(venv, *RUNTIME)})
    short = about["commit"][:7]
    server = replace(ours(project, package, venv), name="baseline", title=f"`{package} serve` at {short}")
    return server, about


def measure_hardening(
    current: Server,
    package: str,
    rows: list[dict[str, float]],
    classes: list[str],
    settings: argparse.Namespace,
    answers: dict[str, str],
    work: Path,
) -> dict[str, Any]:
    """Ours against ours at ``settings.hardening_baseline`` in paired rounds; the cost and the rounds' spread."""
    baseline, about = baseline_server(settings.hardening_baseline, answers, current.cwd, package, work)
    versions = installed(Path(current.command[0]).parents[1], *RUNTIME)  # ours' venv: <venv>/bin/<package>
    about["runtime_differences"] = {
        name: [about["versions"].get(name), versions.get(name)]
        for name in RUNTIME
        if about["versions"].get(name) != versions.get(name)
    }
    print(f"  baseline {about['commit'][:7]} ({about['subject'][:70]}): {' '.join(baseline.command)}", flush=True)
    checks: dict[str, Any] = {}

    def same_answers(round_: int, ports: dict[str, int]) -> None:
        if round_:
            return
        got = {}
        for key, server in (("without", baseline), ("with", current)):
            status, body = http_request(ports[key], "POST", server.predict_path, server.request(rows))
            if status != 200:
                raise StepError(f"{server.name}: {server.predict_path} answered {status}: {body[:500]!r}")
            got[key] = server.answers(json.loads(body), classes)
        checks.update(parity(got["with"], got["without"], TOLERANCE))

    result = paired_rounds(
        {"without": baseline, "with": current},
        json.dumps(current.request(rows[:1]), separators=(",", ":")),
        rounds=settings.hardening_rounds,
        seconds=settings.hardening_seconds,
        connections=settings.connections,
        work=work,
        label="hardening",
        after_round=same_answers,
    )
    figures = {"baseline": about, **compare(result, settings.hardening_seconds), "parity": checks}
    low, high = figures["overhead_pct_range"]
    print(
        f"  without: {figures['without']['throughput_rps']:,.0f} req/s, with: {figures['with']['throughput_rps']:,.0f}"
        f" req/s ({figures['overhead_pct']:+.2f} % lost, rounds from {low:+.2f} to {high:+.2f} %)",
        flush=True,
    )
    return figures
