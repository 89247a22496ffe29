"""Run a *compiled* pipeline (KFP IR YAML) on this machine, one subprocess per task.

``kfp.local`` cannot run container components, so this executes the compiled file itself —
what is tested locally is what is deployed:

* tasks from ``root.dag.tasks`` in topological order (``dependentTasks`` + producers of
  ``taskOutputParameter`` inputs), sequentially; ties broken by name;
* inputs from ``componentInputParameter`` (pipeline parameters), ``taskOutputParameter``
  (upstream outputs) and ``runtimeValue.constant`` (which may hold job placeholders);
* placeholders ``{{$.inputs.parameters['x']}}``, ``{{$.outputs.parameters['x'].output_file}}``,
  ``{{$.pipeline_job_uuid}}``, ``{{$.pipeline_job_create_time_utc}}`` (and the other job/task
  placeholders), plus the ``Concat``/``IfPresent`` forms the compiler emits;
* each executor's container command as a subprocess: a leading ``crashed`` becomes
  ``python -m crashed`` and ``python``/``python3`` this interpreter.

The environment emulates the pod (see :func:`step_env`): the current process env (so local
adapters and credentials work), overlaid with the executor's ``env`` from the compiled file;
``emptyDir`` mounts become a per-step scratch directory (env values under the mount path are
rewritten); a secret volume is not mounted, so env vars pointing into it keep their local value
or are unset; ``secretAsEnv`` variables come from the local env when set (never from the file);
variables in :data:`LOCAL_ENV_WINS` always keep their local value.

A failed task stops its dependants (``skipped``); independent tasks still run. The result is a
summary dict (see :func:`run_compiled`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crashed.errors import CrashedError, InputError
from crashed.pipeline.spec import WINDOW_PARAMS

LOCAL_ENV_WINS = ("CRASHED_HOME",)
"""Env vars whose pod value never applies locally: the local process's value (or its absence,
so settings' own default / ``.env`` applies) is kept. ``CRASHED_HOME`` is scratch in the cluster
but holds the local lake and warehouse here, so every step must share the local one."""

Echo = Callable[[str], None]
ManifestReader = Callable[[str], bytes]

_PLACEHOLDER = re.compile(r"\{\{\$(?P<expr>[^{}]*)\}\}")
_INPUT_PARAM = re.compile(r"^\.inputs\.parameters\['(?P<name>[^']+)'\]$")
_OUTPUT_FILE = re.compile(r"^\.outputs\.parameters\['(?P<name>[^']+)'\]\.output_file$")
_BOOLEAN_PARAMS = ("force_promotion",)


@dataclass
class Job:
    """Job-level values the placeholders resolve to."""

    run_id: str
    run_date: str
    pipeline: str
    root: Path


@dataclass
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
    input_defaults: dict[str, Any] = field(default_factory=dict)
    outputs: tuple[str, ...] = ()


class PlaceholderError(InputError):
    """The compiled file uses a placeholder the local runner cannot resolve."""


def new_run_id(now: dt.datetime | None = None) -> str:
    """``local-YYYYmmddTHHMMSSZ-<6 hex>``."""
    now = now or dt.datetime.now(dt.UTC)
    return f"local-{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def format_run_date(value: dt.datetime) -> str:
    """RFC 3339 UTC (``2024-05-01T00:00:00Z``), the job create-time placeholder's format."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_overrides(pairs: Sequence[str], declared: Mapping[str, str]) -> dict[str, str]:
    """Validate ``NAME=VALUE`` overrides against the declared parameters.

    Unknown names raise :class:`InputError` naming it and listing the valid ones; window
    parameters must be ISO dates (``YYYY-MM-DD``) or empty; ``force_promotion`` is a boolean.
    """
    values: dict[str, str] = {}
    valid = ", ".join(sorted(declared)) or "(none)"
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            raise InputError(f"--param {pair!r}: expected NAME=VALUE (parameters: {valid})")
        if name not in declared:
            raise InputError(f"unknown pipeline parameter {name!r}; valid parameters: {valid}")
        value = value.strip()
        if name in WINDOW_PARAMS and value:
            try:
                dt.date.fromisoformat(value)
            except ValueError:
                raise InputError(
                    f"parameter {name}={value!r}: expected an ISO date (YYYY-MM-DD) or empty"
                ) from None
        if name in _BOOLEAN_PARAMS:
            if value.lower() not in ("true", "false"):
                raise InputError(f"parameter {name}={value!r}: expected true or false")
            value = value.lower()
        values[name] = value
    return values


