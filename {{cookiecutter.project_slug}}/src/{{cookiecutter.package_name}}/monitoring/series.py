"""Statistics of one series (a feature, or the predictions) over a window, streamed with bounded memory.

Per numeric series the exact count in each of the profile's bins and a seeded bottom-k sample (a uniform sample of at
most ``sample_size`` values); per category series the count of each value. Wrong types, nulls, missing values,
out-of-range numbers and unseen categories are counted for the data-quality checks, with a few examples.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from {{ cookiecutter.package_name }}.contracts.profile import CategoryProfile, NumericProfile
from {{ cookiecutter.package_name }}.monitoring.logs import MAX_DISTINCT

EXAMPLES = 3
"""Examples kept of each kind of problem."""


class _Missing:
    """A feature absent from a line's inputs."""

    def __repr__(self) -> str:
        return "(missing)"


MISSING: Any = _Missing()


@dataclass(frozen=True)
class _Unhashable:
    """A JSON array or object where a category was expected (counted as a wrong type)."""

    kind: str

    def __repr__(self) -> str:
        return f"<{self.kind}>"


def _example(examples: list[str], value: object) -> None:
    if len(examples) < EXAMPLES:
        shown = repr(value)
        examples.append(shown if len(shown) <= 40 else shown[:37] + "...")


class Sample:
    """A uniform sample of at most ``size`` values of a stream: the values with the ``size`` smallest random keys."""

    def __init__(self, size: int, rng: np.random.Generator) -> None:
        self.size = size
        self.rng = rng
        self.keys = np.empty(0)
        self.values = np.empty(0)

    def add(self, values: np.ndarray) -> None:
        """Offer ``values`` to the sample."""
        if values.size == 0:
            return
        keys = self.rng.random(values.size)
        if self.keys.size >= self.size:  # full: only keys below the largest kept one can enter
            keep = keys < self.keys.max()
            keys, values = keys[keep], values[keep]
        keys = np.concatenate([self.keys, keys])
        values = np.concatenate([self.values, values])
        if keys.size > self.size:
            chosen = np.argpartition(keys, self.size - 1)[: self.size]
            keys, values = keys[chosen], values[chosen]
        self.keys, self.values = keys, values


class NumericSeries:
    """A numeric feature (or the predictions' score or value) in the window."""

    def __init__(
        self,
        reference: NumericProfile,
        schema_bounds: tuple[float | None, float | None],
        integer: bool,
        sample: Sample,
        *,
        ranged: bool = True,
    ) -> None:
        self.reference = reference
        self.schema_low, self.schema_high = schema_bounds
        # Values outside the schema's range, or the training data's where the schema sets none, are out of range.
        low = self.schema_low if self.schema_low is not None else reference.get("min")
        high = self.schema_high if self.schema_high is not None else reference.get("max")
        if not ranged:  # the predictions: no range to keep to
            low = high = None
        self.edges = np.asarray(reference["edges"], dtype=np.float64)
        self.counts = np.zeros(self.edges.size + 1, dtype=np.int64)
        self.low, self.high, self.integer = low, high, integer
        self.sample = sample
        self.n = self.nulls = self.missing = self.invalid = self.out_of_range = 0
        self.invalid_examples: list[str] = []
        self.range_examples: list[str] = []

    def add_values(self, values: np.ndarray) -> None:
        """Count finite, well-typed values."""
        if values.size == 0:
            return
        self.n += values.size
        self.counts += np.bincount(np.searchsorted(self.edges, values, side="right"), minlength=self.counts.size)
        outside = np.zeros(values.size, dtype=bool)
        if self.low is not None:
            outside |= values < self.low
        if self.high is not None:
            outside |= values > self.high
        if outside.any():
            self.out_of_range += int(outside.sum())
            for value in values[outside][: EXAMPLES - len(self.range_examples)]:
                _example(self.range_examples, float(value))
        self.sample.add(values)

    def add_column(self, column: Sequence[Any]) -> None:
        """Count one chunk of raw JSON values: numbers, nulls, and anything else (a wrong type)."""
        kinds = set(map(type, column))
        if kinds <= {int, float, type(None)}:
            array = np.array(column, dtype=np.float64)  # null -> NaN (JSON has no NaN of its own)
            nulls = np.isnan(array)
            self.nulls += int(nulls.sum())
            values = array[~nulls]
        else:
            numbers: list[float] = []
            for value in column:
                kind = type(value)
                if kind is float or kind is int:
                    numbers.append(float(value))
                elif value is None:
                    self.nulls += 1
                elif value is MISSING:
                    self.missing += 1
                else:
                    self.invalid += 1
                    _example(self.invalid_examples, value)
            values = np.array(numbers, dtype=np.float64)
        if self.integer and values.size:
            whole = values % 1 == 0
            if not whole.all():
                self.invalid += int((~whole).sum())
                for value in values[~whole][:EXAMPLES]:
                    _example(self.invalid_examples, float(value))
                values = values[whole]
        self.add_values(values)


class CategorySeries:
    """A category feature (or the predicted classes) in the window."""

    def __init__(self, reference: CategoryProfile, categories: list[str]) -> None:
        self.reference = reference
        self.categories = categories
        self.known = set(categories)
        self.counts: Counter[str] = Counter()
        self.unseen: Counter[str] = Counter()
        self.n = self.nulls = self.missing = self.invalid = self.unseen_total = 0
        self.invalid_examples: list[str] = []

    def add_column(self, column: Sequence[Any]) -> None:
        """Count one chunk of raw JSON values."""
        try:
            counted = Counter(column)
        except TypeError:  # a list or an object among the values
            counted = Counter(v if not isinstance(v, list | dict) else _Unhashable(type(v).__name__) for v in column)
        for value, count in counted.items():
            if type(value) is str and value in self.known:
                self.counts[value] += count
                self.n += count
            elif value is None or (type(value) is str and value == ""):
                self.nulls += count
            elif value is MISSING:
                self.missing += count
            elif type(value) is str:
                self.unseen_total += count
                if value in self.unseen or len(self.unseen) < MAX_DISTINCT:
                    self.unseen[value] += count
            else:
                self.invalid += count
                _example(self.invalid_examples, value)


Series = NumericSeries | CategorySeries
