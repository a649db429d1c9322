"""What the locked environment promises: every kind of URL the README says `dvc get-url` reads has its DVC plugin,
and DVC sends no usage analytics and checks for no update from this project (``test_e2e.py`` watches the network
under strace)."""

from __future__ import annotations

import re
from pathlib import Path

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


def test_dvc_sends_no_analytics_and_checks_for_no_update(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from dvc import analytics
    from dvc.updater import Updater

    for name in ("DVC_NO_ANALYTICS", "DVC_TEST"):  # either would switch analytics off by itself
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(PROJECT)

    assert not analytics.is_enabled()
    assert not Updater(str(tmp_path)).is_enabled()
