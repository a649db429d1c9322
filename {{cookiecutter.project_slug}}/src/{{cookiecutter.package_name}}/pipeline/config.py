"""The pipeline's settings: ``params.yaml`` parsed into strict, frozen models.

A typo in a key or a value of the wrong type fails at once with the key's path, instead of silently training
something else.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from {{ cookiecutter.package_name }}.contracts.errors import ProjectError

PARAMS_FILE = Path("params.yaml")
ModelFamily = Literal["linear", "random_forest", "gradient_boosting"]
HyperParams = dict[str, int | float | str | bool | None]


class ConfigError(ProjectError, ValueError):
    """A settings file is missing or invalid."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Paths(_Strict):
    """Where each artifact of the pipeline lives, relative to the project root."""

    raw: Path
    schema_: Path = Field(alias="schema")
    train: Path
    test: Path
    data_profile: Path
    model: Path
    onnx: Path
    metadata: Path
    metrics: Path
    slices: Path
    parity: Path
    plots: Path
    verdict: Path
    timings: Path
    run: Path
    tracking: Path
    report: Path
    card: Path
    card_text: Path
    reference: Path
    monitor: Path

    model_config = ConfigDict(extra="forbid", frozen=True, strict=False, populate_by_name=True)

    def outputs(self) -> list[Path]:
        """What the pipeline and the monitor write: every path here but their inputs (raw data, schema, card text)."""
        return [path for name, path in self if name not in ("raw", "schema_", "card_text")]


class DataParams(_Strict):
    """How the raw data is split."""

    test_size: float = Field(gt=0, lt=1)
    seed: int


class TrainParams(_Strict):
    """Which estimator is trained, and its hyper-parameters per family."""

    model: ModelFamily
    seed: int
    linear: HyperParams = {}
    random_forest: HyperParams = {}
    gradient_boosting: HyperParams = {}

    def hyperparams(self) -> HyperParams:
        """Hyper-parameters of the chosen family."""
        params: HyperParams = getattr(self, self.model)
        return params


class BootstrapParams(_Strict):
    """The bootstrap behind the test-set metrics' confidence intervals: test rows drawn with replacement."""

    resamples: int = Field(ge=100, le=100_000)
    confidence: float = Field(gt=0, lt=1)
    seed: int


class EvaluateParams(_Strict):
    """Evaluation settings."""

    min_slice_size: int = Field(ge=1)
    curve_points: int = Field(ge=3, le=200)
    max_plot_rows: int = Field(ge=100)
    bootstrap: BootstrapParams


class ExportParams(_Strict):
    """ONNX export settings."""

    opset: int = Field(ge=9)
    golden_samples: int = Field(ge=1, le=1000)


class Bound(_Strict):
    """An absolute limit on a metric."""

    min: float | None = None
    max: float | None = None


class ParityLimits(_Strict):
    """How closely ONNX must reproduce scikit-learn."""

    max_diff: float = Field(ge=0)
    min_label_agreement: float = Field(ge=0, le=1)


Share = Annotated[float, Field(ge=0, lt=1)]


class GateParams(_Strict):
    """Every limit the validation gate enforces."""

    baseline_ref: str
    beat_naive: dict[str, Share] = {}
    thresholds: dict[str, Bound] = {}
    max_regression: dict[str, float] = {}
    max_slice_gap: dict[str, float] = {}
    parity: ParityLimits
    max_latency_ms: float = Field(gt=0)
    latency_runs: int = Field(ge=10)
    max_model_mb: float = Field(gt=0)


def _not_reserved(alias: str) -> str:
    if alias == "latest" or re.fullmatch(r"v[0-9]+", alias):
        raise ValueError(f"{alias!r} is one of MLflow's own aliases (latest, v<number>)")
    return alias


# MLflow's alias names; `latest` and `v<digits>` are its own and refused by the server.
Alias = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_-]{0,254}$"), AfterValidator(_not_reserved)]


class Aliases(_Strict):
    """The registry alias of each environment: it names the model version that environment runs (release.registry)."""

    dev: Alias
    staging: Alias
    prod: Alias


class MlflowParams(_Strict):
    """Where runs are recorded and models registered."""

    tracking_uri: str
    experiment: str
    registered_model: str
    aliases: Aliases = Aliases(dev="dev", staging="staging", prod="champion")


class TrackParams(_Strict):
    """How long MLflow's HTTP client waits for the tracking server, and how often it retries a failed request."""

    timeout: int = Field(ge=1, le=600)
    max_retries: int = Field(ge=0, le=10)
    backoff_factor: int = Field(ge=0, le=60)


class ReportParams(_Strict):
    """Report options."""

    images: bool = False


class QualityLimits(_Strict):
    """Data-quality limits of the live inputs: the share of a window's lines above which a problem is reported."""

    max_malformed: float = Field(ge=0, le=1)
    max_null_increase: float = Field(ge=0, le=1)
    max_out_of_range: float = Field(ge=0, le=1)
    max_unseen: float = Field(ge=0, le=1)
    max_invalid: float = Field(ge=0, le=1)


class MonitorParams(_Strict):
    """The reference profile's resolution and every threshold of the ``monitor`` command."""

    bins: int = Field(ge=2, le=100)
    sample_size: int = Field(ge=100, le=100_000)
    seed: int
    alpha: float = Field(gt=0, lt=1)
    psi_threshold: float = Field(ge=0)
    min_window: int = Field(ge=1)
    min_labels: int = Field(ge=1)
    max_drop: dict[str, float] = {}
    quality: QualityLimits


class Params(_Strict):
    """The whole of ``params.yaml``."""

    paths: Paths
    data: DataParams
    train: TrainParams
    evaluate: EvaluateParams
    export: ExportParams
    gate: GateParams
    mlflow: MlflowParams
    track: TrackParams
    report: ReportParams
    monitor: MonitorParams


def read_yaml(path: Path) -> object:
    """Parse a YAML file, with errors that name the file."""
    try:
        return yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path} does not exist") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None


def describe(exc: ValidationError, source: Path) -> str:
    """Render a pydantic error as one line per problem, each with its key path."""
    lines = [f"{source} is invalid:"]
    for err in exc.errors():
        where = ".".join(str(part) for part in err["loc"]) or "(top level)"
        lines.append(f"  - {where}: {err['msg']}")
    return "\n".join(lines)


def load_params(path: Path = PARAMS_FILE) -> Params:
    """Load and validate ``params.yaml``."""
    try:
        return Params.model_validate(read_yaml(path))
    except ValidationError as exc:
        raise ConfigError(describe(exc, path)) from None
