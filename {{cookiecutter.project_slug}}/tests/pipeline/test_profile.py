"""Stage ``profile``: the reference profile monitoring compares live predictions with, stored with the model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import Workspace

from {{ cookiecutter.package_name }}.contracts import profile as contract
from {{ cookiecutter.package_name }}.contracts.profile import FORMAT
from {{ cookiecutter.package_name }}.pipeline import profile
from {{ cookiecutter.package_name }}.serving.session import session

MAX_BYTES = 1_000_000


def test_profile_describes_every_feature(trained: Workspace) -> None:
    reference = trained.read_json("reference")
    train = pd.read_parquet(trained.path("train"))
    settings = trained.params.monitor

    assert reference["format"] == FORMAT
    assert reference["task"] == trained.schema.target.kind
    assert reference["rows"] == {"train": len(train), "test": len(pd.read_parquet(trained.path("test")))}
    assert set(reference["features"]) == {f.name for f in trained.schema.features}
    for feature in trained.schema.features:
        entry = reference["features"][feature.name]
        column = train[feature.name]
        assert entry["rows"] == len(train), feature.name
        assert entry["nulls"] == int(column.isna().sum()), feature.name
        if feature.numeric:
            values = pd.to_numeric(column).dropna().to_numpy(dtype=np.float64)
            assert (entry["min"], entry["max"]) == (values.min(), values.max()), feature.name
            assert len(entry["edges"]) <= settings.bins - 1, feature.name
            assert entry["edges"] == sorted(set(entry["edges"])), feature.name
            assert len(entry["counts"]) == len(entry["edges"]) + 1, feature.name
            assert sum(entry["counts"]) == len(values), feature.name
            assert len(entry["sample"]) == min(len(values), settings.sample_size), feature.name
            assert min(entry["sample"]) >= values.min() - 1e-6
            assert max(entry["sample"]) <= values.max() + 1e-6
        else:
            assert set(entry["counts"]) == set(feature.categories), feature.name
            assert sum(entry["counts"].values()) == len(column.dropna()), feature.name


def test_profile_holds_the_models_predictions_on_held_out_rows(trained: Workspace) -> None:
    reference = trained.read_json("reference")
    metadata = trained.read_json("metadata")
    test = pd.read_parquet(trained.path("test"))
    outputs = profile.run_model(session(trained.path("onnx").read_bytes()), test, trained.schema)
    predictions = reference["predictions"]

    assert reference["model_version"] == metadata["version"]
    assert reference["metrics"] == trained.read_json("metrics")["model"]
    assert predictions["rows"] == len(test)
    if trained.schema.target.kind == "classification":
        assert predictions["classes"] == metadata["classes"]
        labels = pd.Series(outputs["label"].ravel().astype(str)).value_counts()
        assert predictions["label"]["counts"] == {c: int(labels.get(c, 0)) for c in metadata["classes"]}
        scores = profile.scores(outputs["probabilities"].astype(np.float64), metadata["classes"], metadata["positive"])
        series = predictions["score"]
    else:
        scores = outputs["variable"].ravel().astype(np.float64)
        series = predictions["value"]
    assert sum(series["counts"]) == len(test)
    assert series["min"] == pytest.approx(scores.min())
    assert series["max"] == pytest.approx(scores.max())
    assert sorted(series["sample"]) == pytest.approx(sorted(scores), rel=1e-6, abs=1e-6)


def test_profile_is_small_and_reproducible(trained: Workspace, tmp_path: Path) -> None:
    assert trained.path("reference").stat().st_size < MAX_BYTES
    ws = trained.copy(tmp_path / "ws")
    ws.ok("profile")
    assert ws.path("reference").read_bytes() == trained.path("reference").read_bytes()


def test_profile_stays_under_a_megabyte_with_many_numeric_features() -> None:
    """The sample budget shrinks each feature's sample as features are added, so the file stays small."""
    rng = np.random.default_rng(0)
    features = 300
    size = profile.sample_size(features + 1, 5000)
    assert size < 5000
    entries = {f"f{i}": profile.numeric_profile(rng.normal(size=20_000), 10, size, rng) for i in range(features)}
    assert len(json.dumps(entries, separators=(",", ":"))) < MAX_BYTES


def test_bins_follow_the_quantiles_and_merge_repeated_values() -> None:
    values = np.arange(1000, dtype=np.float64)
    edges = profile.bin_edges(values, 10)
    assert len(edges) == 9
    assert profile.bin_counts(values, edges).tolist() == [100] * 10
    binary = np.array([0.0] * 700 + [1.0] * 300)
    edges = profile.bin_edges(binary, 10)
    assert edges.tolist() == [0.0, 1.0]
    assert profile.bin_counts(binary, edges).tolist() == [0, 700, 300]


def test_the_profile_is_read_as_it_was_written(trained: Workspace) -> None:
    assert contract.load(trained.path("reference")) == trained.read_json("reference")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no reference profile at"),
        ("{not json", "is not valid JSON"),
        ("[1, 2]", "is not a JSON object"),
        ('{"format": 99}', "has format 99, not 1"),
        ('{"format": 1, "task": "regression"}', "has no features, metrics, model_version, predictions, rows"),
    ],
)
def test_a_profile_this_code_cannot_read_is_refused_naming_why(
    tmp_path: Path, content: str | None, message: str
) -> None:
    path = tmp_path / "reference.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(contract.ProfileError, match=message):
        contract.load(path)
