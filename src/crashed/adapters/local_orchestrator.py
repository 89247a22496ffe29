"""The Orchestrator port on this machine: ``run-local`` processes and run records.

* ``deploy`` installs the compiled file as the pipeline's current version under
  ``$CRASHED_HOME/pipelines/<pipeline>-<environment>/`` (``<version>.yaml`` + ``current.json``);
  there is no local scheduler, so nothing runs on the cron.
* ``start_run`` starts ``crashed pipelines <pipeline> run-local --run-id … --param …`` as a
  detached process (its own session, output to ``runs/<run-id>.log``), on the deployed version
  (``--package``) when there is one, else on the pipeline as compiled from the code now;
  the record (pid, start, parameters, reason, status) is ``runs/<run-id>.json`` (atomic writes).
* ``runs_in_flight`` reports the recorded runs whose process is still alive. A pid is alive
  when ``/proc/<pid>`` exists, is not a zombie and started when the recorded one did (a
  recycled pid is not mistaken for the run); a finished run's status comes from its summary.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from crashed.core.names import validate_run_id
from crashed.errors import InputError, NotFoundError, ServiceError
from crashed.fsio import atomic_write
from crashed.orchestration_records import (
    IN_FLIGHT,
    CompiledPipeline,
    DeployAction,
    DeployResult,
    RunInfo,
    RunStatus,
    new_run_id,
)
from crashed.processes import process_alive, process_start

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_PARAM = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class LocalOrchestrator:
    """Runs pipelines on this machine as detached ``crashed … run-local`` processes."""

    def __init__(
        self,
        home: Path,
        command: Sequence[str] = (sys.executable, "-m", "crashed"),
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.home = Path(home)
        self.command = list(command)
        self.env = dict(os.environ if env is None else env)
        self.cwd = cwd
        self.runs_dir = self.home / "runs"

    # -- deploy --------------------------------------------------------------------------

    def _slot(self, pipeline: str, environment: str) -> Path:
        _check_name(pipeline, "pipeline")
        _check_name(environment, "environment")
        return self.home / "pipelines" / f"{pipeline}-{environment}"

    def deployed(self, pipeline: str, environment: str = "prod") -> dict[str, Any] | None:
        """The current version's record (``version``, ``path``, ``deployed_at``), if any."""
        current = self._slot(pipeline, environment) / "current.json"
        if not current.is_file():
            return None
        record = json.loads(current.read_text(encoding="utf-8"))
        return record if Path(record.get("path", "")).is_file() else None

    def deploy(
        self, compiled: CompiledPipeline, environment: str = "prod", dry_run: bool = False
    ) -> DeployResult:
        """Install ``compiled`` as the current version (idempotent; old versions are kept)."""
        slot = self._slot(compiled.name, environment)
        result = DeployResult(
            host=f"local:{self.home}",
            pipeline=f"{compiled.name} - {environment}",
            version=compiled.version,
            experiment=compiled.experiment,
            cron=compiled.kfp_cron,
            recurring_run="(none: no local scheduler; start runs with the orchestrator)",
            dry_run=dry_run,
        )
        target = slot / f"{compiled.version}.yaml"
        if not target.is_file():
            result.actions.append(DeployAction("install-version", compiled.version, str(target)))
            if not dry_run:
                atomic_write(target, compiled.path.read_bytes())
        current = self.deployed(compiled.name, environment)
        if current is None or current.get("version") != compiled.version:
            was = current.get("version") if current else "none"
            result.actions.append(DeployAction("switch-version", compiled.version, f"was {was}"))
            if not dry_run:
                record = {"version": compiled.version, "path": str(target), "deployed_at": _now()}
                atomic_write(slot / "current.json", json.dumps(record, indent=2) + "\n")
        result.version_id = compiled.version
        return result

    # -- runs ----------------------------------------------------------------------------

    def start_run(
        self,
        pipeline: str,
        parameters: Mapping[str, str],
        reason: str,
        environment: str = "prod",
    ) -> RunInfo:
        """Start ``run-local`` detached; return its record (status ``running``)."""
        deployed = self.deployed(pipeline, environment)
        for name, value in parameters.items():
            if not _PARAM.match(name) or not isinstance(value, str):
                raise InputError(f"run parameter {name!r}: expected a name and a string value")
        run_id = validate_run_id(new_run_id())
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.runs_dir / f"{run_id}.log"
        argv = [*self.command, "pipelines", pipeline, "run-local", "--run-id", run_id]
        argv += ["--summary", str(self.runs_dir / f"{run_id}.summary.json")]
        if deployed is not None:
            argv += ["--package", deployed["path"]]
        for name, value in parameters.items():
            argv += ["--param", f"{name}={value}"]
        env = {**self.env, "CRASHED_HOME": str(self.home), "PYTHONUNBUFFERED": "1"}
        try:
            with open(log_path, "ab") as log:
                process = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=self.cwd,
                    start_new_session=True,
                    close_fds=True,
                )
        except OSError as error:
            raise ServiceError(
                f"cannot start a local run ({argv[0]}): {error.strerror or error}"
            ) from None
        record = {
            "run_id": run_id,
            "pipeline": pipeline,
            "environment": environment,
            "status": "running",
            "pid": process.pid,
            "pid_started": process_start(process.pid),
            "started_at": _now(),
            "parameters": dict(parameters),
            "reason": reason,
            "version": deployed["version"] if deployed else "",
            "log": str(log_path),
        }
        self._save(record)
        return _info(record)

    def runs(self, pipeline: str | None = None, environment: str | None = None) -> list[RunInfo]:
        """Every recorded run (oldest first), with its status brought up to date."""
        found = []
        for path in sorted(self.runs_dir.glob("*.json")) if self.runs_dir.is_dir() else []:
            if path.name.endswith(".summary.json"):
                continue
            record = json.loads(path.read_text(encoding="utf-8"))
            if pipeline is not None and record.get("pipeline") != pipeline:
                continue
            if environment is not None and record.get("environment") != environment:
                continue
            found.append(_info(self._refresh(record)))
        return sorted(found, key=lambda run: (run.started_at, run.run_id))

    def run(self, run_id: str) -> RunInfo:
        """One recorded run; :class:`NotFoundError` if there is none."""
        path = self.runs_dir / f"{validate_run_id(run_id)}.json"
        if not path.is_file():
            raise NotFoundError(f"no local run {run_id!r} under {self.runs_dir}")
        return _info(self._refresh(json.loads(path.read_text(encoding="utf-8"))))

    def runs_in_flight(self, pipeline: str, environment: str = "prod") -> list[RunInfo]:
        """The pipeline's recorded runs whose process is still alive."""
        return [run for run in self.runs(pipeline, environment) if run.in_flight]

    def _refresh(self, record: dict[str, Any]) -> dict[str, Any]:
        if record.get("status") not in IN_FLIGHT:
            return record
        if process_alive(int(record["pid"]), record.get("pid_started")):
            return record
        summary = self.runs_dir / f"{record['run_id']}.summary.json"
        status = "failed"
        if summary.is_file():
            try:
                status = json.loads(summary.read_text(encoding="utf-8")).get("status", "failed")
            except ValueError:
                status = "failed"
        record = {**record, "status": status, "finished_at": _now()}
        self._save(record)
        return record

    def _save(self, record: dict[str, Any]) -> None:
        path = self.runs_dir / f"{record['run_id']}.json"
        atomic_write(path, json.dumps(record, indent=2, sort_keys=True) + "\n")


def _info(record: dict[str, Any]) -> RunInfo:
    status: RunStatus = record.get("status", "unknown")
    return RunInfo(
        run_id=record["run_id"],
        pipeline=record["pipeline"],
        status=status if status in ("pending", "running", "succeeded", "failed") else "unknown",
        started_at=record["started_at"],
        parameters=dict(record.get("parameters") or {}),
        reason=str(record.get("reason") or ""),
        version=str(record.get("version") or ""),
        pid=int(record["pid"]),
        url=str(record.get("log") or ""),
    )


def _check_name(value: str, field: str) -> None:
    if not _NAME.match(value or ""):
        raise InputError(f"{field} {value!r}: expected lower-case letters, digits and '_'")


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
