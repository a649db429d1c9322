"""Every invalid answer is refused before anything is generated: one message naming the problem, no folder left.

And a few unusual answers that are valid are still accepted, and read back unchanged by the parsers that read them.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from conftest import COOKIECUTTER, bake_into, project_env, run, write_multiclass_csv
from cookiecutter.exceptions import FailedHookException
from cookiecutter.main import cookiecutter
from dvc.config import Config  # type: ignore[import-untyped]

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
    (
        "slug-with-slash",
        {"project_slug": "acme/churn", **FROM_SLUG},
        None,
        "project_slug 'acme/churn' must be lowercase letters",
    ),
    (
        "slug-64-characters",
        {"project_slug": "s" * 64, **FROM_SLUG},
        None,
        "is 64 characters, so the Kubernetes namespace 'ssssssssssssssssssssssssssssssssssssssss'... (72 characters) "
        "would be 72: a Kubernetes name is a DNS label of at most 63 characters (use a slug of at most 55)",
    ),
    (
        "slug-56-characters",
        {"project_slug": "s" * 56, **FROM_SLUG},
        None,
        "so the Kubernetes namespace 'ssssssssssssssssssssssssssssssssssssssss'... (64 characters) would be 64",
    ),
    (
        "slug-54-characters-kserve",
        {"project_slug": "s" * 54, "deploy_target": "kserve", **FROM_SLUG},
        None,
        "so KServe's Service 'ssssssssssssssssssssssssssssssssssssssss'... (64 characters) would be 64: a Kubernetes "
        "name is a DNS label of at most 63 characters (use a slug of at most 53)",
    ),
    (
        "empty-project-name",
        {"project_name": ""},
        None,
        "project_name is empty: give the project a name (the slug, package, repository and image names derive from it)",
    ),
    ("blank-project-name", {"project_name": "   "}, None, "project_name is empty"),
    (
        "multi-line-description",
        {"description": "Predicts churn.\nOwned by the data team."},
        None,
        "description 'Predicts churn.\\nOwned by the data team.' has a line break: every answer is one line",
    ),
    # A trailing line break, here a carriage return, which cookiecutter's rendering of the answer turns into "\n".
    ("author-ending-in-cr", {"author_name": "Ada Lovelace\r"}, None, "author_name 'Ada Lovelace\\n' has a line break"),
    ("description-line-separator", {"description": "one\u2028two"}, None, "description 'one\\u2028two' has a line"),
    ("description-tab", {"description": "a\tb"}, None, "description 'a\\tb' holds control characters (U+0009)"),
    *[
        (
            f"template-syntax-{name}",
            {"description": "{% raw %}" + syntax + "{% endraw %}"},
            None,
            f"description {syntax!r} holds template syntax ({syntax[:2]}): cookiecutter renders answers as Jinja",
        )
        for name, syntax in [("expression", "{{ 7 * 7 }}"), ("statement", "{% if x %}"), ("comment", "{# note #}")]
    ],
    ("package-keyword", {"package_name": "class"}, None, "package_name 'class' is a Python keyword"),
    ("package-stdlib", {"package_name": "json"}, None, "package_name 'json' would shadow the standard library's"),
    ("package-own-folder", {"package_name": "tests"}, None, "package_name 'tests' would shadow the project's own"),
    *[
        (
            f"package-locked-{name}",
            {"package_name": name},
            None,
            f"package_name {name!r} would shadow the module {name!r} of {dist!r}, a distribution of the project's "
            "locked environment (uv.lock)",
        )
        # Distributions of the generated project's uv.lock (the issue's), and import names that differ from theirs.
        for name, dist in [
            ("orjson", "orjson"),
            ("uvloop", "uvloop"),
            ("joblib", "joblib"),
            ("httptools", "httptools"),
            ("boto3", "boto3"),
            ("hypothesis", "hypothesis"),
            ("yaml", "pyyaml"),
            ("sklearn", "scikit-learn"),
            ("dateutil", "python-dateutil"),
            ("typing_extensions", "typing-extensions"),
        ]
    ],
    (
        "package-too-long",
        {"package_name": "p" * 101},
        None,
        "package_name 'pppppppppppppppppppppppppppppppppppppppp'... (101 characters) is longer than 100 characters",
    ),
    (
        "package-300-characters",
        {"package_name": "p" * 300},
        None,
        "(300 characters) is longer than 100 characters",
    ),
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
    (
        "dvc-remote-ftp",
        {"dvc_remote_url": "ftp://x"},
        None,
        "dvc_remote_url 'ftp://x' is not a usable DVC remote: its scheme 'ftp' is not one of: s3, gs,",
    ),
    (
        "dvc-remote-fragment",
        {"dvc_remote_url": "s3://bucket/a#b"},
        None,
        "dvc_remote_url 's3://bucket/a#b' is not a usable DVC remote: it holds '#': DVC's config reads it as the "
        "start of a comment",
    ),
    (
        "dvc-remote-http-without-host",
        {"dvc_remote_url": "http://"},
        None,
        "dvc_remote_url 'http://' is not a usable DVC remote: it names no host (or bucket) after '://'",
    ),
    ("dvc-remote-ssh-without-host", {"dvc_remote_url": "ssh://user@"}, None, "it names no host (or bucket)"),
    ("dvc-remote-s3-without-bucket", {"dvc_remote_url": "s3:///prefix"}, None, "it names no host (or bucket)"),
    ("dvc-remote-query", {"dvc_remote_url": "s3://bucket/p?x=1"}, None, "it holds '?': a query is not part of"),
    ("dvc-remote-bad-port", {"dvc_remote_url": "https://h:99999/x"}, None, "its port is not a number from 0 to 65535"),
    (
        "dvc-remote-quote",
        {"dvc_remote_url": 'remote"dir'},
        None,
        "dvc_remote_url 'remote\"dir' holds '\"': .dvc/config (configobj) would misread it",
    ),
    ("dvc-remote-space", {"dvc_remote_url": "my remote"}, None, "dvc_remote_url 'my remote' holds ' ': .dvc/config"),
    ("dvc-remote-empty", {"dvc_remote_url": ""}, None, "dvc_remote_url is empty"),
    (
        "dvc-remote-local-hash",
        {"dvc_remote_url": "../remote#1"},
        None,
        "dvc_remote_url '../remote#1' is a local path holding '#' or ':'",
    ),
    ("dvc-remote-local-colon", {"dvc_remote_url": "s3:bucket"}, None, "dvc_remote_url 's3:bucket' is a local path"),
    (
        "mlflow-uri-quote",
        {"mlflow_tracking_uri": "https://mlflow.example.com/'x"},
        None,
        'mlflow_tracking_uri "https://mlflow.example.com/\'x" holds "\'": it is written into params.yaml and into a '
        "quoted string of release.yml",
    ),
    (
        "mlflow-uri-without-host",
        {"mlflow_tracking_uri": "https://"},
        None,
        "mlflow_tracking_uri 'https://' is not a usable tracking URI: it names no host",
    ),
    ("mlflow-uri-fragment", {"mlflow_tracking_uri": "http://mlflow:5000/#x"}, None, "it holds '#'"),
    ("mlflow-uri-query", {"mlflow_tracking_uri": "https://mlflow?token=1"}, None, "it holds '?'"),
    (
        "mlflow-uri-sqlite-memory",
        {"mlflow_tracking_uri": "sqlite://"},
        None,
        "mlflow_tracking_uri 'sqlite://' must name a file, without '?' or '#'",
    ),
    (
        "image-too-long",
        {"image_name": "ghcr.io/acme/" + "i" * 243},
        None,
        "(256 characters) is longer than the 255 characters a registry accepts",
    ),
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
    ("cloud-unknown", {"cloud": "oci"}, None, "cloud 'oci' is not supported; choose one of: none, aws, gcp, azure"),
    (
        "cloud-other-than-the-remote",
        {"cloud": "gcp", "dvc_remote_url": "s3://bucket/prefix"},
        None,
        "cloud 'gcp' does not match dvc_remote_url 's3://bucket/prefix': a s3:// remote is on aws",
    ),
    (
        "cloud-aws-with-an-azure-remote",
        {"cloud": "aws", "dvc_remote_url": "azure://container/prefix"},
        None,
        "answer cloud=azure (or none)",
    ),
]


def _prepare(tmp_path: Path, answers: dict[str, str], writer: CsvWriter | None) -> tuple[Path, dict[str, str]]:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    csv_path = inputs / "data.csv"
    if writer is not None:
        writer(csv_path)
    filled = {k: v.replace("{csv}", str(csv_path)).replace("{inputs}", str(inputs)) for k, v in answers.items()}
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


def _replay_answers(slug: str, **changes: str) -> dict[str, object]:
    """A replay file's answers: each default (a choice's first value), the slug's names, then ``changes``."""
    answers: dict[str, object] = {
        k: v[0] if isinstance(v, list) and not k.startswith("_") else v
        for k, v in template_context().items()
        if not k.startswith("__")
    }
    answers.update(
        project_slug=slug,
        package_name=slug.replace("-", "_"),
        github_repository=f"your-org/{slug}",
        dvc_remote_url=f"../{slug}-dvc-remote",
        cloud="none",  # what the default derives from that local remote
        image_name=f"ghcr.io/your-org/{slug}",
        **changes,
    )
    return answers


