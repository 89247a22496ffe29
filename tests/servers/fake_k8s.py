"""A small, stateful fake of the Kubernetes API server, for the deploy adapter's tests.

Run it as ``python -m tests.servers.fake_k8s --port P [--token T]``; clients must send
``Authorization: Bearer T``. Every namespace exists.

What it serves (JSON; ``/api/v1/namespaces/:ns/…`` and ``/apis/:group/:version/namespaces/:ns/…``):

* ``configmaps``, ``services``, ``serviceaccounts``, ``pods``, ``events`` (core v1),
  ``deployments``, ``replicasets`` (apps/v1), ``poddisruptionbudgets`` (policy/v1),
  ``horizontalpodautoscalers`` (autoscaling/v2)
* collection ``GET`` (``labelSelector``: ``k=v``, ``k!=v``, ``k``, ``!k``; ``fieldSelector``:
  ``dotted.path=v`` / ``!=``) and ``POST`` (create, 409 when present)
* item ``GET``, ``PUT`` (replace; 409 on a stale ``resourceVersion``), ``DELETE`` and ``PATCH``:
  ``application/apply-patch+yaml`` is server-side apply for a single field manager (the applied
  labels, annotations and top-level sections replace the live ones; server-set fields such as
  a Service's ``clusterIP`` or the Deployment revision annotation survive, and so does a
  Deployment's ``spec.replicas`` when the applied object omits it (the HPA owns it); requires
  ``fieldManager``), ``merge-patch+json`` and ``strategic-merge-patch+json`` are both applied
  as an RFC 7386 JSON merge patch. A write that changes nothing keeps ``resourceVersion``;
  ``metadata.generation`` of a Deployment grows only when its ``spec`` changes.
* ``GET /version``

A deployment controller runs before every request: each pod template gets a ReplicaSet
(``<name>-<hash>``, revision annotation), pods are created and old ones removed following the
``RollingUpdate`` strategy (``maxSurge``/``maxUnavailable``), and the status (observedGeneration,
replicas, updated/ready/available, ``Available``/``Progressing`` conditions including
``ProgressDeadlineExceeded``) follows. An HPA controller runs first: it keeps the replicas of the
Deployment an HPA targets within ``minReplicas``..``maxReplicas`` (there are no metrics, so it
never scales further) and sets the HPA's status. Whether new pods become ready is up to the test:

* ``POST /__control__/pods`` ``{"mode": "ready" | "unready" | "crashloop", "ready_after": 0.2}``
  — pods created from now on become ready after ``ready_after`` s, fail their readiness probe
  (``Ready=False``, ``Unhealthy`` warning events), or crash-loop (``CrashLoopBackOff``).
* ``POST /__control__/deadline`` ``{"seconds": 1.5}`` — override ``progressDeadlineSeconds``
  (``null`` restores the spec's value).
* ``POST /__control__/scale`` ``{"namespace": …, "name": …, "replicas": 4}`` — scale a
  Deployment as the HPA controller would on high load (bounded by its HPA, if any).
* ``GET /__control__/state`` — every object by kind and ``namespace/name``, and the log of API
  requests served (method, path, content type, status).
* ``POST /__control__/reset`` — empty cluster, pods ready after 0.2 s, no deadline override.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import itertools
import json
import math
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

DEFAULT_TOKEN = "fake-k8s-token"
Obj = dict[str, Any]

# (group, version, plural) → kind, and which kinds carry metadata.generation.
RESOURCES = {
    ("", "v1", "configmaps"): "ConfigMap",
    ("", "v1", "services"): "Service",
    ("", "v1", "serviceaccounts"): "ServiceAccount",
    ("", "v1", "pods"): "Pod",
    ("", "v1", "events"): "Event",
    ("apps", "v1", "deployments"): "Deployment",
    ("apps", "v1", "replicasets"): "ReplicaSet",
    ("policy", "v1", "poddisruptionbudgets"): "PodDisruptionBudget",
    ("autoscaling", "v2", "horizontalpodautoscalers"): "HorizontalPodAutoscaler",
}
GENERATION_KINDS = {"Deployment", "ReplicaSet", "PodDisruptionBudget", "HorizontalPodAutoscaler"}
SERVER_ANNOTATION_PREFIXES = ("deployment.kubernetes.io/",)


class ApiError(Exception):
    """An answer with a ``Status`` body."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message

    def response(self) -> Response:
        body = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        return _json(body, self.code)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class PodSim:
    """What the fake kubelet does with one pod (not part of the API object)."""

    created: float
    mode: str
    ready_after: float


