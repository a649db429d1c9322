"""The judge of every attack: a well-behaved client and a memory sampler running beside it.

While an attack runs, a well-behaved client keeps one keep-alive connection and sends ``POST /predict`` every
``PACE`` seconds; every answer must be a 200 with the golden prediction and its own request id, and the 99th
percentile of their latency must stay under ``ATTACK_P99_MS`` (default 100 ms: a healthy server answers in a few
milliseconds even on a busy two-core machine, a server whose event loop an attacker blocks answers in seconds).
The resident memory of the server's process group is sampled every ``SAMPLE`` seconds; it may grow at most
``ATTACK_GROWTH_MB`` (default 64) over the attack, and an attack stops as soon as it grew more (``active`` turns
false), so a server that buffers without bound does not take the machine down. Afterwards the server must be alive
and ready. The attack itself records what went wrong with ``require``; ``verdict`` asserts everything at once.
"""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from attacks.server import Served
from attacks.wire import HOST

P99_MS = float(os.environ.get("ATTACK_P99_MS", "100"))
GROWTH_MB = float(os.environ.get("ATTACK_GROWTH_MB", "64"))
SECONDS = float(os.environ.get("ATTACK_SECONDS", "1.5"))
PACE = 0.005
SAMPLE = 0.05
ANSWER_TIMEOUT = 3.0


@dataclass(frozen=True)
class Golden:
    """A ``/predict`` request made of the model's golden samples, and the answers it must get."""

    body: bytes
    expected: list[dict[str, Any]]
    classes: list[str]

    @classmethod
    def from_metadata(cls, path: Path) -> Golden:
        meta = json.loads(path.read_text())
        samples = meta["golden"][:2]
        body = json.dumps({"instances": [s["inputs"] for s in samples]}).encode()
        return cls(body, [s["expected"] for s in samples], [str(c) for c in meta.get("classes") or []])

    def batch(self, size: int) -> Golden:
        """The same samples repeated into a request of ``size`` instances."""
        instances = json.loads(self.body)["instances"]
        repeat = [instances[i % len(instances)] for i in range(size)]
        expected = [self.expected[i % len(self.expected)] for i in range(size)]
        return Golden(json.dumps({"instances": repeat}).encode(), expected, self.classes)

    def problem(self, status: int, body: bytes, request_id: str | None = None) -> str | None:
        """What is wrong with an answer to ``body``, or None."""
        from {{ cookiecutter.package_name }}.contracts.golden import reproduces  # the standard library only

        if status != 200:
            return f"status {status}: {body[:200]!r}"
        try:
            answer = json.loads(body)
        except ValueError:
            return f"not JSON: {body[:200]!r}"
        if request_id is not None and answer.get("request_id") != request_id:
            return f"the answer to {request_id} carries the request id {answer.get('request_id')!r}"
        got = answer.get("predictions", [])
        if len(got) != len(self.expected) or not all(map(reproduces, got, self.expected, [self.classes] * len(got))):
            return f"wrong predictions {got}"
        return None


