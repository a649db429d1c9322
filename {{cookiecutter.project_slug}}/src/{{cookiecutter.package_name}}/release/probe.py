"""Continuous validation: probe a running server and say whether its environment should be rolled back.

The checks use the model's own metadata (``models/metadata.json`` of the release being checked): the server is
ready, it serves that model version, its golden predictions reproduce, and its latency stays within a budget.
Standard library only, so it runs anywhere the repository is checked out.
"""

from __future__ import annotations

import json
import math
import time
import urllib.error
import urllib.request
from typing import Any

from {{ cookiecutter.package_name }}.contracts.golden import reproduces
from {{ cookiecutter.package_name }}.contracts.metadata import Metadata
from {{ cookiecutter.package_name }}.contracts.verdict import Check


def _call(url: str, body: Any = None, timeout: float = 5.0) -> tuple[int, Any]:
    """Status and decoded JSON of one request (``status`` 0 when the server cannot be reached)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data, {"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")
    except (OSError, ValueError) as exc:
        return 0, {"error": str(exc)}


def wait_for_version(url: str, version: str, wait: float, interval: float = 5.0) -> Check:
    """Poll ``/metadata`` until the server reports ``version`` (a deployment rolling out) or ``wait`` runs out."""
    deadline = time.monotonic() + wait
    name = "serves the release's model version"
    while True:
        status, body = _call(f"{url}/metadata")
        served = body.get("version") if status == 200 and isinstance(body, dict) else None
        if served == version:
            return Check.of(name, True, version)
        if time.monotonic() >= deadline:
            return Check.of(name, False, f"serves {served!r} (HTTP {status}), not {version}")
        time.sleep(interval)


def probe(url: str, metadata: Metadata, requests: int, budget_ms: float, wait: float = 0.0) -> list[Check]:
    """Every check against the server at ``url`` for the model described by ``metadata``."""
    url = url.rstrip("/")
    status, body = _call(f"{url}/readyz")
    checks = [Check.of("ready", status == 200, f"/readyz answered {status}: {body}")]
    checks.append(wait_for_version(url, str(metadata["version"]), wait))
    classes = [str(c) for c in metadata.get("classes", [])]
    golden = metadata.get("golden") or []
    wrong = []
    for index, sample in enumerate(golden):
        status, body = _call(f"{url}/predict", {"instances": [sample["inputs"]]})
        if status != 200 or not reproduces(body["predictions"][0], sample["expected"], classes):
            wrong.append(f"sample {index}: HTTP {status} {json.dumps(body)[:200]}")
    checks.append(
        Check.of(
            "golden predictions reproduce",
            bool(golden) and not wrong,
            "; ".join(wrong) if wrong else f"{len(golden)} samples" if golden else "the metadata has no golden samples",
        )
    )
    if golden:
        timings, failures = [], 0
        for _ in range(requests):
            start = time.perf_counter()
            status, _ = _call(f"{url}/predict", {"instances": [golden[0]["inputs"]]})
            timings.append((time.perf_counter() - start) * 1000)
            failures += status != 200
        timings.sort()
        p95 = timings[min(len(timings) - 1, math.ceil(0.95 * len(timings)) - 1)] if timings else math.inf
        checks.append(
            Check.of(
                f"latency p95 <= {budget_ms:g} ms",
                failures == 0 and p95 <= budget_ms,
                f"p95 {p95:.2f} ms over {requests} requests, {failures} failed",
            )
        )
    return checks


def report(checks: list[Check], as_json: bool) -> str:
    """The verdict, as lines for people or as JSON for machines."""
    healthy = all(c.passed for c in checks)
    if as_json:
        return json.dumps(
            {
                "healthy": healthy,
                "rollback": not healthy,
                "checks": [{"name": c.name, "passed": c.passed, "detail": c.detail} for c in checks],
            }
        )
    lines = [f"{'pass' if c.passed else 'FAIL'}  {c.name}: {c.detail}" for c in checks]
    lines.append("healthy" if healthy else "unhealthy: roll this environment back")
    return "\n".join(lines)