@dataclass
class FakeCluster:
    """The WSGI application: objects, the controller and the control endpoints."""

    token: str = DEFAULT_TOKEN
    lock: threading.RLock = field(default_factory=threading.RLock)

    def __post_init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.objects: dict[str, dict[tuple[str, str], Obj]] = {
                kind: {} for kind in RESOURCES.values()
            }
            self.counter = itertools.count(1000)
            self.ips = itertools.count(10)
            self.pods: dict[tuple[str, str], PodSim] = {}
            self.progress: dict[tuple[str, str], float] = {}
            self.new_ready: dict[tuple[str, str], int] = {}
            self.mode, self.ready_after = "ready", 0.2
            self.deadline: float | None = None
            self.requests: list[dict[str, Any]] = []

    # -- WSGI --------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        try:
            response = self.dispatch(request)
        except ApiError as error:
            response = error.response()
        if not request.path.startswith("/__control__"):
            with self.lock:
                self.requests.append(
                    {
                        "method": request.method,
                        "path": request.full_path.rstrip("?"),
                        "content_type": request.content_type,
                        "status": response.status_code,
                    }
                )
        return response(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        segments = [s for s in request.path.split("/") if s]
        if segments and segments[0] == "__control__":
            return self.control(request, segments[1:])
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            raise ApiError(401, "Unauthorized", "Unauthorized")
        if segments == ["version"]:
            return _json({"major": "1", "minor": "33", "gitVersion": "v1.33.0-fake"})
        group, version, rest = _split_api(segments)
        if len(rest) < 3 or rest[0] != "namespaces":
            raise ApiError(404, "NotFound", f"the server could not find {request.path}")
        namespace, plural, tail = rest[1], rest[2], rest[3:]
        kind = RESOURCES.get((group, version, plural))
        if kind is None:
            raise ApiError(
                404,
                "NotFound",
                f"the server could not find the requested resource "
                f"({group or 'core'}/{version} {plural})",
            )
        api_version = f"{group}/{version}" if group else version
        with self.lock:
            self.reconcile()
            if not tail:
                return self.collection(request, kind, api_version, namespace)
            if len(tail) == 1 or (len(tail) == 2 and tail[1] == "status"):
                return self.item(request, kind, api_version, namespace, tail[0])
        raise ApiError(404, "NotFound", f"the server could not find {request.path}")

    # -- REST ----------------------------------------------------------------------------------

    def collection(self, request: Request, kind: str, api_version: str, namespace: str) -> Response:
        store = self.objects[kind]
        if request.method == "GET":
            labels = _label_matcher(request.args.get("labelSelector", ""))
            fields = _field_matcher(request.args.get("fieldSelector", ""))
            items = [
                copy.deepcopy(obj)
                for (ns, _), obj in sorted(store.items())
                if ns == namespace and labels(obj) and fields(obj)
            ]
            return _json(
                {
                    "kind": f"{kind}List",
                    "apiVersion": api_version,
                    "metadata": {"resourceVersion": str(next(self.counter))},
                    "items": items,
                }
            )
        if request.method == "POST":
            body = _body(request)
            name = _check_body(body, kind, api_version, namespace)
            if (namespace, name) in store:
                raise ApiError(409, "AlreadyExists", f'{kind.lower()}s "{name}" already exists')
            return _json(self.create(kind, namespace, body), 201)
        raise ApiError(405, "MethodNotAllowed", f"{request.method} is not allowed here")

    def item(
        self, request: Request, kind: str, api_version: str, namespace: str, name: str
    ) -> Response:
        store = self.objects[kind]
        live = store.get((namespace, name))
        if request.method == "GET":
            if live is None:
                raise _not_found(kind, name)
            return _json(copy.deepcopy(live))
        if request.method == "DELETE":
            if live is None:
                raise _not_found(kind, name)
            self.delete(kind, namespace, name)
            return _json({"kind": "Status", "apiVersion": "v1", "status": "Success"})
        if request.method == "PUT":
            body = _body(request)
            _check_body(body, kind, api_version, namespace, name)
            if live is None:
                raise _not_found(kind, name)
            wanted = body["metadata"].get("resourceVersion")
            if wanted and wanted != live["metadata"]["resourceVersion"]:
                raise ApiError(
                    409,
                    "Conflict",
                    f"Operation cannot be fulfilled on {kind} "
                    f'"{name}": the object has been modified',
                )
            new = copy.deepcopy(body)
            new["metadata"] = {**live["metadata"], **body["metadata"]}
            new["status"] = live.get("status", {})
            return _json(self.update(kind, live, new))
        if request.method == "PATCH":
            content_type = request.content_type or ""
            if content_type.startswith("application/apply-patch+yaml"):
                if not request.args.get("fieldManager"):
                    raise ApiError(
                        400, "BadRequest", "PATCH /apply requests require a fieldManager"
                    )
                body = _body(request, as_yaml=True)
                _check_body(body, kind, api_version, namespace, name)
                if live is None:
                    return _json(self.create(kind, namespace, body), 201)
                return _json(self.update(kind, live, _server_side_apply(live, body)))
            if content_type.startswith(
                ("application/merge-patch+json", "application/strategic-merge-patch+json")
            ):
                if live is None:
                    raise _not_found(kind, name)
                new = _merge_patch(copy.deepcopy(live), _body(request))
                new["metadata"]["name"], new["metadata"]["namespace"] = name, namespace
                return _json(self.update(kind, live, new))
            raise ApiError(
                415,
                "UnsupportedMediaType",
                f"the fake does not support PATCH with {content_type!r}",
            )
        raise ApiError(405, "MethodNotAllowed", f"{request.method} is not allowed here")

    def create(self, kind: str, namespace: str, body: Obj) -> Obj:
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        meta.update(
            namespace=namespace,
            uid=str(uuid.uuid4()),
            creationTimestamp=_now(),
            resourceVersion=str(next(self.counter)),
        )
        if kind in GENERATION_KINDS:
            meta["generation"] = 1
            obj.setdefault("status", {})
        _default(kind, obj, None, self)
        self.objects[kind][(namespace, meta["name"])] = obj
        if kind == "Deployment":
            self.reconcile()
        return copy.deepcopy(self.objects[kind][(namespace, meta["name"])])

    def update(self, kind: str, live: Obj, new: Obj) -> Obj:
        _default(kind, new, live, self)
        for key in (
            "uid",
            "creationTimestamp",
            "resourceVersion",
            "generation",
            "namespace",
            "name",
        ):
            if key in live["metadata"]:
                new["metadata"][key] = live["metadata"][key]
        if _without_version(new) == _without_version(live):
            return copy.deepcopy(live)  # a no-op write changes nothing
        if kind in GENERATION_KINDS and new.get("spec") != live.get("spec"):
            new["metadata"]["generation"] = live["metadata"].get("generation", 1) + 1
        new["metadata"]["resourceVersion"] = str(next(self.counter))
        key = (live["metadata"]["namespace"], live["metadata"]["name"])
        self.objects[kind][key] = new
        if kind == "Deployment":
            self.reconcile()
        return copy.deepcopy(self.objects[kind][key])

    def delete(self, kind: str, namespace: str, name: str) -> None:
        self.objects[kind].pop((namespace, name), None)
        if kind == "Pod":
            self.pods.pop((namespace, name), None)
        for child_kind in ("ReplicaSet", "Pod"):  # cascade to owned objects
            for (ns, child), obj in list(self.objects[child_kind].items()):
                owners = obj["metadata"].get("ownerReferences", [])
                if ns == namespace and any(o["kind"] == kind and o["name"] == name for o in owners):
                    self.delete(child_kind, ns, child)

    # -- the deployment controller and kubelet ---------------------------------------------

    def reconcile(self) -> None:
        now = time.monotonic()
        for hpa in list(self.objects["HorizontalPodAutoscaler"].values()):
            self._autoscale(hpa)
        for (namespace, name), pod in list(self.objects["Pod"].items()):
            self._kubelet(namespace, name, pod, now)
        for key, deployment in list(self.objects["Deployment"].items()):
            self._rollout(key, deployment, now)

    def _autoscale(self, hpa: Obj) -> None:
        """What the HPA controller does without metrics: clamp the target's replicas."""
        spec, namespace = hpa["spec"], hpa["metadata"]["namespace"]
        target = spec["scaleTargetRef"]
        deployment = self.objects["Deployment"].get((namespace, target["name"]))
        if target.get("kind") != "Deployment" or deployment is None:
            return
        current = int(deployment["spec"].get("replicas", 1))
        wanted = min(max(current, int(spec.get("minReplicas", 1))), int(spec["maxReplicas"]))
        if wanted != current:
            self._scale(deployment, wanted)
        status = {"currentReplicas": current, "desiredReplicas": wanted}
        if hpa.get("status") != status:
            hpa["status"] = status
            hpa["metadata"]["resourceVersion"] = str(next(self.counter))

    def _scale(self, deployment: Obj, replicas: int) -> None:
        """A write through the scale subresource: new replicas, a new generation."""
        deployment["spec"]["replicas"] = replicas
        meta = deployment["metadata"]
        meta["generation"] = meta.get("generation", 1) + 1
        meta["resourceVersion"] = str(next(self.counter))

    def _rollout(self, key: tuple[str, str], deployment: Obj, now: float) -> None:
        namespace, name = key
        spec = deployment["spec"]
        desired = int(spec.get("replicas", 1))
        rolling = (spec.get("strategy") or {}).get("rollingUpdate") or {}
        surge = _scaled(rolling.get("maxSurge", "25%"), desired, math.ceil)
        unavailable = _scaled(rolling.get("maxUnavailable", "25%"), desired, math.floor)
        if surge == 0 and unavailable == 0:
            unavailable = 1
        template_hash = _hash(spec["template"])[:10]
        new_rs = f"{name}-{template_hash}"
        replica_sets = self._owned("ReplicaSet", namespace, "Deployment", name)
        annotations = deployment["metadata"].setdefault("annotations", {})
        if new_rs not in replica_sets:
            revision = 1 + max(
                (
                    int(
                        rs["metadata"]
                        .get("annotations", {})
                        .get("deployment.kubernetes.io/revision", "0")
                    )
                    for rs in replica_sets.values()
                ),
                default=0,
            )
            self._new_replica_set(deployment, new_rs, template_hash, revision)
            annotations["deployment.kubernetes.io/revision"] = str(revision)
            self.progress[key] = now
            replica_sets = self._owned("ReplicaSet", namespace, "Deployment", name)
        for _ in range(4 * (desired + surge) + 4):
            pods = {rs: self._owned("Pod", namespace, "ReplicaSet", rs) for rs in replica_sets}
            new = pods.get(new_rs, {})
            old = {p: pod for rs, owned in pods.items() if rs != new_rs for p, pod in owned.items()}
            ready_new = [p for p, pod in new.items() if _ready(pod)]
            ready_old = [p for p, pod in old.items() if _ready(pod)]
            total = len(new) + len(old)
            if unready_old := [p for p in old if p not in ready_old]:
                self.delete("Pod", namespace, unready_old[0])
            elif len(new) > desired:
                extra = sorted(new, key=lambda p: p in ready_new)[0]
                self.delete("Pod", namespace, extra)
            elif (
                old
                and len(ready_new) + len(ready_old) - 1 >= desired - unavailable
                and (total > desired or len(new) >= desired)
            ):
                self.delete("Pod", namespace, sorted(ready_old)[0])
            elif len(new) < desired and total < desired + surge:
                self._new_pod(namespace, new_rs, spec["template"], template_hash, now)
            else:
                break
        for rs_name, rs in self._owned("ReplicaSet", namespace, "Deployment", name).items():
            owned = self._owned("Pod", namespace, "ReplicaSet", rs_name)
            rs["spec"]["replicas"] = desired if rs_name == new_rs else len(owned)
            rs["status"] = {
                "replicas": len(owned),
                "readyReplicas": sum(_ready(p) for p in owned.values()),
                "observedGeneration": rs["metadata"]["generation"],
            }
        self._deployment_status(key, deployment, new_rs, desired, unavailable, now)

    def _deployment_status(
        self,
        key: tuple[str, str],
        deployment: Obj,
        new_rs: str,
        desired: int,
        unavailable: int,
        now: float,
    ) -> None:
        namespace, name = key
        all_pods = [
            pod
            for rs in self._owned("ReplicaSet", namespace, "Deployment", name)
            for pod in self._owned("Pod", namespace, "ReplicaSet", rs).values()
        ]
        new_pods = self._owned("Pod", namespace, "ReplicaSet", new_rs)
        ready = sum(_ready(pod) for pod in all_pods)
        new_ready = sum(_ready(pod) for pod in new_pods.values())
        previous = deployment.get("status") or {}
        if new_ready > self.new_ready.get(key, 0):
            self.progress[key] = now  # progress made: the deadline restarts
        self.new_ready[key] = new_ready
        complete = len(new_pods) == desired == len(all_pods) and ready == desired
        deadline = (
            self.deadline
            if self.deadline is not None
            else float(deployment["spec"].get("progressDeadlineSeconds", 600))
        )
        if complete:
            progressing = (
                "True",
                "NewReplicaSetAvailable",
                f'ReplicaSet "{new_rs}" has successfully progressed.',
            )
        elif now - self.progress.get(key, now) > deadline:
            progressing = (
                "False",
                "ProgressDeadlineExceeded",
                f'ReplicaSet "{new_rs}" has timed out progressing.',
            )
        else:
            progressing = ("True", "ReplicaSetUpdated", f'ReplicaSet "{new_rs}" is progressing.')
        available = (
            ("True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
            if ready >= desired - unavailable
            else (
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
            )
        )
        status = {
            "observedGeneration": deployment["metadata"]["generation"],
            "replicas": len(all_pods),
            "updatedReplicas": len(new_pods),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "unavailableReplicas": max(len(all_pods) - ready, 0),
            "conditions": [
                _condition("Available", *available),
                _condition("Progressing", *progressing),
            ],
        }
        for condition, old in zip(
            status["conditions"], previous.get("conditions", []), strict=False
        ):
            if (old["status"], old["reason"]) == (condition["status"], condition["reason"]):
                condition["lastTransitionTime"] = old["lastTransitionTime"]
        if {k: v for k, v in status.items() if k != "conditions"} != {
            k: v for k, v in previous.items() if k != "conditions"
        } or [(c["status"], c["reason"]) for c in status["conditions"]] != [
            (c["status"], c["reason"]) for c in previous.get("conditions", [])
        ]:
            deployment["status"] = status
            deployment["metadata"]["resourceVersion"] = str(next(self.counter))

    def _new_replica_set(
        self, deployment: Obj, name: str, template_hash: str, revision: int
    ) -> None:
        template = copy.deepcopy(deployment["spec"]["template"])
        template["metadata"].setdefault("labels", {})["pod-template-hash"] = template_hash
        selector = copy.deepcopy(deployment["spec"]["selector"])
        selector.setdefault("matchLabels", {})["pod-template-hash"] = template_hash
        namespace = deployment["metadata"]["namespace"]
        self.objects["ReplicaSet"][(namespace, name)] = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "uid": str(uuid.uuid4()),
                "creationTimestamp": _now(),
                "resourceVersion": str(next(self.counter)),
                "generation": 1,
                "labels": dict(template["metadata"]["labels"]),
                "annotations": {"deployment.kubernetes.io/revision": str(revision)},
                "ownerReferences": [_owner(deployment)],
            },
            "spec": {"replicas": 0, "selector": selector, "template": template},
            "status": {"replicas": 0},
        }

    def _new_pod(
        self, namespace: str, rs_name: str, template: Obj, template_hash: str, now: float
    ) -> None:
        name = f"{rs_name}-{uuid.uuid4().hex[:5]}"
        rs = self.objects["ReplicaSet"][(namespace, rs_name)]
        labels = {**template["metadata"].get("labels", {}), "pod-template-hash": template_hash}
        spec = copy.deepcopy(template["spec"])
        spec["nodeName"] = "fake-node"
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "uid": str(uuid.uuid4()),
                "creationTimestamp": _now(),
                "resourceVersion": str(next(self.counter)),
                "labels": labels,
                "ownerReferences": [_owner(rs)],
            },
            "spec": spec,
            "status": {"phase": "Pending", "conditions": []},
        }
        self.objects["Pod"][(namespace, name)] = pod
        self.pods[(namespace, name)] = PodSim(now, self.mode, self.ready_after)
        image = spec["containers"][0].get("image", "")
        for reason, message in (
            ("Scheduled", f"Successfully assigned {namespace}/{name} to fake-node"),
            ("Pulled", f'Container image "{image}" already present'),
            ("Created", "Created container"),
            ("Started", "Started container"),
        ):
            self._event(pod, "Normal", reason, message)
        self._kubelet(namespace, name, pod, now)

    def _kubelet(self, namespace: str, name: str, pod: Obj, now: float) -> None:
        sim = self.pods.get((namespace, name))
        if sim is None:
            return
        age = now - sim.created
        ready = sim.mode == "ready" and age >= sim.ready_after
        containers = pod["spec"]["containers"]
        statuses = []
        for container in containers:
            status: Obj = {
                "name": container["name"],
                "image": container.get("image"),
                "imageID": f"docker-pullable://{container.get('image')}",
                "ready": ready,
                "restartCount": 0,
                "started": True,
                "state": {"running": {"startedAt": pod["metadata"]["creationTimestamp"]}},
            }
            if sim.mode == "crashloop":
                status.update(
                    started=False,
                    restartCount=1 + int(age / 2),
                    state={
                        "waiting": {
                            "reason": "CrashLoopBackOff",
                            "message": f"back-off 10s restarting failed container="
                            f"{container['name']} pod={name}",
                        }
                    },
                    lastState={"terminated": {"exitCode": 1, "reason": "Error"}},
                )
            statuses.append(status)
        unready = ", ".join(c["name"] for c in containers)
        not_ready = ("False", "ContainersNotReady", f"containers with unready status: [{unready}]")
        pod_ready = ("True", "", "") if ready else not_ready
        conditions = [
            _condition("PodScheduled", "True", "", ""),
            _condition("Initialized", "True", "", ""),
            _condition("ContainersReady", *pod_ready),
            _condition("Ready", *pod_ready),
        ]
        new_status = {
            "phase": "Running",
            "podIP": f"10.244.0.{next(self.ips) % 250 + 2}"
            if "podIP" not in pod["status"]
            else pod["status"]["podIP"],
            "conditions": conditions,
            "containerStatuses": statuses,
        }
        if [(c["type"], c["status"]) for c in pod["status"].get("conditions", [])] != [
            (c["type"], c["status"]) for c in conditions
        ] or pod["status"].get("containerStatuses") != statuses:
            pod["status"] = new_status
            pod["metadata"]["resourceVersion"] = str(next(self.counter))
        if sim.mode == "unready":
            self._event(
                pod,
                "Warning",
                "Unhealthy",
                "Readiness probe failed: HTTP probe failed with statuscode: 503",
                count=1 + int(age / 5),
            )
        elif sim.mode == "crashloop":
            self._event(
                pod,
                "Warning",
                "BackOff",
                f"Back-off restarting failed container {containers[0]['name']} in pod {name}",
                count=1 + int(age / 2),
            )

    def _event(self, obj: Obj, type_: str, reason: str, message: str, count: int = 1) -> None:
        meta = obj["metadata"]
        name = f"{meta['name']}.{reason.lower()}"
        key = (meta["namespace"], name)
        existing = self.objects["Event"].get(key)
        if existing is not None:
            if existing["count"] != count:
                existing.update(count=count, lastTimestamp=_now())
            return
        self.objects["Event"][key] = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": name,
                "namespace": meta["namespace"],
                "resourceVersion": str(next(self.counter)),
                "creationTimestamp": _now(),
            },
            "involvedObject": {
                "kind": obj["kind"],
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta.get("uid"),
            },
            "type": type_,
            "reason": reason,
            "message": message,
            "count": count,
            "firstTimestamp": _now(),
            "lastTimestamp": _now(),
            "source": {"component": "kubelet", "host": "fake-node"},
        }

    def _owned(self, kind: str, namespace: str, owner_kind: str, owner: str) -> dict[str, Obj]:
        return {
            name: obj
            for (ns, name), obj in sorted(self.objects[kind].items())
            if ns == namespace
            and any(
                o["kind"] == owner_kind and o["name"] == owner
                for o in obj["metadata"].get("ownerReferences", [])
            )
        }

    # -- control -------------------------------------------------------------------------------

    def control(self, request: Request, segments: list[str]) -> Response:
        body = request.get_json(silent=True) or {}
        with self.lock:
            if segments == ["reset"] and request.method == "POST":
                self.reset()
                return _json({"ok": True})
            if segments == ["pods"] and request.method == "POST":
                mode = body.get("mode", "ready")
                if mode not in ("ready", "unready", "crashloop"):
                    raise ApiError(400, "BadRequest", f"unknown pod mode {mode!r}")
                self.mode = mode
                self.ready_after = float(body.get("ready_after", self.ready_after))
                return _json({"mode": self.mode, "ready_after": self.ready_after})
            if segments == ["deadline"] and request.method == "POST":
                seconds = body.get("seconds")
                self.deadline = None if seconds is None else float(seconds)
                return _json({"seconds": self.deadline})
            if segments == ["scale"] and request.method == "POST":
                deployment = self.objects["Deployment"].get((body["namespace"], body["name"]))
                if deployment is None:
                    raise _not_found("Deployment", body["name"])
                self._scale(deployment, int(body["replicas"]))
                self.reconcile()
                return _json({"replicas": deployment["spec"]["replicas"]})
            if segments == ["state"] and request.method == "GET":
                self.reconcile()
                objects = {
                    kind: {f"{ns}/{name}": obj for (ns, name), obj in sorted(store.items())}
                    for kind, store in self.objects.items()
                }
                return _json({"objects": objects, "requests": self.requests})
        raise ApiError(404, "NotFound", f"no control endpoint {'/'.join(segments)}")


