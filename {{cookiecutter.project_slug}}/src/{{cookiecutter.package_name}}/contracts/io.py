"""Small file helpers: every artifact is written atomically, so a failed stage never leaves half a file behind."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: Path, *, keep_mode: bool = False, temp_prefix: str = ".") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; it replaces ``path`` (in one rename) only if the block succeeds.

    The new file gets the usual permissions (``0666`` less the umask), or with ``keep_mode`` those of the file it
    replaces. The temporary file is named ``<temp_prefix><name>.<random>.tmp``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f"{temp_prefix}{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        mode = 0o666 & ~_umask()  # mkstemp creates 0600; give the file the usual permissions
        if keep_mode:
            with contextlib.suppress(FileNotFoundError):
                mode = path.stat().st_mode & 0o777
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return _json_safe(value.item())
    return value


def write_json(path: Path, data: Any, *, indent: int | None = 2) -> None:
    """Write ``data`` as stable, human-diffable JSON (NaN/Inf become null); ``indent=None`` writes it compact."""
    separators = None if indent is not None else (",", ":")
    text = json.dumps(_json_safe(data), indent=indent, separators=separators, sort_keys=True, allow_nan=False)
    with atomic_path(path) as tmp:
        tmp.write_text(text + "\n")


def write_text(path: Path, text: str, *, keep_mode: bool = False, temp_prefix: str = ".") -> None:
    """Write a text file atomically, as UTF-8 (undecodable bytes of git's output go back as they were).

    ``keep_mode`` and ``temp_prefix`` are ``atomic_path``'s.
    """
    with atomic_path(path, keep_mode=keep_mode, temp_prefix=temp_prefix) as tmp:
        tmp.write_text(text, encoding="utf-8", errors="surrogateescape")


def read_json(path: Path) -> Any:
    """Read a JSON file."""
    return json.loads(path.read_text())


def md5(path: Path) -> str:
    """The MD5 of a file, as DVC 3 computes it for its cache."""
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
