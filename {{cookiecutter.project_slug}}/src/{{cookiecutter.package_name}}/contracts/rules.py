"""The data contract for one value: right type, finite, whole, in range, a known category, or an allowed null.

Standard library only.

Every tier checks values by these rules, each as strictly as its job needs:

* ``prepare`` (raw CSV, parsed) refuses every break of the contract, the ranges and the categories included;
* the server (``serving.model``) refuses wrong types, non-finite numbers, fractional integers and disallowed missing
  values, but not ranges (the model extrapolates) nor unknown categories (the one-hot encoder ignores them);
* the monitor counts what breaks them, and keeps for retraining only the rows that keep all of them (``conform``).

A value is JSON's: a number (``int`` or ``float``, never ``bool``), a string, or ``null``. A missing category may
also be the empty string (``MISSING_CATEGORY``).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

from {{ cookiecutter.package_name }}.contracts.onnx import MISSING_CATEGORY

FeatureType = Literal["integer", "number", "category"]
FEATURE_TYPES: tuple[FeatureType, ...] = ("integer", "number", "category")

Problem = Literal["null", "type", "finite", "whole", "below", "above", "category"]
"""How a value breaks its rule: a disallowed missing value, a wrong JSON type, a number that is not finite, an integer
that is not whole, below the minimum, above the maximum, a category not in the contract."""


class FeatureSpec(TypedDict):
    """One feature's contract as JSON (the model metadata's ``inputs``; the schema's features without ``slice``)."""

    name: str
    type: FeatureType
    nullable: bool
    min: float | None
    max: float | None
    categories: list[str]


@dataclass(frozen=True, slots=True)
class Rule:
    """One feature's contract, ready to check values with (``categories`` as a set: a lookup per value)."""

    name: str
    type: FeatureType
    nullable: bool = False
    min: float | None = None
    max: float | None = None
    categories: frozenset[str] = frozenset()

    @classmethod
    def of(cls, spec: FeatureSpec) -> Rule:
        """The rule of a feature described as JSON."""
        return cls(
            spec["name"], spec["type"], spec["nullable"], spec["min"], spec["max"], frozenset(spec["categories"])
        )

    @property
    def numeric(self) -> bool:
        """Whether the feature holds numbers (integer or number)."""
        return self.type != "category"


class Violation(ValueError):  # noqa: N818  (a value, not an error of the program)
    """A value that breaks its feature's rule: ``problem`` says how, the message names the feature and the value."""

    def __init__(self, rule: Rule, value: Any, problem: Problem) -> None:
        """Keep the rule, the value and the problem; the message describes them."""
        self.rule, self.value, self.problem = rule, value, problem
        super().__init__(describe(rule, value, problem))


def describe(rule: Rule, value: Any, problem: Problem) -> str:
    """What is wrong with ``value``, naming the feature (e.g. ``'age' must be a whole number, got 3.5``)."""
    name = repr(rule.name)
    if problem == "null":
        state = "null" if rule.numeric else "missing"
        return f"{name} is {state} but the feature is not nullable"
    if problem == "type":
        what = "a number" if rule.numeric else "a string"
        return f"{name} must be {what}, got {type(value).__name__} {value!r:.40}"
    if problem == "finite":
        return f"{name} is not a finite number"
    if problem == "whole":
        return f"{name} must be a whole number, got {value}"
    if problem == "below":
        return f"{name} is below the minimum {rule.min}, got {value}"
    if problem == "above":
        return f"{name} is above the maximum {rule.max}, got {value}"
    return f"{name} has a category not in the contract: {value!r:.40}"


def problems(rule: Rule, value: float, *, ranged: bool = True) -> list[Problem]:
    """Every rule a number breaks: ``finite``, ``whole`` (integer features), then ``below``, ``above`` (if ``ranged``).

    ``value`` is already read as a number (NaN is not one: it is a missing value).
    """
    found: list[Problem] = []
    if not math.isfinite(value):
        found.append("finite")
    if rule.type == "integer" and not value.is_integer():
        found.append("whole")
    if ranged:
        if rule.min is not None and value < rule.min:
            found.append("below")
        if rule.max is not None and value > rule.max:
            found.append("above")
    return found


def missing(rule: Rule, value: Any) -> bool:
    """Whether ``value`` is a missing value: null, or the empty string for a category (allowed or not)."""
    return value is None or (not rule.numeric and value == MISSING_CATEGORY)


def number(rule: Rule, value: Any, limit: float = sys.float_info.max) -> float:
    """A numeric feature's value as a float (NaN for an allowed missing value), or the first :class:`Violation`.

    The rules of ``problems`` but the range (``in_range``), in its order, one value at a time without building a list:
    the server calls this per value. A magnitude beyond ``limit`` (the server's float32) counts as not finite.
    """
    kind = type(value)
    if kind is float or kind is int:
        try:
            as_float = float(value)
        except OverflowError:  # an integer beyond any float
            as_float = math.inf
        if not -limit <= as_float <= limit:  # also false for NaN and infinities
            raise Violation(rule, value, "finite")
        if rule.type == "integer" and not as_float.is_integer():
            raise Violation(rule, value, "whole")
        return as_float
    if value is None:
        if not rule.nullable:
            raise Violation(rule, value, "null")
        return math.nan
    raise Violation(rule, value, "type")


def in_range(rule: Rule, value: float) -> float:
    """``value`` if it is within the feature's ``min`` and ``max`` (inclusive), else a :class:`Violation`."""
    if rule.min is not None and value < rule.min:
        raise Violation(rule, value, "below")
    if rule.max is not None and value > rule.max:
        raise Violation(rule, value, "above")
    return value


def category(rule: Rule, value: Any) -> tuple[str, bool]:
    """A category feature's value (``MISSING_CATEGORY`` when missing) and whether the contract declares it.

    A :class:`Violation` for a value that is not a string, or a missing value the feature does not allow.
    """
    if type(value) is str and value != MISSING_CATEGORY:
        return value, value in rule.categories
    if value is None or value == MISSING_CATEGORY:
        if not rule.nullable:
            raise Violation(rule, value, "null")
        return MISSING_CATEGORY, True
    raise Violation(rule, value, "type")


def conform(rule: Rule, value: Any) -> int | float | str | None:
    """The value as the contract types it (``int`` for integer features, None when missing), or a :class:`Violation`.

    Every rule is checked, the range and the categories included.
    """
    if rule.numeric:
        as_float = number(rule, value)
        if math.isnan(as_float):
            return None
        in_range(rule, as_float)
        return int(as_float) if rule.type == "integer" else as_float
    text, known = category(rule, value)
    if text == MISSING_CATEGORY:
        return None
    if not known:
        raise Violation(rule, value, "category")
    return text