def test_a_replayed_choice_is_refused_by_the_hook(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """cookiecutter checks the choices it is given; a replay file's answers reach the pre-generation hook, which
    checks them against the lists of cookiecutter.json (the one place they are written)."""
    answers = _replay_answers("churn-model", task="clustering", model_family="xgboost")
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
    assert not (output / "churn-model").exists()


def test_a_300_character_name_is_refused_before_the_folder_is_made(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """The slug made from the name would be too long for a file name (an OSError when cookiecutter creates the
    folder): the answers are checked before that, and every name derived from it is named."""
    output, filled = _prepare(tmp_path, {"project_name": "N" * 300}, None)
    with pytest.raises(FailedHookException):
        bake_into(output, **filled)
    problems = [line for line in capfd.readouterr().err.splitlines() if line.startswith("  - ")]
    assert [line.split()[1] for line in problems] == ["project_slug", "package_name", "github_repository", "image_name"]
    assert "(300 characters) is 300 characters, so the Kubernetes namespace" in problems[0]
    _assert_nothing_generated(tmp_path, output)


@pytest.mark.parametrize(
    ("answer", "phrase"),
    [
        ("project_name=", "project_name is empty: give the project a name"),
        ("project_name=" + "N" * 300, "is 300 characters, so the Kubernetes namespace"),
        ("project_slug=acme/churn", "project_slug 'acme/churn' must be lowercase letters"),
        ("mlflow_tracking_uri=https://", "mlflow_tracking_uri 'https://' is not a usable tracking URI"),
    ],
    ids=["empty-name", "300-character-name", "slug-with-slash", "uri-without-host"],
)
def test_cookiecutter_command_refuses_before_any_folder(tmp_path: Path, answer: str, phrase: str) -> None:
    """The command prints the hook's message, not a traceback or cookiecutter's own error, and creates nothing."""
    (tmp_path / "inputs").mkdir()
    result = run(
        [*COOKIECUTTER, "--no-input", "--output-dir", "out", str(TEMPLATE), answer],
        cwd=tmp_path,
        check=False,
        env=project_env(PWD=str(tmp_path)),
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert phrase in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    _assert_nothing_generated(tmp_path, tmp_path / "out")


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        (
            {"description": "{{ 7 * 7 }}"},
            "description '{{ 7 * 7 }}' holds template syntax ({{): cookiecutter renders answers as Jinja, so an answer "
            "is never a template",
        ),
        (
            {"project_slug": "s" * 60},
            f"project_slug {'s' * 60!r} is 60 characters, so the Kubernetes namespace",
        ),
    ],
    ids=["template-syntax", "long-slug"],
)
def test_a_replayed_answer_is_refused_by_the_hook_and_its_folder_removed(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], changes: dict[str, str], problem: str
) -> None:
    """A replay file's answers are not rendered, so they reach only the pre-generation hook, after cookiecutter has
    created the project folder: the hook refuses them and cookiecutter removes that folder."""
    answers = _replay_answers("churn-model")
    answers.update(changes)
    replay = tmp_path / "replay.json"
    replay.write_text(json.dumps({"cookiecutter": answers}))
    output = tmp_path / "out"
    output.mkdir()
    with pytest.raises(FailedHookException):
        cookiecutter(str(TEMPLATE), replay=str(replay), output_dir=str(output))
    problems = [line for line in capfd.readouterr().err.splitlines() if line.startswith("  - ")]
    assert len(problems) == 1, problems
    assert problem in problems[0]
    assert list(output.iterdir()) == []