# -- object semantics ---------------------------------------------------------------------------


def _server_side_apply(live: Obj, applied: Obj) -> Obj:
    """The object after ``applied`` from the only field manager (see the module docstring)."""
    new = {
        key: copy.deepcopy(value)
        for key, value in live.items()
        if key in ("apiVersion", "kind", "metadata", "status")
    }
    for key, value in applied.items():
        if key not in ("apiVersion", "kind", "metadata", "status"):
            new[key] = copy.deepcopy(value)
    live_spec, new_spec = live.get("spec") or {}, new.get("spec")
    if live["kind"] == "Deployment" and isinstance(new_spec, dict) and "replicas" in live_spec:
        new_spec.setdefault("replicas", live_spec["replicas"])  # owned by the HPA controller
    meta = new["metadata"] = copy.deepcopy(live["metadata"])
    wanted = applied.get("metadata", {})
    for part in ("labels", "annotations"):
        kept = {
            k: v
            for k, v in (live["metadata"].get(part) or {}).items()
            if k.startswith(SERVER_ANNOTATION_PREFIXES)
        }
        merged = {**kept, **(wanted.get(part) or {})}
        if merged:
            meta[part] = merged
        else:
            meta.pop(part, None)
    return new


def _default(kind: str, obj: Obj, previous: Obj | None, cluster: FakeCluster) -> None:
    """Fill what the API server would (and keep what it allocated before)."""
    spec = obj.get("spec")
    if kind == "Service" and spec is not None:
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        old = (previous or {}).get("spec", {})
        cluster_ip = old.get("clusterIP") or f"10.96.0.{next(cluster.ips) % 250 + 2}"
        spec.setdefault("clusterIP", cluster_ip)
        spec.setdefault("clusterIPs", [spec["clusterIP"]])
        for port in spec.get("ports", []):
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))
    if kind == "Deployment" and spec is not None:
        spec.setdefault("replicas", 1)
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        spec.setdefault(
            "strategy",
            {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
            },
        )
        pod = spec.get("template", {}).setdefault("spec", {})
        pod.setdefault("restartPolicy", "Always")
        pod.setdefault("dnsPolicy", "ClusterFirst")
        pod.setdefault("schedulerName", "default-scheduler")
        pod.setdefault("terminationGracePeriodSeconds", 30)
        for container in pod.get("containers", []):
            container.setdefault("terminationMessagePath", "/dev/termination-log")
            container.setdefault("terminationMessagePolicy", "File")
            latest = (
                container.get("image", "").endswith(":latest")
                or ":" not in container.get("image", "").rsplit("/", 1)[-1]
            )
            container.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
        if previous is not None:
            old_annotations = previous["metadata"].get("annotations", {})
            for key, value in old_annotations.items():
                if key.startswith(SERVER_ANNOTATION_PREFIXES):
                    obj["metadata"].setdefault("annotations", {}).setdefault(key, value)
        if previous is not None and "status" in previous:
            obj["status"] = previous["status"]
    if kind == "ServiceAccount" and previous is not None and "secrets" in previous:
        obj.setdefault("secrets", previous["secrets"])


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if not isinstance(target, dict):
        target = {}
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        else:
            target[key] = _merge_patch(target.get(key), value)
    return target


