"""How one compiled task is executed: the pod's environment, emulated, and the process.

:class:`SubprocessRunner` (the default, no Docker) runs each task's container command as a
subprocess of this interpreter (a leading ``crashed`` becomes ``python -m crashed``). Its
environment emulates the pod (:func:`step_env`): the current process env (so local adapters
and credentials work), overlaid with the executor's ``env`` from the compiled file;
``emptyDir`` mounts become a per-step scratch directory (env values under the mount path are
rewritten); a secret volume is not mounted, so env vars pointing into it keep their local
value or are unset; ``secretAsEnv`` variables come from the local env when set (never from the
file); variables in :data:`LOCAL_ENV_WINS` always keep their local value.

Each step starts in its own process group, so a Ctrl-C at the terminal reaches only the runner,
which stops the step through :class:`Interrupts`: SIGTERM to the whole group (and the
container's stop commands), SIGKILL after a grace period or on a second signal, and SIGKILL
to whatever of the group outlived its leader.

:class:`crashed.pipeline.docker_runner.DockerRunner` runs each task as a container instead.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
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
    stop: tuple[tuple[str, ...], ...] = ()
    """Commands that stop what the process group does not hold (a container, by name): run
    when the run is interrupted, while the step stops and again once it has exited."""
    what: str = "process group"
    """What stopping this step stops, for the one line the user gets (``container X``)."""


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


STOP_GRACE = 10.0
"""Seconds a step gets between SIGTERM and SIGKILL when the run is interrupted."""


class Interrupts:
    """SIGINT/SIGTERM during a run: remember the first signal and stop the running step.

    While :meth:`installed`, a signal never raises inside the runner: it is recorded, the current
    step's process group gets SIGTERM (plus its ``stop`` commands, in a thread) and SIGKILL
    ``grace`` seconds later; a second signal SIGKILLs at once. The runner sees :attr:`signum`
    and starts nothing more.
    """

    def __init__(self, grace: float = STOP_GRACE) -> None:
        self.grace = grace
        self.signum: int | None = None
        self.stopped: list[str] = []
        """What was stopped (``step 'train' (process group 123)``), for the final line."""
        self._proc: subprocess.Popen[str] | None = None
        self._launch: Launch | None = None
        self._step = ""
        self._timer: threading.Timer | None = None

    @property
    def signal_name(self) -> str | None:
        return signal.Signals(self.signum).name if self.signum else None

    @property
    def exit_code(self) -> int:
        """The shell's code for a process a signal stopped: 130 for SIGINT, 143 for SIGTERM."""
        return 128 + (self.signum or 0)

    @contextlib.contextmanager
    def installed(self) -> Iterator[Interrupts]:
        """Handle SIGINT and SIGTERM (main thread only; elsewhere a no-op) until exit."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {
            sig: signal.signal(sig, self._handle) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _handle(self, signum: int, _frame: object) -> None:
        first = self.signum is None
        if first:
            self.signum = signum
        self._stop(force=not first)

    def attach(self, proc: subprocess.Popen[str], launch: Launch, step: str) -> None:
        """``proc`` (a process group leader) is the running step; stop it if already signalled."""
        self._proc, self._launch, self._step = proc, launch, step
        if self.signum is not None:
            self._stop(force=False)

    def detach(self) -> None:
        """The step's leader has exited: when interrupted, finish off its group and container."""
        proc, launch = self._proc, self._launch
        self._proc = self._launch = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if proc is not None and launch is not None and self.signum is not None:
            _signal_group(proc.pid, signal.SIGKILL)  # whatever outlived the leader
            _run_quietly(launch.stop, launch.env)

    def _stop(self, force: bool) -> None:
        proc, launch = self._proc, self._launch
        if proc is None or launch is None:
            return
        if not force:
            what = launch.what if launch.what != "process group" else f"process group {proc.pid}"
            self.stopped.append(f"step {self._step!r} ({what})")
        _signal_group(proc.pid, signal.SIGKILL if force else signal.SIGTERM)
        if force or self._timer is not None:
            return
        self._timer = threading.Timer(self.grace, _signal_group, (proc.pid, signal.SIGKILL))
        self._timer.daemon = True
        self._timer.start()
        if launch.stop:
            args = (launch.stop, launch.env)
            threading.Thread(target=_run_quietly, args=args, daemon=True).start()


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _run_quietly(commands: Sequence[Sequence[str]], env: Mapping[str, str]) -> None:
    """Run each command, ignoring failures (``docker stop`` of a container already gone)."""
    for command in commands:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(
                list(command), env=dict(env), capture_output=True, timeout=STOP_GRACE + 30
            )


def run_process(
    launch: Launch,
    prefix: str,
    echo: Echo,
    cwd: Path | None,
    interrupts: Interrupts | None = None,
    step: str = "",
) -> int:
    """Start the step in its own process group, echo each output line with ``prefix``, return
    its exit code (negative: the signal that stopped it)."""
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
            process_group=0,
        )
    except OSError as error:
        echo(f"{prefix} cannot start {launch.argv[0]}: {error.strerror or error}")
        return 127
    if interrupts is not None:
        interrupts.attach(proc, launch, step)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            echo(f"{prefix} {line.rstrip()}")
        return proc.wait()
    finally:
        if proc.poll() is None:  # the runner itself failed (e.g. its output went away)
            _signal_group(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_GRACE)
            except subprocess.TimeoutExpired:
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait()
        if interrupts is not None:
            interrupts.detach()
