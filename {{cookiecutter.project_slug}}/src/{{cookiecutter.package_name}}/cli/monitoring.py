"""The monitoring commands: judge a window of logged predictions, and add its labelled rows to the raw data."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TypedDict

from {{ cookiecutter.package_name }}.cli.registry import JSON, PROJECT, arg, command, print_json, settings
from {{ cookiecutter.package_name }}.contracts.errors import DONE, NO

PREDICTIONS = arg("--predictions", required=True, help="directory of prediction logs (*.jsonl)")
SINCE = arg("--since", help="window start: ISO 8601 (UTC by default) or a duration back: 7d, 12h")
UNTIL = arg("--until", help="window end (excluded), same forms as --since")


class Judged(TypedDict):
    """``monitor --json``: the verdict's answer and summary, and where the report and the whole verdict are."""

    retrain: bool
    summary: str
    report: str
    verdict: str


class Added(TypedDict):
    """``retrain-data --json``: rows appended to the raw data, rows of the window it had already, rows in the window."""

    added: int
    known: int
    window: int
    raw: str


@command(
    "monitor",
    PREDICTIONS,
    arg("--labels", help="directory of ground-truth labels (*.csv: request_id, index, target)"),
    SINCE,
    UNTIL,
    arg("--output", help="directory for report.md and verdict.json (default: paths.monitor)"),
    JSON,
)
def monitor(args: argparse.Namespace) -> int:
    """Drift, decay and data quality of logged predictions: 0 healthy, 1 retrain, 2 usage or input error."""
    from {{ cookiecutter.package_name }}.monitoring import monitor

    params, schema = settings()
    output = Path(args.output) if args.output else params.paths.monitor
    verdict = monitor.run(
        Path(args.predictions),
        Path(args.labels) if args.labels else None,
        schema,
        params.monitor,
        params.paths.reference,
        output,
        args.since,
        args.until,
        f"{PROJECT}: monitoring report",
    )
    report, written = output / "report.md", output / "verdict.json"
    if args.json:  # the monitor workflow reads the answer from this
        retrain, summary = verdict["retrain"], verdict["summary"]
        print_json(Judged(retrain=retrain, summary=summary, report=str(report), verdict=str(written)))
    else:
        print(verdict["summary"])
        print(f"wrote {report} and {written}")
    return NO if verdict["retrain"] else DONE


@command(
    "retrain-data",
    PREDICTIONS,
    arg("--labels", required=True, help="directory of ground-truth labels (*.csv)"),
    SINCE,
    UNTIL,
    JSON,
)
def retrain_data(args: argparse.Namespace) -> int:
    """Add a window's labelled live rows to the raw data and print how many (`added N ...`, N may be 0)."""
    from {{ cookiecutter.package_name }}.monitoring import labelled, retrain

    params, schema = settings()
    rows = labelled.labelled_frame(Path(args.predictions), Path(args.labels), schema, args.since, args.until)
    added, known = retrain.append_rows(params.paths.raw, rows, schema)
    raw = params.paths.raw
    if args.json:  # the retraining script reads the count from this
        print_json(Added(added=added, known=known, window=len(rows), raw=str(raw)))
    else:
        print(f"added {added} labelled rows to {raw} ({known} of the window's {len(rows)} already there)")
    return DONE
