"""Prediction logging: a sample of ``/predict`` requests as JSON lines in ``PREDICTION_LOG_DIR``, off by default.

The files are the contract with whatever reads them (the ``monitor`` command, a log shipper), possibly while the
server is writing:

* ``predictions-<UTC yyyymmddTHHMMSSffffffZ>-<pid>.jsonl``: one file open at a time per process; before a line would
  take it past ``PREDICTION_LOG_MAX_BYTES`` it is closed and a file with a new name is started (a single line longer
  than that gets a file of its own). Written data is never renamed, rewritten or deleted: retention is the operator's
  job. Names sort by the time the file was started; a reader reads every ``*.jsonl`` under the directory;
* UTF-8 JSON lines, one per predicted instance (a batch request gives one line per instance), in the format of
  ``contracts.prediction_log`` (which makes each line), keys in this order::

    {"time": "2026-11-21T10:00:00.123456Z", "request_id": "...", "index": 0, "model_version": "...",
     "inputs": {"feature": value, ...}, "prediction": {"label": ..., "probabilities": {...}} or {"value": ...}}

  ``time`` is when the request was predicted (ISO 8601, UTC, microseconds: the strings sort by time);
  ``request_id`` is the one the response carries (the client's ``X-Request-ID`` or one the server made up) and
  ``index`` the instance's position in the request, so labels that arrive later join on ``(request_id, index)``;
  ``model_version`` is the model that answered (in an A/B split, the challenger for its share; a shadow challenger is
  never logged); ``inputs`` is the instance as the client sent it (a ``rows`` request, and a v2 ``infer`` request, is
  logged as records by feature name) and ``prediction`` is what ``/predict`` answers for it;
* a process killed while writing may leave a partial last line: readers skip it. Lines reach the operating system
  within ``FLUSH_SECONDS``; nothing is fsynced.

Sampling is per request (every instance of a sampled request is logged): one ``random()`` draw against
``PREDICTION_LOG_SAMPLE``. A sampled request's lines are encoded on the event loop (orjson into one buffer: 2 µs an
instance of 30 numbers in a tight loop, up to 6 µs among a busy server's requests) and every ``FLUSH_SECONDS`` (or
``FLUSH_BYTES``) the buffer goes, in one hand-over, to a writer thread that does all the file work, so no request
waits for the disk. Few, large hand-overs: each one wakes the thread, which must take the GIL from the busy loop,
and on a saturated machine that costs the loop milliseconds (measured on 2 CPUs at the default rate: 6 to 7 % of
the throughput with a hand-over every 0.2 s, 2.5 to 4 % with one a second, close to what the encoding alone costs).
Encoding in the thread would not spare the loop either: orjson holds the GIL. When more than ``QUEUE_BYTES`` wait
for the disk, new lines are dropped and counted instead; a failed create or write is counted, its lines dropped, a
warning logged once, and the writer tries a new file with the next lines. Prediction never fails because of the
log.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from {{ cookiecutter.package_name }}.contracts.prediction_log import Stamp, line

log = logging.getLogger(__name__.rsplit(".", 1)[0])
FLUSH_SECONDS = 1.0
"""Longest time a logged line waits on the event loop before it is handed to the writer thread."""
FLUSH_BYTES = 4 * 1024 * 1024
"""Lines collected up to this size are handed to the writer thread at once."""
QUEUE_BYTES = 32 * 1024 * 1024
"""Most bytes waiting for the disk; lines beyond are dropped (and counted) rather than held in memory."""
JOIN_SECONDS = 10.0
"""Longest wait for the writer thread to write what is left when the server stops."""
OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)


def rows_as_records(document: dict[str, Any], names: list[str]) -> list[dict[str, Any]]:
    """The rows of a valid ``rows`` request as records by feature name (in the order of its ``columns``)."""
    columns = document.get("columns") or names
    return [dict(zip(columns, row, strict=True)) for row in document["rows"]]


class PredictionLog:
    """Sampled predictions as JSON lines in a directory: encoded on the event loop, written by a thread.

    ``record`` and ``flush`` run on the event loop's thread; ``_run`` and what it calls on the writer thread. Each
    counter is written by one thread only, so neither thread takes a lock.
    """

    def __init__(self, directory: Path, rate: float, max_bytes: int) -> None:
        """Nothing starts until ``start``."""
        self.directory = directory
        self.rate = rate
        self.max_bytes = max_bytes
        self.stamp = Stamp()
        self.pid = os.getpid()
        # The event loop's side.
        self.loop: asyncio.AbstractEventLoop | None = None
        self.pending = bytearray()  # whole lines, not handed over yet
        self.pending_lines = 0
        self.timer: asyncio.TimerHandle | None = None
        self.queued_bytes = 0  # handed to the writer, ever
        self.dropped_full = 0  # lines dropped because too much waited for the disk
        self.unencodable = 0  # lines that could not be encoded (not expected: the request was valid JSON)
        self.queue: queue.SimpleQueue[tuple[bytearray, int] | None] = queue.SimpleQueue()
        self.thread: threading.Thread | None = None
        # The writer thread's side.
        self.done_bytes = 0  # taken off the queue and written or dropped, ever
        self.records = 0  # lines written
        self.dropped_failed = 0  # lines lost to failed writes
        self.write_errors = 0
        self.warned = False
        self.fd: int | None = None
        self.size = 0
        self.started: datetime | None = None  # the time in the current (or last) file's name

    # ----------------------------------------------------------------------------------------------------------------
    # The event loop's side
    # ----------------------------------------------------------------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Create the directory (a failure is counted and retried with the first lines) and start the writer."""
        self.loop = loop
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self._failed(exc, 0)
        self.thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self.thread.start()

    def record(self, request_id: str, version: str, names: list[str], document: Any, predictions: list[Any]) -> None:
        """Log one answered request: one line per instance. Never raises.

        The lines are appended to one buffer: keeping each line's bytes object until the hand-over costs fresh
        memory for every line, where the encoder's temporary one is reused (measured: 3.9 µs a line, 1.3 here).
        """
        done = 0
        try:
            stamp = self.stamp(time.time_ns())
            records = document.get("instances")
            if records is None:
                records = rows_as_records(document, names)
            pending = self.pending
            for prediction in predictions:
                pending += orjson.dumps(
                    line(stamp, request_id, done, version, records[done], prediction),
                    option=orjson.OPT_APPEND_NEWLINE,
                )
                done += 1
        except Exception:  # the server must answer whatever happens here
            self.unencodable += len(predictions) - done
        self.pending_lines += done
        if len(self.pending) >= FLUSH_BYTES:
            self.flush()
        elif self.timer is None and self.loop is not None:
            self.timer = self.loop.call_later(FLUSH_SECONDS, self.flush)

    def flush(self) -> None:
        """Hand the collected lines to the writer thread, or drop them if too much already waits for the disk."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        data, lines = self.pending, self.pending_lines
        if not lines:
            return
        self.pending, self.pending_lines = bytearray(), 0
        if self.queued_bytes - self.done_bytes + len(data) > QUEUE_BYTES:
            self.dropped_full += lines
            return
        self.queued_bytes += len(data)
        self.queue.put((data, lines))

    async def close(self, timeout: float = JOIN_SECONDS) -> None:
        """Hand over what is left and wait (``timeout`` at most) until the writer wrote it and closed its file."""
        self.flush()
        thread = self.thread
        if thread is None:
            return
        self.queue.put(None)
        await asyncio.to_thread(thread.join, timeout)
        if thread.is_alive():
            log.warning("the prediction log was not flushed in time", extra={"fields": {"seconds": timeout}})

    def counts(self) -> dict[str, int]:
        """Lines written, lines dropped (writer behind, write failed, not encodable) and failed file operations."""
        return {
            "records": self.records,
            "dropped": self.dropped_full + self.dropped_failed + self.unencodable,
            "write_errors": self.write_errors,
        }

    # ----------------------------------------------------------------------------------------------------------------
    # The writer thread's side
    # ----------------------------------------------------------------------------------------------------------------

    def _run(self) -> None:
        while (item := self.queue.get()) is not None:
            data, lines = item
            try:
                self._write(data, lines)
            except Exception as exc:  # a bug here must not stop the logging thread for good
                self._failed(exc, 0)
            self.done_bytes += len(data)
        self._close_file()

    def _write(self, data: bytearray, lines: int) -> None:
        """Append ``lines`` whole lines to the current file, starting a new file before one would pass ``max_bytes``.

        Lines are counted only where a batch is split between files: a scan of the batch would hold the GIL, which
        the loop is waiting for, for a millisecond a megabyte.
        """
        start, end = 0, len(data)
        while start < end:
            if self.fd is None:
                try:
                    self._open()
                except OSError as exc:
                    self._failed(exc, lines)
                    return
            room = self.max_bytes - self.size
            if end - start <= room:
                stop, written = end, lines
            else:
                stop = data.rfind(b"\n", start, start + max(room, 0)) + 1
                if stop > start:
                    written = data.count(b"\n", start, stop)
                elif self.size:  # not even one more line fits
                    self._close_file()
                    continue
                else:  # a line longer than max_bytes: a file of its own
                    stop, written = data.find(b"\n", start) + 1 or end, 1
            try:
                self._append(memoryview(data)[start:stop])
            except OSError as exc:
                self._undo_partial()
                self._failed(exc, lines)
                return
            self.records += written
            lines -= written
            self.size += stop - start
            start = stop

    def _open(self) -> None:
        """Start a new file, named later than the previous one (names sort by time); recreate a removed directory."""
        self.directory.mkdir(parents=True, exist_ok=True)
        started = datetime.now(UTC)
        if self.started is not None and started <= self.started:
            started = self.started + timedelta(microseconds=1)
        path = self.directory / f"predictions-{started:%Y%m%dT%H%M%S%f}Z-{self.pid}.jsonl"
        self.fd = os.open(path, OPEN_FLAGS, 0o666)
        self.started, self.size = started, 0

    def _append(self, view: memoryview) -> None:
        assert self.fd is not None
        while view:
            view = view[os.write(self.fd, view) :]

    def _undo_partial(self) -> None:
        """After a failed write (a full disk): cut the file back to its last whole line and keep it open.

        The next batch appends to the same file, so a disk that stays full costs lines, not a new empty file per
        batch, and every line in a file was counted as written.
        """
        if self.fd is None:
            return
        try:
            os.ftruncate(self.fd, self.size)
            os.lseek(self.fd, self.size, os.SEEK_SET)
        except OSError:
            self._close_file()

    def _close_file(self) -> None:
        if self.fd is not None:
            try:
                os.close(self.fd)
            except OSError as exc:
                self._failed(exc, 0)
            self.fd = None

    def _failed(self, exc: Exception, lost: int) -> None:
        """Count a failed file operation and the lines it lost; warn the first time only."""
        self.write_errors += 1
        self.dropped_failed += lost
        if not self.warned:
            self.warned = True
            fields = {"directory": str(self.directory), "error": str(exc), "lines_lost": lost}
            log.warning(
                "cannot write the prediction log; serving goes on (further errors are only counted in "
                "prediction_log_write_errors_total)",
                extra={"fields": fields},
            )
