"""Processes, ports and disk: the process tree's CPU time and memory from ``/proc``, starting and stopping servers."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from tools.benchmark import StepFailed, _descendants
from tools.serving_bench.common import MB

POLL_SECONDS = 0.005
READY_TIMEOUT = 180.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


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


def parse_stat(text: str) -> dict[str, int]:
    """The fields of ``/proc/<pid>/stat`` this benchmark uses: ppid, pgrp, and CPU time in clock ticks.

    ``utime``/``stime`` are the process's own (all its threads), ``cutime``/``cstime`` those of its children that
    exited and were waited for. The command name (field 2) may hold spaces and parentheses: split after the last ")".
    """
    fields = text.rsplit(")", 1)[1].split()
    # fields[0] is field 3 of proc(5) (state): field n is fields[n - 3].
    return {
        "ppid": int(fields[1]),
        "pgrp": int(fields[2]),
        "utime": int(fields[11]),
        "stime": int(fields[12]),
        "cutime": int(fields[13]),
        "cstime": int(fields[14]),
    }


def parse_status(text: str) -> dict[str, int]:
    """``VmRSS``, ``VmHWM`` (KiB) and ``Threads`` from ``/proc/<pid>/status`` (0 when absent, e.g. a zombie)."""
    values = {"VmRSS": 0, "VmHWM": 0, "Threads": 0}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in values and rest.split():
            values[key] = int(rest.split()[0])
    return values


def _read(path: str) -> str | None:
    try:
        with open(path) as handle:
            return handle.read()
    except OSError:
        return None


def process_tree(pid: int) -> list[int]:
    """``pid`` and every live descendant."""
    return [pid, *_descendants(pid)]


def tree_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of ``pid`` and all its descendants, those already exited and waited for included."""
    ticks = 0
    for member in process_tree(pid):
        text = _read(f"/proc/{member}/stat")
        if text:
            s = parse_stat(text)
            ticks += s["utime"] + s["stime"] + s["cutime"] + s["cstime"]
    return ticks / CLOCK_TICKS


def tree_memory(pid: int) -> dict[str, float]:
    """Resident memory (MB) and threads of ``pid``'s process tree, summed over its processes."""
    rss = hwm = threads = processes = 0
    for member in process_tree(pid):
        text = _read(f"/proc/{member}/status")
        if text:
            status = parse_status(text)
            rss, hwm, threads = rss + status["VmRSS"], hwm + status["VmHWM"], threads + status["Threads"]
            processes += 1
    return {"rss_mb": rss * 1024 / MB, "hwm_mb": hwm * 1024 / MB, "threads": threads, "processes": processes}


def group_members(pgid: int) -> list[int]:
    """Live processes (zombies excluded) whose process group is ``pgid``."""
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            text = _read(f"/proc/{entry}/stat")
            if text and parse_stat(text)["pgrp"] == pgid and text.rsplit(")", 1)[1].split()[0] != "Z":
                members.append(int(entry))
    return members


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


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
    deadline = started + timeout
    while True:
        with contextlib.suppress(OSError, http.client.HTTPException):
            if http_request(port, "GET", path, timeout=1.0)[0] == 200:
                return time.perf_counter() - started
        if process.poll() is not None:
            raise StepFailed(f"the server exited with {process.returncode} before {path} answered 200")
        if time.perf_counter() > deadline:
            raise StepFailed(f"{path} did not answer 200 within {timeout:.0f} s")
        time.sleep(POLL_SECONDS)


def stop_process_group(process: subprocess.Popen[bytes], grace: float = 15.0) -> bool:
    """Stop a server started with ``start_new_session=True`` and every process of its group; True if none is left.

    SIGTERM to the group, then SIGKILL after ``grace`` seconds; workers that outlive their leader are killed too.
    """
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(grace)
    deadline = time.monotonic() + grace
    while group_members(process.pid):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            time.sleep(0.1)
            return not group_members(process.pid)
        time.sleep(0.05)
    return True
