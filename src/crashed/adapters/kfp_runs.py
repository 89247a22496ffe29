"""KFP runs as :class:`~crashed.orchestration_records.RunInfo`: start one, read one, and the
offline deploy plan (what a dry run shows when the server cannot be read)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from crashed.adapters.kfp_session import KfpSession, safe_host
from crashed.orchestration_records import (
    CompiledPipeline,
    DeployAction,
    DeployResult,
    RunInfo,
    RunStatus,
)

MAX_CONCURRENCY = 1
IN_FLIGHT_STATES = frozenset({"PENDING", "RUNNING", "PAUSED", "CANCELING"})
_STATUS: dict[str, RunStatus] = {
    "PENDING": "pending",
    "RUNNING": "running",
    "PAUSED": "running",
    "CANCELING": "running",
    "SUCCEEDED": "succeeded",
    "SKIPPED": "succeeded",
    "FAILED": "failed",
    "CANCELED": "failed",
}


def create_run(
    session: KfpSession,
    pipeline_id: str,
    version_id: str,
    experiment_id: str,
    display: str,
    parameters: Mapping[str, str],
    reason: str,
) -> Any:
    """Start one run of a pipeline version; the reason is the run's description."""
    import kfp_server_api

    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = kfp_server_api.V2beta1Run(
        experiment_id=experiment_id,
        display_name=f"{display} triggered {now}",
        description=reason,
        pipeline_version_reference=kfp_server_api.V2beta1PipelineVersionReference(
            pipeline_id=pipeline_id, pipeline_version_id=version_id
        ),
        runtime_config=kfp_server_api.V2beta1RuntimeConfig(parameters=dict(parameters)),
    )
    return session.call(
        f"starting a run of {display!r}", session.client._run_api.run_service_create_run, run=body
    )


def run_info(run: Any, pipeline: str, host: str) -> RunInfo:
    """A ``V2beta1Run`` as a :class:`RunInfo` (its description is the reason)."""
    runtime = getattr(run, "runtime_config", None)
    parameters = getattr(runtime, "parameters", None) or {}
    created = getattr(run, "created_at", None)
    return RunInfo(
        run_id=str(run.run_id),
        pipeline=pipeline,
        status=_STATUS.get(str(run.state), "unknown"),
        started_at=created.isoformat() if isinstance(created, dt.datetime) else str(created),
        parameters={k: v if isinstance(v, str) else json.dumps(v) for k, v in parameters.items()},
        reason=str(getattr(run, "description", "") or ""),
        version=str(pipeline_version_of(run, "pipeline_version_id") or ""),
        url=f"{safe_host(host)}/#/runs/details/{run.run_id}",
    )


def pipeline_version_of(run: Any, key: str = "pipeline_id") -> str | None:
    """The run's pipeline (or version) id, when it was started from a pipeline version."""
    return getattr(getattr(run, "pipeline_version_reference", None), key, None)


def offline_plan(result: DeployResult, compiled: CompiledPipeline, why: str) -> DeployResult:
    """What a deploy to a server holding none of this would do (the state could not be read)."""
    result.offline = why
    result.actions[:] = [
        DeployAction("create-pipeline", repr(result.pipeline), "unless it exists"),
        DeployAction("upload-version", compiled.version, "unless it exists"),
        DeployAction("create-experiment", repr(result.experiment), "unless it exists"),
        DeployAction(
            "create-recurring-run",
            repr(result.recurring_run),
            f"cron {result.cron!r}, max concurrency {MAX_CONCURRENCY}; then retire "
            "superseded recurring runs (disable, delete when nothing is in flight)",
        ),
    ]
    return result
