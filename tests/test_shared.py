"""``tools/shared.py``, the helpers the tools and the tests share, against real processes and a real HTTP server."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tools.shared import (
    MB,
    ServerNotReadyError,
    descendants,
    free_port,
    group_members,
    peak_rss_kib,
    replace_block,
    stop_process_group,
    wait_for_http,
)

# A server that answers 200 once it has slept ``delay`` seconds, and starts a child that ignores SIGTERM: stopping
# its process group has to reach the child too, with SIGKILL.
SERVER = """
import http.server, signal, subprocess, sys, time
time.sleep(float(sys.argv[2]))
IGNORE_TERM = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print(flush=True); time.sleep(600)"
child = subprocess.Popen([sys.executable, "-c", IGNORE_TERM], stdout=subprocess.PIPE)
child.stdout.readline()  # the child ignores SIGTERM from now on
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), http.server.SimpleHTTPRequestHandler).serve_forever()
"""


def _start(port: int, delay: float, cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", SERVER, str(port), str(delay)],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def test_mb_is_ten_to_the_sixth() -> None:
    assert MB == 1_000_000


def test_free_port_can_be_bound() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_wait_then_stop_the_whole_group(tmp_path: Path) -> None:
    port = free_port()
    server = _start(port, 0.3, tmp_path)
    try:
        seconds = wait_for_http(f"http://127.0.0.1:{port}/", 30, server)
        assert 0.3 <= seconds < 30
        (child,) = descendants(server.pid)
        assert set(group_members(server.pid)) == {server.pid, child}
        assert peak_rss_kib(server.pid) > 1000  # a Python interpreter holds more than a megabyte
    finally:
        started = time.monotonic()
        assert stop_process_group(server, grace=2)
        assert time.monotonic() - started >= 2  # the child outlived SIGTERM: it took the SIGKILL after the grace
    assert group_members(server.pid) == []
    assert descendants(server.pid) == []
    assert peak_rss_kib(server.pid) == 0


def test_wait_fails_fast_when_the_server_exits(tmp_path: Path) -> None:
    port = free_port()
    exits = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"], cwd=tmp_path)
    started = time.perf_counter()
    with pytest.raises(ServerNotReadyError, match="exited with 3"):
        wait_for_http(f"http://127.0.0.1:{port}/", 30, exits)
    assert time.perf_counter() - started < 10


def test_wait_gives_up_after_the_timeout() -> None:
    with pytest.raises(ServerNotReadyError, match=r"did not answer 200 within 1 s"):
        wait_for_http(f"http://127.0.0.1:{free_port()}/", 1)


def test_replace_block_keeps_the_markers_and_the_rest(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# Title\n\n<!-- bench:begin -->\nold\n<!-- bench:end -->\n\nafter\n")
    replace_block(readme, "bench", "| new |\n")
    replace_block(readme, "bench", "| new |\n")  # idempotent
    assert readme.read_text() == "# Title\n\n<!-- bench:begin -->\n| new |\n<!-- bench:end -->\n\nafter\n"
    with pytest.raises(SystemExit, match=re.escape("no <!-- other:begin --> ... <!-- other:end --> block")):
        replace_block(readme, "other", "x")
