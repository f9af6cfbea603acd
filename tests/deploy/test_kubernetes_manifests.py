"""deploy/k8s: schema-valid offline (kubernetes-validate), wired together, and KServe-complete."""

from __future__ import annotations

import re
from typing import Any

import kubernetes_validate
import pytest
from dockerfile_model import parse
from image_process import CPU_DOCKERFILE, DEPLOY
from kustomize_lite import Manifest, apply_json_patch, build

K8S = DEPLOY / "k8s"
KUBERNETES_VERSIONS = ["1.29.0", "1.37.0"]
"""The oldest version still commonly run, and the newest whose schemas kubernetes-validate ships."""
CUSTOM_RESOURCES = {"PodMonitor", "InferenceService", "ServingRuntime"}
"""Not in the Kubernetes schemas; checked field by field below."""
KSERVE_PREDICTORS = {"model", "containers", "sklearn", "xgboost", "tensorflow", "pytorch", "triton", "onnx",
                     "huggingface", "pmml", "lightgbm", "paddle", "workerSpec"}  # fmt: skip
DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def _validate(manifest: Manifest, version: str) -> str | None:
    """The first schema error, or None; strict: unknown fields (typos) are errors too."""
    try:
        kubernetes_validate.validate(manifest, version, strict=True)
    except kubernetes_validate.ValidationError as error:
        path = ".".join(str(p) for p in error.path)
        return f"{manifest['kind']}/{manifest['metadata']['name']}: {path}: {error.message}"
    return None