def _without_version(obj: Obj) -> Obj:
    clean = copy.deepcopy(obj)
    clean["metadata"].pop("resourceVersion", None)
    return clean


def _check_body(
    body: Any, kind: str, api_version: str, namespace: str, name: str | None = None
) -> str:
    if not isinstance(body, dict):
        raise ApiError(400, "BadRequest", "the request body must be an object")
    if body.get("kind") != kind or body.get("apiVersion") != api_version:
        raise ApiError(
            400,
            "BadRequest",
            f"expected {api_version} {kind}, got {body.get('apiVersion')} {body.get('kind')}",
        )
    meta = body.get("metadata") or {}
    if meta.get("namespace") not in (None, namespace):
        raise ApiError(
            400,
            "BadRequest",
            "the namespace of the object does not match the namespace on the request",
        )
    body_name = meta.get("name")
    if not body_name or (name is not None and body_name != name):
        raise ApiError(
            400, "BadRequest", "the name of the object does not match the name on the URL"
        )
    return str(body_name)


def _body(request: Request, as_yaml: bool = False) -> Any:
    raw = request.get_data(as_text=True)
    try:
        return yaml.safe_load(raw) if as_yaml else json.loads(raw)
    except (ValueError, yaml.YAMLError) as error:
        raise ApiError(400, "BadRequest", f"invalid request body: {error}") from None


