"""Resolve the placeholders of a compiled task's command and inputs, as KFP's launcher does.

Supported: ``{{$.inputs.parameters['x']}}``, ``{{$.outputs.parameters['x'].output_file}}``, the
job/task constants (``{{$.pipeline_job_uuid}}``, ``{{$.pipeline_job_create_time_utc}}``,
``{{$.pipeline_job_name}}``, ``{{$.pipeline_task_name}}``, …), and the structured ``Concat`` /
``IfPresent`` forms the compiler emits. Anything else is a :class:`PlaceholderError` naming
the task (never a silent pass-through).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crashed.errors import InputError
from crashed.pipeline.compiled_tasks import Task, stringify

_PLACEHOLDER = re.compile(r"\{\{\$(?P<expr>[^{}]*)\}\}")
_INPUT_PARAM = re.compile(r"^\.inputs\.parameters\['(?P<name>[^']+)'\]$")
_OUTPUT_FILE = re.compile(r"^\.outputs\.parameters\['(?P<name>[^']+)'\]\.output_file$")


@dataclass(frozen=True)
class Job:
    """Job-level values the placeholders resolve to."""

    run_id: str
    run_date: str
    pipeline: str
    root: Path


class PlaceholderError(InputError):
    """The compiled file uses a placeholder the local runner cannot resolve."""


def resolve(
    items: Sequence[Any],
    inputs: Mapping[str, str],
    output_files: Mapping[str, Path],
    job: Job,
    task_name: str,
) -> list[str]:
    """Resolve the placeholders of a command/args list (structured ones may add/remove items)."""
    resolved: list[str] = []
    for item in items:
        resolved.extend(_resolve_item(item, inputs, output_files, job, task_name))
    return resolved


def task_inputs(
    task: Task, params: Mapping[str, str], outputs: Mapping[str, dict[str, str]], job: Job
) -> dict[str, str]:
    """The task's input values: defaults, pipeline parameters, upstream outputs, constants."""
    values = {name: stringify(value) for name, value in task.input_defaults.items()}
    for name, source in task.inputs.items():
        if "componentInputParameter" in source:
            parameter = source["componentInputParameter"]
            if parameter not in params:
                raise InputError(f"task {task.name!r}: pipeline parameter {parameter!r} unset")
            values[name] = params[parameter]
        elif "taskOutputParameter" in source:
            ref = source["taskOutputParameter"]
            values[name] = outputs[ref["producerTask"]][ref["outputParameterKey"]]
        elif "runtimeValue" in source:
            constant = stringify(source["runtimeValue"].get("constant", ""))
            values[name] = _substitute(constant, {}, {}, job, task.name)
        else:
            raise InputError(f"task {task.name!r}: input {name!r} has an unsupported source")
    return values


def _resolve_item(
    item: Any,
    inputs: Mapping[str, str],
    output_files: Mapping[str, Path],
    job: Job,
    task_name: str,
) -> list[str]:
    if isinstance(item, str) and item.startswith("{") and not item.startswith("{{"):
        try:
            structured = json.loads(item)
        except json.JSONDecodeError:
            structured = None
        if isinstance(structured, dict):
            return _resolve_structured(structured, inputs, output_files, job, task_name)
    if isinstance(item, dict):
        return _resolve_structured(item, inputs, output_files, job, task_name)
    return [_substitute(str(item), inputs, output_files, job, task_name)]


def _resolve_structured(
    value: dict[str, Any],
    inputs: Mapping[str, str],
    output_files: Mapping[str, Path],
    job: Job,
    task_name: str,
) -> list[str]:
    if "Concat" in value:
        parts = [
            "".join(_resolve_item(part, inputs, output_files, job, task_name))
            for part in value["Concat"]
        ]
        return ["".join(parts)]
    if "IfPresent" in value:
        spec = value["IfPresent"]
        present = spec.get("InputName") in inputs
        branch = spec.get("Then" if present else "Else") or []
        if isinstance(branch, str):
            branch = [branch]
        return resolve(branch, inputs, output_files, job, task_name)
    raise PlaceholderError(f"task {task_name!r}: unsupported structured placeholder {value}")


def _substitute(
    text: str,
    inputs: Mapping[str, str],
    output_files: Mapping[str, Path],
    job: Job,
    task_name: str,
) -> str:
    def replace(match: re.Match[str]) -> str:
        expr = match.group("expr")
        if found := _INPUT_PARAM.match(expr):
            name = found.group("name")
            if name not in inputs:
                raise PlaceholderError(f"task {task_name!r}: input {name!r} has no value")
            return inputs[name]
        if found := _OUTPUT_FILE.match(expr):
            name = found.group("name")
            if name not in output_files:
                raise PlaceholderError(f"task {task_name!r}: undeclared output {name!r}")
            return str(output_files[name])
        job_values = {
            ".pipeline_job_uuid": job.run_id,
            ".pipeline_job_name": job.run_id,
            ".pipeline_job_resource_name": job.run_id,
            ".pipeline_job_create_time_utc": job.run_date,
            ".pipeline_job_schedule_time_utc": job.run_date,
            ".pipeline_task_name": task_name,
            ".pipeline_task_uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, job.run_id + task_name)),
            ".pipeline_root": str(job.root),
        }
        if expr in job_values:
            return job_values[expr]
        raise PlaceholderError(
            f"task {task_name!r}: placeholder {{{{${expr}}}}} is not supported locally"
        )

    return _PLACEHOLDER.sub(replace, text)
