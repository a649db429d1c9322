"""What the locked environment promises: every kind of URL the README says `dvc get-url` reads has its DVC plugin."""

from __future__ import annotations

import re

import pytest
from conftest import PROJECT


def _promised_schemes() -> list[str]:
    """The URL schemes the README names for the monitoring buckets (`s3://…`, …)."""
    return re.findall(r"`([a-z0-9]+)://…`", (PROJECT / "README.md").read_text())


def test_the_readme_names_the_cloud_buckets() -> None:
    assert {"s3", "gs", "azure"} <= set(_promised_schemes())


@pytest.mark.parametrize("scheme", _promised_schemes())
def test_dvc_has_the_filesystem_for_every_url_the_readme_promises(scheme: str) -> None:
    from dvc_objects.fs import get_fs_cls

    fs = get_fs_cls({"url": f"{scheme}://bucket/logs"})  # without its plugin: ImportError "requires 'dvc-<scheme>'"

    assert scheme in ([fs.protocol] if isinstance(fs.protocol, str) else list(fs.protocol))
    assert fs.get_missing_deps() == []