class Watch:
    """A context manager around an attack: the well-behaved client and the memory sampler run while it is open."""

    def __init__(self, served: Served, golden: Golden, seconds: float = SECONDS) -> None:
        self.served = served
        self.golden = golden
        self.seconds = seconds
        self.latencies: list[float] = []
        self.failures: list[str] = []  # the well-behaved client's
        self.problems: list[str] = []  # the attack's, from ``require``
        self.baseline = self.peak = 0
        self.exceeded = False
        self.stopped = threading.Event()
        self.threads = [threading.Thread(target=f, daemon=True) for f in (self._client, self._sample)]
        self.start = self.deadline = self.end = 0.0
        self.log_start = 0

    @property
    def safe(self) -> bool:
        """The memory grew less than the limit so far."""
        return not self.exceeded

    @property
    def active(self) -> bool:
        """The attack should go on: its time is not over and the memory grew less than the limit."""
        return self.safe and time.monotonic() < self.deadline

    def require(self, ok: bool, what: str) -> None:
        if not ok and len(self.problems) < 20:
            self.problems.append(what)

    def __enter__(self) -> Watch:
        self.baseline = self.peak = self.served.rss()
        self.log_start = self.served.log.stat().st_size
        self.conn = http.client.HTTPConnection(HOST, self.served.port, timeout=ANSWER_TIMEOUT)
        self._ask("warm-up")
        self.latencies.clear()
        for thread in self.threads:
            thread.start()
        self.start = time.monotonic()
        self.deadline = self.start + self.seconds
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.end = time.monotonic()
        self.stopped.set()
        for thread in self.threads:
            thread.join(ANSWER_TIMEOUT + 1)
        self.conn.close()

    def _ask(self, request_id: str) -> None:
        started = time.perf_counter()
        try:
            self.conn.request(
                "POST", "/predict", self.golden.body, {"Content-Type": "application/json", "X-Request-ID": request_id}
            )
            response = self.conn.getresponse()
            problem = self.golden.problem(response.status, response.read(), request_id)
        except (OSError, http.client.HTTPException) as exc:
            problem = f"{type(exc).__name__}: {exc}"
        self.latencies.append(time.perf_counter() - started)
        if problem is not None:
            self.failures.append(f"{request_id} at +{time.monotonic() - self.start:.2f} s: {problem}")
            self.conn.close()  # reconnects on the next request

    def _client(self) -> None:
        count = 0
        while not self.stopped.is_set():
            count += 1
            self._ask(f"bystander-{count}")
            self.stopped.wait(PACE)

    def _sample(self) -> None:
        limit = GROWTH_MB * 2**20
        while not self.stopped.wait(SAMPLE):
            self.peak = max(self.peak, self.served.rss())
            self.exceeded = self.exceeded or self.peak - self.baseline > limit

    def summary(self) -> str:
        ordered = sorted(self.latencies) or [0.0]
        p50, p99 = (ordered[min(int(q * len(ordered)), len(ordered) - 1)] * 1000 for q in (0.5, 0.99))
        return (
            f"{self.end - self.start:.1f} s: {len(self.latencies)} answers to the well-behaved client, "
            f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {ordered[-1] * 1000:.0f} ms; "
            f"memory +{(self.peak - self.baseline) / 2**20:.1f} MB"
        )

    def verdict(self, min_answers: int = 20) -> None:
        """Assert the attack's own requirements, the well-behaved client's answers and latency, the memory growth,
        and that the server is alive and ready afterwards."""
        # The slowest answer is left out of the judged p99: with under a hundred answers p99 is the maximum, and one
        # stall of a shared machine (another process scheduled) is not the server's doing. An attack that holds the
        # server delays every answer meanwhile, not one; the summary still shows the maximum.
        ordered = sorted(self.latencies)[:-1] or [0.0]
        p99 = ordered[min(int(0.99 * len(ordered)), len(ordered) - 1)] * 1000
        growth = (self.peak - self.baseline) / 2**20
        problems = [f"the attack: {p}" for p in self.problems]
        problems += [f"the well-behaved client: {f}" for f in self.failures[:5]]
        if len(self.failures) > 5:
            problems.append(f"the well-behaved client: {len(self.failures) - 5} more failures")
        if len(self.latencies) < min_answers and not self.problems:  # an attack that failed at once stops early
            problems.append(f"the well-behaved client got only {len(self.latencies)} answers")
        if p99 > P99_MS:
            problems.append(f"the well-behaved client's p99 latency is {p99:.0f} ms, above {P99_MS:.0f} ms")
        if growth > GROWTH_MB:
            problems.append(f"the server's resident memory grew {growth:.0f} MB, more than {GROWTH_MB:.0f} MB")
        if not self.served.ready(10):
            state = "alive" if self.served.alive() else f"exited with {self.served.process.returncode}"
            problems.append(f"the server is not ready 10 s after the attack ({state})")
        else:
            try:
                answer = self.served.get("/predict", "POST", self.golden.body)
                problem = self.golden.problem(answer[0], answer[2])
            except (OSError, http.client.HTTPException) as exc:
                problem = f"{type(exc).__name__}: {exc}"
            if problem is not None:
                problems.append(f"after the attack, /predict answers {problem}")
        print(f"\n{self.summary()}")
        log = self.served.log.read_bytes()[self.log_start :][-3000:].decode(errors="replace")
        assert not problems, "\n".join([self.summary(), *problems, "--- the server's log meanwhile", log])