def declared_parameters(pipeline_spec: Mapping[str, Any]) -> dict[str, str]:
    """Pipeline parameter name → default value (as a string) from ``root.inputDefinitions``."""
    definitions = pipeline_spec.get("root", {}).get("inputDefinitions", {}).get("parameters", {})
    return {name: _stringify(d.get("defaultValue", "")) for name, d in definitions.items()}


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
        depends = set(raw.get("dependentTasks", []) or []) | producers
        defaults = {
            key: definition["defaultValue"]
            for key, definition in component.get("inputDefinitions", {})
            .get("parameters", {})
            .items()
            if "defaultValue" in definition
        }
        tasks[name] = Task(
            name=name,
            component=component_name,
            depends_on=tuple(sorted(depends)),
            inputs=inputs,
            command=list(container.get("command", [])),
            args=list(container.get("args", [])),
            env={item["name"]: str(item.get("value", "")) for item in container.get("env", [])},
            platform=k8s.get(label, {}),
            input_defaults=defaults,
            outputs=tuple(
                sorted(component.get("outputDefinitions", {}).get("parameters", {}) or {})
            ),
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


def step_env(
    task: Task,
    scratch: Path,
    base: Mapping[str, str],
    overrides: Mapping[str, str] | None = None,
) -> tuple[dict[str, str], list[str]]:
    """The environment ``task``'s pod would get, emulated locally; and notes on what differs."""
    env = dict(base)
    notes: list[str] = []
    mounts = {
        m["mountPath"].rstrip("/"): scratch / m.get("volumeName", "scratch")
        for m in task.platform.get("emptyDirMounts", [])
    }
    for local in mounts.values():
        local.mkdir(parents=True, exist_ok=True)
    secret_mounts = [
        (v["mountPath"].rstrip("/"), v.get("secretName", "?"))
        for v in task.platform.get("secretAsVolume", [])
    ]
    for name, value in task.env.items():
        if name in LOCAL_ENV_WINS:
            continue
        inside_secret = next((s for m, s in secret_mounts if _inside(value, m)), None)
        if inside_secret is not None:
            if name not in base:
                env.pop(name, None)
                notes.append(f"{name} unset (Secret volume {inside_secret} is not mounted locally)")
            continue
        for mount, local in mounts.items():
            if _inside(value, mount):
                value = str(local) + value[len(mount) :]
                break
        env[name] = value
    for secret in task.platform.get("secretAsEnv", []):
        for item in secret.get("keyToEnv", []):
            variable = item.get("envVar", "")
            if variable and not base.get(variable):
                env.pop(variable, None)
                notes.append(
                    f"{variable} unset (Secret {secret.get('secretName', '?')}/"
                    f"{item.get('secretKey', '?')} is not in the local environment)"
                )
    env.update(overrides or {})
    env["PYTHONUNBUFFERED"] = "1"
    return env, notes


def _inside(value: str, mount: str) -> bool:
    return value == mount or value.startswith(mount + "/")


def resolve(
    items: Sequence[str],
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


def local_command(command: Sequence[str]) -> list[str]:
    """The image's entry points mapped to this interpreter."""
    if not command:
        return []
    head, rest = command[0], list(command[1:])
    if head == "crashed":
        return [sys.executable, "-m", "crashed", *rest]
    if head in ("python", "python3"):
        return [sys.executable, *rest]
    return [head, *rest]


def _stringify(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, sort_keys=True)


def _task_inputs(
    task: Task, params: Mapping[str, str], outputs: Mapping[str, dict[str, str]], job: Job
) -> dict[str, str]:
    values = {name: _stringify(value) for name, value in task.input_defaults.items()}
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
            constant = _stringify(source["runtimeValue"].get("constant", ""))
            values[name] = _substitute(constant, {}, {}, job, task.name)
        else:
            raise InputError(f"task {task.name!r}: input {name!r} has an unsupported source")
    return values


def _run_process(
    argv: list[str], env: dict[str, str], prefix: str, echo: Echo, cwd: Path | None
) -> int:
    try:
        proc = subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
            bufsize=1,
        )
    except OSError as error:
        echo(f"{prefix} cannot start {argv[0]}: {error.strerror or error}")
        return 127
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            echo(f"{prefix} {line.rstrip()}")
        return proc.wait()
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def run_compiled(
    path: Path,
    *,
    params: Mapping[str, str] | None = None,
    run_id: str | None = None,
    run_date: dt.datetime | None = None,
    env_overrides: Mapping[str, str] | None = None,
    base_env: Mapping[str, str] | None = None,
    read_manifest: ManifestReader | None = None,
    final_step: str | None = None,
    workdir: Path | None = None,
    cwd: Path | None = None,
    echo: Echo | None = None,
) -> dict[str, Any]:
    """Run the compiled pipeline at ``path`` and return its summary.

    ``params`` are already-validated overrides (see :func:`parse_overrides`); defaults come from
    the file. ``read_manifest(uri)`` reads the final step's manifest (default: the lake built
    from settings); ``final_step`` defaults to the only task nothing depends on. The summary::

        {run_id, pipeline, run_date, status: succeeded|failed, failed_step,
         steps: {name: {status: succeeded|failed|skipped, seconds, …}},
         outputs: {task: {output: value}}, artifacts: [...], metrics: {...}, gate, proposal}
    """
    from crashed.pipeline.compiler import load_documents

    say = echo or (lambda line: print(line, flush=True))
    pipeline_spec, platform_spec = load_documents(Path(path).read_text(encoding="utf-8"))
    declared = declared_parameters(pipeline_spec)
    unknown = sorted(set(params or {}) - set(declared))
    if unknown:
        valid = ", ".join(sorted(declared)) or "(none)"
        raise InputError(f"unknown pipeline parameter {unknown[0]!r}; valid parameters: {valid}")
    values = {**declared, **(params or {})}
    tasks = load_tasks(pipeline_spec, platform_spec)
    info = pipeline_spec.get("pipelineInfo", {})
    pipeline = str(info.get("displayName") or info.get("name", ""))
    run_id = run_id or new_run_id()
    date = format_run_date(run_date or dt.datetime.now(dt.UTC))

    own_workdir = workdir is None
    root = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix=f"crashed-{run_id}-"))
    root.mkdir(parents=True, exist_ok=True)
    job = Job(run_id=run_id, run_date=date, pipeline=pipeline, root=root / "root")
    base = dict(os.environ if base_env is None else base_env)
    width = max(len(task.name) for task in tasks)

    steps: dict[str, dict[str, Any]] = {}
    outputs: dict[str, dict[str, str]] = {}
    noted: set[str] = set()
    say(f"run {run_id}: {pipeline} ({len(tasks)} steps, run date {date})")
    try:
        for task in tasks:
            blocked = [dep for dep in task.depends_on if steps[dep]["status"] != "succeeded"]
            if blocked:
                steps[task.name] = {"status": "skipped", "seconds": 0.0, "reason": blocked[0]}
                say(f"- {task.name}: skipped ({blocked[0]} did not succeed)")
                continue
            steps[task.name], produced = _run_task(
                task, values, outputs, job, root, base, env_overrides, cwd, say, width, noted
            )
            if produced is not None:
                outputs[task.name] = produced
    finally:
        if own_workdir:
            shutil.rmtree(root, ignore_errors=True)

    failed = [name for name, step in steps.items() if step["status"] == "failed"]
    summary: dict[str, Any] = {
        "run_id": run_id,
        "pipeline": pipeline,
        "run_date": date,
        "status": "failed" if failed else "succeeded",
        "failed_step": failed[0] if failed else None,
        "steps": steps,
        "outputs": outputs,
        "artifacts": [],
        "metrics": {},
        "gate": None,
        "proposal": None,
    }
    if not failed:
        _add_manifest(summary, tasks, outputs, final_step, read_manifest)
    return summary


