"""The kustomize base in ``k8s/`` and its Python renderer (``crashed.deploy.manifests``).

Every rendered object is validated against the real Kubernetes schemas (strict: unknown
fields fail) of the newest version ``kubernetes-validate`` ships, and the Python renderer is
compared with ``kubectl kustomize`` on the overlay that does what ``crashed inference deploy``
does (image, namespace, reference, settings env): the same objects, except for the generated
ConfigMaps' name suffix (kustomize hashes its own way; we name them by the sha256 of their data).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import latest_version

from crashed.adapters.k8s_cluster import API_PATHS
from crashed.deploy import manifests
from crashed.deploy.manifests import ImageRef, image_for_commit, render
from crashed.errors import ConfigError, InputError

ROOT = Path(__file__).resolve().parents[3]
K8S = ROOT / "k8s"
KUBECTL = shutil.which("kubectl")
needs_kubectl = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")
REFERENCE = (
    json.dumps({"schema_version": 1, "status": "promoted", "note": "<a & b> é"}, indent=2) + "\n"
)


def kustomize(directory: Path) -> list[dict[str, Any]]:
    done = subprocess.run(
        [str(KUBECTL), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def without_suffixes(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``objects`` with generated ConfigMap names reduced to their generator name, sorted."""
    text = re.sub(
        r"\b(crashed-model-reference|crashed-inference-env)-[a-z0-9]{10}\b",
        r"\1",
        json.dumps(objects),
    )
    return sorted(json.loads(text), key=lambda o: (o["kind"], o["metadata"]["name"]))


def sha256_name(name: str, data: dict[str, str]) -> str:
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return f"{name}-{hashlib.sha256(canonical.encode()).hexdigest()[:10]}"


def validate_all(objects: list[dict[str, Any]]) -> None:
    version = latest_version()
    for obj in objects:
        kubernetes_validate.validate(obj, version, strict=True)  # raises on any problem


@pytest.fixture(scope="module")
def base_objects() -> list[dict[str, Any]]:
    if KUBECTL is None:
        pytest.skip("kubectl is not installed")
    return kustomize(K8S)


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    return render(
        "registry.example.com/g/crashed:abc123",
        "prod",
        REFERENCE,
        {"CRASHED_PLATFORM": "gcp", "LAKE_BUCKET": "crashed-lake"},
    )


