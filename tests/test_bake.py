"""Fast checks of what baking produces, for every answer of cookiecutter.json (no project environment is installed)."""

from __future__ import annotations

import ast
import hashlib
import json
import re
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import (
    COOKIECUTTER,
    MULTICLASS_LABELS,
    PROJECT_TEMPLATE,
    UV,
    bake_into,
    project_env,
    run,
    text_files,
    write_binary_csv,
    write_multiclass_csv,
    write_regression_csv,
)
from test_end_to_end import VARIANTS as E2E_VARIANTS

from tools.bake import TEMPLATE, choices, template_context

CONTEXT: dict[str, Any] = template_context()
# Every value of every choice (list) and yes/no (boolean) answer, one bake each; the other answers keep defaults.
SINGLE_ANSWERS = [
    (key, value)
    for key, default in CONTEXT.items()
    if not key.startswith("_")
    for value in (default if isinstance(default, list) else ["yes", "no"] if isinstance(default, bool) else [])
]
# A leftover Jinja tag: "{{", "{%", "%}", a "}}" closing an expression ("x }}"; "{'a': {'b': 1}}" in code is fine),
# or a "cookiecutter." variable.
MARKER = re.compile(r"\{\{|\{%|%\}|\s\}\}|cookiecutter\.")
# GitHub Actions expressions (`${{ github.sha }}`) and, in deploy/, Argo Rollouts analysis arguments
# (`{{args.namespace}}`) are meant to survive rendering; nothing else in braces is.
ACTIONS_EXPRESSION = re.compile(r"\$\{\{.*?\}\}")
ARGO_ARGUMENT = re.compile(r"\{\{args\.[a-z0-9-]+\}\}")


def leftover_markers(project: Path) -> list[str]:
    """Every file or folder name and every line of a text file that still holds a template marker."""
    found = []
    for path in sorted(project.rglob("*")):
        relative = path.relative_to(project)
        if relative.parts[0] == ".git":
            continue
        if MARKER.search(str(relative)) or "}}" in str(relative):
            found.append(f"{relative} (name)")
    for path, text in text_files(project):
        relative = path.relative_to(project)
        for number, line in enumerate(text.splitlines(), 1):
            if relative.parts[0] == ".github":
                line = ACTIONS_EXPRESSION.sub("", line)
            if relative.parts[0] == "deploy":
                line = ARGO_ARGUMENT.sub("", line)
            if MARKER.search(line):
                found.append(f"{relative}:{number}: {line.strip()[:120]}")
    return found


def syntax_errors(project: Path) -> list[str]:
    """Files of the baked project that do not parse as what their name says (Python, TOML, YAML, JSON)."""
    errors = []
    for path, text in text_files(project):
        relative = path.relative_to(project)
        try:
            if path.suffix == ".py":
                ast.parse(text, filename=str(relative))
            elif path.suffix == ".toml" or path.name == "uv.lock":
                tomllib.loads(text)
            elif path.suffix in (".yaml", ".yml") or path.name.endswith(".dvc"):
                list(yaml.safe_load_all(text))
            elif path.suffix == ".json":
                json.loads(text)
        except (SyntaxError, tomllib.TOMLDecodeError, yaml.YAMLError, json.JSONDecodeError) as exc:
            errors.append(f"{relative}: {type(exc).__name__}: {exc}")
    return errors


def dvc_md5(path: Path) -> str:
    """The MD5 of a file as DVC itself computes it."""
    from dvc_data.hashfile.hash import file_md5

    return file_md5(str(path))


def assert_data_tracked(project: Path) -> None:
    """data/raw/data.csv is described by its .dvc file (same md5 and size as DVC computes) and ignored by git."""
    raw = project / "data" / "raw" / "data.csv"
    entry = yaml.safe_load(raw.with_name("data.csv.dvc").read_text())
    (out,) = entry["outs"]
    assert out["path"] == "data.csv"
    assert out["hash"] == "md5"
    assert out["md5"] == hashlib.md5(raw.read_bytes(), usedforsecurity=False).hexdigest() == dvc_md5(raw)
    assert out["size"] == raw.stat().st_size
    assert "/data.csv" in (raw.parent / ".gitignore").read_text().split()