def _split_api(segments: list[str]) -> tuple[str, str, list[str]]:
    if len(segments) >= 2 and segments[0] == "api":
        return "", segments[1], segments[2:]
    if len(segments) >= 3 and segments[0] == "apis":
        return segments[1], segments[2], segments[3:]
    raise ApiError(404, "NotFound", "the server could not find the requested resource")


def _label_matcher(selector: str) -> Any:
    tests = []
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            tests.append(lambda labels, k=key, v=value: labels.get(k) != v)
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            tests.append(lambda labels, k=key, v=value: labels.get(k) == v)
        elif term.startswith("!"):
            tests.append(lambda labels, k=term[1:]: k not in labels)
        elif " " not in term and "(" not in term:
            tests.append(lambda labels, k=term: k in labels)
        else:
            raise ApiError(400, "BadRequest", f"unsupported label selector {term!r}")
    return lambda obj: all(t(obj["metadata"].get("labels") or {}) for t in tests)


def _field_matcher(selector: str) -> Any:
    tests = []
    for term in filter(None, (t.strip() for t in selector.split(","))):
        negate = "!=" in term
        path, value = term.replace("!=", "=").replace("==", "=").split("=", 1)

        def test(obj: Obj, path: str = path, value: str = value, negate: bool = negate) -> bool:
            current: Any = obj
            for part in path.split("."):
                current = current.get(part) if isinstance(current, dict) else None
            return (
                (str(current) if current is not None else "") != value
                if negate
                else (str(current) if current is not None else "") == value
            )

        tests.append(test)
    return lambda obj: all(t(obj) for t in tests)


