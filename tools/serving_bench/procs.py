"""Processes, ports and disk: the process tree's CPU time and memory (psutil), requests, waiting for servers.

Free ports, readiness and stopping a process group are ``tools.shared``'s.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import psutil

from tools.benchmark import StepError
from tools.shared import MB, ServerNotReadyError, wait_for_http

POLL_SECONDS = 0.005
READY_TIMEOUT = 180.0


def disk_usage(path: Path) -> int:
    """Bytes on disk under ``path``, like ``du -s -B1``: allocated blocks, each hard-linked file counted once."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for folder, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            try:
                st = os.lstat(os.path.join(folder, name))
            except OSError:
                continue
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            total += st.st_blocks * 512
    return total + os.lstat(path).st_blocks * 512


def process_tree(pid: int) -> list[psutil.Process]:
    """``pid`` and every live descendant ([] if ``pid`` is gone)."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def tree_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of ``pid`` and all its descendants, those already exited and waited for included."""
    total = 0.0
    for member in process_tree(pid):
        with contextlib.suppress(psutil.Error):
            times = member.cpu_times()
            total += times.user + times.system + times.children_user + times.children_system
    return total


def tree_memory(pid: int) -> dict[str, float]:
    """Resident memory (MB) and threads of ``pid``'s process tree, summed over its processes."""
    rss = threads = processes = 0
    for member in process_tree(pid):
        with contextlib.suppress(psutil.Error):
            with member.oneshot():
                if member.status() == psutil.STATUS_ZOMBIE:
                    continue
                rss, threads = rss + member.memory_info().rss, threads + member.num_threads()
            processes += 1
    return {"rss_mb": rss / MB, "threads": threads, "processes": processes}


def http_request(port: int, method: str, path: str, body: Any = None, timeout: float = 10.0) -> tuple[int, bytes]:
    """One request to 127.0.0.1 (no proxy); returns the status and the body."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        connection.request(method, path, body=data, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def wait_until_ready(
    port: int, path: str, process: subprocess.Popen[bytes], started: float, timeout: float = READY_TIMEOUT
) -> float:
    """Poll ``path`` every 5 ms until it answers 200; return the seconds since ``started`` (a perf_counter value)."""
    try:
        return wait_for_http(
            f"http://127.0.0.1:{port}{path}",
            timeout,
            process,
            interval=POLL_SECONDS,
            started=started,
            request_timeout=1.0,
        )
    except ServerNotReadyError as exc:
        raise StepError(str(exc)) from None
