"""The Cluster port on the official ``kubernetes`` client.

Apply is **server-side apply** (``PATCH`` with ``application/apply-patch+yaml``, field manager
``crashed``, ``force=true``): one idempotent request per object that creates it when absent,
leaves it untouched (same ``resourceVersion``, same ``generation``) when nothing changed, and —
unlike a strategic-merge patch — removes fields that were dropped from the manifests. The
typed client of kubernetes 30 cannot choose that content type, so apply goes through
``ApiClient.call_api`` (same auth, TLS and kubeconfig handling); reads use the typed APIs.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from crashed.errors import ConfigError, ServiceError
from crashed.ports import Applied, DeploymentInfo, Progress, RolloutState

FIELD_MANAGER = "crashed"
API_PATHS = {
    ("v1", "ServiceAccount"): "/api/v1/namespaces/{namespace}/serviceaccounts/{name}",
    ("v1", "ConfigMap"): "/api/v1/namespaces/{namespace}/configmaps/{name}",
    ("v1", "Service"): "/api/v1/namespaces/{namespace}/services/{name}",
    ("apps/v1", "Deployment"): "/apis/apps/v1/namespaces/{namespace}/deployments/{name}",
    (
        "policy/v1",
        "PodDisruptionBudget",
    ): "/apis/policy/v1/namespaces/{namespace}/poddisruptionbudgets/{name}",
    (
        "autoscaling/v2",
        "HorizontalPodAutoscaler",
    ): "/apis/autoscaling/v2/namespaces/{namespace}/horizontalpodautoscalers/{name}",
}
_CONNECTION_ERRORS = (urllib3.exceptions.HTTPError, OSError)


class KubernetesCluster:
    """Deploys to and inspects one cluster through ``api_client``."""

    def __init__(
        self,
        api_client: client.ApiClient,
        *,
        request_timeout: float = 15.0,
        poll_interval: float = 0.5,
        max_poll_interval: float = 3.0,
    ) -> None:
        self.api = api_client
        self.core = client.CoreV1Api(api_client)
        self.apps = client.AppsV1Api(api_client)
        self.request_timeout = request_timeout
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval

    @classmethod
    def from_environment(cls, context: str | None = None, **options: Any) -> KubernetesCluster:
        """In-cluster config inside a pod, else the kubeconfig (``KUBECONFIG`` or ~/.kube)."""
        configuration = client.Configuration()
        try:
            kubeconfig = os.environ.get("KUBECONFIG")  # read now: the client reads it at import
            if os.environ.get("KUBERNETES_SERVICE_HOST") and not kubeconfig and context is None:
                config.load_incluster_config(client_configuration=configuration)
            else:
                config.load_kube_config(
                    config_file=kubeconfig or "~/.kube/config",
                    context=context,
                    client_configuration=configuration,
                )
        except (ConfigException, OSError) as error:
            raise ConfigError(
                f"no usable Kubernetes configuration ({error}); set KUBECONFIG "
                "(and --context), or run inside the cluster"
            ) from None
        configuration.retries = 2
        return cls(client.ApiClient(configuration), **options)

    @property
    def host(self) -> str:
        return str(self.api.configuration.host)

    # -- apply -----------------------------------------------------------------------------

    def apply(self, objects: Sequence[Mapping[str, Any]]) -> list[Applied]:
        return [self._apply_one(obj) for obj in objects]

    def _apply_one(self, obj: Mapping[str, Any]) -> Applied:
        kind, name = obj["kind"], obj["metadata"]["name"]
        try:
            template = API_PATHS[(obj["apiVersion"], kind)]
        except KeyError:
            raise ServiceError(
                f"cannot apply {obj['apiVersion']} {kind}: unsupported kind"
            ) from None
        path = template.format(namespace=obj["metadata"]["namespace"], name=name)
        what = f"{kind} {name}"
        before = self._call("GET", path, what, missing_ok=True)
        after = self._call(
            "PATCH",
            path,
            what,
            body=dict(obj),
            query=[("fieldManager", FIELD_MANAGER), ("force", "true")],
            content_type="application/apply-patch+yaml",
        )
        if before is None:
            action = "created"
        elif _content(before) == _content(after):
            action = "unchanged"
        else:
            action = "configured"
        return Applied(kind, name, action)

    def _call(
        self,
        method: str,
        path: str,
        what: str,
        *,
        body: Any = None,
        query: list[tuple[str, str]] | None = None,
        content_type: str | None = None,
        missing_ok: bool = False,
    ) -> dict[str, Any] | None:
        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        try:
            return self.api.call_api(
                path,
                method,
                query_params=query or [],
                header_params=headers,
                body=body,
                response_type="object",
                auth_settings=["BearerToken"],
                _return_http_data_only=True,
                _request_timeout=self.request_timeout,
            )
        except ApiException as error:
            if missing_ok and error.status == 404:
                return None
            raise self._api_error(error, f"{method} {what}") from None
        except _CONNECTION_ERRORS as error:
            raise self._unreachable(error) from None

    # -- rollout ---------------------------------------------------------------------------

    def wait_for_rollout(
        self, namespace: str, name: str, timeout: float, progress: Progress
    ) -> RolloutState:
        deadline = time.monotonic() + timeout
        interval = self.poll_interval
        last = ""
        while True:
            deployment = self._read_deployment(namespace, name)
            if deployment is None:
                raise ServiceError(f"deployment {name} disappeared from namespace {namespace}")
            state = RolloutState.from_deployment(deployment)
            line = state.describe()
            if line != last:
                progress(f"rollout: {line}")
                last = line
            if state.complete:
                progress(f"rollout: deployment/{name} is up to date and available")
                return state
            if state.deadline_exceeded:
                raise self._rollout_failed(
                    namespace,
                    deployment,
                    f"exceeded its progress deadline ({state.deadline_exceeded})",
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._rollout_failed(
                    namespace, deployment, f"did not complete within {timeout:g}s ({line})"
                )
            time.sleep(min(interval, remaining))
            interval = min(interval * 1.5, self.max_poll_interval)

    def _rollout_failed(
        self, namespace: str, deployment: Mapping[str, Any], why: str
    ) -> ServiceError:
        name = deployment["metadata"]["name"]
        lines = [
            f"rollout of deployment/{name} in namespace {namespace} {why}; the pods "
            "of the previous revision keep serving (maxUnavailable 0)"
        ]
        try:
            lines += self._pod_problems(namespace, deployment)
        except ServiceError as error:
            lines.append(f"(could not list pods: {error.message})")
        return ServiceError("\n  ".join(lines))

    def _pod_problems(self, namespace: str, deployment: Mapping[str, Any]) -> list[str]:
        labels = (deployment.get("spec", {}).get("selector") or {}).get("matchLabels") or {}
        selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        pods = self._typed(
            self.core.list_namespaced_pod, "list pods", namespace, label_selector=selector
        ).items
        events = self._typed(
            self.core.list_namespaced_event, "list events", namespace, field_selector="type=Warning"
        ).items
        name = deployment["metadata"]["name"]
        lines = []
        unready = [pod for pod in pods if not _pod_ready(pod)]
        for pod in unready[:5]:
            pod_name = pod.metadata.name
            lines.append(
                f"pod {pod_name} ({pod.status.phase or 'Unknown'}): "
                + "; ".join(_pod_conditions(pod))
            )
            lines += [f"  {text}" for text in _events_for(events, "Pod", pod_name)]
        if len(unready) > 5:
            lines.append(f"… and {len(unready) - 5} more pods not ready")
        for event in events:  # e.g. FailedCreate (quota, admission) on the ReplicaSet
            involved = event.involved_object
            if involved.kind == "ReplicaSet" and involved.name.startswith(f"{name}-"):
                lines += _events_for([event], "ReplicaSet", involved.name)
        if not pods:
            lines.append(f"no pods match {selector}")
        return lines

    # -- reads -----------------------------------------------------------------------------

    def deployment(self, namespace: str, name: str) -> DeploymentInfo | None:
        deployment = self._read_deployment(namespace, name)
        return None if deployment is None else DeploymentInfo.from_deployment(deployment)

    def config_map_data(self, namespace: str, name: str) -> dict[str, str] | None:
        found = self._call(
            "GET",
            API_PATHS[("v1", "ConfigMap")].format(namespace=namespace, name=name),
            f"ConfigMap {name}",
            missing_ok=True,
        )
        return None if found is None else dict(found.get("data") or {})

    def _read_deployment(self, namespace: str, name: str) -> dict[str, Any] | None:
        path = API_PATHS[("apps/v1", "Deployment")].format(namespace=namespace, name=name)
        return self._call("GET", path, f"Deployment {name}", missing_ok=True)

    def _typed(self, method: Any, what: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, _request_timeout=self.request_timeout, **kwargs)
        except ApiException as error:
            raise self._api_error(error, what) from None
        except _CONNECTION_ERRORS as error:
            raise self._unreachable(error) from None

    # -- errors ----------------------------------------------------------------------------

    def _unreachable(self, error: BaseException) -> ServiceError:
        reason = getattr(error, "reason", None) or error
        return ServiceError(
            f"cannot reach the Kubernetes API server at {self.host}: {_one_line(str(reason))}"
        )

    def _api_error(self, error: ApiException, what: str) -> ServiceError:
        message = error.reason or ""
        with contextlib.suppress(ValueError, AttributeError):
            message = json.loads(error.body or "{}").get("message") or message
        hint = {401: " (credentials rejected)", 403: " (not allowed: check RBAC)"}
        return ServiceError(
            f"Kubernetes API {error.status} on {what}: {_one_line(message)}"
            f"{hint.get(error.status or 0, '')}"
        )


def _content(obj: Mapping[str, Any] | None) -> tuple[Any, ...]:
    """What apply can change: everything but ``status`` and server-owned metadata."""
    obj = obj or {}
    meta = obj.get("metadata") or {}
    body = {k: v for k, v in obj.items() if k not in ("metadata", "status")}
    return body, meta.get("labels"), meta.get("annotations")


def _pod_ready(pod: Any) -> bool:
    if pod.metadata.deletion_timestamp is not None:
        return True  # terminating old pods are not the problem
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def _pod_conditions(pod: Any) -> list[str]:
    parts = []
    for condition in pod.status.conditions or []:
        if condition.status != "True":
            detail = ": ".join(x for x in (condition.reason, condition.message) if x)
            parts.append(
                f"{condition.type}={condition.status}" + (f" ({detail})" if detail else "")
            )
    for status in pod.status.container_statuses or []:
        waiting = status.state.waiting if status.state else None
        if waiting is not None:
            parts.append(
                f"container {status.name} waiting: {waiting.reason}"
                + (f" ({_one_line(waiting.message)})" if waiting.message else "")
            )
        terminated = status.last_state.terminated if status.last_state else None
        if terminated is not None:
            parts.append(
                f"container {status.name} last exited {terminated.exit_code} ({terminated.reason})"
            )
        if status.restart_count:
            parts.append(f"{status.restart_count} restarts")
    return parts or ["not ready"]


def _events_for(events: Sequence[Any], kind: str, name: str, limit: int = 3) -> list[str]:
    mine = [e for e in events if e.involved_object.kind == kind and e.involved_object.name == name]
    mine.sort(key=lambda e: str(e.last_timestamp or e.event_time or ""))
    lines = []
    for event in mine[-limit:]:
        count = f" ×{event.count}" if event.count and event.count > 1 else ""
        lines.append(f"event {event.reason}{count}: {_one_line(event.message or '')}")
    return lines


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
