"""Every invalid answer is refused before anything is generated: one message naming the problem, no folder left."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import COOKIECUTTER, bake_into, project_env, run, write_multiclass_csv
from cookiecutter.exceptions import FailedHookException
from cookiecutter.main import cookiecutter

from tools.bake import TEMPLATE, choices, template_context

# A CSV the refusal case needs, written under tmp_path/inputs; the answers name it with "{csv}".
CsvWriter = Callable[[Path], None]


def _write(text: str) -> CsvWriter:
    def write(path: Path) -> None:
        path.write_text(text, encoding="utf-8")

    return write


def _multiclass(path: Path) -> None:
    write_multiclass_csv(path, rows=100)


# Valid values for the answers whose defaults derive from project_slug, so a bad slug is the only problem.
FROM_SLUG = {
    "package_name": "my_project",
    "github_repository": "acme/my-project",
    "dvc_remote_url": "../remote",
    "image_name": "ghcr.io/acme/my-project",
}

CASES: list[tuple[str, dict[str, str], CsvWriter | None, str]] = [
    (
        "slug-with-spaces",
        {"project_slug": "my project", **FROM_SLUG},
        None,
        "project_slug 'my project' must be lowercase letters",
    ),
    (
        "slug-with-dotdot",
        {"project_slug": "../escape", **FROM_SLUG},
        None,
        "project_slug '../escape' must be lowercase letters",
    ),
    (
        "slug-uppercase",
        {"project_slug": "MyProject", **FROM_SLUG},
        None,
        "project_slug 'MyProject' must be lowercase letters",
    ),
    ("package-keyword", {"package_name": "class"}, None, "package_name 'class' is a Python keyword"),
    ("package-stdlib", {"package_name": "json"}, None, "package_name 'json' would shadow the module"),
    (
        "package-dash",
        {"package_name": "my-package"},
        None,
        "package_name 'my-package' is not a lowercase Python identifier",
    ),
    ("bad-email", {"author_email": "not-an-email"}, None, "author_email 'not-an-email' is not an e-mail address"),
    (
        "bad-repository",
        {"github_repository": "just-a-name"},
        None,
        "github_repository 'just-a-name' must be owner/name",
    ),
    ("python-3.9", {"python_version": "3.9"}, None, "3.9 provided for choice variable python_version"),
    ("unknown-task", {"task": "clustering"}, None, "clustering provided for choice variable task"),
    ("unknown-model-family", {"model_family": "xgboost"}, None, "xgboost provided for choice variable model_family"),
    ("unknown-license", {"license": "GPL-3.0"}, None, "GPL-3.0 provided for choice variable license"),
    ("unknown-deploy-target", {"deploy_target": "helm"}, None, "helm provided for choice variable deploy_target"),
    (
        "kserve-without-deploy-files",
        {"deploy_target": "kserve", "include_deploy": "no"},
        None,
        "deploy_target 'kserve' needs include_deploy=yes",
    ),
    (
        "dataset-missing",
        {"dataset": "{inputs}/nowhere.csv", "target_column": "y"},
        None,
        "is neither 'embedded' nor an existing CSV file",
    ),
    (
        "csv-without-target",
        {"dataset": "{csv}", "target_column": "price"},
        _multiclass,
        "target_column 'price' is not a column of",
    ),
    (
        "csv-empty-target-column",
        {"dataset": "{csv}", "target_column": ""},
        _multiclass,
        "target_column is required with your own dataset",
    ),
    (
        "regression-on-text-target",
        {"dataset": "{csv}", "target_column": "species", "task": "regression"},
        _multiclass,
        "target_column 'species' is not numeric, so it cannot be a regression target",
    ),
    ("empty-csv", {"dataset": "{csv}", "target_column": "y"}, _write(""), "is empty"),
    ("header-only-csv", {"dataset": "{csv}", "target_column": "y"}, _write("x,y\n"), "has a header but no rows"),
    (
        "single-label-target",
        {"dataset": "{csv}", "target_column": "y"},
        _write("x,y\n1,a\n2,a\n"),
        "target_column 'y' has fewer than two distinct values",
    ),
    ("dvc-remote-ftp", {"dvc_remote_url": "ftp://x"}, None, "dvc_remote_url scheme 'ftp' is not a DVC remote"),
    (
        "mlflow-uri-no-scheme",
        {"mlflow_tracking_uri": "mlruns.db"},
        None,
        "mlflow_tracking_uri 'mlruns.db' must start with one of",
    ),
    (
        "mlflow-uri-ftp",
        {"mlflow_tracking_uri": "ftp://tracking.example.com"},
        None,
        "mlflow_tracking_uri 'ftp://tracking.example.com' must start with one of",
    ),
    (
        "image-uppercase",
        {"image_name": "ghcr.io/Acme/churn"},
        None,
        "image_name 'ghcr.io/Acme/churn' must be a lowercase",
    ),
    (
        "image-with-tag",
        {"image_name": "ghcr.io/acme/churn:1.0"},
        None,
        "image_name 'ghcr.io/acme/churn:1.0' must be a lowercase",
    ),
]


def _prepare(tmp_path: Path, answers: dict[str, str], writer: CsvWriter | None) -> tuple[Path, dict[str, str]]:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    csv_path = inputs / "data.csv"
    if writer is not None:
        writer(csv_path)
    filled = {k: v.format(csv=csv_path, inputs=inputs) for k, v in answers.items()}
    return tmp_path / "out", filled


def _assert_nothing_generated(tmp_path: Path, output: Path) -> None:
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["inputs", "out"][: 1 + output.exists()])
    assert not output.exists() or list(output.iterdir()) == [], f"left behind: {list(output.iterdir())}"


@pytest.mark.parametrize(("answers", "writer", "phrase"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_invalid_answer_is_refused(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], answers: dict[str, str], writer: CsvWriter | None, phrase: str
) -> None:
    output, filled = _prepare(tmp_path, answers, writer)

    with pytest.raises((FailedHookException, ValueError)) as refused:
        bake_into(output, **filled)

    stderr = capfd.readouterr().err
    if isinstance(refused.value, FailedHookException):
        # The pre-generation hook lists every problem on its own "  - " line: exactly this one.
        problems = [line for line in stderr.splitlines() if line.startswith("  - ")]
        assert len(problems) == 1, stderr
        assert phrase in problems[0], stderr
    else:
        # Choices are checked by cookiecutter itself, before the hook runs.
        assert phrase in str(refused.value)
    _assert_nothing_generated(tmp_path, output)


@pytest.mark.parametrize(
    ("answer", "phrase"),
    [
        ("package_name=class", "package_name 'class' is a Python keyword"),
        ("project_slug=../escape", "project_slug '../escape' must be lowercase letters"),
    ],
)
def test_cookiecutter_command_refuses_with_the_message(tmp_path: Path, answer: str, phrase: str) -> None:
    """The way people bake (the cookiecutter command): non-zero exit, the problem on stderr, nothing generated."""
    (tmp_path / "inputs").mkdir()
    result = run(
        [*COOKIECUTTER, "--no-input", "--output-dir", "out", str(TEMPLATE), answer],
        cwd=tmp_path,
        check=False,
        env=project_env(PWD=str(tmp_path)),
    )
    assert result.returncode != 0
    assert phrase in result.stderr
    _assert_nothing_generated(tmp_path, tmp_path / "out")


def test_a_replayed_choice_is_refused_by_the_hook(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """cookiecutter checks the choices it is given; a replay file's answers reach the pre-generation hook, which
    checks them against the lists of cookiecutter.json (the one place they are written)."""
    answers = {k: v[0] if isinstance(v, list) else v for k, v in template_context().items() if not k.startswith("__")}
    slug = "churn-model"
    answers.update(
        project_slug=slug,
        package_name="churn_model",
        github_repository=f"your-org/{slug}",
        dvc_remote_url=f"../{slug}-dvc-remote",
        image_name=f"ghcr.io/your-org/{slug}",
        task="clustering",
        model_family="xgboost",
    )
    replay = tmp_path / "replay.json"
    replay.write_text(json.dumps({"cookiecutter": answers}))
    output = tmp_path / "out"
    with pytest.raises(FailedHookException):
        cookiecutter(str(TEMPLATE), replay=str(replay), output_dir=str(output))
    problems = [line for line in capfd.readouterr().err.splitlines() if line.startswith("  - ")]
    tasks, families = ", ".join(choices()["task"]), ", ".join(choices()["model_family"])
    assert problems == [
        f"  - task 'clustering' is not supported; choose one of: {tasks}",
        f"  - model_family 'xgboost' is not supported; choose one of: {families}",
    ]
    assert not (output / slug).exists()
