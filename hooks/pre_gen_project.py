"""Validate every answer before anything is generated.

All problems are reported together in one message. This script runs twice: while cookiecutter renders the answers,
before it creates the project folder (``answer_guard.py``, so a refusal leaves nothing behind, not even an empty
folder), and again as the pre-generation hook, which also sees a replay file's answers.
"""

from __future__ import annotations

import json
import keyword
import os
import re
import sys
import unicodedata
import urllib.parse
from pathlib import Path

REMOTE_SCHEMES = ("s3", "gs", "azure", "ssh", "hdfs", "webdav", "webdavs", "http", "https")
# The clouds whose official login action the workflows can run (by OIDC), each with its DVC remote's URL scheme.
CLOUDS = {"none": None, "aws": "s3", "gcp": "gs", "azure": "azure"}
TRACKING_SCHEMES = ("sqlite", "file", "http", "https", "databricks", "postgresql", "mysql")
# Names the generated project itself uses at its root or that tools resolve as top-level modules.
TAKEN = {"tests", "src", "test", "scripts", "conftest", "deploy", "data"}
# Import names of the locked distributions that differ from the distribution's own name (pip's top-level modules,
# read from each installed distribution's RECORD). The distribution names themselves come from uv.lock at bake time.
IMPORT_NAMES = {
    "antlr4_python3_runtime": ("antlr4",), "atpublic": ("public",), "attrs": ("attr",), "azure_core": ("azure",),
    "azure_identity": ("azure",), "azure_storage_blob": ("azure",), "brotli": ("_brotli",), "cffi": ("_cffi_backend",),
    "cfn_lint": ("cfnlint",), "configobj": ("validate",), "databricks_sdk": ("databricks",), "flufl_lock": ("flufl",),
    "fonttools": ("fonttools",), "gitpython": ("git",), "google_api_core": ("google",), "google_auth": ("google",),
    "google_cloud_core": ("google",), "google_cloud_storage": ("google",), "googleapis_common_protos": ("google",),
    "graphene": ("examples",), "graphql_core": ("graphql",), "grpc_google_iam_v1": ("google",), "grpcio": ("grpc",),
    "grpcio_status": ("grpc_status",), "grpcio_tools": ("grpc_tools",), "hydra_core": ("hydra",),
    "hypothesis": ("_hypothesis_ftz_detector", "_hypothesis_globals", "_hypothesis_pytestplugin"),
    "import_linter": ("importlinter",), "markdown_it_py": ("markdown_it",), "matplotlib": ("mpl_toolkits", "pylab"),
    "mlflow_skinny": ("mlflow",), "mlflow_tracing": ("mlflow",), "mypy": ("mypyc",), "omegaconf": ("pydevd_plugins",),
    "opentelemetry_api": ("opentelemetry",), "opentelemetry_proto": ("opentelemetry",),
    "opentelemetry_sdk": ("opentelemetry",), "opentelemetry_semantic_conventions": ("opentelemetry",),
    "pillow": ("pil",), "proto_plus": ("proto",), "protobuf": ("google",), "pyjwt": ("jwt",),
    "pytest": ("_pytest", "py"), "pytest_xdist": ("xdist",), "python_dateutil": ("dateutil",),
    "python_dotenv": ("dotenv",), "python_multipart": ("multipart",), "python_rapidjson": ("rapidjson",),
    "pywin32": ("win32", "win32api", "win32com", "win32con", "pythoncom", "pywintypes"), "pyyaml": ("yaml", "_yaml"),
    "rpds_py": ("rpds",), "ruamel_yaml": ("ruamel",), "scikit_learn": ("sklearn",), "setuptools": ("_distutils_hack",
    "pkg_resources"), "sympy": ("isympy",), "tritonclient": ("tritonclientutils", "tritongrpcclient",
    "tritonhttpclient", "tritonshmutils"), "websocket_client": ("websocket",), "zc_lockfile": ("zc",),
    "zope_event": ("zope",), "zope_interface": ("zope",),
}

