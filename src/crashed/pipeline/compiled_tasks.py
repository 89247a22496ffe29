"""The tasks of a compiled pipeline (KFP IR YAML), in the order they can run.

Reads ``root.dag.tasks``: each task's container (image, command, args, env) from
``deploymentSpec.executors``, its Kubernetes settings (secrets, emptyDir mounts) from the
platform spec, its inputs (``componentInputParameter``, ``taskOutputParameter``,
``runtimeValue``), and its dependencies (``dependentTasks`` plus the producers of its inputs).
Only what the local runners can execute faithfully is accepted; anything else is an
:class:`InputError` naming the task.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from crashed.errors import InputError


@dataclass(frozen=True)
class Task:
    """One task of the root DAG, ready to run."""

    name: str
    component: str
    depends_on: tuple[str, ...]
    inputs: dict[str, dict[str, Any]]
    command: list[str]
    args: list[str]
    env: dict[str, str]
    platform: dict[str, Any]
    """The task's ``platforms.kubernetes`` executor config (secrets, emptyDir mounts)."""
    input_defaults: dict[str, Any] = field(default_factory=dict)
    outputs: tuple[str, ...] = ()
    image: str = ""

    @property
    def empty_dirs(self) -> list[tuple[str, str]]:
        """``(volume name, mount path)`` of each emptyDir mount."""
        return [
            (m.get("volumeName", "scratch"), m["mountPath"].rstrip("/"))
            for m in self.platform.get("emptyDirMounts", [])
        ]

    @property
    def secret_volumes(self) -> list[tuple[str, str]]:
        """``(secret name, mount path)`` of each Secret mounted as a volume."""
        return [
            (v.get("secretName", "?"), v["mountPath"].rstrip("/"))
            for v in self.platform.get("secretAsVolume", [])
        ]

    @property
    def secret_env(self) -> list[tuple[str, str, str]]:
        """``(env var, secret name, key)`` of each Secret key exposed as an env var."""
        return [
            (item.get("envVar", ""), secret.get("secretName", "?"), item.get("secretKey", "?"))
            for secret in self.platform.get("secretAsEnv", [])
            for item in secret.get("keyToEnv", [])
            if item.get("envVar")
        ]


def stringify(value: Any) -> str:
    """A parameter value as the string a command line gets."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, sort_keys=True)


def declared_parameters(pipeline_spec: Mapping[str, Any]) -> dict[str, str]:
    """Pipeline parameter name → default value (as a string) from ``root.inputDefinitions``."""
    definitions = pipeline_spec.get("root", {}).get("inputDefinitions", {}).get("parameters", {})
    return {name: stringify(d.get("defaultValue", "")) for name, d in definitions.items()}


def load_tasks(pipeline_spec: Mapping[str, Any], platform_spec: Mapping[str, Any]) -> list[Task]:
    """The root DAG's tasks in execution order (topological, ties by name)."""
    dag = pipeline_spec.get("root", {}).get("dag", {})
    raw_tasks: dict[str, Any] = dag.get("tasks") or {}
    if not raw_tasks:
        raise InputError("the compiled pipeline has no tasks")
    components = pipeline_spec.get("components", {})
    executors = pipeline_spec.get("deploymentSpec", {}).get("executors", {})
    k8s = (
        platform_spec.get("platforms", {})
        .get("kubernetes", {})
        .get("deploymentSpec", {})
        .get("executors", {})
    )
    tasks: dict[str, Task] = {}
    for name, raw in raw_tasks.items():
        for unsupported in ("triggerPolicy", "iteratorPolicy", "parameterIterator"):
            if raw.get(unsupported):
                raise InputError(f"task {name!r}: {unsupported} is not supported locally")
        component_name = raw.get("componentRef", {}).get("name", "")
        component = components.get(component_name, {})
        label = component.get("executorLabel")
        if not label:
            raise InputError(f"task {name!r}: only container tasks run locally (no executor)")
        container = executors.get(label, {}).get("container")
        if not container:
            raise InputError(f"task {name!r}: executor {label!r} is not a container")
        inputs = raw.get("inputs", {}).get("parameters", {}) or {}
        if raw.get("inputs", {}).get("artifacts"):
            raise InputError(f"task {name!r}: artifact inputs are not supported locally")
        producers = {
            spec["taskOutputParameter"]["producerTask"]
            for spec in inputs.values()
            if "taskOutputParameter" in spec
        }
        definitions = component.get("inputDefinitions", {}).get("parameters", {})
        tasks[name] = Task(
            name=name,
            component=component_name,
            depends_on=tuple(sorted(set(raw.get("dependentTasks", []) or []) | producers)),
            inputs=inputs,
            command=list(container.get("command", [])),
            args=list(container.get("args", [])),
            env={item["name"]: str(item.get("value", "")) for item in container.get("env", [])},
            platform=k8s.get(label, {}),
            input_defaults={
                key: d["defaultValue"] for key, d in definitions.items() if "defaultValue" in d
            },
            outputs=tuple(
                sorted(component.get("outputDefinitions", {}).get("parameters", {}) or {})
            ),
            image=str(container.get("image", "")),
        )
    return _topological(tasks)


def _topological(tasks: dict[str, Task]) -> list[Task]:
    for task in tasks.values():
        missing = [dep for dep in task.depends_on if dep not in tasks]
        if missing:
            raise InputError(f"task {task.name!r} depends on unknown task(s) {missing}")
    order: list[Task] = []
    done: set[str] = set()
    while len(order) < len(tasks):
        ready = sorted(
            name
            for name, task in tasks.items()
            if name not in done and all(dep in done for dep in task.depends_on)
        )
        if not ready:
            cycle = sorted(set(tasks) - done)
            raise InputError(f"the pipeline's tasks form a cycle: {cycle}")
        for name in ready:
            order.append(tasks[name])
            done.add(name)
    return order
