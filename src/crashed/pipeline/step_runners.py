"""How one compiled task is executed: the pod's environment, emulated, and the process.

:class:`SubprocessRunner` (the default, no Docker) runs each task's container command as a
subprocess of this interpreter (a leading ``crashed`` becomes ``python -m crashed``). Its
environment emulates the pod (:func:`step_env`): the current process env (so local adapters
and credentials work), overlaid with the executor's ``env`` from the compiled file;
``emptyDir`` mounts become a per-step scratch directory (env values under the mount path are
rewritten); a secret volume is not mounted, so env vars pointing into it keep their local
value or are unset; ``secretAsEnv`` variables come from the local env when set (never from the
file); variables in :data:`LOCAL_ENV_WINS` always keep their local value.

:class:`crashed.pipeline.docker_runner.DockerRunner` runs each task as a container instead.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from crashed.pipeline.compiled_tasks import Task

Echo = Callable[[str], None]

LOCAL_ENV_WINS = ("CRASHED_HOME",)
"""Env vars whose pod value never applies locally: the local process's value (or its absence,
so settings' own default / ``.env`` applies) is kept. ``CRASHED_HOME`` is scratch in the cluster
but holds the local lake and warehouse here, so every step must share the local one."""


@dataclass(frozen=True)
class Launch:
    """A prepared step: the process to start, its environment, and what differs from a pod."""

    argv: list[str]
    env: dict[str, str]
    notes: list[str] = field(default_factory=list)


class StepRunner(Protocol):
    """Turns a task's resolved container command into a process to start."""

    name: str

    def check(self) -> None:
        """Fail early (one clear line) when this runner cannot run here."""
        ...

    def prepare(self, task: Task, argv: list[str], step_dir: Path, job_root: Path) -> Launch:
        """The process for ``task`` whose container command (placeholders resolved) is
        ``argv``; ``step_dir`` is its private scratch, ``job_root`` holds every output file."""
        ...


class SubprocessRunner:
    """Each step a subprocess of this interpreter, in the pod's environment as emulated here."""

    name = "subprocess"

    def __init__(
        self, base_env: Mapping[str, str], overrides: Mapping[str, str] | None = None
    ) -> None:
        self.base_env = dict(base_env)
        self.overrides = dict(overrides or {})

    def check(self) -> None:
        return None

    def prepare(self, task: Task, argv: list[str], step_dir: Path, job_root: Path) -> Launch:
        env, notes = step_env(task, step_dir / "scratch", self.base_env, self.overrides)
        return Launch(local_command(argv), env, notes)


def step_env(
    task: Task,
    scratch: Path,
    base: Mapping[str, str],
    overrides: Mapping[str, str] | None = None,
) -> tuple[dict[str, str], list[str]]:
    """The environment ``task``'s pod would get, emulated locally; and notes on what differs."""
    env = dict(base)
    notes: list[str] = []
    mounts = {mount: scratch / volume for volume, mount in task.empty_dirs}
    for local in mounts.values():
        local.mkdir(parents=True, exist_ok=True)
    for name, value in task.env.items():
        if name in LOCAL_ENV_WINS:
            continue
        inside_secret = next((s for s, m in task.secret_volumes if inside(value, m)), None)
        if inside_secret is not None:
            if name not in base:
                env.pop(name, None)
                notes.append(f"{name} unset (Secret volume {inside_secret} is not mounted locally)")
            continue
        for mount, local in mounts.items():
            if inside(value, mount):
                value = str(local) + value[len(mount) :]
                break
        env[name] = value
    for variable, secret, key in task.secret_env:
        if not base.get(variable):
            env.pop(variable, None)
            notes.append(
                f"{variable} unset (Secret {secret}/{key} is not in the local environment)"
            )
    env.update(overrides or {})
    env["PYTHONUNBUFFERED"] = "1"
    return env, notes


def inside(value: str, mount: str) -> bool:
    """Whether the path ``value`` is ``mount`` or below it."""
    return value == mount or value.startswith(mount + "/")


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


def run_process(launch: Launch, prefix: str, echo: Echo, cwd: Path | None) -> int:
    """Start the step, echo each output line with ``prefix``, return its exit code."""
    try:
        proc = subprocess.Popen(
            launch.argv,
            env=launch.env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
            bufsize=1,
        )
    except OSError as error:
        echo(f"{prefix} cannot start {launch.argv[0]}: {error.strerror or error}")
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
