"""Run a *compiled* pipeline (KFP IR YAML) on this machine, step by step.

What is tested locally is what is deployed: the tasks, commands, inputs and env come from the
compiled file (:mod:`crashed.pipeline.compiled_tasks`), placeholders are resolved as KFP's
launcher does (:mod:`crashed.pipeline.placeholders`), and each step runs through a
:class:`~crashed.pipeline.step_runners.StepRunner`: a subprocess of this interpreter (default)
or a container of the real image (:class:`~crashed.pipeline.docker_runner.DockerRunner`).

``kfp.local`` is not used: it cannot run this pipeline as compiled (see the README's pipeline
section) — its placeholder resolution fails on ``{{$.pipeline_job_create_time_utc}}``, its
SubprocessRunner refuses container components, and its DockerRunner ignores the Kubernetes
platform spec (emptyDir, Secrets) and reports a container removed before ``wait`` as exit 0.

Tasks run sequentially in topological order (ties by name). A failed task stops its
dependants (``skipped``); independent tasks still run. The result is a
:class:`~crashed.pipeline.run_summary.RunSummary`.

A run's files live in a temporary work folder (:func:`run_workdir`, ``crashed-run-<run id>-…``
with an owner record: pid and its start time), removed when the run ends — also when it is
interrupted (:class:`~crashed.pipeline.step_runners.Interrupts`: the running step is stopped,
nothing more starts). Folders of runs killed outright (SIGKILL, power loss) are removed by
:func:`sweep_stale_workdirs` at the start of a later run.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from crashed.core.values import parse_bool
from crashed.errors import CrashedError, InputError
from crashed.fsio import atomic_write
from crashed.orchestration_records import new_run_id
from crashed.pipeline.compiled_tasks import Task, declared_parameters, load_tasks
from crashed.pipeline.placeholders import Job, resolve, task_inputs
from crashed.pipeline.run_summary import ManifestReader, RunSummary, StepResult
from crashed.pipeline.spec import WINDOW_PARAMS
from crashed.pipeline.step_runners import Echo, Interrupts, StepRunner, run_process
from crashed.processes import process_alive, process_start

_BOOLEAN_PARAMS = ("force_promotion",)
WORKDIR_PREFIX = "crashed-run-"
OWNER_FILE = "crashed-owner.json"
_LEGACY_PREFIXES = ("crashed-local-", "crashed-compile-")
"""Work folders of runs before owner records (``crashed-<run id>-…``, the compile folder)."""
STALE_AFTER = 3600.0
"""Seconds after which a work folder whose owner is gone is swept."""


@contextlib.contextmanager
def run_workdir(run_id: str, parent: Path | None = None) -> Iterator[Path]:
    """A run's temporary work folder with its owner record; removed on exit (any exit)."""
    root = Path(tempfile.mkdtemp(prefix=f"{WORKDIR_PREFIX}{run_id}-", dir=parent))
    try:
        owner = {"pid": os.getpid(), "start": process_start(os.getpid()), "run_id": run_id}
        atomic_write(root / OWNER_FILE, json.dumps(owner) + "\n")
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def sweep_stale_workdirs(
    parent: Path | None = None, max_age: float = STALE_AFTER, now: float | None = None
) -> list[Path]:
    """Remove run work folders (ours, in ``parent``, default the temp dir) untouched for
    ``max_age`` seconds whose owner process is gone; return what was removed. Folders from
    before owner records are removed on age alone."""
    parent = Path(parent or tempfile.gettempdir())
    now = time.time() if now is None else now
    removed: list[Path] = []
    try:
        entries = list(parent.iterdir())
    except OSError:
        return removed
    for folder in entries:
        if not folder.name.startswith((WORKDIR_PREFIX, *_LEGACY_PREFIXES)):
            continue
        try:
            info = folder.lstat()
        except OSError:
            continue
        if not folder.is_dir() or folder.is_symlink() or info.st_uid != os.getuid():
            continue
        if now - info.st_mtime < max_age or _owner_alive(folder):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        if not folder.exists():
            removed.append(folder)
    return removed


def _owner_alive(folder: Path) -> bool:
    try:
        owner = json.loads((folder / OWNER_FILE).read_text(encoding="utf-8"))
        pid, start = int(owner["pid"]), owner.get("start")
    except FileNotFoundError:
        return not folder.name.startswith(_LEGACY_PREFIXES)  # a new one being set up
    except (OSError, ValueError, KeyError, TypeError):
        return False  # unreadable record: nobody owns it
    return process_alive(pid, start)


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
            value = "true" if parse_bool(value, f"parameter {name}") else "false"
        values[name] = value
    return values


