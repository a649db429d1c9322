"""The bytes of the attacks that are data rather than behaviour: oversized request heads, smuggling attempts,
garbage and odd request lines, unsafe request ids."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import NamedTuple

MB = 1 << 20

# ------------------------------------------------------------------------------------------------------------------
# Oversized request heads: (pieces to send, the status the server must answer before closing)
# ------------------------------------------------------------------------------------------------------------------


def _url_256mb() -> Iterator[bytes]:
    yield b"GET /"
    for _ in range(256 * 4):
        yield b"a" * (MB // 4)
    yield b" HTTP/1.1\r\nHost: x\r\n\r\n"


def _headers_10mb() -> Iterator[bytes]:
    yield b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
    for block in range(160):  # 160 blocks of 64 lines of 1 KiB
        yield b"".join(b"X-Pad-%05d: %s\r\n" % (block * 64 + i, b"a" * 1010) for i in range(64))
    yield b"\r\n"


def _huge_header_line() -> Iterator[bytes]:
    yield b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Huge: "
    for _ in range(16):  # 1 MiB
        yield b"a" * (MB // 16)
    yield b"\r\n\r\n"


def _many_headers() -> Iterator[bytes]:
    yield b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: 1\r\n" % i for i in range(5000)) + b"\r\n"


OVERSIZED: dict[str, tuple[Callable[[], Iterator[bytes]], int]] = {
    "256 MB URL": (_url_256mb, 414),
    "10 MB of headers": (_headers_10mb, 431),
    "one 1 MB header line": (_huge_header_line, 431),
    "5000 headers": (_many_headers, 431),
}

# ------------------------------------------------------------------------------------------------------------------
# Request smuggling: a POST carrying a hidden request that only a desynchronized parser would answer, then a probe
# ------------------------------------------------------------------------------------------------------------------

HIDDEN = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
PROBE = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
TRANSFER_ENCODINGS = {
    "TE chunked": b"Transfer-Encoding: chunked\r\n",
    "TE chunked, identity": b"Transfer-Encoding: chunked, identity\r\n",
    "TE xchunked": b"Transfer-Encoding: xchunked\r\n",
    "TE with a tab": b"Transfer-Encoding:\tchunked\r\n",
    "TE with a space before the colon": b"Transfer-Encoding : chunked\r\n",
    "TE on a line starting with a space": b" Transfer-Encoding: chunked\r\n",
    "TE folded": b"Transfer-Encoding:\r\n chunked\r\n",
    "TE twice": b"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n",
}


def _post(headers: bytes, body: bytes) -> bytes:
    return b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + headers + b"\r\n" + body


def _smuggling() -> dict[str, bytes]:
    cases: dict[str, bytes] = {}
    cl_te = b"0\r\n\r\n" + HIDDEN  # Content-Length covers it all; a chunked reader stops at 0 and finds HIDDEN
    size = b"%x\r\n" % len(HIDDEN)  # a chunked reader takes HIDDEN as data; Content-Length ends before it
    te_cl = size + HIDDEN + b"\r\n0\r\n\r\n"
    for name, te in TRANSFER_ENCODINGS.items():
        cases[f"CL.TE, {name}"] = _post(b"Content-Length: %d\r\n" % len(cl_te) + te, cl_te) + PROBE
        cases[f"TE.CL, {name}"] = _post(te + b"Content-Length: %d\r\n" % len(size), te_cl) + PROBE
    for first, second in ((0, len(HIDDEN)), (len(HIDDEN), 0)):
        cases[f"Content-Length {first} then {second}"] = (
            _post(b"Content-Length: %d\r\nContent-Length: %d\r\n" % (first, second), HIDDEN) + PROBE
        )
    return cases


SMUGGLING = _smuggling()

# ------------------------------------------------------------------------------------------------------------------
# Garbage and odd request lines: the statuses allowed, whether the server must close, whether it must answer
# ------------------------------------------------------------------------------------------------------------------

CLIENT_ERRORS = frozenset(range(400, 500))


class Odd(NamedTuple):
    """Bytes a client sends, and what the server may do about them."""

    data: bytes
    allowed: frozenset[int] = CLIENT_ERRORS
    close: bool = True
    answer: bool = False

    def describe(self) -> str:
        statuses = [
            *(["a 4xx"] if self.allowed >= CLIENT_ERRORS else []),
            *map(str, sorted(self.allowed - CLIENT_ERRORS)),
        ]
        return (
            f"{'one' if self.answer else 'at most one'} answer ({', '.join(statuses)}){', then a close' * self.close}"
        )


GARBAGE: dict[str, Odd] = {
    **{f"random bytes, seed {seed}": Odd(random.Random(seed).randbytes(4096)) for seed in range(3)},
    "random header bytes": Odd(b"GET /healthz HTTP/1.1\r\n" + random.Random(3).randbytes(4096) + b"\r\n\r\n"),
    "HTTP/1.0": Odd(b"GET /healthz HTTP/1.0\r\n\r\n", frozenset({200}), answer=True),
    "HTTP/0.9": Odd(b"GET /healthz\r\n\r\n", CLIENT_ERRORS | {200}),
    "absolute-form URL": Odd(
        b"GET http://127.0.0.1/healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", frozenset({200, 400}), False, True
    ),
    "no path": Odd(b"GET HTTP/1.1\r\nHost: x\r\n\r\n"),
    "NUL in the path": Odd(b"GET /heal\x00thz HTTP/1.1\r\nHost: x\r\n\r\n"),
    "OPTIONS *": Odd(b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", CLIENT_ERRORS | {200, 204}, False, True),
    "CONNECT": Odd(b"CONNECT 127.0.0.1:443 HTTP/1.1\r\nHost: 127.0.0.1:443\r\n\r\n"),
}

# ------------------------------------------------------------------------------------------------------------------
# Request ids: refused with a 400 naming the rule, never echoed
# ------------------------------------------------------------------------------------------------------------------

SAFE_ID = "A-Za-z0-9._:-" * 9 + "0123456789a"  # 128 characters of the allowed set
UNSAFE_IDS = {
    "control byte": b"abc\x01def",
    "DEL": b"abc\x7fdef",
    "latin-1 byte": b"caf\xe9",
    "UTF-8": "café-☃".encode(),
    "bare CR": b"abc\rInjected: yes",
    "quotes and angle brackets": b'"><script>',
    "129 characters": b"a" * 129,
    "10 KB": b"a" * 10240,
}