def deployment_of(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return manifests.find(objects, "Deployment", manifests.DEPLOYMENT)


# -- the base, as kubectl renders it ------------------------------------------------------------


@needs_kubectl
def test_every_object_of_the_base_validates_strictly(base_objects: list[dict[str, Any]]) -> None:
    kinds = sorted(obj["kind"] for obj in base_objects)
    assert kinds == [
        "ConfigMap",
        "ConfigMap",
        "Deployment",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "Service",
        "ServiceAccount",
    ]
    validate_all(base_objects)


@needs_kubectl
def test_the_rollout_never_drops_below_the_desired_replicas(
    base_objects: list[dict[str, Any]],
) -> None:
    spec = deployment_of(base_objects)["spec"]
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    pdb = manifests.find(base_objects, "PodDisruptionBudget")
    hpa = manifests.find(base_objects, "HorizontalPodAutoscaler")["spec"]
    assert pdb["spec"]["minAvailable"] == 1 < hpa["minReplicas"]
    assert pdb["spec"]["selector"] == spec["selector"]


@needs_kubectl
def test_the_autoscaler_owns_the_replicas_and_scales_on_cpu(
    base_objects: list[dict[str, Any]],
) -> None:
    deployment = deployment_of(base_objects)
    hpa = manifests.find(base_objects, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": deployment["apiVersion"],
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 10)
    assert hpa["spec"]["metrics"] == [
        {
            "type": "Resource",
            "resource": {
                "name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 70},
            },
        }
    ]
    # Re-applying the Deployment must not reset what the HPA scaled it to.
    assert "replicas" not in deployment["spec"]
    # Utilisation is relative to the request: every container must request CPU.
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert all(c["resources"]["requests"]["cpu"] for c in containers)


@needs_kubectl
def test_readiness_and_liveness_are_different_probes(base_objects: list[dict[str, Any]]) -> None:
    container = deployment_of(base_objects)["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert {"name": "http", "containerPort": 8000, "protocol": "TCP"} in container["ports"]
    assert container["args"] == ["inference", "start-prod", "--bind", "0.0.0.0:8000"]
    assert set(container["resources"]) == {"requests", "limits"}


@needs_kubectl
def test_the_pod_runs_locked_down(base_objects: list[dict[str, Any]]) -> None:
    pod = deployment_of(base_objects)["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    env = {e["name"]: e.get("value") for e in container["env"]}
    # Every writable path is an emptyDir: /tmp and HOME (which holds CRASHED_HOME's cache).
    assert "emptyDir" in volumes[mounts["/tmp"]]
    assert "emptyDir" in volumes[mounts[env["HOME"]]]
    assert env["CRASHED_HOME"].startswith(env["HOME"] + "/")
    assert env["WEB_CONCURRENCY"] == "2"
    reference_dir = env["CRASHED_MODEL_REFERENCE"].rsplit("/", 1)[0]
    assert volumes[mounts[reference_dir]]["configMap"]["name"].startswith(
        "crashed-model-reference-"
    )


@needs_kubectl
def test_the_service_targets_the_named_port(base_objects: list[dict[str, Any]]) -> None:
    service = manifests.find(base_objects, "Service")
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}
    ]
    labels = deployment_of(base_objects)["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()


def test_the_deployer_role_allows_exactly_what_deploy_and_status_do() -> None:
    role = yaml.safe_load((K8S / "deployer-role.yaml").read_text(encoding="utf-8"))
    validate_all([role])
    granted = {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    needed = {("", "pods", "list"), ("", "events", "list")}
    for path in API_PATHS.values():  # every kind the adapter applies: read, then apply
        parts = path.split("/")
        group = "" if parts[1] == "api" else parts[2]
        needed |= {(group, parts[-2], verb) for verb in ("get", "create", "patch")}
    assert granted == needed


# -- the Python renderer -----------------------------------------------------------------------


def test_rendered_objects_validate_strictly(rendered: list[dict[str, Any]]) -> None:
    validate_all(rendered)
    assert [obj["kind"] for obj in rendered] == [
        "ServiceAccount",
        "ConfigMap",
        "ConfigMap",
        "Service",
        "Deployment",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
    ]  # apply order: the ConfigMaps exist before the pods need them
    assert {obj["metadata"]["namespace"] for obj in rendered} == {"prod"}


@needs_kubectl
def test_renderer_matches_kubectl_kustomize_of_the_deploy_overlay(
    tmp_path: Path,
    rendered: list[dict[str, Any]],
) -> None:
    shutil.copytree(K8S, tmp_path / "base")
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "model-reference.json").write_text(REFERENCE, encoding="utf-8")
    (overlay / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "resources": ["../base"],
                "namespace": "prod",
                "images": [
                    {
                        "name": "registry.gitlab.com/crashed/crashed",
                        "newName": "registry.example.com/g/crashed",
                        "newTag": "abc123",
                    }
                ],
                "configMapGenerator": [
                    {
                        "name": "crashed-model-reference",
                        "behavior": "replace",
                        "files": ["model-reference.json"],
                    },
                    {
                        "name": "crashed-inference-env",
                        "behavior": "merge",
                        "literals": ["CRASHED_PLATFORM=gcp", "LAKE_BUCKET=crashed-lake"],
                    },
                ],
            }
        ),
        encoding="utf-8",
    )

    assert without_suffixes(rendered) == without_suffixes(kustomize(overlay))


@needs_kubectl
def test_renderer_matches_kubectl_kustomize_of_the_base(base_objects: list[dict[str, Any]]) -> None:
    placeholder = (K8S / "model-reference.placeholder.json").read_text(encoding="utf-8")
    ours = render("registry.gitlab.com/crashed/crashed:latest", "crashed", placeholder)
    assert without_suffixes(ours) == without_suffixes(base_objects)


def test_the_reference_configmap_is_named_by_the_sha256_of_its_data(
    rendered: list[dict[str, Any]],
) -> None:
    name = sha256_name("crashed-model-reference", {"model-reference.json": REFERENCE})
    reference_map = manifests.find(rendered, "ConfigMap", name)
    assert reference_map["data"] == {"model-reference.json": REFERENCE}
    pod = deployment_of(rendered)["spec"]["template"]["spec"]
    assert {"name": "model-reference", "configMap": {"name": name}} in pod["volumes"]
    env = manifests.find(rendered, "ConfigMap")
    assert env["metadata"]["name"] == sha256_name("crashed-inference-env", env["data"])