def _run_task(
    task: Task,
    params: Mapping[str, str],
    outputs: Mapping[str, dict[str, str]],
    job: Job,
    root: Path,
    base: Mapping[str, str],
    env_overrides: Mapping[str, str] | None,
    cwd: Path | None,
    say: Echo,
    width: int,
    noted: set[str],
) -> tuple[dict[str, Any], dict[str, str] | None]:
    prefix = f"[{task.name.ljust(width)}]"
    step_dir = root / "steps" / task.name
    output_files = {name: step_dir / "outputs" / name / "data" for name in task.outputs}
    for file in output_files.values():
        file.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        inputs = _task_inputs(task, params, outputs, job)
        argv = local_command(resolve(task.command, inputs, output_files, job, task.name))
        argv += resolve(task.args, inputs, output_files, job, task.name)
        env, notes = step_env(task, step_dir / "scratch", base, env_overrides)
    except CrashedError as error:
        say(f"{prefix} {error.message}")
        return {"status": "failed", "seconds": 0.0, "error": error.message}, None
    if not argv:
        say(f"{prefix} the executor has no command")
        return {"status": "failed", "seconds": 0.0, "error": "no command"}, None
    for note in notes:
        if note not in noted:  # the same for every step: say it once
            noted.add(note)
            say(f"{prefix} note: {note}")
    say(f"{prefix} started")
    code = _run_process(argv, env, prefix, say, cwd)
    seconds = round(time.monotonic() - started, 3)
    if code != 0:
        say(f"{prefix} FAILED (exit {code}) after {seconds:.1f}s")
        return {
            "status": "failed",
            "seconds": seconds,
            "exit_code": code,
            "error": f"exit code {code}",
        }, None
    produced: dict[str, str] = {}
    for name, file in output_files.items():
        if not file.is_file():
            message = f"exited 0 but did not write its output {name!r}"
            say(f"{prefix} FAILED: {message}")
            return {"status": "failed", "seconds": seconds, "exit_code": 0, "error": message}, None
        produced[name] = file.read_text(encoding="utf-8")
    say(f"{prefix} succeeded in {seconds:.1f}s")
    return {"status": "succeeded", "seconds": seconds, "exit_code": 0}, produced


