"""The bare ASGI application (``serving/asgi.py``), driven the way an ASGI server drives it, on a real exported model.

No ASGI server is a dependency of the project, so these tests play the server's part (scope, ``receive``, ``send``,
as the ASGI specification has them); the template's serving benchmark runs the same application on uvicorn and on
granian, and compares them with ``serve``.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from conftest import Workspace, model_dir

from {{ cookiecutter.package_name }}.serving.asgi import Asgi, create_app
from {{ cookiecutter.package_name }}.serving.settings import Settings

MAX_BODY = 4096
Message = dict[str, Any]


class Lifespan:
    """The lifespan scope of ``app``, run as a task: ``start`` and ``stop`` send the events and return the answer."""

    def __init__(self, app: Asgi) -> None:
        self.app = app
        self.events: asyncio.Queue[Message] = asyncio.Queue()
        self.answers: asyncio.Queue[Message] = asyncio.Queue()
        self.task = asyncio.ensure_future(
            app({"type": "lifespan", "asgi": {"version": "3.0"}}, self.events.get, self._send)
        )

    async def _send(self, message: Message) -> None:
        await self.answers.put(message)

    async def start(self) -> Message:
        await self.events.put({"type": "lifespan.startup"})
        return await asyncio.wait_for(self.answers.get(), 30)

    async def stop(self) -> Message:
        await self.events.put({"type": "lifespan.shutdown"})
        answer = await asyncio.wait_for(self.answers.get(), 30)
        await asyncio.wait_for(self.task, 5)
        return answer


async def call(
    app: Asgi,
    method: str,
    path: str,
    chunks: Sequence[bytes] = (b"",),
    headers: Sequence[tuple[bytes, bytes]] = (),
) -> tuple[int, dict[bytes, bytes], bytes, int]:
    """One HTTP request: the status, the response headers, the body, and how many body messages the app read."""
    pending = [
        {"type": "http.request", "body": chunk, "more_body": index < len(chunks) - 1}
        for index, chunk in enumerate(chunks)
    ]
    read = 0
    sent: list[Message] = []

    async def receive() -> Message:
        nonlocal read
        if read < len(pending):
            read += 1
            return pending[read - 1]
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": list(headers),
    }
    await app(scope, receive, send)
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"], sent
    return sent[0]["status"], dict(sent[0]["headers"]), sent[1]["body"], read


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(test())


@pytest.fixture(scope="module")
def model(trained: Workspace, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return model_dir(trained, tmp_path_factory.mktemp("model"))


def golden(model: Path) -> list[dict[str, Any]]:
    return list(json.loads((model / "metadata.json").read_text())["golden"])


def test_the_apps_routes_after_the_lifespan_startup(model: Path) -> None:
    async def test() -> None:
        app = create_app(Settings(model_dir=model, max_body_bytes=MAX_BODY))
        status, _, body, _ = await call(app, "GET", "/readyz")
        assert status == 503
        assert b"has not started" in body
        lifespan = Lifespan(app)
        assert await lifespan.start() == {"type": "lifespan.startup.complete"}
        status, headers, body, _ = await call(app, "GET", "/readyz")
        assert status == 200, body
        assert headers[b"content-type"] == b"application/json"
        samples = golden(model)
        document = json.dumps({"instances": [sample["inputs"] for sample in samples]}).encode()
        status, headers, body, _ = await call(app, "POST", "/predict", [document[:100], document[100:]])
        assert status == 200, body
        predictions = json.loads(body)["predictions"]
        for sample, prediction in zip(samples, predictions, strict=True):
            expected = sample["expected"]
            if "label" in expected:
                assert prediction["label"] == expected["label"]
                assert list(prediction["probabilities"].values()) == pytest.approx(expected["probabilities"], rel=1e-4)
            else:
                assert prediction["value"] == pytest.approx(expected["value"], rel=1e-4)
        status, _, body, _ = await call(app, "GET", "/nowhere")
        assert status == 404
        assert b"no route /nowhere" in body
        status, _, body, _ = await call(app, "POST", "/predict", [b"{not json"])
        assert status == 400
        assert b"not valid JSON" in body
        status, _, body, _ = await call(app, "GET", "/metrics")
        assert status == 200
        assert b'endpoint="/predict"' in body
        assert await lifespan.stop() == {"type": "lifespan.shutdown.complete"}
        status, _, body, _ = await call(app, "GET", "/readyz")
        assert status == 503
        assert b"shutting down" in body

    run(test)


def test_head_request_ids_and_body_limits(model: Path) -> None:
    async def test() -> None:
        app = create_app(Settings(model_dir=model, max_body_bytes=MAX_BODY))
        lifespan = Lifespan(app)
        await lifespan.start()
        _, _, get_body, _ = await call(app, "GET", "/healthz")
        status, headers, body, _ = await call(app, "HEAD", "/healthz")
        assert (status, body) == (200, b"")
        assert headers[b"content-length"] == str(len(get_body)).encode()
        assert (await call(app, "HEAD", "/readyz"))[0] == 200
        assert (await call(app, "HEAD", "/predict"))[0] == 405  # no GET there: nothing to answer the headers of
        made_up = re.compile(rb"[0-9a-f]{16}-[0-9]+")
        for given in (b"req-1.a:b_C", b"a" * 128):
            _, headers, _, _ = await call(app, "GET", "/healthz", headers=[(b"x-request-id", given)])
            assert headers[b"x-request-id"] == given
        _, headers, _, _ = await call(app, "GET", "/healthz", headers=[(b"x-request-id", b"")])
        assert made_up.fullmatch(headers[b"x-request-id"]), headers
        for given in (b"a" * 129, b"evil\xff<script>", b"two words", "café".encode()):
            status, headers, body, _ = await call(app, "GET", "/healthz", headers=[(b"x-request-id", given)])
            assert status == 400, given
            assert b"X-Request-ID must be 1 to 128 characters" in body
            assert made_up.fullmatch(headers[b"x-request-id"]), (given, headers)
            assert headers[b"connection"] == b"close"
        # Announced too large: refused before a byte of the body is read, and the connection closed.
        announced = [(b"content-length", str(MAX_BODY + 1).encode())]
        status, headers, body, read = await call(app, "POST", "/predict", [b"x" * (MAX_BODY + 1)], announced)
        assert (status, read, headers.get(b"connection")) == (413, 0, b"close")
        assert f"more than MAX_BODY_BYTES={MAX_BODY}".encode() in body
        # Streamed (chunked, no length): refused as soon as it passes the limit, the rest not read.
        status, headers, body, read = await call(app, "POST", "/predict", [b"x" * 1000] * 10)
        assert (status, read, headers.get(b"connection")) == (413, 5, b"close")
        # At the limit: read, and answered by the route.
        status, _, body, _ = await call(app, "POST", "/predict", [b" " * MAX_BODY])
        assert status == 400
        assert b"not valid JSON" in body
        await lifespan.stop()

    run(test)


@pytest.mark.parametrize("damage", ["missing", "truncated"])
def test_an_unreadable_model_leaves_the_app_up_and_not_ready(model: Path, tmp_path: Path, damage: str) -> None:
    broken = tmp_path / "model"
    broken.mkdir()
    (broken / "model.onnx").write_bytes((model / "model.onnx").read_bytes())
    if damage == "truncated":
        text = (model / "metadata.json").read_text()
        (broken / "metadata.json").write_text(text[: len(text) // 2])

    async def test() -> None:
        app = create_app(Settings(model_dir=broken))
        lifespan = Lifespan(app)
        assert await lifespan.start() == {"type": "lifespan.startup.complete"}
        assert (await call(app, "GET", "/healthz"))[0] == 200
        status, _, body, _ = await call(app, "GET", "/readyz")
        assert status == 503
        assert f"cannot read the model: {broken}" in json.loads(body)["error"]
        status, _, body, _ = await call(app, "POST", "/predict", [b"{}"])
        assert status == 503
        assert f"the model cannot be served: cannot read the model: {broken}" in json.loads(body)["error"]
        assert await lifespan.stop() == {"type": "lifespan.shutdown.complete"}

    run(test)


def test_the_shutdown_writes_the_prediction_log(model: Path, tmp_path: Path) -> None:
    async def test() -> None:
        settings = Settings(model_dir=model, prediction_log_dir=tmp_path / "log", prediction_log_sample=1.0)
        app = create_app(settings)
        lifespan = Lifespan(app)
        await lifespan.start()
        document = json.dumps({"instances": [golden(model)[0]["inputs"]]}).encode()
        for _ in range(3):
            assert (await call(app, "POST", "/predict", [document]))[0] == 200
        await lifespan.stop()  # before the log's one-second flush: the shutdown must write the lines

    run(test)
    lines = [line for path in (tmp_path / "log").glob("*.jsonl") for line in path.read_text().splitlines()]
    assert len(lines) == 3
