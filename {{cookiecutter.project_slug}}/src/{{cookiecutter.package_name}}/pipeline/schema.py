"""The data contract (``data/schema.yaml``): which columns exist, their types, ranges, categories and labels.

It is the single description of the model's inputs: the prepare stage validates raw data against it, training
builds its preprocessing from it, the ONNX export names its inputs after it and the server checks requests with it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from {{ cookiecutter.package_name }}.contracts.errors import ProjectError
from {{ cookiecutter.package_name }}.contracts.rules import FeatureSpec, FeatureType, Rule
from {{ cookiecutter.package_name }}.contracts.table import MISSING, Format, Separator
from {{ cookiecutter.package_name }}.pipeline.config import ConfigError, describe, read_yaml

Task = Literal["classification", "regression"]
Unlabelled = Literal["drop", "refuse"]


class DataContractError(ProjectError, ValueError):
    """Raw data breaks the declared schema."""

    def __init__(self, source: Path, problems: list[str]) -> None:
        """Keep the list of problems; the message lists them all."""
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source} breaks the data contract ({len(problems)} problem(s)):\n{lines}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Feature(_Strict):
    """One input column."""

    name: str
    type: FeatureType
    nullable: bool = False
    min: float | None = None
    max: float | None = None
    categories: list[str] = []
    slice: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> Feature:
        if self.type == "category":
            if not self.categories:
                raise ValueError(f"category column {self.name!r} needs a list of categories")
            if self.min is not None or self.max is not None:
                raise ValueError(f"category column {self.name!r} cannot have min/max")
        else:
            if self.categories:
                raise ValueError(f"numeric column {self.name!r} cannot have categories")
            if self.slice:
                raise ValueError(f"only category columns can define slices, not {self.name!r}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"column {self.name!r} has min > max")
        return self

    @property
    def numeric(self) -> bool:
        """Whether the column holds numbers."""
        return self.type != "category"

    def spec(self) -> FeatureSpec:
        """The column's contract as JSON, as the model metadata carries it (``slice`` is the pipeline's own)."""
        return {
            "name": self.name,
            "type": self.type,
            "nullable": self.nullable,
            "min": self.min,
            "max": self.max,
            "categories": list(self.categories),
        }

    def rule(self) -> Rule:
        """The rule its values are checked by (``contracts.rules``)."""
        return Rule.of(self.spec())


class Target(_Strict):
    """The column the model predicts."""

    name: str
    kind: Task
    labels: list[str] = []
    positive: str | None = None
    min: float | None = None
    max: float | None = None
    missing: Unlabelled = "drop"
    """Rows without a label: left out of training and evaluation and counted (``drop``), or refused (``refuse``)."""

    @model_validator(mode="after")
    def _consistent(self) -> Target:
        if self.kind == "classification":
            if len(self.labels) < 2:
                raise ValueError("a classification target needs at least two labels")
            if len(set(self.labels)) != len(self.labels):
                raise ValueError("target labels must be unique")
            if len(self.labels) == 2 and self.positive not in self.labels:
                raise ValueError("a binary target needs `positive:` set to one of its labels")
            if len(self.labels) > 2 and self.positive is not None:
                raise ValueError("`positive:` applies to binary targets only")
        elif self.labels or self.positive is not None:
            raise ValueError("a regression target has no labels")
        return self

    @property
    def binary(self) -> bool:
        """Whether this is a two-class problem."""
        return self.kind == "classification" and len(self.labels) == 2


class Csv(_Strict):
    """How the raw CSV is written (``contracts.table``): its separator and the values that mean "missing"."""

    separator: Separator = ","
    missing: list[str] = Field(default_factory=lambda: list(MISSING), min_length=1)

    def format(self) -> Format:
        """The reader's and writers' settings."""
        return Format(self.separator, tuple(self.missing))


class Ignored(_Strict):
    """A column of the raw data that is not a feature (an identifier, a date, free text), and why."""

    name: str
    reason: str = ""


class Schema(_Strict):
    """The whole contract."""

    csv: Csv = Csv()
    target: Target
    features: list[Feature]
    ignored: list[Ignored] = []

    @model_validator(mode="after")
    def _unique(self) -> Schema:
        names = [f.name for f in self.features] + [self.target.name] + [i.name for i in self.ignored]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"columns declared more than once: {', '.join(duplicates)}")
        if not self.features:
            raise ValueError("the schema declares no feature")
        return self

    @property
    def columns(self) -> list[str]:
        """Every declared column, features first, target last."""
        return [f.name for f in self.features] + [self.target.name]

    @property
    def ignored_columns(self) -> list[str]:
        """Columns the raw data may hold that the model does not use."""
        return [i.name for i in self.ignored]

    @property
    def numeric(self) -> list[str]:
        """Names of the numeric features."""
        return [f.name for f in self.features if f.numeric]

    @property
    def categorical(self) -> list[str]:
        """Names of the categorical features."""
        return [f.name for f in self.features if not f.numeric]

    @property
    def slices(self) -> list[str]:
        """Columns whose categories define the slices metrics are compared across."""
        return [f.name for f in self.features if f.slice]


def load_schema(path: Path) -> Schema:
    """Load and check ``data/schema.yaml``."""
    try:
        return Schema.model_validate(read_yaml(path))
    except ValidationError as exc:
        raise ConfigError(describe(exc, path)) from None