def _one(manifests: list[Manifest], kind: str) -> Manifest:
    found = [m for m in manifests if m["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def _as_pod(containers: list[dict[str, Any]]) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "check"},
        "spec": {"containers": containers},
    }


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return selector.items() <= labels.items()


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


@pytest.fixture(scope="module")
def base() -> list[Manifest]:
    return build(K8S / "base")


@pytest.fixture(scope="module")
def gpu() -> list[Manifest]:
    return build(K8S / "overlays" / "gpu")


@pytest.fixture(scope="module")
def kserve() -> list[Manifest]:
    return build(K8S / "kserve")


@pytest.fixture(scope="module")
def kserve_grpc() -> list[Manifest]:
    return build(K8S / "kserve-grpc")


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("variant", ["base", "overlays/gpu", "kserve", "kserve-grpc"])
def test_manifests_validate_against_kubernetes_schemas(variant: str, version: str) -> None:
    manifests = build(K8S / variant)
    assert manifests, f"{variant} builds to nothing"
    errors = [_validate(m, version) for m in manifests if m["kind"] not in CUSTOM_RESOURCES]
    assert [e for e in errors if e] == []


def test_schema_validation_rejects_a_misspelled_field(base: list[Manifest]) -> None:
    deployment = apply_json_patch(
        _one(base, "Deployment"),
        [{"op": "add", "path": "/spec/template/spec/terminationGracePeriod", "value": 5}],
    )
    assert _validate(deployment, KUBERNETES_VERSIONS[-1]) is not None


def test_base_holds_deployment_service_hpa_pdb_and_podmonitor(base: list[Manifest]) -> None:
    kinds = sorted(m["kind"] for m in base)
    assert kinds == sorted(
        ["Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "PodMonitor"]
    )


def test_deployment_probes_health_endpoints_on_its_port(base: list[Manifest]) -> None:
    pod = _one(base, "Deployment")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert container["readinessProbe"]["grpc"] == {"port": ports["grpc"], "service": "readiness"}
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    for probe in ("livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["port"] in ports, probe
    assert _env(container)["NNSERVE_PORT"] == str(ports["http"])
    assert _env(container)["NNSERVE_GRPC_PORT"] == str(ports["grpc"]) == "8001"
    assert _env(container)["NNSERVE_HOST"] == "0.0.0.0"


def test_deployment_runs_non_root_with_limits_and_graceful_termination(base: list[Manifest]) -> None:
    pod = _one(base, "Deployment")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    image_user = parse(CPU_DOCKERFILE)[-1].user() or "0"
    image_uid = int(image_user.split(":")[0])
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == image_uid
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    for section in ("requests", "limits"):
        assert {"cpu", "memory"} <= container["resources"][section].keys(), section
    pause = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert pod["terminationGracePeriodSeconds"] >= pause + 30
    # A Service named nnserve injects NNSERVE_PORT=tcp://... into pods unless links are off.
    assert pod["enableServiceLinks"] is False
    threads = _env(container)["NNSERVE_INTRA_OP_THREADS"]["resourceFieldRef"]
    assert (threads["resource"], threads["containerName"]) == ("limits.cpu", container["name"])


def test_service_hpa_pdb_and_podmonitor_select_the_deployment(base: list[Manifest]) -> None:
    deployment = _one(base, "Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    port_names = {p["name"] for p in deployment["spec"]["template"]["spec"]["containers"][0]["ports"]}
    service = _one(base, "Service")
    assert _matches(service["spec"]["selector"], pod_labels)
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names
    hpa = _one(base, "HorizontalPodAutoscaler")["spec"]
    target = hpa["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == ("apps/v1", "Deployment", "nnserve")
    assert 1 <= hpa["minReplicas"] <= hpa["maxReplicas"]
    assert _matches(_one(base, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"], pod_labels)
    monitor = _one(base, "PodMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert _matches(monitor["spec"]["selector"]["matchLabels"], pod_labels)
    endpoints = monitor["spec"]["podMetricsEndpoints"]
    assert endpoints and all(e["port"] in port_names and e["path"] == "/metrics" for e in endpoints)
    # The selector is a standard LabelSelector: validate it as one.
    as_pdb = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "check"},
              "spec": {"selector": monitor["spec"]["selector"], "maxUnavailable": 1}}  # fmt: skip
    assert _validate(as_pdb, KUBERNETES_VERSIONS[-1]) is None


def test_gpu_overlay_requests_one_gpu_and_prefers_cuda(gpu: list[Manifest]) -> None:
    pod = _one(gpu, "Deployment")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert container["image"].endswith(":gpu")
    assert _env(container)["NNSERVE_PROVIDERS"].split(",")[0] == "cuda"
    assert any(t["key"] == "nvidia.com/gpu" for t in pod["tolerations"])
    hpa, pdb = _one(gpu, "HorizontalPodAutoscaler")["spec"], _one(gpu, "PodDisruptionBudget")["spec"]
    if hpa["minReplicas"] == 1:
        assert "minAvailable" not in pdb, "minAvailable: 1 with one replica blocks every node drain"


def test_inferenceservice_has_the_fields_kserve_requires(kserve: list[Manifest]) -> None:
    service = _one(kserve, "InferenceService")
    assert service["apiVersion"] == "serving.kserve.io/v1beta1"
    assert DNS_1035.match(service["metadata"]["name"]), "KServe names must be DNS-1035 labels"
    predictor = service["spec"]["predictor"]
    implementations = KSERVE_PREDICTORS & predictor.keys()
    assert implementations == {"model"}, f"exactly one predictor implementation, got {implementations}"
    model = predictor["model"]
    assert model["modelFormat"]["name"]
    assert model["protocolVersion"] == "v2"
    assert predictor["minReplicas"] <= predictor["maxReplicas"]
    assert predictor["scaleMetric"] in {"cpu", "memory", "concurrency", "rps"}
    resources = {"name": "check", "image": "check", "resources": model["resources"]}
    assert _validate(_as_pod([resources]), KUBERNETES_VERSIONS[-1]) is None


def test_servingruntime_runs_the_image_with_the_v2_protocol(
    kserve: list[Manifest], base: list[Manifest]
) -> None:
    service = _one(kserve, "InferenceService")["spec"]["predictor"]["model"]
    runtime = _one(kserve, "ServingRuntime")
    assert runtime["apiVersion"] == "serving.kserve.io/v1alpha1"
    assert runtime["metadata"]["name"] == service["runtime"]
    formats = {(f["name"], f.get("version")) for f in runtime["spec"]["supportedModelFormats"]}
    assert (service["modelFormat"]["name"], service["modelFormat"].get("version")) in formats
    assert service["protocolVersion"] in runtime["spec"]["protocolVersions"]
    containers = runtime["spec"]["containers"]
    assert [c["name"] for c in containers] == ["kserve-container"]
    assert _validate(_as_pod(containers), KUBERNETES_VERSIONS[-1]) is None
    container = containers[0]
    assert (
        container["image"] == _one(base, "Deployment")["spec"]["template"]["spec"]["containers"][0]["image"]
    )
    assert _env(container)["NNSERVE_PORT"] == str(container["ports"][0]["containerPort"]) == "8080"
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["securityContext"]["runAsNonRoot"] is True


def test_service_exposes_grpc_as_h2c(base: list[Manifest]) -> None:
    ports = {p["name"]: p for p in _one(base, "Service")["spec"]["ports"]}
    assert (ports["grpc"]["port"], ports["grpc"]["appProtocol"]) == (8001, "kubernetes.io/h2c")


def test_kserve_grpc_routes_and_probes_the_runtimes_grpc_port(
    kserve_grpc: list[Manifest], kserve: list[Manifest]
) -> None:
    model = _one(kserve_grpc, "InferenceService")["spec"]["predictor"]["model"]
    runtime = _one(kserve, "ServingRuntime")["spec"]["containers"][0]
    assert model["runtime"] == runtime_name(kserve)
    assert [(p["name"], p["containerPort"]) for p in model["ports"]] == [("h2c", 8001)]
    assert model["readinessProbe"]["grpc"]["port"] == int(_env(runtime)["NNSERVE_GRPC_PORT"]) == 8001
    container = {"name": "check", "image": "check", "ports": model["ports"], "readinessProbe": model["readinessProbe"]}
    assert _validate(_as_pod([container]), KUBERNETES_VERSIONS[-1]) is None


def runtime_name(kserve: list[Manifest]) -> str:
    name: str = _one(kserve, "ServingRuntime")["metadata"]["name"]
    return name
