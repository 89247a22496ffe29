"""The values the Cluster port (:class:`crashed.ports.Cluster`) exchanges; stdlib only.

Neutral ground between ``deploy`` (which decides what to apply) and the Kubernetes adapter
(which applies it): the rollout rules (:attr:`RolloutState.complete`, those ``kubectl rollout
status`` uses) and the reading of a Deployment live here, testable without a cluster.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Action = Literal["created", "configured", "unchanged"]
Progress = Callable[[str], None]
"""Receives one human-readable progress line at a time."""


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
        """One line: ``2/2 updated, 1/2 ready, 1/2 available, 1 old pod(s) still serving``."""
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
    """A deployed Deployment: its containers' images, ConfigMap volumes and rollout state."""

    namespace: str
    name: str
    images: Mapping[str, str]
    """Container name → image."""
    config_maps: Mapping[str, str]
    """Pod volume name → the ConfigMap it mounts."""
    state: RolloutState
    conditions: Sequence[str] = field(default_factory=tuple)

    @classmethod
    def from_deployment(cls, deployment: Mapping[str, Any]) -> DeploymentInfo:
        """Build from a Deployment as JSON (as the API returns it)."""
        meta = deployment.get("metadata") or {}
        pod_spec = ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
        conditions = tuple(
            f"{c.get('type')}={c.get('status')} ({c.get('reason', '')}: {c.get('message', '')})"
            for c in (deployment.get("status") or {}).get("conditions") or []
        )
        return cls(
            namespace=str(meta.get("namespace", "")),
            name=str(meta.get("name", "")),
            images={c["name"]: c.get("image", "?") for c in pod_spec.get("containers", [])},
            config_maps={
                v["name"]: v["configMap"]["name"]
                for v in pod_spec.get("volumes", [])
                if (v.get("configMap") or {}).get("name")
            },
            state=RolloutState.from_deployment(deployment),
            conditions=conditions,
        )
