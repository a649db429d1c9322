"""What every part of the serving benchmark shares: its constants, the data it serves, running a short command."""

from __future__ import annotations

import csv
import math
import os
import random
import subprocess
from collections.abc import Sequence
from pathlib import Path

from tools.benchmark import BUILD, ROOT, StepError, clean_env
from tools.shared import MB, block_markers

WORK = BUILD / "serving-bench"
OUTPUT = ROOT / "benchmarks" / "serving.json"
README = ROOT / "README.md"
BLOCK = "serving-benchmark"  # the README block the table goes to
BEGIN, END = block_markers(BLOCK)
TARGET_COLUMN = "outcome"
FEATURES = 30
PARITY_ROWS = 5
TOLERANCE = 1e-6  # largest difference between two servers' probabilities when both run the same onnxruntime graph
# A server that runs the scikit-learn pipeline (MLServer) instead of its ONNX export computes in float64 where the
# export computes in float32: the golden samples' tolerance of the project (``serving.golden``: relative 1e-4).
SKLEARN_TOLERANCE = 1e-4
LOG_SAMPLE = 0.1  # the server's default PREDICTION_LOG_SAMPLE: the rate the overhead target is about
LOG_WARMUP = 1  # seconds of load on each server before each round of the prediction log's comparison

__all__ = ["MB", "StepError"]


class StopRequestedError(Exception):
    """SIGTERM or SIGHUP: unwind, so every server is stopped on the way out."""


def write_dataset(path: Path, rows: int, seed: int, features: int = FEATURES) -> Path:
    """A numeric binary classification table: ``features`` Gaussian columns, a target that a linear model learns.

    The label is the sign of a fixed random projection plus noise (about 90 % accuracy reachable), so the baked
    project's gate passes. Deterministic for a given seed.
    """
    rng = random.Random(seed)
    weights = [rng.gauss(0, 1) for _ in range(features)]
    scale = 3 / math.sqrt(features)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow([*(f"f{i:02d}" for i in range(features)), TARGET_COLUMN])
        for _ in range(rows):
            x = [round(rng.gauss(0, 1), 4) for _ in range(features)]
            z = scale * sum(w * v for w, v in zip(weights, x, strict=True)) + rng.gauss(0, 1)
            writer.writerow([*x, int(z > 0)])
    return path


def sample_rows(path: Path, count: int) -> list[dict[str, float]]:
    """The first ``count`` rows of the CSV as feature records (the target dropped): real rows for the requests."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        rows = []
        for row in reader:
            rows.append({k: float(v) for k, v in row.items() if k != TARGET_COLUMN})
            if len(rows) == count:
                break
    return rows


def shown(path: Path | str) -> str:
    """A path (or a command word) relative to the repository when inside it.

    So the committed figures hold no machine-specific prefix.
    """
    text = str(path)
    prefix = str(ROOT) + os.sep
    return text.replace(prefix, "", 1) if text.startswith(prefix) else text


def run_step(command: Sequence[str], cwd: Path, log: Path, *, env: dict[str, str] | None = None) -> str:
    """Run a short command; its output goes to ``log``; raise StepError with its tail if it fails."""
    result = subprocess.run(list(command), cwd=cwd, env=env or clean_env(), capture_output=True, text=True, check=False)
    with log.open("a") as sink:
        sink.write(f"$ (cd {cwd} && {' '.join(command)})\n{result.stdout}{result.stderr}")
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-15:])
        raise StepError(f"`{' '.join(command)}` failed in {cwd} (exit {result.returncode}):\n{tail}")
    return result.stdout
