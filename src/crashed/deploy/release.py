"""Deploy a verified model reference to the cluster, and report what is deployed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from crashed.core.reference import (
    PromotedReference,
    parse_reference,
    read_reference,
    render_reference,
    require_promoted,
)
from crashed.deploy import manifests
from crashed.errors import CrashedError, InputError, NotFoundError
from crashed.k8s_records import Applied, DeploymentInfo, Progress, RolloutState
from crashed.ports import Cluster, Lake
from crashed.settings import Settings
from crashed.verification import verify_contents, verify_reference

# Settings the inference pods must not inherit from the deploying environment.
_NOT_FOR_PODS = {"CRASHED_IMAGE", "K8S_NAMESPACE", "CRASHED_HOME", "CRASHED_MODEL_REFERENCE"}


@dataclass(frozen=True)
class Plan:
    """The verified reference and the objects that deploy it."""

    reference: PromotedReference
    objects: list[manifests.Manifest]
    image: str
    namespace: str


@dataclass(frozen=True)
class Deployed:
    """What a deploy did."""

    plan: Plan
    applied: list[Applied]
    state: RolloutState


@dataclass(frozen=True)
class Status:
    """The deployed service, with the model its reference ConfigMap names."""

    info: DeploymentInfo
    reference: PromotedReference | None
    problem: str | None = None

    @property
    def image(self) -> str:
        """The inference container's image."""
        return self.info.images.get(manifests.CONTAINER, "?")

    @property
    def reference_config_map(self) -> str | None:
        """The ConfigMap the pods mount as their model reference."""
        return self.info.config_maps.get(manifests.REFERENCE_VOLUME)


def pod_env(settings_env: Mapping[str, str]) -> dict[str, str]:
    """The settings the inference container needs (``Settings.pod_env()`` minus deploy-only)."""
    return {k: v for k, v in settings_env.items() if k not in _NOT_FOR_PODS}


def plan(
    reference_path: Path,
    lake: Lake,
    image: str,
    namespace: str,
    env: Mapping[str, str] | None = None,
    settings: Settings | None = None,
) -> Plan:
    """Read, check and verify the reference, then render the manifests.

    Refuses (``NotFoundError``) a reference that promotes no model, and (``InputError``) one
    whose artifacts are missing from the lake or do not match their recorded size and sha256 —
    and, given ``settings``, whose artifacts lie outside the model's prefix or are not what
    they claim (``crashed models verify``'s checks: a swapped model never reaches a pod).
    """
    source = str(reference_path)
    reference = require_promoted(read_reference(reference_path), source)
    checks = (
        verify_contents(reference, lake, settings)
        if settings is not None
        else verify_reference(reference, lake)
    )
    failed = [check for check in checks if not check.ok]
    if failed:
        details = "; ".join(f"{c.name} ({c.uri}): {c.problem}" for c in failed)
        raise InputError(f"refusing to deploy {source}: artifacts failed verification: {details}")
    objects = manifests.render(image, namespace, render_reference(reference), env)
    return Plan(reference, objects, image, namespace)


def deploy(plan: Plan, cluster: Cluster, timeout: float, progress: Progress) -> Deployed:
    """Apply the plan's objects, then wait (up to ``timeout`` s) for the rollout."""
    applied = cluster.apply(plan.objects)
    for item in applied:
        progress(str(item))
    state = cluster.wait_for_rollout(plan.namespace, manifests.DEPLOYMENT, timeout, progress)
    return Deployed(plan, applied, state)


def status(cluster: Cluster, namespace: str) -> Status:
    """The deployed inference service; ``NotFoundError`` when nothing is deployed."""
    info = cluster.deployment(namespace, manifests.DEPLOYMENT)
    if info is None:
        raise NotFoundError(
            f"no deployment {manifests.DEPLOYMENT} in namespace {namespace} "
            "(run `crashed inference deploy`)"
        )
    name = info.config_maps.get(manifests.REFERENCE_VOLUME)
    if name is None:
        return Status(info, None, "the pod template mounts no model reference ConfigMap")
    data = cluster.config_map_data(namespace, name)
    if data is None or manifests.REFERENCE_KEY not in data:
        return Status(info, None, f"ConfigMap {name} is missing")
    try:
        reference = require_promoted(parse_reference(data[manifests.REFERENCE_KEY], name), name)
    except CrashedError as error:
        return Status(info, None, error.message)
    return Status(info, reference)