SLUG = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
PACKAGE = re.compile(r"^[a-z][a-z0-9_]*$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
REPOSITORY = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")
IMAGE = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)+$")
# A Kubernetes name made from the slug (a namespace, a Service) is a DNS label: at most 63 characters.
DNS_LABEL = 63
MAX_PACKAGE = 100  # it names src/<package>/, the CLI command and files under it: far below a file name's 255 bytes
MAX_IMAGE = 255  # the longest repository name a container registry accepts (the distribution spec)
# Jinja's opening delimiters, written in two parts so that rendering this file leaves them alone.
TEMPLATE_SYNTAX = ("{" + "{", "{" + "%", "{" + "#")
# Characters no URL or path answer may hold: they end a value in .dvc/config (configobj), params.yaml or a GitHub
# expression string in release.yml, or they are not part of a URL at all.
UNSAFE_IN_URL = set("'\"`\\{}<>^|") | {" "}

# Every answer, passed as one JSON string so no value can break this script's syntax.
ANSWERS = {k: str(v) for k, v in json.loads({{ cookiecutter | tojson | tojson }}).items()}
REPO_DIR = Path(json.loads({{ cookiecutter._repo_dir | tojson | tojson }}))
# The allowed values of each choice answer (python_version, license, task, model_family, deploy_target), the first
# one the default: the lists of the template's own cookiecutter.json, the one place they are written.
CONTEXT_FILE = REPO_DIR / "cookiecutter.json"
CHOICES = {key: tuple(str(v) for v in values)
           for key, values in json.loads(CONTEXT_FILE.read_text(encoding="utf-8")).items()
           if isinstance(values, list) and not key.startswith("_")}
# The generated project's lock file: every distribution its environment installs.
LOCK_FILE = REPO_DIR / {% raw %}"{{cookiecutter.project_slug}}"{% endraw %} / "uv.lock"


def invocation_dir() -> Path:
    """Where cookiecutter was started: hooks run inside the new project, so relative paths resolve against PWD."""
    return Path(os.environ.get("PWD") or os.getcwd())


def show(value: str) -> str:
    """An answer as a message quotes it: its repr, a long one cut to its first 40 characters plus its length."""
    return repr(value) if len(value) <= 60 else f"{value[:40]!r}... ({len(value)} characters)"


def check_text(a: dict[str, str]) -> list[str]:
    """Every answer is one line of plain text: no line break, no control character, no template syntax.

    cookiecutter renders each answer as Jinja before any hook runs, so an expression in an answer has already run
    by now; the template syntax still seen here (a replay file's answers are not rendered; a raw block leaves its
    content) would be rendered again by whatever reads the generated files as a template.
    """
    errors = []
    for key, value in a.items():
        if key.startswith("_"):
            continue
        if len(value.splitlines()) > 1 or value.endswith(("\n", "\r")):
            errors.append(f"{key} {show(value)} has a line break: every answer is one line (it lands in TOML, YAML "
                          "and shell files)")
        elif control := sorted({f"U+{ord(c):04X}" for c in value if unicodedata.category(c) == "Cc"}):
            errors.append(f"{key} {show(value)} holds control characters ({', '.join(control)})")
        if syntax := [s for s in TEMPLATE_SYNTAX if s in value]:
            errors.append(f"{key} {show(value)} holds template syntax ({', '.join(syntax)}): cookiecutter renders "
                          "answers as Jinja, so an answer is never a template")
    return errors


def locked_modules() -> dict[str, str]:
    """Every module name the generated project's locked environment installs -> the distribution that installs it.

    The distribution names are read from the project's uv.lock (normalised: lowercase, '-' and '.' as '_'), plus
    the import names of IMPORT_NAMES where a distribution's module is named otherwise (scikit-learn: sklearn).
    """
    modules: dict[str, str] = {}
    for name in re.findall(r'^name = "([^"{}]+)"$', LOCK_FILE.read_text(encoding="utf-8"), flags=re.MULTILINE):
        dist = re.sub(r"[-_.]+", "_", name).lower()
        for module in (dist, *IMPORT_NAMES.get(dist, ())):
            modules.setdefault(module, name)
    return modules


def kubernetes_names(slug: str, deploy_target: str) -> list[tuple[str, str]]:
    """The longest Kubernetes names made from the slug, each a DNS label: what each one is, and the name."""
    names = [("the Kubernetes namespace", f"{slug}-staging")]  # -dev, -prod, -canary are shorter
    if deploy_target == "kserve":
        names.append(("KServe's Service", f"{slug}-predictor"))
    return names