def _ready(pod: Obj) -> bool:
    return any(
        c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", [])
    )


def _scaled(value: Any, total: int, rounding: Any) -> int:
    if isinstance(value, str) and value.endswith("%"):
        return int(rounding(total * float(value[:-1]) / 100))
    return int(value)


def _hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def _condition(type_: str, status: str, reason: str, message: str) -> Obj:
    condition = {"type": type_, "status": status, "lastTransitionTime": _now()}
    if reason:
        condition["reason"] = reason
    if message:
        condition["message"] = message
    return condition


def _owner(obj: Obj) -> Obj:
    return {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "name": obj["metadata"]["name"],
        "uid": obj["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _not_found(kind: str, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{kind.lower()}s "{name}" not found')


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


# -- client side: what tests use ---------------------------------------------------------------


@dataclass
class FakeK8s:
    """Handle on the fake API server for one test."""

    url: str
    kubeconfig: Path

    def control(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        request = urllib.request.Request(
            f"{self.url}/__control__/{path}",
            method="POST" if body is not None else "GET",
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def state(self) -> dict[str, Any]:
        return self.control("state")

    def objects(self, kind: str, namespace: str) -> dict[str, dict[str, Any]]:
        """``name → object`` of ``kind`` in ``namespace``."""
        prefix = f"{namespace}/"
        return {
            key[len(prefix) :]: obj
            for key, obj in self.state()["objects"][kind].items()
            if key.startswith(prefix)
        }

    def requests(self) -> list[dict[str, Any]]:
        return self.state()["requests"]

    def pods(self, mode: str, ready_after: float = 0.2) -> None:
        self.control("pods", {"mode": mode, "ready_after": ready_after})


def write_kubeconfig(path: Path, server: str, token: str = DEFAULT_TOKEN) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "fake",
                "clusters": [{"name": "fake", "cluster": {"server": server}}],
                "users": [{"name": "fake", "user": {"token": token}}],
                "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
            }
        ),
        encoding="utf-8",
    )
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", default=DEFAULT_TOKEN)
    args = parser.parse_args(argv)
    server = make_server(args.host, args.port, FakeCluster(args.token), threaded=True)
    print(f"fake Kubernetes API on http://{args.host}:{args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