def _add_manifest(
    summary: dict[str, Any],
    tasks: Sequence[Task],
    outputs: Mapping[str, dict[str, str]],
    final_step: str | None,
    read_manifest: ManifestReader | None,
) -> None:
    """Fill artifacts/metrics/gate/proposal from the final step's ``manifest`` output (or its
    only output)."""
    if final_step is None:
        needed = {dep for task in tasks for dep in task.depends_on}
        sinks = [task.name for task in tasks if task.name not in needed]
        final_step = sinks[0] if len(sinks) == 1 else None
    produced = outputs.get(final_step or "", {})
    uri = produced.get("manifest") or (next(iter(produced.values())) if len(produced) == 1 else "")
    if not uri:
        return
    uri = uri.strip()
    summary["manifest"] = uri
    reader = read_manifest or _default_reader()
    try:
        manifest = json.loads(reader(uri))
    except CrashedError as error:
        summary["manifest_error"] = error.message
        return
    except (OSError, ValueError) as error:
        summary["manifest_error"] = f"cannot read {uri}: {error}"
        return
    if not isinstance(manifest, dict):
        summary["manifest_error"] = f"{uri} is not a JSON object"
        return
    summary["artifacts"] = list(manifest.get("artifacts") or [])
    summary["metrics"] = dict(manifest.get("metrics") or {})
    summary["gate"] = manifest.get("gate")
    summary["proposal"] = manifest.get("proposal")
    summary["decision"] = manifest.get("decision")


def _default_reader() -> ManifestReader:
    def read(uri: str) -> bytes:
        from crashed.settings import load_settings
        from crashed.wiring import build_adapters

        return build_adapters(load_settings()).lake.get_bytes(uri)

    return read