def check_names(a: dict[str, str]) -> list[str]:
    """Slug, package, author and repository answers."""
    errors = []
    slug = a["project_slug"]
    if not SLUG.match(slug):
        errors.append(f"project_slug {show(slug)} must be lowercase letters, digits and single dashes, starting with "
                      "a letter (no spaces, slashes or '..')")
    else:
        for what, name in kubernetes_names(slug, a["deploy_target"]):
            if len(name) > DNS_LABEL:
                errors.append(f"project_slug {show(slug)} is {len(slug)} characters, so {what} {show(name)} would be "
                              f"{len(name)}: a Kubernetes name is a DNS label of at most {DNS_LABEL} characters "
                              f"(use a slug of at most {DNS_LABEL - len(name) + len(slug)})")
                break
    errors += check_package(a["package_name"])
    if not EMAIL.match(a["author_email"]):
        errors.append(f"author_email {show(a['author_email'])} is not an e-mail address")
    if not REPOSITORY.match(a["github_repository"]):
        errors.append(f"github_repository {show(a['github_repository'])} must be owner/name")
    return errors


def check_package(package: str) -> list[str]:
    """A lowercase identifier of a sane length that shadows no module the project imports."""
    if not PACKAGE.match(package):
        return [f"package_name {show(package)} is not a lowercase Python identifier (letters, digits, '_')"]
    if len(package) > MAX_PACKAGE:
        return [f"package_name {show(package)} is longer than {MAX_PACKAGE} characters: it names the src/ folder, the "
                "CLI command and the files under them"]
    if keyword.iskeyword(package) or keyword.issoftkeyword(package):
        return [f"package_name {show(package)} is a Python keyword"]
    if package in sys.stdlib_module_names:
        return [f"package_name {show(package)} would shadow the standard library's module of the same name; pick "
                "another"]
    if package in TAKEN:
        return [f"package_name {show(package)} would shadow the project's own {package}/ folder; pick another"]
    dist = locked_modules().get(package)
    if dist is not None:
        return [f"package_name {show(package)} would shadow the module {package!r} of {dist!r}, a distribution of the "
                "project's locked environment (uv.lock); pick another"]
    return []


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
    (post_gen_project.py), by the generated project's own CSV reader, so that the bake and the pipeline agree.

    A template update (the project's scripts/template_update.py sets TEMPLATE_UPDATE=1) renders the recorded answers
    without the data, which is the project's own by then: the file given at the bake need not exist where it runs."""
    if a["dataset"] == "embedded" or os.environ.get("TEMPLATE_UPDATE") == "1":
        return []
    path = invocation_dir() / Path(a["dataset"]).expanduser()
    if not path.is_file():
        return [f"dataset {a['dataset']!r} is neither 'embedded' nor an existing CSV file"]
    if not a["target_column"]:
        return [f"target_column is required with your own dataset ({path})"]
    return []


def url_problem(uri: str, schemes: tuple[str, ...]) -> str | None:
    """Why a ``scheme://host/path`` location does not read back the same through urllib.parse, or None.

    The scheme (before any '+driver') must be one of ``schemes``; the location has a host or bucket (a valid port if
    any) and a path, and nothing after them: a query ('?') or fragment ('#') is dropped or misread by DVC's and
    MLflow's clients, so the parts (scheme, '://', host, path) must rebuild the whole string.
    """
    parts = urllib.parse.urlsplit(uri)
    if parts.scheme.split("+", 1)[0] not in schemes:
        return f"its scheme {parts.scheme!r} is not one of: {', '.join(schemes)}"
    if "#" in uri:
        return "it holds '#': DVC's config reads it as the start of a comment and MLflow as a fragment, cutting it"
    if "?" in uri:
        return "it holds '?': a query is not part of a remote or tracking location"
    if not parts.hostname:
        return "it names no host (or bucket) after '://'"
    try:
        parts.port  # noqa: B018 -- reading it checks it
    except ValueError:
        return "its port is not a number from 0 to 65535"
    if f"{parts.scheme}://{parts.netloc}{parts.path}" != uri:
        return f"it does not read back unchanged (urllib.parse reads {parts.scheme}://{parts.netloc}{parts.path})"
    return None


def unsafe_characters(value: str) -> str | None:
    """The characters a location may not hold (quotes, braces, backslash, spaces, control characters), or None."""
    found = sorted({c for c in value if c in UNSAFE_IN_URL or c.isspace() or unicodedata.category(c) == "Cc"})
    return ", ".join(repr(c) for c in found) or None


def check_remote(remote: str) -> str | None:
    """A DVC remote: a ``scheme://bucket-or-host/path`` URL, or a local folder (relative to the project)."""
    if not remote:
        return "dvc_remote_url is empty"
    if bad := unsafe_characters(remote):
        return (f"dvc_remote_url {show(remote)} holds {bad}: .dvc/config (configobj) would misread it; a remote has "
                "no quotes, braces, backslashes or spaces")
    if "://" in remote:
        problem = url_problem(remote, REMOTE_SCHEMES)
        return None if problem is None else f"dvc_remote_url {show(remote)} is not a usable DVC remote: {problem}"
    if "#" in remote or ":" in remote:
        return (f"dvc_remote_url {show(remote)} is a local path holding '#' or ':': DVC's config reads '#' as a "
                "comment and 'name:' as a URL scheme; use a plain path or scheme://...")
    return None


def check_tracking_uri(uri: str) -> str | None:
    """An MLflow tracking URI: a local store (sqlite:///path, file:path), a server (http(s)://host), a database
    (postgresql://host/db, mysql://...), or databricks."""
    if bad := unsafe_characters(uri):
        return (f"mlflow_tracking_uri {show(uri)} holds {bad}: it is written into params.yaml and into a quoted "
                "string of release.yml, which it would break")
    if uri == "databricks":
        return None
    scheme = urllib.parse.urlsplit(uri).scheme
    if scheme.split("+", 1)[0] not in TRACKING_SCHEMES:
        return f"mlflow_tracking_uri {show(uri)} must start with one of: {', '.join(TRACKING_SCHEMES)}"
    if scheme in ("sqlite", "file"):
        if "#" in uri or "?" in uri or not urllib.parse.urlsplit(uri).path.strip("/"):
            return (f"mlflow_tracking_uri {show(uri)} must name a file, without '?' or '#' (e.g. sqlite:///mlflow.db, "
                    "file:///srv/mlruns)")
        return None
    problem = url_problem(uri, TRACKING_SCHEMES)
    return None if problem is None else f"mlflow_tracking_uri {show(uri)} is not a usable tracking URI: {problem}"


def check_cloud(a: dict[str, str]) -> list[str]:
    """The cloud the workflows log in to: one of CLOUDS, and not another cloud than the DVC remote's.

    A remote of no cloud (a local folder, ssh, http) goes with any cloud (its MLflow server or buckets may be there),
    and ``none`` with any remote (the workflows then log in nowhere: a public remote, or one CI does not reach).
    """
    cloud, remote = a["cloud"], a["dvc_remote_url"]
    if cloud not in CLOUDS:
        return [f"cloud {show(cloud)} is not supported; choose one of: {', '.join(CLOUDS)}"]
    scheme = remote.split("://", 1)[0] if "://" in remote else ""
    owner = next((name for name, s in CLOUDS.items() if s is not None and s == scheme), None)
    if cloud != "none" and owner is not None and owner != cloud:
        return [f"cloud {cloud!r} does not match dvc_remote_url {show(remote)}: a {scheme}:// remote is on {owner}, so "
                f"the workflows would log in to {cloud} and still get no credentials for the remote; answer "
                f"cloud={owner} (or none)"]
    return []


def check_locations(a: dict[str, str]) -> list[str]:
    """DVC remote, MLflow tracking URI and image name."""
    errors = [e for e in (check_remote(a["dvc_remote_url"]), check_tracking_uri(a["mlflow_tracking_uri"])) if e]
    image = a["image_name"]
    if not IMAGE.match(image):
        errors.append(f"image_name {show(image)} must be a lowercase registry/name without tag or digest, "
                      "e.g. ghcr.io/owner/name")
    elif len(image) > MAX_IMAGE:
        errors.append(f"image_name {show(image)} is longer than the {MAX_IMAGE} characters a registry accepts")
    return errors


def problems(a: dict[str, str]) -> list[str]:
    """Every problem of the answers. An empty project name is the one problem: the other names derive from it."""
    if not a["project_name"].strip():
        return ["project_name is empty: give the project a name (the slug, package, repository and image names "
                "derive from it)"]
    return (check_text(a) + check_names(a) + check_choices(a) + check_dataset(a) + check_locations(a)
            + check_cloud(a))


def main() -> int:
    """Print every problem at once; exit 1 if there is any."""
    errors = problems(ANSWERS)
    if errors:
        print("error: the template answers are invalid:", file=sys.stderr)
        for error in errors:
            print(f"  - {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
