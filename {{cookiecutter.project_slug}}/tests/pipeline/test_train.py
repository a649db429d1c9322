"""Stage ``train``: the same data and settings give the same model; a bad hyper-parameter is refused by name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import Workspace

from {{ cookiecutter.package_name }}.pipeline import train
from {{ cookiecutter.package_name }}.pipeline.config import ConfigError
from {{ cookiecutter.package_name }}.pipeline.features import model_inputs
from {{ cookiecutter.package_name }}.pipeline.schema import Schema

FAMILIES = sorted(train.ESTIMATORS["classification"])


def outputs(model: object, frame: pd.DataFrame, schema: Schema) -> np.ndarray:
    """Everything the model says about ``frame``: probabilities for a classifier, values for a regressor."""
    inputs = model_inputs(frame, schema)
    result: np.ndarray = model.predict_proba(inputs) if hasattr(model, "predict_proba") else model.predict(inputs)  # type: ignore[attr-defined]
    return result


@pytest.mark.parametrize("family", FAMILIES)
def test_training_is_deterministic(family: str, trained: Workspace, schema: Schema) -> None:
    data = pd.read_parquet(trained.path("train"))
    settings = trained.params.train.model_copy(update={"model": family})

    first = outputs(train.fit(data, schema, settings), data, schema)
    second = outputs(train.fit(data, schema, settings), data, schema)

    np.testing.assert_array_equal(first, second)


def test_train_stage_model_matches_a_refit(trained: Workspace, schema: Schema) -> None:
    data, test = pd.read_parquet(trained.path("train")), pd.read_parquet(trained.path("test"))

    refit = train.fit(data, schema, trained.params.train)

    np.testing.assert_array_equal(
        outputs(train.load(trained.path("model")), test, schema), outputs(refit, test, schema)
    )


def test_the_configured_family_is_trained(trained: Workspace, schema: Schema) -> None:
    model = train.load(trained.path("model"))
    expected = train.ESTIMATORS[schema.target.kind][trained.params.train.model]
    assert type(model.named_steps["model"]) is expected
    fitted = model.named_steps["model"].get_params()
    for key, value in trained.params.train.hyperparams().items():
        if key != "n_jobs":  # trains in parallel, then is reset so that predictions are reproducible
            assert fitted[key] == value, key
    assert fitted.get("n_jobs") in (None, 1)


def _break_hyperparams(ws: Workspace, key: str, value: object) -> str:
    family = ws.params.train.model
    ws.set_params({f"train.{family}.{key}": value})
    return family


def test_unknown_hyperparameter_is_a_config_error_naming_it(workspace: Workspace, schema: Schema) -> None:
    family = _break_hyperparams(workspace, "no_such_setting", 3)

    with pytest.raises(ConfigError) as caught:
        train.build(schema, workspace.params.train)

    assert "no_such_setting" in str(caught.value)
    assert f"train.{family}" in str(caught.value)


def test_invalid_hyperparameter_value_is_a_config_error_naming_it(workspace: Workspace, schema: Schema) -> None:
    hyperparams = workspace.params.train.hyperparams()
    if not hyperparams:
        pytest.skip("the configured family sets no hyper-parameter")
    key = next(iter(hyperparams))
    family = _break_hyperparams(workspace, key, "not-a-valid-value")

    with pytest.raises(ConfigError) as caught:
        train.build(schema, workspace.params.train)

    assert repr(key) in str(caught.value)
    assert f"train.{family}" in str(caught.value)


@pytest.mark.parametrize(("key", "value"), [("no_such_setting", 3), (None, "not-a-valid-value")])
def test_bad_hyperparameter_fails_the_train_command(
    key: str | None, value: object, trained: Workspace, tmp_path: Path
) -> None:
    ws = trained.copy(tmp_path / "ws")
    ws.path("model").unlink()
    key = key or next(iter(ws.params.train.hyperparams()), "no_such_setting")
    _break_hyperparams(ws, key, value)

    result = ws.cli("train")

    assert result.code == 2
    assert result.err.startswith("error: ")
    assert key in result.err
    assert not ws.path("model").exists()


def test_a_typo_in_params_names_the_key(trained: Workspace, tmp_path: Path) -> None:
    ws = trained.copy(tmp_path / "ws")
    ws.set_params({"train.modle": "linear"})

    result = ws.cli("train")

    assert result.code == 2
    assert "train.modle" in result.err