def test_a_failing_post_generation_step_leaves_no_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """When the post-generation hook fails (here: a broken git), cookiecutter removes the folder it created."""
    broken = tmp_path / "bin"
    broken.mkdir()
    (broken / "git").write_text("#!/bin/sh\necho 'git: broken' >&2\nexit 3\n")
    (broken / "git").chmod(0o755)
    monkeypatch.setenv("PATH", f"{broken}{os.pathsep}{os.environ['PATH']}")
    output = tmp_path / "out"
    with pytest.raises(FailedHookException, match=r"exit status"):
        bake_into(output)
    assert list(output.iterdir()) == []


def test_answers_are_rendered_as_jinja_before_the_hooks(tmp_path: Path) -> None:
    """What the README warns about: an answer given to cookiecutter is a template, evaluated before any check."""
    project = bake_into(tmp_path, description="{{ 6 * 7 }}")
    assert (project / "README.md").read_text().splitlines()[2] == "42"


def _read_remote(config: Path) -> str:
    """The default remote's URL as DVC reads it from its config file."""
    url: str = Config.load_file(str(config))["remote"]["storage"]["url"]
    return url


UNUSUAL_BUT_VALID = [
    {
        "project_slug": "a" + "b" * 49,  # 50 characters
        "package_name": "orjson_tools",  # beside a dependency's name, not equal to it
        "dvc_remote_url": "s3://bucket/prefix",
        "mlflow_tracking_uri": "https://mlflow.example.com:8443/tracking",
        "description": 'Predicts "churn" (l\'équipe données), 100% offline',
    },
    {
        "project_slug": "c" * 55,  # the longest slug whose namespace <slug>-staging is 63 characters
        "package_name": "c" * 100,
        "dvc_remote_url": "/srv/dvc-remote",
        "mlflow_tracking_uri": "postgresql+psycopg2://mlflow@db.example.com:5432/mlflow",
    },
    {
        "project_slug": "k" * 53,  # the longest with KServe's <slug>-predictor
        "deploy_target": "kserve",
        "dvc_remote_url": "gs://bucket",
        "mlflow_tracking_uri": "databricks",
    },
]


