"""Command ``monitor``: drift, decay and data quality of a window of logged predictions, against the reference profile.

**Input.** The prediction log: a directory of JSON-lines files (``*.jsonl``, read recursively), one line per predicted
instance, in the format of :mod:`~{{ cookiecutter.package_name }}.contracts.prediction_log`. ``time`` is UTC with
microseconds, so a window (``--since``, ``--until``) is a string comparison. A line that is not JSON, is cut short (a
killed process) or does not follow this format is *malformed*: counted, shown, and left out of every statistic. Wrong
values inside ``inputs`` (types, unknown or missing keys) are data-quality problems of the live inputs. Ground-truth
labels, optional, are CSV files (``request_id``, optional ``index`` defaulting to 0, and the schema's target column),
joined on ``(request_id, index)``; they may cover a subset of the predictions.

**Streaming, bounded memory.** Files are read line by line and processed in chunks: per numeric series the exact
count in each of the profile's bins and a seeded bottom-k sample (a uniform sample of at most ``sample_size``
values), per category series the count of each value. Memory does not grow with the window, only with the labels.

**Drift.** Each feature is tested against the training data, and the predictions against the model's predictions on
held-out data: numbers with the two-sample Kolmogorov-Smirnov test (``scipy.stats.ks_2samp``, window sample vs the
profile's sample), categories and predicted classes with the chi-squared test of homogeneity
(``scipy.stats.chi2_contingency``, window counts vs training counts); nulls are left to the quality checks. The
population stability index, ``PSI = Σ (w - r) ln(w / r)`` over the bins (categories) with proportions floored at
``1e-4``, measures how large the shift is. The rule: a series drifted when its test rejects at ``alpha / m``, ``m``
being the number of tests run on the window (Bonferroni: the chance of any false alarm in a window is at most
``alpha``), **and** its PSI is at least ``psi_threshold`` (a huge window makes any tiny difference significant; the
PSI demands one that matters). A series with fewer than ``min_window`` values is not judged.

**Decay.** With at least ``min_labels`` labelled predictions of the profiled model version, the task's metrics (as
the ``evaluate`` stage computes them) are compared with its test-set metrics; a metric worse by more than its
``max_drop`` has decayed.

**Verdict.** ``verdict.json`` and ``report.md`` in the output directory, written atomically; ``retrain`` is drift or
decay. Data-quality problems are reported but do not ask for retraining (a broken client is fixed, not learned).

One job per module: ``window`` (``--since``/``--until``), ``logs`` (reading the log), ``labels`` (reading and joining
the labels), ``series`` (streamed statistics), ``scan`` (one pass over the window), ``judge`` (drift, decay, the
verdict), ``quality`` (data-quality problems), ``report`` (the Markdown), ``labelled`` (retraining data: the rows
that keep the data contract's rules, ``contracts.rules``); this module runs them in order.
"""

from __future__ import annotations

from pathlib import Path

from {{ cookiecutter.package_name }}.contracts import profile as reference_profile
from {{ cookiecutter.package_name }}.contracts.io import write_json, write_text
from {{ cookiecutter.package_name }}.monitoring.errors import MonitorError
from {{ cookiecutter.package_name }}.monitoring.judge import judge
from {{ cookiecutter.package_name }}.monitoring.labelled import labelled_frame
from {{ cookiecutter.package_name }}.monitoring.labels import read_labels
from {{ cookiecutter.package_name }}.monitoring.logs import log_files
from {{ cookiecutter.package_name }}.monitoring.report import render
from {{ cookiecutter.package_name }}.monitoring.scan import check_profile, scan
from {{ cookiecutter.package_name }}.monitoring.verdict import Verdict
from {{ cookiecutter.package_name }}.monitoring.window import parse_time
from {{ cookiecutter.package_name }}.pipeline.config import MonitorParams
from {{ cookiecutter.package_name }}.pipeline.schema import Schema

__all__ = ["MonitorError", "labelled_frame", "load_profile", "parse_time", "run"]


def load_profile(path: Path) -> reference_profile.Profile:
    """The reference profile, or a ``MonitorError`` saying how to make it."""
    try:
        return reference_profile.load(path)
    except reference_profile.ProfileError as exc:
        raise MonitorError(str(exc)) from None


def run(
    predictions_dir: Path,
    labels_dir: Path | None,
    schema: Schema,
    params: MonitorParams,
    reference: Path,
    output: Path,
    since: str | None,
    until: str | None,
    title: str,
) -> Verdict:
    """Monitor one window and write ``verdict.json`` and ``report.md`` to ``output``; return the verdict."""
    start, end = parse_time(since), parse_time(until)
    if start is not None and end is not None and start >= end:
        raise MonitorError(f"the window is empty: --since {since} is not before --until {until}")
    profile = load_profile(reference)
    check_profile(profile, schema)
    unknown = sorted(set(params.max_drop) - set(profile["metrics"]))
    if unknown:
        known = ", ".join(sorted(profile["metrics"]))
        raise MonitorError(f"params.yaml monitor.max_drop names {', '.join(unknown)}: this model's metrics are {known}")
    files = log_files(predictions_dir)
    labels = read_labels(labels_dir, schema)
    scanned = scan(files, labels, schema, profile, params, start, end)
    verdict = judge(scanned, profile, schema, params, reference)
    write_json(output / "verdict.json", verdict)
    write_text(output / "report.md", render(verdict, title))
    return verdict
