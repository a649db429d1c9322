"""What the template's tools and tests share, written once.

The unit "MB", a free port, waiting for a server's HTTP answer, process trees and process groups (through psutil),
and the README blocks the benchmarks fill.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import time
import urllib.parse
from pathlib import Path
from typing import Any

import psutil

# One meaning of "MB" in every tool, test and README figure: 10^6 bytes, the unit of the issues' targets (and of
# `du -B MB`). Memory figures too: a resident set of 100 MB is 100 * 10^6 bytes.
MB = 10**6
KIB = 1024  # the kernel's "kB" (ru_maxrss, VmHWM) is a KiB


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServerNotReadyError(RuntimeError):
    """A server did not answer 200 in time, or exited before it did."""


def http_get_status(url: str, timeout: float) -> int:
    """The status of one GET of ``url`` (``http://host:port/path``), straight to the host: no proxy is consulted."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"{url!r} is not an http://host:port/path URL")
    connection = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
    try:
        connection.request("GET", parts.path or "/")
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def wait_for_http(
    url: str,
    timeout: float,
    process: subprocess.Popen[Any] | None = None,
    *,
    interval: float = 0.05,
    started: float | None = None,
    request_timeout: float = 5.0,
) -> float:
    """Poll ``url`` until it answers 200; return the seconds since ``started``.

    ``started`` is a ``time.perf_counter()`` value, by default the call's start; each try waits ``request_timeout``
    seconds at most. Raise ServerNotReadyError after ``timeout`` seconds, or as soon as ``process`` (the server)
    exits.
    """
    begin = time.perf_counter() if started is None else started
    deadline = begin + timeout
    while True:
        with contextlib.suppress(OSError, http.client.HTTPException):
            if http_get_status(url, request_timeout) == 200:
                return time.perf_counter() - begin
        if process is not None and process.poll() is not None:
            raise ServerNotReadyError(f"the server exited with {process.returncode} before {url} answered 200")
        if time.perf_counter() > deadline:
            raise ServerNotReadyError(f"{url} did not answer 200 within {timeout:.0f} s")
        time.sleep(interval)


def descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid``, parents before their children ([] if ``pid`` is gone)."""
    try:
        return [child.pid for child in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def peak_rss_kib(pid: int) -> int:
    """The peak resident set (``VmHWM``, KiB) of one process, 0 if it is gone.

    psutil has the current resident set only, so this one field is read from ``/proc/<pid>/status`` (Linux).
    """
    try:
        with open(f"/proc/{pid}/status") as handle:
            return next((int(line.split()[1]) for line in handle if line.startswith("VmHWM:")), 0)
    except (OSError, ValueError, IndexError):
        return 0


def group_members(pgid: int) -> list[int]:
    """Live processes (zombies excluded) whose process group is ``pgid``."""
    members = []
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error, ProcessLookupError, PermissionError):
            if os.getpgid(process.pid) == pgid and process.status() != psutil.STATUS_ZOMBIE:
                members.append(process.pid)
    return members


def _kill_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def stop_process_group(process: subprocess.Popen[Any], grace: float = 15.0) -> bool:
    """Stop a process started with ``start_new_session=True`` and every process of its group; True if none is left.

    SIGTERM to the group, then SIGKILL after ``grace`` seconds; members that outlive their leader are killed too.
    """
    if process.poll() is None:
        _kill_group(process.pid, signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            _kill_group(process.pid, signal.SIGKILL)
            process.wait(grace)
    deadline = time.monotonic() + grace
    while group_members(process.pid):
        if time.monotonic() > deadline:
            _kill_group(process.pid, signal.SIGKILL)
            time.sleep(0.1)
            return not group_members(process.pid)
        time.sleep(0.05)
    return True


def block_markers(name: str) -> tuple[str, str]:
    """The HTML comments around a generated block of a README: ``<!-- name:begin -->``, ``<!-- name:end -->``."""
    return f"<!-- {name}:begin -->", f"<!-- {name}:end -->"


def replace_block(readme: Path, name: str, content: str) -> None:
    """Replace what stands between ``name``'s markers in ``readme`` with ``content`` (the markers stay).

    Exits with an error naming the file and the markers when the block is missing.
    """
    begin, end = block_markers(name)
    text = readme.read_text()
    start, stop = text.find(begin), text.find(end)
    if start < 0 or stop < start:
        raise SystemExit(f"error: {readme} has no {begin} ... {end} block to fill")
    readme.write_text(text[: start + len(begin)] + "\n" + content + text[stop:])