@pytest.mark.parametrize("answers", UNUSUAL_BUT_VALID, ids=["slug-50-s3-https-port", "slug-55-postgres", "kserve-53"])
def test_unusual_but_valid_answers_are_accepted_and_read_back(tmp_path: Path, answers: dict[str, str]) -> None:
    """Each is baked, and DVC's config reader (configobj), YAML and the namespaces read the answers back unchanged."""
    slug = answers["project_slug"]
    full = {
        "package_name": slug.replace("-", "_"),
        "github_repository": f"acme/{slug}",
        "image_name": f"ghcr.io/acme/{slug}",
        **answers,
    }
    project = bake_into(tmp_path, **full)
    assert project.name == slug
    assert _read_remote(project / ".dvc" / "config") == full["dvc_remote_url"]
    params = yaml.safe_load((project / "params.yaml").read_text())
    assert params["mlflow"]["tracking_uri"] == full["mlflow_tracking_uri"]
    release = yaml.safe_load((project / ".github" / "workflows" / "release.yml").read_text())
    assert f"'{full['mlflow_tracking_uri']}'" in json.dumps(release)
    namespaces = re.findall(
        r"^namespace: (\S+)$", (project / "deploy/overlays/staging/kustomization.yaml").read_text(), flags=re.MULTILINE
    )
    assert namespaces == [f"{slug}-staging"]
    assert len(namespaces[0]) <= 63
    assert (project / "src" / full["package_name"] / "__init__.py").is_file()


def test_a_hash_in_a_remote_would_be_cut_by_dvc_config(tmp_path: Path) -> None:
    """Why '#' is refused: DVC's config reader (configobj) reads it as an inline comment."""
    config = tmp_path / "config"
    config.write_text("['remote \"storage\"']\n    url = s3://bucket/a#b\n")
    assert _read_remote(config) == "s3://bucket/a"


@pytest.mark.parametrize(
    ("answers", "cloud"),
    [
        ({}, "none"),  # the default remote is a local folder
        ({"dvc_remote_url": "s3://bucket/prefix"}, "aws"),
        ({"dvc_remote_url": "gs://bucket"}, "gcp"),
        ({"dvc_remote_url": "azure://container/prefix"}, "azure"),
        ({"dvc_remote_url": "ssh://host/srv/dvc"}, "none"),
        ({"dvc_remote_url": "s3://bucket/prefix", "cloud": "none"}, "none"),  # no login: a public or unreachable remote
        ({"dvc_remote_url": "/srv/dvc-remote", "cloud": "gcp"}, "gcp"),  # the MLflow server or buckets are there
    ],
    ids=["local", "s3", "gs", "azure", "ssh", "s3-none", "local-gcp"],
)
def test_the_cloud_defaults_to_the_remotes_and_is_rendered(tmp_path: Path, answers: dict[str, str], cloud: str) -> None:
    """cloud defaults from the DVC remote's scheme; the PR workflow logs in to that cloud, or nowhere with none."""
    project = bake_into(tmp_path, **answers)
    text = (project / ".github" / "workflows" / "pr-training.yml").read_text()
    logins = {
        "aws": "aws-actions/configure-aws-credentials@",
        "gcp": "google-github-actions/auth@",
        "azure": "azure/login@",
    }
    assert {name for name, action in logins.items() if action in text} == ({cloud} - {"none"})
