"""Validate every answer before anything is generated.

All problems are reported together in one message, and cookiecutter removes the half-made folder when this exits
non-zero, so a bad answer never leaves anything behind.
"""

from __future__ import annotations

import json
import keyword
import os
import re
import sys
from pathlib import Path

REMOTE_SCHEMES = ("s3", "gs", "azure", "ssh", "hdfs", "webdav", "webdavs", "http", "https")
TRACKING_SCHEMES = ("sqlite", "file", "http", "https", "databricks", "postgresql", "mysql")
# Names that would shadow the standard library or a dependency of the generated project.
TAKEN = {"dvc", "mlflow", "sklearn", "skl2onnx", "onnx", "onnxruntime", "pandas", "numpy", "yaml", "pydantic",
         "pyarrow", "scipy", "matplotlib", "pytest", "tests", "src", "test"}

SLUG = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
PACKAGE = re.compile(r"^[a-z][a-z0-9_]*$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
REPOSITORY = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")
IMAGE = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)+$")

# Every answer, passed as one JSON string so no value can break this script's syntax.
ANSWERS = {k: str(v) for k, v in json.loads({{ cookiecutter | tojson | tojson }}).items()}
# The allowed values of each choice answer (python_version, license, task, model_family, deploy_target), the first
# one the default: the lists of the template's own cookiecutter.json, the one place they are written.
CONTEXT_FILE = Path(json.loads({{ cookiecutter._repo_dir | tojson | tojson }})) / "cookiecutter.json"
CHOICES = {key: tuple(str(v) for v in values)
           for key, values in json.loads(CONTEXT_FILE.read_text(encoding="utf-8")).items()
           if isinstance(values, list) and not key.startswith("_")}


def invocation_dir() -> Path:
    """Where cookiecutter was started: hooks run inside the new project, so relative paths resolve against PWD."""
    return Path(os.environ.get("PWD") or os.getcwd())


def check_names(a: dict[str, str]) -> list[str]:
    """Name, slug, package, author and repository answers."""
    errors = []
    if not a["project_name"].strip():
        errors.append("project_name is empty")
    if not SLUG.match(a["project_slug"]) or len(a["project_slug"]) > 64:
        errors.append(f"project_slug {a['project_slug']!r} must be lowercase letters, digits and single dashes, "
                      "starting with a letter, at most 64 characters (no spaces, slashes or '..')")
    package = a["package_name"]
    if not PACKAGE.match(package):
        errors.append(f"package_name {package!r} is not a lowercase Python identifier (letters, digits, '_')")
    elif keyword.iskeyword(package) or keyword.issoftkeyword(package):
        errors.append(f"package_name {package!r} is a Python keyword")
    elif package in sys.stdlib_module_names or package in TAKEN:
        errors.append(f"package_name {package!r} would shadow the module of the same name; pick another")
    if not EMAIL.match(a["author_email"]):
        errors.append(f"author_email {a['author_email']!r} is not an e-mail address")
    if not REPOSITORY.match(a["github_repository"]):
        errors.append(f"github_repository {a['github_repository']!r} must be owner/name")
    return errors


def check_choices(a: dict[str, str]) -> list[str]:
    """Answers that must be one of a fixed set (cookiecutter checks those it is given; a replay file's are not)."""
    errors = []
    for key, allowed in CHOICES.items():
        if a[key] not in allowed:
            errors.append(f"{key} {a[key]!r} is not supported; choose one of: {', '.join(allowed)}")
    if a["include_deploy"] not in ("True", "False"):
        errors.append(f"include_deploy {a['include_deploy']!r} must be yes or no")
    elif a["include_deploy"] == "False" and a["deploy_target"] != CHOICES["deploy_target"][0]:
        errors.append(f"deploy_target {a['deploy_target']!r} needs include_deploy=yes: without deploy files there is "
                      "nothing to deploy")
    return errors


def check_dataset(a: dict[str, str]) -> list[str]:
    """The embedded sample, or an existing file and a target column. What the file holds is checked after rendering
    (post_gen_project.py), by the generated project's own CSV reader, so that the bake and the pipeline agree."""
    if a["dataset"] == "embedded":
        return []
    path = invocation_dir() / Path(a["dataset"]).expanduser()
    if not path.is_file():
        return [f"dataset {a['dataset']!r} is neither 'embedded' nor an existing CSV file"]
    if not a["target_column"]:
        return [f"target_column is required with your own dataset ({path})"]
    return []


def check_locations(a: dict[str, str]) -> list[str]:
    """DVC remote, MLflow tracking URI and image name."""
    errors = []
    remote = a["dvc_remote_url"]
    scheme = remote.split("://", 1)[0] if "://" in remote else None
    if not remote.strip() or any(c.isspace() for c in remote):
        errors.append(f"dvc_remote_url {remote!r} is empty or contains spaces")
    elif scheme is not None and scheme not in REMOTE_SCHEMES:
        errors.append(f"dvc_remote_url scheme {scheme!r} is not a DVC remote ({', '.join(REMOTE_SCHEMES)})")
    uri = a["mlflow_tracking_uri"]
    if uri.split(":", 1)[0].split("+", 1)[0] not in TRACKING_SCHEMES or any(c.isspace() for c in uri):
        errors.append(f"mlflow_tracking_uri {uri!r} must start with one of: {', '.join(TRACKING_SCHEMES)}")
    if not IMAGE.match(a["image_name"]):
        errors.append(f"image_name {a['image_name']!r} must be a lowercase registry/name without tag or digest, "
                      "e.g. ghcr.io/owner/name")
    return errors


def main() -> int:
    """Print every problem at once; exit 1 if there is any."""
    errors = check_names(ANSWERS) + check_choices(ANSWERS) + check_dataset(ANSWERS) + check_locations(ANSWERS)
    if errors:
        print("error: the template answers are invalid:", file=sys.stderr)
        for error in errors:
            print(f"  - {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
