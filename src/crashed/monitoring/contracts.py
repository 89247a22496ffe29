"""The monitor op's typed input and output (its manifest and ``crashed monitor run --json``)."""

from __future__ import annotations

from pydantic import field_validator

from crashed.core.monitoring import FeatureDrift, LiveQuality
from crashed.core.values import parse_bool
from crashed.pipeline.contracts import Contract, OpInput, OpOutput


class MonitorInput(OpInput):
    since: str = ""
    """First day of the window (ISO date); empty: ``MONITOR_WINDOW_DAYS`` before ``until``."""
    until: str = ""
    """Last day of the window (ISO date); empty: the run date."""
    trigger: bool = False
    """Act on the decisions: start a retraining run, open a rollback proposal."""

    @field_validator("trigger", mode="before")
    @classmethod
    def _flag(cls, value: object) -> bool:
        return bool(parse_bool(value, "trigger"))


class TriggerResult(Contract):
    decided: bool
    reason: str
    started_run: str | None = None
    """The training run started for this trigger (``--trigger`` only)."""
    skipped: str | None = None
    """Why a decided trigger started nothing (cooldown, a run in flight, not asked)."""


class RollbackResult(Contract):
    decided: bool
    reason: str
    proposal: str | None = None
    skipped: str | None = None


class MonitorOutput(OpOutput):
    model: str | None
    model_run_id: str | None
    model_sha256: str | None
    since: str
    until: str
    rows: int
    features: dict[str, FeatureDrift]
    score_psi: float | None
    unseen_category_rate: float
    drift: bool
    quality: LiveQuality | None
    trigger: TriggerResult
    rollback: RollbackResult
    report_uri: str | None = None
