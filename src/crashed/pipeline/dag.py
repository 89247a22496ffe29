"""The kfp v2 pipeline, generated from a :class:`~crashed.pipeline.spec.PipelineSpec`.

Every op becomes a *container component*: the project image running
``crashed pipelines <pipeline> run-op <op> --<input> VALUE … --output-file PATH``, whose single
output parameter ``manifest`` is the lake URI of the op's manifest. Downstream ops receive it as
the input named after the upstream op.

Pod configuration (through ``kfp-kubernetes``), identical on every task:

* env vars: :meth:`Settings.pod_env` (non-secret settings) plus ``TMPDIR``/``CRASHED_HOME`` on the
  scratch volume and ``GOOGLE_APPLICATION_CREDENTIALS`` inside the GCP key volume;
* ``GITLAB_TOKEN`` from the Secret :data:`GITLAB_SECRET` (key :data:`GITLAB_SECRET_KEY`);
* the Secret :data:`GCP_SECRET` (a service-account key stored under :data:`GCP_KEY_FILE`)
  mounted read-only at :data:`GCP_SECRET_MOUNT`;
* an ``emptyDir`` named :data:`SCRATCH_VOLUME` at :data:`SCRATCH_MOUNT`;
* caching off (every op reads "now"-relative data), cpu/memory requests per op, and retries
  for the ops whose failures are mostly transient.

The Secret names are deliberately constants, not settings: they are part of the cluster
contract (``k8s/`` creates them) and a value never passes through this code. Create them with::

    kubectl create secret generic crashed-gitlab --from-literal=token=glpat-…
    kubectl create secret generic crashed-gcp-sa --from-file=key.json=sa-key.json
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from crashed.pipeline.spec import OpSpec, PipelineSpec
from crashed.settings import Settings

OUTPUT_NAME = "manifest"
"""The single output parameter of every op: the lake URI of its manifest."""

GITLAB_SECRET = "crashed-gitlab"
"""Kubernetes Secret holding the GitLab token (key :data:`GITLAB_SECRET_KEY`)."""
GITLAB_SECRET_KEY = "token"
GITLAB_TOKEN_ENV = "GITLAB_TOKEN"

GCP_SECRET = "crashed-gcp-sa"
"""Kubernetes Secret holding a GCP service-account key file (key :data:`GCP_KEY_FILE`)."""
GCP_SECRET_MOUNT = "/var/secrets/google"
GCP_KEY_FILE = "key.json"
GCP_CREDENTIALS_ENV = "GOOGLE_APPLICATION_CREDENTIALS"

SCRATCH_VOLUME = "scratch"
SCRATCH_MOUNT = "/scratch"
SCRATCH_SIZE = "20Gi"
SCRATCH_ENV = ("TMPDIR", "CRASHED_HOME")
"""Env vars pointing at the scratch volume (temp files, and the home of file-based state)."""

POD_LABELS = {"app.kubernetes.io/part-of": "crashed", "app.kubernetes.io/component": "pipeline"}


@dataclass(frozen=True)
class OpResources:
    """Requests (and a memory limit) of one op's pod, and how often KFP retries it."""

    cpu: str = "500m"
    memory: str = "1Gi"
    memory_limit: str = "4Gi"
    retries: int = 1


OP_RESOURCES: dict[str, OpResources] = {
    # I/O against the warehouse / Git host: failures are mostly transient, retry twice.
    "extract": OpResources(cpu="500m", memory="1Gi", memory_limit="4Gi", retries=2),
    "publish": OpResources(cpu="250m", memory="512Mi", memory_limit="2Gi", retries=2),
    # A failing validation is a verdict on the data: retrying only delays the red.
    "validate": OpResources(cpu="500m", memory="2Gi", memory_limit="6Gi", retries=0),
    # Compute: retry once (node preemption / eviction).
    "analyse": OpResources(cpu="500m", memory="2Gi", memory_limit="6Gi", retries=1),
    "train": OpResources(cpu="2", memory="4Gi", memory_limit="12Gi", retries=1),
    "evaluate": OpResources(cpu="1", memory="2Gi", memory_limit="6Gi", retries=1),
}
DEFAULT_RESOURCES = OpResources()
RETRY_BACKOFF = "60s"


def ir_name(spec: PipelineSpec) -> str:
    """The pipeline name inside the compiled spec (kfp requires ``[a-z0-9-]``)."""
    return spec.name.replace("_", "-").lower()


def option_name(input_name: str) -> str:
    """``train_start`` → ``--train-start`` (the op's command-line option)."""
    return "--" + input_name.replace("_", "-")


def container_env(settings: Settings) -> dict[str, str]:
    """The plain (non-secret) env vars of every op's container."""
    env = dict(settings.pod_env())
    for name in SCRATCH_ENV:
        env[name] = SCRATCH_MOUNT
    env[GCP_CREDENTIALS_ENV] = f"{GCP_SECRET_MOUNT}/{GCP_KEY_FILE}"
    return env


