"""Records shared by the compiler, the orchestrators and the CLI (a neutral module).

Adapters import these (never ``crashed.pipeline``): a compiled pipeline file, what deploying it
did, and one run of a deployed pipeline.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from crashed.errors import InputError

RunStatus = Literal["pending", "running", "succeeded", "failed", "unknown"]
IN_FLIGHT: frozenset[str] = frozenset({"pending", "running"})
REASON_PARAMETER = "trigger_reason"
"""The run parameter a pipeline may declare to receive why a run was started (issue 11)."""


def new_run_id(now: dt.datetime | None = None) -> str:
    """A local run id: ``local-YYYYmmddTHHMMSSZ-<6 hex>``."""
    now = now or dt.datetime.now(dt.UTC)
    return f"local-{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def kfp_cron(schedule: str) -> str:
    """Standard 5-field cron → KFP's 6-field cron (KFP reads the first field as *seconds*).

    ``"0 0 * * *"`` handed to KFP unchanged would run at minute 0 of *every hour*.
    """
    fields = schedule.split()
    if len(fields) == 5:
        return " ".join(["0", *fields])
    if len(fields) == 6:
        return " ".join(fields)
    raise InputError(f"schedule {schedule!r}: expected a 5-field cron expression")


@dataclass(frozen=True)
class CompiledPipeline:
    """A compiled pipeline file and what deploying it needs."""

    path: Path
    name: str
    """The crashed pipeline name (``crashed_pipeline``)."""
    version: str
    """Content hash (12 hex) used as the KFP pipeline version name."""
    sha256: str
    schedule: str
    """Cron schedule as declared (5 fields, standard cron)."""
    experiment: str
    parameters: dict[str, str] = field(default_factory=dict)
    ops: tuple[str, ...] = ()
    image: str = ""
    """The image of the first executor (every step runs the same one)."""

    @property
    def kfp_cron(self) -> str:
        """The schedule in KFP's 6-field (seconds-first) cron format."""
        return kfp_cron(self.schedule)


@dataclass(frozen=True)
class DeployAction:
    """One change a deploy makes (or would make, in a dry run)."""

    verb: str
    """create-pipeline | upload-version | create-experiment | create-recurring-run |
    enable-recurring-run | disable-recurring-run | delete-recurring-run | keep-recurring-run |
    install-version"""
    target: str
    detail: str = ""

    def describe(self, dry_run: bool = False) -> str:
        words = self.verb.replace("-", " ")
        text = f"{'would ' if dry_run else ''}{words} {self.target}"
        return f"{text} ({self.detail})" if self.detail else text


@dataclass
class DeployResult:
    """What a deploy found and did (or, in a dry run, would do)."""

    host: str
    pipeline: str
    version: str
    experiment: str
    cron: str
    recurring_run: str
    dry_run: bool = False
    actions: list[DeployAction] = field(default_factory=list)
    pipeline_id: str | None = None
    version_id: str | None = None
    experiment_id: str | None = None
    recurring_run_id: str | None = None
    offline: str | None = None
    """Set when a dry run planned without reading the server's state: why (no host, no
    credentials, unreachable). The actions are then what a deploy to an empty server does."""

    @property
    def changed(self) -> bool:
        """Whether anything was (or, in a dry run, would be) created, changed or deleted."""
        return any(action.verb != "keep-recurring-run" for action in self.actions)

    def as_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "pipeline": self.pipeline,
            "version": self.version,
            "experiment": self.experiment,
            "cron": self.cron,
            "recurring_run": self.recurring_run,
            "dry_run": self.dry_run,
            "offline": self.offline,
            "changed": self.changed,
            "actions": [a.describe(self.dry_run) for a in self.actions],
            "pipeline_id": self.pipeline_id,
            "version_id": self.version_id,
            "experiment_id": self.experiment_id,
            "recurring_run_id": self.recurring_run_id,
        }


@dataclass(frozen=True)
class RunInfo:
    """One run of a deployed pipeline (a KFP run, or a local ``run-local`` process)."""

    run_id: str
    pipeline: str
    status: RunStatus
    started_at: str
    """RFC 3339 UTC."""
    parameters: dict[str, str] = field(default_factory=dict)
    reason: str = ""
    version: str = ""
    pid: int | None = None
    """The local process id (local runs only)."""
    url: str = ""
    """Where to look at it: the KFP run's API path, or the local run's log file."""

    @property
    def in_flight(self) -> bool:
        return self.status in IN_FLIGHT

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "pipeline": self.pipeline,
            "status": self.status,
            "started_at": self.started_at,
            "parameters": dict(self.parameters),
            "reason": self.reason,
            "version": self.version,
            "pid": self.pid,
            "url": self.url,
        }