def run_compiled(
    path: Path,
    runner: StepRunner,
    *,
    lake: ManifestReader | None,
    params: Mapping[str, str] | None = None,
    run_id: str | None = None,
    run_date: dt.datetime | None = None,
    final_step: str | None = None,
    workdir: Path | None = None,
    cwd: Path | None = None,
    echo: Echo | None = None,
    interrupts: Interrupts | None = None,
) -> RunSummary:
    """Run the compiled pipeline at ``path``, each step through ``runner``.

    ``params`` are already-validated overrides (see :func:`parse_overrides`); defaults come from
    the file. ``lake`` reads the final step's manifest. ``workdir`` (default: a
    :func:`run_workdir`, removed afterwards) holds each step's output files and scratch.
    With ``interrupts`` installed, a signal stops the running step and the run returns early
    (``summary.interrupted``); without, one is installed here for the run.
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
    runner.check()
    info = pipeline_spec.get("pipelineInfo", {})
    summary = RunSummary(
        run_id=run_id or new_run_id(),
        pipeline=str(info.get("displayName") or info.get("name", "")),
        run_date=format_run_date(run_date or dt.datetime.now(dt.UTC)),
        runner=runner.name,
    )
    say(
        f"run {summary.run_id}: {summary.pipeline} ({len(tasks)} steps, run date "
        f"{summary.run_date}, runner {runner.name})"
    )
    signals = interrupts or Interrupts()
    with contextlib.ExitStack() as stack:
        if interrupts is None:
            stack.enter_context(signals.installed())
        if workdir is None:
            root = stack.enter_context(run_workdir(summary.run_id))
        else:
            root = Path(workdir)
            root.mkdir(parents=True, exist_ok=True)
        job = Job(summary.run_id, summary.run_date, summary.pipeline, root / "root")
        steps = _Steps(runner, job, root, cwd, say, max(len(task.name) for task in tasks))
        steps.interrupts = signals
        for task in tasks:
            if signals.signum is not None:
                summary.steps[task.name] = StepResult("skipped", reason="interrupted")
                continue
            blocked = [d for d in task.depends_on if summary.steps[d].status != "succeeded"]
            if blocked:
                summary.steps[task.name] = StepResult("skipped", reason=blocked[0])
                say(f"- {task.name}: skipped ({blocked[0]} did not succeed)")
                continue
            summary.steps[task.name], produced = steps.run(task, values, summary.outputs)
            if produced is not None:
                summary.outputs[task.name] = produced
        summary.interrupted = signals.signal_name
    if summary.status == "succeeded":
        summary.read_manifest(tasks, lake, final_step)
    return summary


class _Steps:
    """Runs one task: inputs, placeholders, the process, its outputs."""

    def __init__(
        self, runner: StepRunner, job: Job, root: Path, cwd: Path | None, say: Echo, width: int
    ) -> None:
        self.runner, self.job, self.root, self.cwd, self.say = runner, job, root, cwd, say
        self.width = width
        self.noted: set[str] = set()
        self.interrupts: Interrupts | None = None

    def run(
        self, task: Task, params: Mapping[str, str], outputs: Mapping[str, dict[str, str]]
    ) -> tuple[StepResult, dict[str, str] | None]:
        prefix = f"[{task.name.ljust(self.width)}]"
        say = self.say
        step_dir = self.root / "steps" / task.name
        output_files = {name: step_dir / "outputs" / name / "data" for name in task.outputs}
        for file in output_files.values():
            file.parent.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        try:
            inputs = task_inputs(task, params, outputs, self.job)
            argv = resolve(task.command, inputs, output_files, self.job, task.name)
            argv += resolve(task.args, inputs, output_files, self.job, task.name)
            if not argv:
                raise InputError("the executor has no command")
            launch = self.runner.prepare(task, argv, step_dir, self.root)
        except CrashedError as error:
            say(f"{prefix} {error.message}")
            return StepResult("failed", error=error.message), None
        for note in launch.notes:
            if note not in self.noted:  # the same for every step: say it once
                self.noted.add(note)
                say(f"{prefix} note: {note}")
        say(f"{prefix} started")
        code = run_process(launch, prefix, say, self.cwd, self.interrupts, task.name)
        seconds = round(time.monotonic() - started, 3)
        if code != 0 and self.interrupts is not None and self.interrupts.signum is not None:
            name = self.interrupts.signal_name
            say(f"{prefix} INTERRUPTED by {name}: stopped after {seconds:.1f}s")
            return StepResult("interrupted", seconds, code, f"stopped by {name}"), None
        if code != 0:
            say(f"{prefix} FAILED (exit {code}) after {seconds:.1f}s")
            return StepResult("failed", seconds, code, f"exit code {code}"), None
        produced: dict[str, str] = {}
        for name, file in output_files.items():
            if not file.is_file():
                message = f"exited 0 but did not write its output {name!r}"
                say(f"{prefix} FAILED: {message}")
                return StepResult("failed", seconds, 0, message), None
            produced[name] = file.read_text(encoding="utf-8")
        say(f"{prefix} succeeded in {seconds:.1f}s")
        return StepResult("succeeded", seconds, 0), produced
