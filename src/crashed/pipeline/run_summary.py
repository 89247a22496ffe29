"""What a local run of a compiled pipeline did: per-step results and the final manifest.

The final step's output parameter is the lake URI of its manifest (the publish op's output
JSON); its ``artifacts``, ``metrics``, ``gate``, ``proposal`` and ``decision`` are copied into
the summary. The lake that reads it is handed in.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from crashed.errors import CrashedError
from crashed.pipeline.compiled_tasks import Task

StepStatus = Literal["succeeded", "failed", "skipped"]


class ManifestReader(Protocol):
    """What reading the final manifest needs of a :class:`crashed.ports.Lake`."""

    def get_bytes(self, uri: str) -> bytes: ...


@dataclass(frozen=True)
class StepResult:
    """One step's outcome."""

    status: StepStatus
    seconds: float = 0.0
    exit_code: int | None = None
    error: str | None = None
    reason: str | None = None
    """For a skipped step: the dependency that did not succeed."""

    def as_dict(self) -> dict[str, Any]:
        fields = {"exit_code": self.exit_code, "error": self.error, "reason": self.reason}
        return {
            "status": self.status,
            "seconds": self.seconds,
            **{k: v for k, v in fields.items() if v is not None},
        }


@dataclass
class RunSummary:
    """A finished local run (``as_dict`` is the ``--summary`` JSON)."""

    run_id: str
    pipeline: str
    run_date: str
    runner: str
    steps: dict[str, StepResult] = field(default_factory=dict)
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)
    version: str = ""
    manifest: str | None = None
    manifest_error: str | None = None
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    gate: Any = None
    proposal: Any = None
    decision: Any = None

    @property
    def failed_step(self) -> str | None:
        return next((n for n, s in self.steps.items() if s.status == "failed"), None)

    @property
    def status(self) -> Literal["succeeded", "failed"]:
        return "failed" if self.failed_step else "succeeded"

    @property
    def skipped(self) -> list[str]:
        return [name for name, step in self.steps.items() if step.status == "skipped"]

    def as_dict(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "run_id": self.run_id,
            "pipeline": self.pipeline,
            "run_date": self.run_date,
            "runner": self.runner,
            "version": self.version,
            "status": self.status,
            "failed_step": self.failed_step,
            "steps": {name: step.as_dict() for name, step in self.steps.items()},
            "outputs": self.outputs,
            "artifacts": self.artifacts,
            "metrics": self.metrics,
            "gate": self.gate,
            "proposal": self.proposal,
            "decision": self.decision,
        }
        if self.manifest is not None:
            payload["manifest"] = self.manifest
        if self.manifest_error is not None:
            payload["manifest_error"] = self.manifest_error
        return payload

    def read_manifest(
        self, tasks: Sequence[Task], lake: ManifestReader | None, final_step: str | None = None
    ) -> None:
        """Fill the manifest fields from the final step's ``manifest`` output (or its only
        output); ``final_step`` defaults to the only task nothing depends on."""
        uri = _final_output(tasks, self.outputs, final_step)
        if not uri:
            return
        self.manifest = uri
        if lake is None:
            self.manifest_error = "no lake to read the manifest from"
            return
        try:
            manifest = json.loads(lake.get_bytes(uri))
        except CrashedError as error:
            self.manifest_error = error.message
            return
        except (OSError, ValueError) as error:
            self.manifest_error = f"cannot read {uri}: {error}"
            return
        if not isinstance(manifest, dict):
            self.manifest_error = f"{uri} is not a JSON object"
            return
        self.artifacts = list(manifest.get("artifacts") or [])
        self.metrics = dict(manifest.get("metrics") or {})
        self.gate = manifest.get("gate")
        self.proposal = manifest.get("proposal")
        self.decision = manifest.get("decision")


def _final_output(
    tasks: Sequence[Task], outputs: Mapping[str, dict[str, str]], final_step: str | None
) -> str:
    if final_step is None:
        needed = {dep for task in tasks for dep in task.depends_on}
        sinks = [task.name for task in tasks if task.name not in needed]
        final_step = sinks[0] if len(sinks) == 1 else None
    produced = outputs.get(final_step or "", {})
    uri = produced.get("manifest") or (next(iter(produced.values())) if len(produced) == 1 else "")
    return uri.strip()
