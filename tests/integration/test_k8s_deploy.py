"""`crashed inference deploy` / `status` through the real kubernetes client, on a fake API server.

The fake (``tests/servers/fake_k8s.py``) stores objects, implements server-side apply and
simulates the deployment and HPA controllers; each test decides whether new pods become ready.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from tests.servers.fake_k8s import FakeK8s, write_kubeconfig
from tests.servers.procs import free_port

from crashed.adapters.local_lake import LocalLake
from crashed.cli import cli
from crashed.core.reference import empty_reference, read_reference, render_reference
from crashed.deploy import manifests

pytestmark = pytest.mark.slow  # a fake API server process (and the real client's retries)

NS = "crashed-test"
IMAGE = "registry.example.com/crashed/crashed:abc123"
DEPLOYMENT = "crashed-inference"
KINDS = [
    "ServiceAccount",
    "ConfigMap",
    "ConfigMap",
    "Service",
    "Deployment",
    "PodDisruptionBudget",
    "HorizontalPodAutoscaler",
]


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["inference", *args], catch_exceptions=False)


def deploy_cli(reference: Path, *extra: str, timeout: float = 20) -> Result:
    return run(
        "deploy",
        "--image",
        IMAGE,
        "--namespace",
        NS,
        "--reference",
        str(reference),
        "--timeout",
        str(timeout),
        *extra,
    )


def versions(k8s: FakeK8s) -> dict[str, str]:
    """``Kind/name → resourceVersion`` of everything apply manages."""
    found = {}
    for kind in sorted(set(KINDS)):
        for name, obj in k8s.objects(kind, NS).items():
            found[f"{kind}/{name}"] = obj["metadata"]["resourceVersion"]
    return found


def pod_spec(deployment: dict[str, Any]) -> dict[str, Any]:
    return deployment["spec"]["template"]["spec"]


def reference_map_name(deployment: dict[str, Any]) -> str:
    names = [v["configMap"]["name"] for v in pod_spec(deployment)["volumes"] if "configMap" in v]
    assert len(names) == 1
    return names[0]


def writes(k8s: FakeK8s) -> list[dict[str, Any]]:
    return [r for r in k8s.requests() if r["method"] not in ("GET", "HEAD")]


# -- deploy --------------------------------------------------------------------------------------


def test_first_deploy_creates_every_object_and_waits_for_ready_pods(
    k8s: FakeK8s,
    make_reference: Callable[[str], Path],
) -> None:
    reference = make_reference("run-1")

    result = deploy_cli(reference)

    assert result.exit_code == 0, result.output
    assert "deployed crashed run run-1 to crashed-test: 2/2 replicas available" in result.stdout
    assert "is up to date and available" in result.stderr
    applied = [line.split()[0] for line in result.stderr.splitlines() if line.endswith(" created")]
    assert [name.split("/")[0] for name in applied] == [kind.lower() for kind in KINDS]
    deployment = k8s.objects("Deployment", NS)[DEPLOYMENT]
    assert pod_spec(deployment)["containers"][0]["image"] == IMAGE
    assert deployment["status"]["availableReplicas"] == 2
    assert set(k8s.objects("Service", NS)) == {DEPLOYMENT}
    assert set(k8s.objects("PodDisruptionBudget", NS)) == {DEPLOYMENT}
    hpa = k8s.objects("HorizontalPodAutoscaler", NS)[DEPLOYMENT]
    assert hpa["spec"]["scaleTargetRef"]["name"] == DEPLOYMENT
    # The manifest sets no replicas; the HPA raised the new Deployment to its minimum.
    assert deployment["spec"]["replicas"] == hpa["spec"]["minReplicas"] == 2
    config_map = k8s.objects("ConfigMap", NS)[reference_map_name(deployment)]
    reference_text = render_reference(read_reference(reference))
    assert config_map["data"] == {"model-reference.json": reference_text}
    assert reference_map_name(deployment) == manifests.content_name(
        "crashed-model-reference", config_map["data"]
    )
    env = next(
        obj
        for name, obj in k8s.objects("ConfigMap", NS).items()
        if name.startswith("crashed-inference-env-")
    )
    assert env["data"]["CRASHED_PLATFORM"] == "local"
    assert "CRASHED_HOME" not in env["data"]  # the pod's own HOME/CRASHED_HOME win
    applies = [r for r in writes(k8s) if r["method"] == "PATCH"]
    assert len(applies) == len(KINDS)
    assert all(r["content_type"] == "application/apply-patch+yaml" for r in applies)
    assert all("fieldManager=crashed" in r["path"] for r in applies)


def test_a_new_reference_rolls_the_pods_and_leaves_the_rest_alone(
    k8s: FakeK8s,
    make_reference: Callable[[str], Path],
) -> None:
    assert deploy_cli(make_reference("run-1")).exit_code == 0
    before = versions(k8s)
    first = k8s.objects("Deployment", NS)[DEPLOYMENT]
    old_pods = set(k8s.objects("Pod", NS))

    result = deploy_cli(make_reference("run-2"))

    assert result.exit_code == 0, result.output
    assert "deployment/crashed-inference configured" in result.stderr
    assert "service/crashed-inference unchanged" in result.stderr
    second = k8s.objects("Deployment", NS)[DEPLOYMENT]
    assert second["metadata"]["generation"] == first["metadata"]["generation"] + 1
    assert reference_map_name(second) != reference_map_name(first)
    # Only the pod template's ConfigMap name changed in the Deployment's spec.
    first_spec = json.loads(json.dumps(first["spec"]).replace(reference_map_name(first), "X"))
    second_spec = json.loads(json.dumps(second["spec"]).replace(reference_map_name(second), "X"))
    assert first_spec == second_spec
    after = versions(k8s)
    unchanged = {key for key in before if not key.startswith("Deployment/")}
    assert {key: after[key] for key in unchanged} == {key: before[key] for key in unchanged}
    assert f"ConfigMap/{reference_map_name(second)}" not in before
    # The old ConfigMap stays (old ReplicaSets still name it); every pod is new and ready.
    assert f"ConfigMap/{reference_map_name(first)}" in after
    pods = k8s.objects("Pod", NS)
    assert len(pods) == 2 and not set(pods) & old_pods
    assert second["status"]["updatedReplicas"] == second["status"]["availableReplicas"] == 2


def test_redeploying_the_same_reference_changes_nothing(
    k8s: FakeK8s,
    make_reference: Callable[[str], Path],
) -> None:
    reference = make_reference("run-1")
    assert deploy_cli(reference).exit_code == 0
    before = versions(k8s)
    generation = k8s.objects("Deployment", NS)[DEPLOYMENT]["metadata"]["generation"]
    pods = set(k8s.objects("Pod", NS))

    result = deploy_cli(reference)

    assert result.exit_code == 0, result.output
    assert "(nothing changed)" in result.stdout
    assert result.stderr.count(" unchanged") == len(KINDS)
    assert versions(k8s) == before
    assert k8s.objects("Deployment", NS)[DEPLOYMENT]["metadata"]["generation"] == generation
    assert set(k8s.objects("Pod", NS)) == pods


def test_a_deploy_keeps_the_replicas_the_autoscaler_chose(
    k8s: FakeK8s,
    make_reference: Callable[[str], Path],
) -> None:
    assert deploy_cli(make_reference("run-1")).exit_code == 0
    k8s.control("scale", {"namespace": NS, "name": DEPLOYMENT, "replicas": 4})  # busy: 2 → 4

    result = deploy_cli(make_reference("run-2"))

    assert result.exit_code == 0, result.output
    assert "4/4 replicas available" in result.stdout
    deployment = k8s.objects("Deployment", NS)[DEPLOYMENT]
    assert deployment["spec"]["replicas"] == 4
    assert deployment["status"]["updatedReplicas"] == 4
    assert k8s.objects("HorizontalPodAutoscaler", NS)[DEPLOYMENT]["status"] == {
        "currentReplicas": 4,
        "desiredReplicas": 4,
    }


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("unready", ["Ready=False", "ContainersNotReady", "Readiness probe failed"]),
        ("crashloop", ["CrashLoopBackOff", "last exited 1"]),
    ],
)
def test_a_rollout_that_never_becomes_ready_fails_within_the_timeout(
    k8s: FakeK8s,
    make_reference: Callable[[str], Path],
    mode: str,
    expected: list[str],
) -> None:
    assert deploy_cli(make_reference("run-1")).exit_code == 0
    serving = set(k8s.objects("Pod", NS))
    k8s.pods(mode)

    started = time.monotonic()
    result = deploy_cli(make_reference("run-2"), timeout=3)
    elapsed = time.monotonic() - started

    assert result.exit_code == 3, result.output
    assert elapsed >= 3  # it waited out --timeout (a hang is left to the pytest timeout)
    assert "did not complete within 3s" in result.stderr
    assert "previous revision keep serving" in result.stderr
    new_pods = set(k8s.objects("Pod", NS)) - serving
    assert len(new_pods) == 1  # maxSurge 1: one new pod tried, ...
    assert f"pod {new_pods.pop()}" in result.stderr
    for text in expected:
        assert text in result.stderr
    assert serving <= set(k8s.objects("Pod", NS))  # ... and the old ones still serve


def test_progress_deadline_exceeded_fails_before_the_timeout(
    k8s: FakeK8s,
    make_reference: Callable[[str], Path],
) -> None:
    assert deploy_cli(make_reference("run-1")).exit_code == 0
    k8s.pods("unready")
    k8s.control("deadline", {"seconds": 1})

    result = deploy_cli(make_reference("run-2"), timeout=60)

    assert result.exit_code == 3, result.output
    assert "exceeded its progress deadline" in result.stderr
    assert "has timed out progressing" in result.stderr


def test_dry_run_prints_the_manifests_and_touches_nothing(
    k8s: FakeK8s,
    make_reference: Callable[[str], Path],
) -> None:
    result = deploy_cli(make_reference("run-1"), "--dry-run")

    assert result.exit_code == 0, result.output
    objects = list(yaml.safe_load_all(result.stdout))
    assert [obj["kind"] for obj in objects] == KINDS
    assert {obj["metadata"]["namespace"] for obj in objects} == {NS}
    assert "nothing applied" in result.stderr
    assert k8s.requests() == []


def test_dry_run_needs_no_cluster(
    make_reference: Callable[[str], Path],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    monkeypatch.setenv("CI_COMMIT_SHA", "0123abcd")

    result = run(
        "deploy",
        "--image",
        "registry.example.com/crashed",
        "--namespace",
        NS,
        "--reference",
        str(make_reference("run-1")),
        "--dry-run",
    )

    assert result.exit_code == 0, result.output
    assert "image: registry.example.com/crashed:0123abcd" in result.stdout


def test_a_reference_whose_artifacts_do_not_verify_is_refused(
    k8s: FakeK8s,
    make_reference: Callable[[str], Path],
    lake_home: LocalLake,
) -> None:
    reference = make_reference("run-1")
    model_uri = read_reference(reference).artifacts.model.uri  # type: ignore[union-attr]
    lake_home.put_bytes(model_uri, b"tampered")

    result = deploy_cli(reference)

    assert result.exit_code == 2, result.output
    assert "refusing to deploy" in result.stderr
    assert "model" in result.stderr and "expected" in result.stderr
    assert k8s.requests() == []


def test_a_reference_that_promotes_no_model_is_refused(
    k8s: FakeK8s,
    lake_home: LocalLake,
    tmp_path: Path,
) -> None:
    reference = tmp_path / "model-reference.json"
    reference.write_text(render_reference(empty_reference()), encoding="utf-8")

    result = deploy_cli(reference)

    assert result.exit_code == 4, result.output
    assert "no model has been promoted yet" in result.stderr
    assert k8s.requests() == []


# -- status and errors -------------------------------------------------------------------------


def test_status_shows_the_deployed_run_image_and_replicas(
    k8s: FakeK8s,
    make_reference: Callable[[str], Path],
) -> None:
    assert deploy_cli(make_reference("run-7")).exit_code == 0

    result = run("status", "--namespace", NS)

    assert result.exit_code == 0, result.output
    assert "crashed run run-7" in result.stdout
    assert f"image:      {IMAGE}" in result.stdout
    assert "2/2 ready" in result.stdout
    assert "rollout:    complete" in result.stdout


def test_status_without_a_deployment_says_so(k8s: FakeK8s, lake_home: LocalLake) -> None:
    result = run("status", "--namespace", NS)

    assert result.exit_code == 4
    assert "no deployment crashed-inference in namespace crashed-test" in result.stderr


def test_an_unreachable_api_server_is_one_clear_line(
    lake_home: LocalLake,
    make_reference: Callable[[str], Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path / "kubeconfig", server)))

    for args in (
        ["status", "--namespace", NS],
        ["deploy", "--namespace", NS, "--reference", str(make_reference("run-1"))],
    ):
        result = run(*args)

        assert result.exit_code == 3, result.output
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert errors == [
            f"error: cannot reach the Kubernetes API server at {server}: "
            + errors[0].split(f"{server}: ", 1)[1]
        ]
        assert "Traceback" not in result.output


@pytest.mark.parametrize("command", ["status", "deploy"])
def test_an_invalid_namespace_is_refused_before_any_request(
    k8s: FakeK8s, lake_home: LocalLake, command: str
) -> None:
    result = run(command, "--namespace", "Not_A_Label")

    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: --namespace: 'Not_A_Label'")
    assert k8s.requests() == []


def test_missing_kube_configuration_is_a_config_error(
    lake_home: LocalLake,
    make_reference: Callable[[str], Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)

    result = run("status", "--namespace", NS)

    assert result.exit_code == 2
    assert "no usable Kubernetes configuration" in result.stderr
