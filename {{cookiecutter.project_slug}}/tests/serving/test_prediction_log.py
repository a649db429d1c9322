"""The prediction log (``PREDICTION_LOG_DIR``): a real server in a thread, real HTTP requests, the files it writes.

The lines are checked against the contract the ``monitor`` command reads (``serving/prediction_log.py``): file
names, keys and their order, values equal to the responses, sampling, rotation by size, shutdown, and a log that
cannot be written, which must never fail a request.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import os
import re
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import Server, Workspace, model_dir, ready_server

from {{ cookiecutter.package_name }}.serving import prediction_log
from {{ cookiecutter.package_name }}.serving.settings import Settings, SettingsError

KEYS = ["time", "request_id", "index", "model_version", "inputs", "prediction"]
NAME = re.compile(r"^predictions-\d{8}T\d{6}\d{6}Z-(\d+)\.jsonl$")
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


@pytest.fixture(scope="module")
def model(trained: Workspace, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return model_dir(trained, tmp_path_factory.mktemp("model"))


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    return tmp_path / "logs" / "predictions"  # not there yet: the server creates it


def golden_records(ws: Workspace) -> list[dict[str, Any]]:
    return [dict(sample["inputs"]) for sample in ws.read_json("metadata")["golden"]]


def files(directory: Path) -> list[Path]:
    return sorted(directory.rglob("*.jsonl"))


def read_lines(directory: Path, *, writing: bool = False) -> list[dict[str, Any]]:
    """Every line of every file, files in name order. Each file must hold whole lines only, unless the server is
    ``writing`` (a file just created, or a line on its way to the disk): then what follows the last newline is left out.
    """
    lines = []
    for path in files(directory):
        data = path.read_bytes()
        if writing:
            data = data[: data.rfind(b"\n") + 1]
        else:
            assert data.endswith(b"\n"), f"{path.name} ends with a partial line"
        lines += [json.loads(line) for line in data.decode("utf-8").splitlines()]
    return lines


def wait_for_lines(directory: Path, count: int, timeout: float = 10) -> list[dict[str, Any]]:
    """The lines once ``count`` are written (the writer flushes every ``FLUSH_SECONDS``)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = read_lines(directory, writing=True) if directory.is_dir() else []
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def counters(server: Server) -> dict[str, float]:
    """The label-less ``prediction_log_*`` samples of ``/metrics``."""
    _, _, text = server.request("GET", "/metrics")
    return {m[1]: float(m[2]) for m in re.finditer(r"^(prediction_log_\w+) (\S+)$", text, re.MULTILINE)}


def wait_for_counter(server: Server, name: str, value: float, plus: str | None = None) -> dict[str, float]:
    """The counters once ``name`` (plus ``plus``) reached ``value``."""
    deadline = time.monotonic() + 10
    while True:
        found = counters(server)
        if found[name] + (found[plus] if plus else 0) >= value:
            return found
        assert time.monotonic() < deadline, found
        time.sleep(0.05)