def features_by_name(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {feature["name"]: feature for feature in schema["features"]}


@pytest.mark.parametrize(("key", "value"), SINGLE_ANSWERS, ids=[f"{k}={v}" for k, v in SINGLE_ANSWERS])
def test_every_answer_bakes_a_complete_project(tmp_path: Path, key: str, value: str) -> None:
    project = bake_into(tmp_path, **{key: value})
    package = project.name.replace("-", "_")

    scanned = {path.relative_to(project).as_posix() for path, _ in text_files(project)}
    assert {".python-version", ".gitignore", ".dvc/config", ".pre-commit-config.yaml"} <= scanned, "dotfiles scanned"
    assert leftover_markers(project) == []
    assert syntax_errors(project) == []
    assert not (project / ".samples").exists()
    assert (project / "src" / package / "cli" / "__init__.py").is_file()
    assert (project / ".git").is_dir(), "the post-generation hook initialises git"
    assert_data_tracked(project)

    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    params = yaml.safe_load((project / "params.yaml").read_text())
    schema = yaml.safe_load((project / "data" / "schema.yaml").read_text())
    expected = {k: v[0] if isinstance(v, list) else v for k, v in CONTEXT.items()} | {key: value}
    assert (project / ".python-version").read_text().strip() == expected["python_version"]
    assert pyproject["tool"]["mypy"]["python_version"] == expected["python_version"]
    assert pyproject["tool"]["ruff"]["target-version"] == "py" + expected["python_version"].replace(".", "")
    license_ = None if expected["license"] == "Proprietary" else expected["license"]
    assert pyproject["project"].get("license") == license_
    assert pyproject["project"]["name"] == project.name
    assert pyproject["project"]["scripts"] == {package: f"{package}.cli:main"}
    assert params["train"]["model"] == expected["model_family"]
    assert schema["target"]["kind"] == expected["task"]
    # the default gate: beat the naive baseline, on limits free of the target's units
    classification = expected["task"] == "classification"
    assert set(params["gate"]["beat_naive"]) == ({"accuracy", "roc_auc"} if classification else {"rmse", "mae"})
    assert set(params["gate"]["thresholds"]) == (set() if classification else {"r2"})


@pytest.mark.parametrize("include_deploy", ["yes", "no"])
def test_deploy_folder_follows_the_answer(tmp_path: Path, include_deploy: str) -> None:
    project = bake_into(tmp_path, include_deploy=include_deploy)
    template_has_deploy = (PROJECT_TEMPLATE / "deploy").is_dir()
    assert (project / "deploy").is_dir() == (include_deploy == "yes" and template_has_deploy)


# What each deploy target keeps of the template's deploy files (and the CRD schema its tests validate against).
ONLY_FOR_TARGET = {
    "kustomize": {"deploy/base", "deploy/overlays/prod/rollout.yaml", "deploy/overlays/prod/analysis-template.yaml"},
    "kserve": {"deploy/kserve", "tests/schemas/kserve-crds.json"},
}


@pytest.mark.parametrize("target", choices()["deploy_target"])
def test_deploy_files_follow_the_deploy_target(tmp_path: Path, target: str) -> None:
    """One deploy path per project, with the same overlays, Argo CD Applications and promotion files either way."""
    assert set(ONLY_FOR_TARGET) == set(choices()["deploy_target"])
    project = bake_into(tmp_path, deploy_target=target)
    for owner, paths in ONLY_FOR_TARGET.items():
        for path in paths:
            assert (project / path).exists() == (owner == target), path
    for env in ("dev", "staging", "prod"):
        overlay = yaml.safe_load((project / "deploy" / "overlays" / env / "kustomization.yaml").read_text())
        base = "../../kserve" if target == "kserve" else "../../base"
        assert overlay["resources"][0] == base
        (image,) = overlay["images"]  # what `promote` rewrites: the same on either path
        assert image["name"] == "model-server"
        assert image["digest"] == "sha256:" + "0" * 64
        assert overlay["commonAnnotations"] == {"model-version": "none"}
        application = yaml.safe_load((project / "deploy" / "argocd" / f"{env}.yaml").read_text())
        assert application["spec"]["source"]["path"] == f"deploy/overlays/{env}"
        assert ("ignoreDifferences" in application["spec"]) == (target == "kserve")
    workflows = {p.name for p in (project / ".github" / "workflows").glob("*.yml")}
    assert {"release.yml", "rollback.yml"} <= workflows


def test_the_kserve_pod_is_the_deployments_pod(tmp_path: Path) -> None:
    """deploy/kserve's InferenceService runs the pod deploy/base's Deployment runs: same security context, probes,
    resources, environment, port and shutdown; only the container's name is KServe's."""
    kustomize = bake_into(tmp_path / "kustomize")
    kserve = bake_into(tmp_path / "kserve", deploy_target="kserve")
    deployment = yaml.safe_load((kustomize / "deploy" / "base" / "deployment.yaml").read_text())
    service = yaml.safe_load((kserve / "deploy" / "kserve" / "inferenceservice.yaml").read_text())
    pod = deployment["spec"]["template"]["spec"]
    predictor = service["spec"]["predictor"]
    (container,) = pod.pop("containers")
    (kserve_container,) = predictor.pop("containers")
    assert pod.items() <= predictor.items(), "the pod-level settings (security, account, grace period) differ"
    assert kserve_container.pop("name") == "kserve-container"
    container.pop("name")
    for port in kserve_container["ports"]:
        assert port.pop("protocol", "TCP") == "TCP"
    assert kserve_container == container
    strategy = {"type": "RollingUpdate", "rollingUpdate": deployment["spec"]["strategy"]["rollingUpdate"]}
    assert predictor["deploymentStrategy"] == strategy


def test_special_characters_in_free_text_answers_render_valid_files(tmp_path: Path) -> None:
    """Quotes, apostrophes, backslashes and non-ASCII in the free-text answers must not break Python/TOML/YAML."""
    project = bake_into(
        tmp_path,
        project_name='Zoë\'s "Quoted" Model',
        project_slug="quoted-model",
        description="Predicts \"churn\" \\ O'Neil's way: 100% #1",
        author_name='Renée O\'Brien "RB"',
    )
    assert syntax_errors(project) == []
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    assert pyproject["project"]["description"] == "Predicts \"churn\" \\ O'Neil's way: 100% #1"
    assert pyproject["project"]["authors"][0]["name"] == 'Renée O\'Brien "RB"'


@pytest.mark.parametrize(
    "answers",
    [{}, {"project_name": "Fraud Detector 2", "python_version": "3.13", "license": "Proprietary"}],
    ids=["default", "renamed"],
)
def test_lock_matches_pyproject(tmp_path: Path, answers: dict[str, str]) -> None:
    project = bake_into(tmp_path, **answers)
    lock = tomllib.loads((project / "uv.lock").read_text())
    name = tomllib.loads((project / "pyproject.toml").read_text())["project"]["name"]
    assert [p for p in lock["package"] if p.get("source", {}).get("editable") == "."] == [
        p for p in lock["package"] if p["name"] == name
    ], "the lock's root package is the baked project"
    # The lock only depends on pyproject.toml; any interpreter >= 3.11 can check it, so do not require the pinned one.
    run([UV, "lock", "--check", "--offline", "--no-config", "--python", sys.executable], cwd=project)


def test_default_project_names_derive_from_project_name(tmp_path: Path) -> None:
    project = bake_into(tmp_path, project_name="Credit Risk_Score")
    assert project.name == "credit-risk-score"
    assert (project / "src" / "credit_risk_score" / "cli" / "__init__.py").is_file()
    params = yaml.safe_load((project / "params.yaml").read_text())
    assert params["mlflow"]["experiment"] == "credit-risk-score"
    config = (project / ".dvc" / "config").read_text()
    assert "url = ../../credit-risk-score-dvc-remote" in config, "a relative remote is relative to the project"


@pytest.mark.parametrize("url", ["s3://bucket/prefix", "/srv/dvc-remote"])
def test_absolute_dvc_remote_is_kept_as_is(tmp_path: Path, url: str) -> None:
    project = bake_into(tmp_path, dvc_remote_url=url)
    lines = [line.strip() for line in (project / ".dvc" / "config").read_text().splitlines()]
    assert f"url = {url}" in lines


def test_user_multiclass_csv_schema_is_inferred(tmp_path: Path) -> None:
    source = write_multiclass_csv(tmp_path / "inputs" / "plants.csv")
    project = bake_into(tmp_path / "out", dataset=str(source), target_column="species", model_family="linear")

    assert (project / "data" / "raw" / "data.csv").read_bytes() == source.read_bytes()
    assert_data_tracked(project)
    assert not (project / ".samples").exists()
    assert leftover_markers(project) == []
    text = (project / "data" / "schema.yaml").read_text()
    assert text.startswith("# The data contract, inferred from plants.csv")
    schema = yaml.safe_load(text)
    assert schema["target"] == {"name": "species", "kind": "classification", "labels": list(MULTICLASS_LABELS)}
    features = features_by_name(schema)
    assert list(features) == ["length_cm", "width_cm", "stems", "colour", "soil"]
    assert features["length_cm"]["type"] == "number"
    assert features["length_cm"]["nullable"] is True
    assert features["width_cm"]["type"] == "number"
    assert "nullable" not in features["width_cm"]
    assert 0 < features["width_cm"]["min"] < features["width_cm"]["max"]
    assert features["stems"] == {"name": "stems", "type": "integer", "min": 1, "max": 6}
    assert features["colour"] == {
        "name": "colour",
        "type": "category",
        "categories": ["blue", "green", "red"],
        "nullable": True,
        "slice": True,
    }
    assert features["soil"] == {
        "name": "soil",
        "type": "category",
        "categories": ["clay", "loam", "sand"],
        "slice": True,
    }


def test_user_regression_csv_schema_is_inferred(tmp_path: Path) -> None:
    source = write_regression_csv(tmp_path / "inputs" / "homes.csv")
    project = bake_into(tmp_path / "out", dataset=str(source), target_column="price", task="regression")

    assert_data_tracked(project)
    schema = yaml.safe_load((project / "data" / "schema.yaml").read_text())
    assert schema["target"] == {"name": "price", "kind": "regression", "min": 0}
    features = features_by_name(schema)
    assert list(features) == ["size", "floors", "district"]
    assert features["size"]["type"] == "number"
    assert features["size"]["nullable"] is True
    assert features["floors"] == {"name": "floors", "type": "integer", "min": 1, "max": 3}
    assert features["district"] == {
        "name": "district",
        "type": "category",
        "categories": ["harbour", "hills", "old-town"],
        "slice": True,
    }
    params = yaml.safe_load((project / "params.yaml").read_text())
    assert set(params["gate"]["thresholds"]) == {"r2"}


@pytest.mark.parametrize(
    ("labels", "counts", "positive"),
    [(("no", "yes"), (70, 30), "yes"), (("stay", "churn"), (70, 30), "churn"), (("True", "False"), (10, 90), "True")],
    ids=["named-yes", "minority", "named-true-majority"],
)
def test_binary_positive_label(tmp_path: Path, labels: tuple[str, str], counts: tuple[int, int], positive: str) -> None:
    source = write_binary_csv(tmp_path / "inputs" / "binary.csv", labels, counts)
    project = bake_into(tmp_path / "out", dataset=str(source), target_column="outcome")
    target = yaml.safe_load((project / "data" / "schema.yaml").read_text())["target"]
    assert target == {"name": "outcome", "kind": "classification", "labels": sorted(labels), "positive": positive}


def test_relative_dataset_path_is_read_from_the_callers_directory(tmp_path: Path) -> None:
    """`cookiecutter ... dataset=data/x.csv` names a file relative to where the user runs it, not to the new project
    folder (cookiecutter runs the hooks from inside that folder).
    """
    write_multiclass_csv(tmp_path / "inputs" / "plants.csv", rows=200)
    result = run(
        [
            *COOKIECUTTER,
            "--no-input",
            "--output-dir",
            "out",
            str(TEMPLATE),
            "dataset=inputs/plants.csv",
            "target_column=species",
        ],
        cwd=tmp_path,
        check=False,
        env=project_env(PWD=str(tmp_path)),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    project = tmp_path / "out" / "churn-model"
    assert (project / "data" / "raw" / "data.csv").read_bytes() == (tmp_path / "inputs" / "plants.csv").read_bytes()


PACKAGE_SOURCE = PROJECT_TEMPLATE / "src" / "{{cookiecutter.package_name}}"


def _module(relative: str) -> ast.Module:
    """A generated module of the template, its package name (the only template syntax it may hold) filled in."""
    text = (PACKAGE_SOURCE / relative).read_text()
    return ast.parse(re.sub(r"\{\{\s*cookiecutter\.package_name\s*\}\}", "package", text), filename=relative)


def _assigned(module: ast.Module, name: str) -> ast.expr:
    for node in module.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return node.value
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == name:
            assert node.value is not None, name
            return node.value
    raise AssertionError(f"no module-level {name} = ...")


def _literal_values(expr: ast.expr) -> set[str]:
    """The strings of ``Literal["a", "b"]``."""
    assert isinstance(expr, ast.Subscript), ast.dump(expr)
    elements = expr.slice.elts if isinstance(expr.slice, ast.Tuple) else [expr.slice]
    return {ast.literal_eval(e) for e in elements}


def test_tasks_and_families_are_written_once() -> None:
    """cookiecutter.json's lists are the tasks and model families: the generated code knows exactly those, the
    end-to-end matrix bakes every task with every family, and the pre-generation hook holds no copy of the lists."""
    tasks, families = set(choices()["task"]), set(choices()["model_family"])
    assert _literal_values(_assigned(_module("pipeline/schema.py"), "Task")) == tasks
    assert _literal_values(_assigned(_module("pipeline/config.py"), "ModelFamily")) == families
    estimators = _assigned(_module("pipeline/train.py"), "ESTIMATORS")
    assert isinstance(estimators, ast.Dict)
    assert {ast.literal_eval(k) for k in estimators.keys if k is not None} == tasks
    for per_task in estimators.values:
        assert isinstance(per_task, ast.Dict)
        assert {ast.literal_eval(k) for k in per_task.keys if k is not None} == families
    defaults = {key: values[0] for key, values in choices().items()}
    baked = {
        (v.answers.get("task", defaults["task"]), v.answers.get("model_family", defaults["model_family"]))
        for v in E2E_VARIANTS
    }
    assert baked == {(task, family) for task in tasks for family in families}
    hook = (TEMPLATE / "hooks" / "pre_gen_project.py").read_text()  # it reads the lists from cookiecutter.json
    for key, values in choices().items():
        assert not all(f'"{value}"' in hook for value in values), f"pre_gen_project.py lists the {key} values"
