"""The Cluster port (what deploying needs from Kubernetes) and the values it returns.

The adapter is :class:`crashed.adapters.k8s_cluster.KubernetesCluster`; the rollout rules
(:meth:`RolloutState.complete`) live here so they can be tested without a cluster.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

Action = Literal["created", "configured", "unchanged"]


@dataclass(frozen=True)
class Applied:
    """What applying one object did."""

    kind: str
    name: str
    action: Action

    def __str__(self) -> str:
        return f"{self.kind.lower()}/{self.name} {self.action}"


@dataclass(frozen=True)
class RolloutState:
    """A Deployment's rollout progress, read from its ``metadata`` and ``status``."""

    generation: int
    observed_generation: int
    desired: int
    replicas: int
    updated: int
    ready: int
    available: int
    deadline_exceeded: str | None = None

    @classmethod
    def from_deployment(cls, deployment: Mapping[str, Any]) -> RolloutState:
        """Build from a Deployment as JSON (camelCase keys, as the API returns it)."""
        status = deployment.get("status") or {}
        spec = deployment.get("spec") or {}
        exceeded = None
        for condition in status.get("conditions") or []:
            if (
                condition.get("type") == "Progressing"
                and condition.get("reason") == "ProgressDeadlineExceeded"
            ):
                exceeded = condition.get("message") or "ProgressDeadlineExceeded"
        return cls(
            generation=int(deployment.get("metadata", {}).get("generation") or 0),
            observed_generation=int(status.get("observedGeneration") or 0),
            desired=int(spec.get("replicas", 1)),
            replicas=int(status.get("replicas") or 0),
            updated=int(status.get("updatedReplicas") or 0),
            ready=int(status.get("readyReplicas") or 0),
            available=int(status.get("availableReplicas") or 0),
            deadline_exceeded=exceeded,
        )

    @property
    def observed(self) -> bool:
        """The controller has seen the latest spec."""
        return self.observed_generation >= self.generation

    @property
    def complete(self) -> bool:
        """Every replica runs the new template and is available; no old pod is left."""
        return (
            self.observed
            and self.updated == self.desired
            and self.replicas == self.desired
            and self.available == self.desired
        )

    def describe(self) -> str:
        """One line: ``2/2 updated, 1/2 available, 3 pods (old pods terminating)``."""
        if not self.observed:
            return "waiting for the controller to observe the new spec"
        text = (
            f"{self.updated}/{self.desired} updated, {self.ready}/{self.desired} ready, "
            f"{self.available}/{self.desired} available"
        )
        if self.replicas > self.updated:
            text += f", {self.replicas - self.updated} old pod(s) still serving"
        return text


@dataclass(frozen=True)
class DeploymentInfo:
    """What is deployed: image, model reference ConfigMap, rollout state."""

    namespace: str
    name: str
    image: str
    reference_config_map: str | None
    state: RolloutState
    conditions: Sequence[str] = field(default_factory=tuple)


Progress = Callable[[str], None]


@runtime_checkable
class Cluster(Protocol):
    """A Kubernetes cluster, seen from the inference service's deployment."""

    def apply(self, objects: Sequence[Mapping[str, Any]]) -> list[Applied]:
        """Create or update each object (idempotent: an unchanged object stays untouched)."""
        ...

    def wait_for_rollout(
        self, namespace: str, name: str, timeout: float, progress: Progress
    ) -> RolloutState:
        """Wait until the Deployment's rollout completes, reporting progress lines.

        Raises :class:`crashed.errors.ServiceError` on timeout or ProgressDeadlineExceeded,
        naming the pods that are not ready, their conditions and recent warning events.
        """
        ...

    def deployment(self, namespace: str, name: str) -> DeploymentInfo | None:
        """The Deployment's image, reference ConfigMap and state; ``None`` if absent."""
        ...

    def config_map_data(self, namespace: str, name: str) -> dict[str, str] | None:
        """A ConfigMap's ``data``; ``None`` if absent."""
        ...