def test_the_reference_configmap_name_changes_only_with_the_reference() -> None:
    def reference_name(objects: list[dict[str, Any]]) -> str:
        volumes = deployment_of(objects)["spec"]["template"]["spec"]["volumes"]
        return next(v["configMap"]["name"] for v in volumes if v["name"] == "model-reference")

    first = render("r/crashed:1", "ns", REFERENCE)
    assert render("r/crashed:1", "ns", REFERENCE) == first  # deterministic
    for other in (
        render("r/crashed:2", "ns", REFERENCE),
        render("r/crashed:1", "other", REFERENCE),
        render("r/crashed:1", "ns", REFERENCE, {"LAKE_BUCKET": "b"}),
    ):
        assert reference_name(other) == reference_name(first)

    second = render("r/crashed:1", "ns", REFERENCE.replace("promoted", "promoted "))
    changed = [
        (b["kind"], b["metadata"]["name"]) for a, b in zip(first, second, strict=True) if a != b
    ]
    assert changed == [("ConfigMap", reference_name(second)), ("Deployment", "crashed-inference")]
    assert reference_name(second) != reference_name(first)


def test_settings_env_is_merged_into_the_env_configmap(rendered: list[dict[str, Any]]) -> None:
    env = manifests.find(rendered, "ConfigMap")
    assert env["metadata"]["name"].startswith("crashed-inference-env-")
    assert env["data"] == {
        "CRASHED_PLATFORM": "gcp",
        "CRASHED_MODEL_NAME": "crashed",
        "LAKE_BUCKET": "crashed-lake",
    }
    container = deployment_of(rendered)["spec"]["template"]["spec"]["containers"][0]
    assert container["envFrom"] == [{"configMapRef": {"name": env["metadata"]["name"]}}]
    assert container["image"] == "registry.example.com/g/crashed:abc123"


def test_yaml_output_round_trips(rendered: list[dict[str, Any]]) -> None:
    text = manifests.to_yaml(rendered)
    assert list(yaml.safe_load_all(text)) == rendered
    assert "model-reference.json: |" in text


def test_packaged_assets_are_the_k8s_directory() -> None:
    packaged = manifests.assets()
    for path in K8S.iterdir():
        assert (packaged / path.name).read_bytes() == path.read_bytes(), path.name


def test_unsupported_kustomize_features_are_refused(tmp_path: Path) -> None:
    for path in K8S.iterdir():
        shutil.copy(path, tmp_path / path.name)
    kustomization = yaml.safe_load((tmp_path / "kustomization.yaml").read_text())
    kustomization["namePrefix"] = "x-"
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    with pytest.raises(ConfigError, match="namePrefix"):
        manifests.load_base(tmp_path)


@pytest.mark.parametrize("namespace", ["Not_A_Label", "-x", "a" * 64, ""])
def test_invalid_namespace_is_refused(namespace: str) -> None:
    with pytest.raises(InputError):
        render("r/crashed:1", namespace, REFERENCE)


@pytest.mark.parametrize(
    ("image", "sha", "expected"),
    [
        ("registry.gitlab.com/g/crashed", "abc123", "registry.gitlab.com/g/crashed:abc123"),
        ("localhost:5000/crashed", "abc123", "localhost:5000/crashed:abc123"),
        ("registry.gitlab.com/g/crashed:v1", "abc123", "registry.gitlab.com/g/crashed:v1"),
        ("r/crashed@sha256:" + "a" * 64, "abc123", "r/crashed@sha256:" + "a" * 64),
        ("registry.gitlab.com/g/crashed", None, "registry.gitlab.com/g/crashed"),
    ],
)
def test_image_is_tagged_with_the_commit_only_when_untagged(
    image: str,
    sha: str | None,
    expected: str,
) -> None:
    assert image_for_commit(image, sha) == expected


@pytest.mark.parametrize("image", ["", "a b", "r/crashed:", "r/crashed@"])
def test_invalid_images_are_refused(image: str) -> None:
    with pytest.raises(InputError):
        ImageRef.parse(image)