def predict_many(server: Server, document: dict[str, Any], count: int) -> list[dict[str, Any]]:
    """``count`` requests on one keep-alive connection; every one must be answered 200."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    payload = json.dumps(document).encode()
    answers = []
    try:
        for _ in range(count):
            conn.request("POST", "/predict", payload, {"Content-Type": "application/json"})
            response = conn.getresponse()
            body = json.loads(response.read())
            assert response.status == 200, body
            answers.append(body)
    finally:
        conn.close()
    return answers


# --------------------------------------------------------------------------------------------------------------------
# The lines
# --------------------------------------------------------------------------------------------------------------------


def test_lines_hold_the_contract_keys_in_order_with_the_responses_values(
    model: Path, trained: Workspace, logs: Path
) -> None:
    records = golden_records(trained)
    names = [i["name"] for i in trained.read_json("metadata")["inputs"]]
    started = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - 1))
    with ready_server(model, PREDICTION_LOG_DIR=str(logs), PREDICTION_LOG_SAMPLE="1") as server:
        status, headers, one = server.request("POST", "/predict", {"instances": records[:1]}, {"X-Request-ID": "r-1"})
        assert status == 200, one
        status, headers, batch = server.request("POST", "/predict", {"instances": records})
        assert status == 200, batch
        generated = batch["request_id"]
        assert generated == headers["x-request-id"] != "r-1"
        columns = names[::-1]
        rows = [[record[name] for name in columns] for record in records[:2]]
        status, _, by_rows = server.request("POST", "/predict", {"columns": columns, "rows": rows})
        assert status == 200, by_rows
        # Nothing else is logged: refused predictions, other endpoints, the admin API.
        assert server.request("POST", "/predict", {"instances": [{}]})[0] == 400
        for endpoint in ("/healthz", "/readyz", "/metadata", "/metrics", "/openapi.json"):
            assert server.request("GET", endpoint)[0] == 200
        assert server.admin("GET", "/admin/models")[0] == 200
        expected = 1 + len(records) + 2
        lines = wait_for_lines(logs, expected)
        assert counters(server) == {
            "prediction_log_records_total": expected,
            "prediction_log_dropped_total": 0,
            "prediction_log_write_errors_total": 0,
        }
    ended = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() + 1))

    [path] = files(logs)
    named = NAME.match(path.name)
    assert named, path.name
    assert named[1] == str(os.getpid())
    assert len(lines) == expected
    for line in lines:
        assert list(line) == KEYS
        assert TIME.match(line["time"]), line["time"]
        assert started < line["time"] < ended
    assert [line["time"] for line in lines] == sorted(line["time"] for line in lines)

    answered = [(one, records[:1]), (batch, records), (by_rows, records[:2])]
    expected_lines = [
        {
            "request_id": body["request_id"],
            "index": index,
            "model_version": body["model_version"],
            "inputs": instance,
            "prediction": prediction,
        }
        for body, instances in answered
        for index, (instance, prediction) in enumerate(zip(instances, body["predictions"], strict=True))
    ]
    assert [{k: v for k, v in line.items() if k != "time"} for line in lines] == expected_lines
    assert lines[0]["request_id"] == "r-1"
    assert {line["request_id"] for line in lines[1 : 1 + len(records)]} == {generated}
    assert list(lines[-1]["inputs"]) == columns  # rows are logged as records, by feature name


def test_generated_request_ids_are_unique_and_returned(model: Path, trained: Workspace, logs: Path) -> None:
    document = {"instances": golden_records(trained)[:1]}
    with ready_server(model, PREDICTION_LOG_DIR=str(logs), PREDICTION_LOG_SAMPLE="1") as server:
        answers = predict_many(server, document, 50)
        lines = wait_for_lines(logs, 50)
    ids = [answer["request_id"] for answer in answers]
    assert len(set(ids)) == 50
    assert [line["request_id"] for line in lines] == ids
    assert all(re.fullmatch(r"[0-9a-f]{16}-\d+", i) for i in ids), ids[:3]


def test_off_by_default(model: Path, trained: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings.from_env({}).prediction_log_dir is None
    monkeypatch.chdir(tmp_path)
    with ready_server(model) as server:
        assert server.server.app.prediction_log is None
        predict_many(server, {"instances": golden_records(trained)}, 20)
        assert set(counters(server).values()) == {0}
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------------------------------------
# Sampling
# --------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("rate", "requests", "low", "high"), [("0", 300, 0, 0), ("1", 300, 300, 300)])
def test_sample_rate_0_logs_nothing_and_1_logs_everything(
    model: Path, trained: Workspace, logs: Path, rate: str, requests: int, low: int, high: int
) -> None:
    with ready_server(model, PREDICTION_LOG_DIR=str(logs), PREDICTION_LOG_SAMPLE=rate) as server:
        predict_many(server, {"instances": golden_records(trained)[:1]}, requests)
    assert logs.is_dir()  # created at start, even when nothing is logged
    assert low <= len(read_lines(logs)) <= high


def test_the_default_rate_logs_about_a_tenth_of_the_requests(model: Path, trained: Workspace, logs: Path) -> None:
    records = golden_records(trained)[:2]
    with ready_server(model, PREDICTION_LOG_DIR=str(logs)) as server:
        assert server.server.app.prediction_log.rate == 0.1  # type: ignore[union-attr]
        answers = predict_many(server, {"instances": records}, 2000)
    lines = read_lines(logs)
    logged = {line["request_id"] for line in lines}
    # Binomial(2000, 0.1): mean 200, standard deviation 13.4; 120-280 is 6 of them (a false failure in 10^8 runs).
    assert 120 <= len(logged) <= 280, len(logged)
    assert len(lines) == 2 * len(logged)  # sampled per request: all the instances of a sampled request
    assert logged <= {answer["request_id"] for answer in answers}


# --------------------------------------------------------------------------------------------------------------------
# Files: rotation, shutdown, failures
# --------------------------------------------------------------------------------------------------------------------


def test_rotation_by_size_keeps_every_line_whole(model: Path, trained: Workspace, logs: Path) -> None:
    records = golden_records(trained)
    limit = 2048
    with ready_server(
        model, PREDICTION_LOG_DIR=str(logs), PREDICTION_LOG_SAMPLE="1", PREDICTION_LOG_MAX_BYTES=str(limit)
    ) as server:
        singles = predict_many(server, {"instances": records[:1]}, 40)
        batches = predict_many(server, {"instances": records * 4}, 3)  # larger than a file: split at lines
        expected = 40 + 3 * 4 * len(records)
        wait_for_lines(logs, expected)
    paths = files(logs)
    assert len(paths) >= 5, [p.name for p in paths]
    longest = max(len(line) for p in paths for line in p.read_bytes().splitlines(keepends=True))
    for path in paths:
        assert NAME.match(path.name), path.name
        size = path.stat().st_size
        assert size <= limit or size == longest, (path.name, size)
    lines = read_lines(logs)
    assert len(lines) == expected
    ids = [a["request_id"] for a in singles] + [a["request_id"] for a in batches for _ in range(4 * len(records))]
    assert [line["request_id"] for line in lines] == ids  # names sort in the order the files were written
    assert [line["index"] for line in lines[40:]] == list(range(4 * len(records))) * 3


def test_shutdown_writes_what_is_left(
    model: Path, trained: Workspace, logs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(prediction_log, "FLUSH_SECONDS", 3600.0)  # only the shutdown hands the lines over
    with ready_server(model, PREDICTION_LOG_DIR=str(logs), PREDICTION_LOG_SAMPLE="1") as server:
        answers = predict_many(server, {"instances": golden_records(trained)[:1]}, 30)
        time.sleep(0.3)
        assert read_lines(logs, writing=True) == []
    assert [line["request_id"] for line in read_lines(logs)] == [a["request_id"] for a in answers]


def test_lines_beyond_the_queue_are_dropped_and_counted(
    model: Path, trained: Workspace, logs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(prediction_log, "QUEUE_BYTES", 1)  # the writer is always "behind"
    with ready_server(model, PREDICTION_LOG_DIR=str(logs), PREDICTION_LOG_SAMPLE="1") as server:
        predict_many(server, {"instances": golden_records(trained)[:1]}, 20)
        wait_for_counter(server, "prediction_log_dropped_total", 20)
        assert counters(server) == {
            "prediction_log_records_total": 0,
            "prediction_log_dropped_total": 20,
            "prediction_log_write_errors_total": 0,
        }
    assert read_lines(logs) == []


class Warnings(logging.Handler):
    """The messages of the warnings logged to the server's logger while it is attached."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_an_unwritable_directory_fails_no_request_and_is_counted(model: Path, trained: Workspace, logs: Path) -> None:
    document = {"instances": golden_records(trained)[:1]}
    env = {"PREDICTION_LOG_DIR": str(logs), "PREDICTION_LOG_SAMPLE": "1", "PREDICTION_LOG_MAX_BYTES": "1024"}
    moved = logs.with_name("moved")
    logger, warned = logging.getLogger("{{ cookiecutter.package_name }}.serving"), Warnings()
    with contextlib.ExitStack() as stack:
        logger.addHandler(warned)
        stack.callback(logger.removeHandler, warned)
        server = stack.enter_context(ready_server(model, **env))
        predict_many(server, document, 10)
        wait_for_lines(logs, 10)
        logs.rename(moved)
        logs.write_text("a file where the directory was: nothing can be created in it")  # fails even as root
        predict_many(server, document, 40)  # lines fill the open file, then no new file can be started
        failed = wait_for_counter(server, "prediction_log_records_total", 50, plus="prediction_log_dropped_total")
        assert failed["prediction_log_write_errors_total"] >= 1
        assert failed["prediction_log_dropped_total"] >= 1
        assert server.request("GET", "/readyz")[0] == 200

        logs.unlink()  # the path is usable again: the writer creates the directory and carries on
        predict_many(server, document, 10)
        recovered = wait_for_lines(logs, 10)
        assert len(recovered) == 10
        assert counters(server)["prediction_log_records_total"] == failed["prediction_log_records_total"] + 10
    assert len([m for m in warned.messages if "prediction log" in m]) == 1, warned.messages  # once, then counted
    assert len(read_lines(moved)) == failed["prediction_log_records_total"]


