"""The monitor's own copies of two facts other tiers also hold: the per-value data-contract rules and the result glyphs.

Kept here, apart, so that switching the monitor to the shared ones (``contracts``) is an edit of this module's
users' imports only: ``valid_row`` and ``valid_target`` are the rules the ``prepare`` stage applies to a raw table,
one value at a time; ``RESULT`` is how a report shows a check's result.
"""

from __future__ import annotations

import math
from typing import Any

from {{ cookiecutter.package_name }}.pipeline.schema import Schema

RESULT = {
    "ok": "✅ ok",
    "drift": "❌ **drift**",
    "small": "⚠️ shifted, PSI below the threshold",
    "insufficient": "➖ too few values",
    "skipped": "➖ skipped",
    "decay": "❌ **decay**",
    "missing": "➖ no reference value",
}


def valid_row(inputs: dict[str, Any], schema: Schema) -> list[Any] | None:
    """The row's values in schema order if every feature satisfies the data contract, else None."""
    row: list[Any] = []
    for feature in schema.features:
        if feature.name not in inputs:
            return None
        value = inputs[feature.name]
        if value is None or (not feature.numeric and value == ""):
            if not feature.nullable:
                return None
            row.append(None)
            continue
        if feature.numeric:
            if type(value) is not int and type(value) is not float:
                return None
            number = float(value)
            if not math.isfinite(number) or (feature.type == "integer" and not number.is_integer()):
                return None
            if (feature.min is not None and number < feature.min) or (feature.max is not None and number > feature.max):
                return None
            row.append(int(number) if feature.type == "integer" else number)
        else:
            if type(value) is not str or value not in feature.categories:
                return None
            row.append(value)
    return row


def valid_target(value: Any, schema: Schema) -> bool:
    """Whether a label satisfies the target's contract: a class of the schema, or a number within its bounds."""
    target = schema.target
    if target.kind == "classification":
        return value in target.labels
    return (target.min is None or value >= target.min) and (target.max is None or value <= target.max)
