"""What a local run of a compiled pipeline did: per-step results and the final manifest.

The final step's output parameter is the lake URI of its manifest (the publish op's output
JSON); its ``artifacts``, ``metrics``, ``gate``, ``proposal`` and ``decision`` are copied into
the summary, and a publish op's manifest is also read typed (:attr:`RunSummary.published`, a
:class:`~crashed.pipeline.contracts.PublishOutput`). The lake that reads it is handed in.

An interrupted run (SIGINT/SIGTERM) is ``failed`` with ``interrupted`` naming the signal; the
step that was running is ``interrupted`` and the steps after it ``skipped`` (reason
``interrupted``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from pydantic import ValidationError

from crashed.core.promotion import Outcome
from crashed.errors import CrashedError
from crashed.pipeline.compiled_tasks import Task
from crashed.pipeline.contracts import PublishOutput

StepStatus = Literal["succeeded", "failed", "skipped", "interrupted"]


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
    """For a skipped step: the dependency that did not succeed, or ``interrupted``."""

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
    published: PublishOutput | None = None
    """The publish op's manifest, typed (None for other final steps)."""
    interrupted: str | None = None
    """The signal that stopped the run (``SIGINT``/``SIGTERM``), if one did."""

    @property
    def failed_step(self) -> str | None:
        """The step that failed or was interrupted."""
        bad = ("failed", "interrupted")
        return next((n for n, s in self.steps.items() if s.status in bad), None)

    @property
    def status(self) -> Literal["succeeded", "failed"]:
        return "failed" if self.failed_step or self.interrupted else "succeeded"

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
            "interrupted": self.interrupted,
        }
        if self.manifest is not None:
            payload["manifest"] = self.manifest
        if self.manifest_error is not None:
            payload["manifest_error"] = self.manifest_error
        return payload

    def report_lines(self) -> list[str]:
        """What the CLI prints at the end: per-step table, artifacts, metrics, gate, proposal."""
        total = sum(step.seconds for step in self.steps.values())
        state = f"interrupted by {self.interrupted}" if self.interrupted else self.status
        lines = ["", f"run {self.run_id} {state} in {total:.1f}s"]
        width = max((len(name) for name in self.steps), default=0)
        for name, step in self.steps.items():
            lines.append(f"  {name.ljust(width)}  {step.status:<11}  {step.seconds:7.1f}s")
        if self.manifest_error:
            lines.append(f"manifest: {self.manifest_error}")
        if self.artifacts:
            names = ", ".join(str(a.get("name", a.get("uri", "?"))) for a in self.artifacts)
            lines.append(f"artifacts: {names}")
        if self.metrics:
            shown = ", ".join(
                f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
                for k, v in self.metrics.items()
                if isinstance(v, (int, float, str))
            )
            lines.append(f"metrics: {shown}")
        if isinstance(self.gate, dict):
            lines.append(f"gate: {self.gate.get('passed', self.gate.get('status', '?'))}")
        if isinstance(self.proposal, dict):
            keys = ("action", "id", "url")
            lines.append(
                "proposal: " + " ".join(str(self.proposal[k]) for k in keys if self.proposal.get(k))
            )
        return lines

    def gate_verdict(self) -> str | None:
        """One line when the gate refused the candidate: which rules failed, that production
        keeps serving, how to force. None when something was proposed, the candidate is
        identical to production, or the final step is not a publish."""
        published = self.published
        if published is None or published.outcome is not Outcome.GATE_FAILED:
            return None
        rules = "; ".join(f"{r.name} ({r.detail})" for r in published.gate.failures())
        return (
            f"gate failed: {rules or 'no rule recorded'}. Nothing was proposed; production "
            "keeps serving its current model. To propose it anyway: --param force_promotion=true"
        )

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
            data = lake.get_bytes(uri)
            manifest = json.loads(data)
        except CrashedError as error:
            self.manifest_error = error.message
            return
        except (OSError, ValueError) as error:
            self.manifest_error = f"cannot read {uri}: {error}"
            return
        if not isinstance(manifest, dict):
            self.manifest_error = f"{uri} is not a JSON object"
            return
        if manifest.get("op") == "publish":
            try:
                self.published = PublishOutput.model_validate_json(data)
            except ValidationError as error:
                first = error.errors()[0]
                where = ".".join(str(part) for part in first["loc"]) or "(root)"
                self.manifest_error = f"{uri}: not a publish manifest ({where}: {first['msg']})"
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
