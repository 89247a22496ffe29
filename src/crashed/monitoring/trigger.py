"""Start at most one retraining run per breach: a cooldown, and none while a run is in flight."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from crashed.errors import NotFoundError
from crashed.ports import Lake, Orchestrator

TRAINING_PIPELINE = "crashed_pipeline"


def state_uri(lake_root: str, model: str) -> str:
    return f"{lake_root.rstrip('/')}/monitoring/{model}/trigger-state.json"


def last_trigger(lake: Lake, uri: str) -> dict[str, str] | None:
    try:
        return json.loads(lake.get_bytes(uri))
    except NotFoundError:
        return None


def start_retraining(
    orchestrator: Orchestrator,
    lake: Lake,
    uri: str,
    reason: str,
    cooldown: timedelta,
    now: datetime | None = None,
) -> tuple[str | None, str | None]:
    """(started run id, None) or (None, why nothing was started)."""
    now = now or datetime.now(UTC)
    previous = last_trigger(lake, uri)
    if previous is not None:
        at = datetime.fromisoformat(previous["at"])
        if now - at < cooldown:
            until = (at + cooldown).isoformat(timespec="seconds")
            return None, (
                f"cooldown: run {previous['run_id']} was triggered at {previous['at']} "
                f"(next trigger allowed after {until})"
            )
    in_flight = orchestrator.runs_in_flight(TRAINING_PIPELINE)
    if in_flight:
        ids = ", ".join(run.run_id for run in in_flight)
        return None, f"a training run is in flight ({ids})"
    run = orchestrator.start_run(
        TRAINING_PIPELINE, {"trigger_reason": f"monitor: {reason}"}, reason=f"monitor: {reason}"
    )
    state = {"at": now.isoformat(timespec="seconds"), "run_id": run.run_id, "reason": reason}
    lake.put_bytes(uri, (json.dumps(state, indent=2) + "\n").encode(), "application/json")
    return run.run_id, None
