"""When a rollout counts as complete (the rules ``kubectl rollout status`` uses), and what is
read from a deployed Deployment."""

from __future__ import annotations

from typing import Any

import pytest

from crashed.k8s_records import DeploymentInfo, RolloutState


def deployment(generation: int = 2, **status: Any) -> dict[str, Any]:
    return {"metadata": {"generation": generation}, "spec": {"replicas": 2}, "status": status}


DONE = {
    "observedGeneration": 2,
    "replicas": 2,
    "updatedReplicas": 2,
    "readyReplicas": 2,
    "availableReplicas": 2,
}


def test_all_replicas_updated_and_available_is_complete() -> None:
    state = RolloutState.from_deployment(deployment(**DONE))
    assert state.complete
    assert state.describe() == "2/2 updated, 2/2 ready, 2/2 available"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"observedGeneration": 1}, "the controller has not seen the new spec"),
        ({"updatedReplicas": 1}, "one pod still runs the old template"),
        ({"replicas": 3}, "an old pod is still there (surge)"),
        ({"availableReplicas": 1}, "a new pod is not available yet"),
    ],
)
def test_anything_short_of_that_is_not(change: dict[str, int], reason: str) -> None:
    assert not RolloutState.from_deployment(deployment(**{**DONE, **change})).complete, reason


def test_a_fresh_deployment_without_status_is_waiting() -> None:
    state = RolloutState.from_deployment(deployment(generation=1))
    assert not state.complete
    assert state.describe() == "waiting for the controller to observe the new spec"


def test_progress_deadline_exceeded_is_reported() -> None:
    condition = {
        "type": "Progressing",
        "status": "False",
        "reason": "ProgressDeadlineExceeded",
        "message": 'ReplicaSet "x" has timed out progressing.',
    }
    state = RolloutState.from_deployment(
        deployment(**{**DONE, "updatedReplicas": 1, "conditions": [condition]})
    )
    assert state.deadline_exceeded == 'ReplicaSet "x" has timed out progressing.'
    assert "1 old pod(s) still serving" in state.describe()


def test_deployment_info_reads_images_config_map_volumes_and_state() -> None:
    live = deployment(**DONE)
    live["metadata"].update(name="crashed-inference", namespace="prod")
    live["spec"]["template"] = {
        "spec": {
            "containers": [
                {"name": "inference", "image": "r/crashed:1"},
                {"name": "sidecar", "image": "r/proxy:2"},
            ],
            "volumes": [
                {"name": "model-reference", "configMap": {"name": "crashed-model-reference-abc"}},
                {"name": "tmp", "emptyDir": {}},
            ],
        }
    }

    info = DeploymentInfo.from_deployment(live)

    assert (info.namespace, info.name) == ("prod", "crashed-inference")
    assert info.images == {"inference": "r/crashed:1", "sidecar": "r/proxy:2"}
    assert info.config_maps == {"model-reference": "crashed-model-reference-abc"}
    assert info.state == RolloutState(2, 2, 2, 2, 2, 2, 2)
