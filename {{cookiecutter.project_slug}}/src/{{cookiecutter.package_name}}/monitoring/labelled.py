"""Retraining data: the window's labelled live rows as raw data (``retrain-data`` appends them with ``retrain``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from {{ cookiecutter.package_name }}.contracts.prediction_log import Parsed, join_key
from {{ cookiecutter.package_name }}.contracts.rules import Rule, Violation, conform
from {{ cookiecutter.package_name }}.monitoring.labels import read_labels
from {{ cookiecutter.package_name }}.monitoring.logs import Window, chunks, log_files, paused_gc
from {{ cookiecutter.package_name }}.monitoring.window import parse_time
from {{ cookiecutter.package_name }}.pipeline.schema import Schema

if TYPE_CHECKING:
    import pandas as pd


def labelled_frame(
    predictions_dir: Path, labels_dir: Path, schema: Schema, since: str | None = None, until: str | None = None
) -> pd.DataFrame:
    """The window's labelled live rows as raw data: the schema's columns in order, features and target.

    Only rows that satisfy the data contract (the ``prepare`` stage would refuse the table otherwise); each
    ``(request_id, index)`` once, its first logged line. ``since``/``until`` take what ``--since``/``--until`` take.
    """
    import pandas as pd

    window = Window(parse_time(since), parse_time(until))
    labels = read_labels(labels_dir, schema)
    pending = labels.values
    rules = [feature.rule() for feature in schema.features]
    rows: list[list[object]] = []
    with paused_gc():
        for records, _ in chunks(log_files(predictions_dir), window, _any_prediction):
            if not pending:
                break
            for record in records:
                key = join_key(record)
                if key not in pending:
                    continue
                truth = pending.pop(key)
                row = valid_row(record["inputs"], rules)
                if row is not None and valid_target(truth, schema):
                    rows.append([*row, truth])
    frame = pd.DataFrame(rows, columns=schema.columns)
    for feature in schema.features:
        if feature.type == "integer":
            frame[feature.name] = frame[feature.name].astype("Int64")
        elif feature.type == "number":
            frame[feature.name] = frame[feature.name].astype("float64")
        else:
            frame[feature.name] = frame[feature.name].astype(object)
    if schema.target.kind == "regression":
        frame[schema.target.name] = frame[schema.target.name].astype("float64")
    return frame


def valid_row(inputs: dict[str, Any], rules: list[Rule]) -> list[Any] | None:
    """The row's values in the rules' order, as the contract types them, if every one keeps its rule; else None."""
    try:
        return [conform(rule, inputs[rule.name]) for rule in rules]
    except (KeyError, Violation):
        return None


def valid_target(value: Any, schema: Schema) -> bool:
    """Whether a label satisfies the target's contract: a class of the schema, or a number within its bounds."""
    target = schema.target
    if target.kind == "classification":
        return value in target.labels
    return (target.min is None or value >= target.min) and (target.max is None or value <= target.max)


def _any_prediction(pred: object) -> Parsed | None:
    """Retraining needs the inputs, not the prediction: any ``prediction`` object will do."""
    return ("", []) if isinstance(pred, dict) else None