def _op_component(spec: PipelineSpec, op: OpSpec, image: str, env: dict[str, str]) -> Any:
    """A container component for ``op`` whose signature is the op's declared inputs."""
    from kfp import dsl

    inputs = op.inputs
    if OUTPUT_NAME in inputs:
        raise ValueError(f"op {op.name!r}: an input may not be called {OUTPUT_NAME!r}")

    def body(*values: Any) -> Any:
        args: list[Any] = ["pipelines", spec.name, "run-op", op.name]
        for name, value in zip(inputs, values, strict=False):
            args += [option_name(name), value]
        args += ["--output-file", values[len(inputs)]]
        return dsl.ContainerSpec(image=image, command=["crashed"], args=args)

    parameters = [
        inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=str)
        for name in inputs
    ]
    parameters.append(
        inspect.Parameter(
            OUTPUT_NAME, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=dsl.OutputPath(str)
        )
    )
    body.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    body.__name__ = body.__qualname__ = op.name
    body.__doc__ = op.description
    component = dsl.container_component(body)
    # The env goes on the component's container spec (which every task copies) rather than
    # through ``task.set_env_variable``: that one walks the whole call stack with
    # ``inspect.stack()`` on every call, which made compiling ~5x slower. Same IR.
    component.component_spec.implementation.container.env = dict(sorted(env.items()))
    return component


def _configure(task: Any, op: OpSpec) -> None:
    """Caching, resources, retries, secrets and volumes of one task."""
    from kfp import kubernetes

    resources = OP_RESOURCES.get(op.name, DEFAULT_RESOURCES)
    task.set_caching_options(False)
    task.set_cpu_request(resources.cpu)
    task.set_memory_request(resources.memory)
    task.set_memory_limit(resources.memory_limit)
    if resources.retries:
        task.set_retry(resources.retries, backoff_duration=RETRY_BACKOFF, backoff_factor=2.0)
    kubernetes.use_secret_as_env(task, GITLAB_SECRET, {GITLAB_SECRET_KEY: GITLAB_TOKEN_ENV})
    kubernetes.use_secret_as_volume(task, GCP_SECRET, mount_path=GCP_SECRET_MOUNT)
    kubernetes.empty_dir_mount(
        task, volume_name=SCRATCH_VOLUME, mount_path=SCRATCH_MOUNT, size_limit=SCRATCH_SIZE
    )
    for key, value in sorted({**POD_LABELS, "crashed/op": op.name}.items()):
        kubernetes.add_pod_label(task, key, value)


def build_pipeline(spec: PipelineSpec, settings: Settings, description: str | None = None) -> Any:
    """The kfp pipeline (a ``GraphComponent``) for ``spec``, ready for ``Compiler().compile``.

    Pipeline parameters are ``spec.parameters`` with their defaults; each op receives
    ``run_id``/``run_date`` as the KFP job-id / job-create-time placeholders (so recurring runs
    get a fresh date), its declared params, and its upstream ops' manifest URIs.
    """
    from kfp import dsl

    _check(spec)
    image = settings.crashed_image
    env = container_env(settings)
    components = {op.name: _op_component(spec, op, image, env) for op in spec.ops}
    param_names = tuple(spec.parameters)

    def body(*values: Any) -> None:
        params = dict(zip(param_names, values, strict=True))
        tasks: dict[str, Any] = {}
        for op in spec.ops:
            arguments: dict[str, Any] = {
                "run_id": dsl.PIPELINE_JOB_ID_PLACEHOLDER,
                "run_date": dsl.PIPELINE_JOB_CREATE_TIME_UTC_PLACEHOLDER,
            }
            arguments.update({name: params[name] for name in op.params})
            arguments.update({name: tasks[name].outputs[OUTPUT_NAME] for name in op.upstream})
            task = components[op.name](**arguments)
            _configure(task, op)
            tasks[op.name] = task

    body.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter(
                name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default, annotation=str
            )
            for name, default in spec.parameters.items()
        ]
    )
    body.__name__ = body.__qualname__ = spec.name
    decorate: Callable[[Callable[..., None]], Any] = dsl.pipeline(
        name=ir_name(spec),
        display_name=spec.name,
        description=description if description is not None else spec.description,
    )
    return decorate(body)


def _check(spec: PipelineSpec) -> None:
    """Fail early (with the op's name) on a spec the DAG cannot be built from."""
    seen: set[str] = set()
    for op in spec.ops:
        for name in op.params:
            if name not in spec.parameters:
                raise ValueError(f"op {op.name!r} uses undeclared pipeline parameter {name!r}")
        for name in op.upstream:
            if name not in seen:
                raise ValueError(f"op {op.name!r} depends on {name!r}, which does not precede it")
        if op.name in seen:
            raise ValueError(f"op {op.name!r} is declared twice")
        seen.add(op.name)