def test_a_directory_that_cannot_be_created_fails_no_request(model: Path, trained: Workspace, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with ready_server(model, PREDICTION_LOG_DIR=str(blocker / "logs"), PREDICTION_LOG_SAMPLE="1") as server:
        predict_many(server, {"instances": golden_records(trained)[:1]}, 5)
        wait_for_counter(server, "prediction_log_dropped_total", 5)
        assert counters(server)["prediction_log_write_errors_total"] >= 2  # at start, then with the lines


# --------------------------------------------------------------------------------------------------------------------
# Models: the one that answered is logged
# --------------------------------------------------------------------------------------------------------------------


@pytest.fixture
def store(trained: Workspace, challenger: Workspace, tmp_path: Path) -> Path:
    root = tmp_path / "store"
    model_dir(trained, root / "v1")
    model_dir(challenger, root / "v2")
    return root


@pytest.mark.parametrize(("mode", "answers"), [("shadow", "champion"), ("ab", "challenger")])
def test_the_answering_model_is_logged(
    store: Path, trained: Workspace, challenger: Workspace, logs: Path, mode: str, answers: str
) -> None:
    env = {
        "PREDICTION_LOG_DIR": str(logs),
        "PREDICTION_LOG_SAMPLE": "1",
        "CHALLENGER_DIR": str(store / "v2"),
        "CHALLENGER_MODE": mode,
        "CHALLENGER_WEIGHT": "1",
    }
    with ready_server(store / "v1", **env) as server:
        while server.admin("GET", "/admin/models")[1]["challenger"] is None:  # loaded right after the self-check
            time.sleep(0.02)
        bodies = predict_many(server, {"instances": golden_records(trained)[:1]}, 10)
        lines = wait_for_lines(logs, 10)
    version = (trained if answers == "champion" else challenger).read_json("metadata")["version"]
    assert {body["model_version"] for body in bodies} == {version}
    assert len(lines) == 10  # a shadow challenger's scoring is not logged
    assert {line["model_version"] for line in lines} == {version}
    assert [line["prediction"] for line in lines] == [body["predictions"][0] for body in bodies]


# --------------------------------------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "name", "text"),
    [
        ({"PREDICTION_LOG_SAMPLE": "1.5"}, "PREDICTION_LOG_SAMPLE", "out of range"),
        ({"PREDICTION_LOG_SAMPLE": "-0.1"}, "PREDICTION_LOG_SAMPLE", "out of range"),
        ({"PREDICTION_LOG_SAMPLE": "often"}, "PREDICTION_LOG_SAMPLE", "not a number"),
        ({"PREDICTION_LOG_MAX_BYTES": "64MiB"}, "PREDICTION_LOG_MAX_BYTES", "not an integer"),
        ({"PREDICTION_LOG_MAX_BYTES": "100"}, "PREDICTION_LOG_MAX_BYTES", "out of range"),
    ],
)
def test_invalid_settings_name_the_variable(env: dict[str, str], name: str, text: str) -> None:
    with pytest.raises(SettingsError, match=f"{name}=.*{text}"):
        Settings.from_env(env)


def test_settings_and_defaults(tmp_path: Path) -> None:
    defaults = Settings.from_env({})
    assert (defaults.prediction_log_dir, defaults.prediction_log_sample, defaults.prediction_log_max_bytes) == (
        None,
        0.1,
        64 * 1024 * 1024,
    )
    env = {"PREDICTION_LOG_DIR": str(tmp_path), "PREDICTION_LOG_SAMPLE": "0.5", "PREDICTION_LOG_MAX_BYTES": "4096"}
    settings = Settings.from_env(env)
    assert (settings.prediction_log_dir, settings.prediction_log_sample, settings.prediction_log_max_bytes) == (
        tmp_path,
        0.5,
        4096,
    )


def test_time_stamps() -> None:
    stamp = prediction_log.Stamp()
    assert stamp(500_000_000) == "1970-01-01T00:00:00.500000Z"
    assert stamp(1_795_255_200_250_000_999) == "2026-11-21T10:00:00.250000Z"
    assert stamp(1_795_255_201_000_001_000) == "2026-11-21T10:00:01.000001Z"
    assert stamp(1_795_255_201_999_999_999) == "2026-11-21T10:00:01.999999Z"
