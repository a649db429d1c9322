"""The monitoring benchmark (``tools/monitor_benchmark.py``): its figures and tables, fast; one short real run, slow."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import Steps

from tools import monitor_benchmark as mb
from tools.bake import TEMPLATE
from tools.shared import replace_block


def _run(lines: int, labels: bool, seconds: float, peak_mb: float) -> dict[str, Any]:
    return {
        "labels": labels,
        "lines": lines,
        "in_window": lines,
        "labelled": lines // 10 if labels else 0,
        "seconds": seconds,
        "seconds_each": [seconds],
        "lines_per_second": round(lines / seconds),
        "peak_mb": peak_mb,
        "cpu_seconds": seconds,
        "exit": 0,
        "summary": "Healthy: no drift or decay beyond the thresholds (…).",
    }


def _figures(big_seconds: float = 9.0, big_peak: float = 125.0) -> dict[str, Any]:
    figures: dict[str, Any] = {
        "date": "2026-11-21T00:00:00+00:00",
        "machine": {"cpus": 2, "cpu": "test", "memory_gb": 8.0},
        "load_average": {"before": 0.1, "after": 0.2},
        "settings": {
            "sizes": [100_000, 1_000_000],
            "per_file": 100_000,
            "labelled": 0.1,
            "repeat": 1,
            "max_seconds": 30.0,
            "max_memory_growth": 1.25,
        },
        "model": {"package": "pkg", "task": "classification", "family": "random_forest", "features": 8},
        "window": {"lines": 1_000_000, "files": 10, "mb": 380.0, "seconds": 15.0},
        "runs": [
            _run(100_000, False, 1.5, 120.0),
            _run(100_000, True, 2.5, 140.0),
            _run(1_000_000, False, big_seconds - 1, big_peak),
            _run(1_000_000, True, big_seconds, big_peak + 30),
        ],
    }
    figures["targets"] = mb.judge(figures)
    return figures


def test_sizes_are_parsed_sorted_and_positive() -> None:
    assert mb.parse_sizes("1000000,100_000") == [100_000, 1_000_000]
    with pytest.raises(SystemExit, match="line counts"):
        mb.parse_sizes("many")
    with pytest.raises(SystemExit, match="positive"):
        mb.parse_sizes("0,10")


def test_targets_time_with_labels_and_memory_without() -> None:
    met = _figures()
    assert [t["name"] for t in met["targets"]] == ["time", "memory"]
    assert all(t["met"] for t in met["targets"])
    assert met["targets"][0]["measured"] == "9.0 s"
    slow_and_growing = _figures(big_seconds=31.0, big_peak=200.0)
    assert not any(t["met"] for t in slow_and_growing["targets"])


def test_markdown_and_readme_block(tmp_path: Path) -> None:
    table = mb.markdown(_figures())
    assert "| 1,000,000 | 100,000 | 9.0 | 111,111 | 155 | 9.0 | 0 |" in table
    assert "| 100,000 | – | 1.5 | 66,667 | 120 | 1.5 | 0 |" in table
    assert "Targets met: **2 of 2**" in table
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\n{mb.BEGIN}\nold\n{mb.END}\n\nafter\n")
    replace_block(readme, mb.BLOCK, table)
    replace_block(readme, mb.BLOCK, table)  # idempotent
    assert readme.read_text() == f"# Title\n\n{mb.BEGIN}\n{table}{mb.END}\n\nafter\n"
    readme.write_text("# no markers\n")
    with pytest.raises(SystemExit, match="no"):
        replace_block(readme, mb.BLOCK, table)


def test_readme_has_the_block() -> None:
    text = (TEMPLATE / "README.md").read_text()
    assert text.index(mb.BEGIN) < text.index(mb.END)


@pytest.mark.slow
def test_monitor_benchmark_short_run(tmp_path: Path, record_property: Callable[[str, Any], None]) -> None:
    """A small run of the whole benchmark: a baked project, its profile, a window written as the server logs it, and
    the monitor timed on two sizes, with and without labels."""
    output = tmp_path / "monitor.json"
    Steps(record_property)(
        "benchmark",
        [
            sys.executable,
            "-m",
            "tools.monitor_benchmark",
            *("--sizes", "4000,20000", "--per-file", "4000", "--work", str(tmp_path / "work")),
            *("--output", str(output)),
        ],
        cwd=TEMPLATE,
        timeout=900,
    )
    figures = json.loads(output.read_text())
    runs = figures["runs"]
    assert [(r["lines"], r["labels"]) for r in runs] == [(4000, False), (4000, True), (20000, False), (20000, True)]
    for run in runs:
        assert run["in_window"] == run["lines"]
        assert run["exit"] == 0, run["summary"]  # rows drawn from the project's own data: healthy
        assert run["seconds"] > 0
        assert run["peak_mb"] > 0
    assert runs[1]["labelled"] > 0
    assert runs[3]["labelled"] > runs[1]["labelled"]
    assert figures["window"] == {**figures["window"], "lines": 20000, "files": 5}
    assert [t["name"] for t in figures["targets"]] == ["time", "memory"]
    assert "| 20,000 |" in output.with_suffix(".md").read_text()
