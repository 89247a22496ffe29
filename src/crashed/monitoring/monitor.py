"""monitor: the production model's logged traffic → drift, live quality, retrain or rollback.

Reads the prediction log over a window, compares it with the production model's training
distributions and validation scores, joins outcomes that have arrived in the warehouse (on the
client id, e.g. ``accident_no``), and — with ``trigger`` — starts one retraining run through the
Orchestrator port (reason passed as the run's ``trigger_reason``) and opens a rollback proposal
when live quality fell below the gate. It never merges anything.
"""

from __future__ import annotations

import json
from datetime import date, timedelta

import pandas as pd
from pydantic import ValidationError

from crashed.core.evaluation import Evaluation
from crashed.core.features import LABEL
from crashed.core.monitoring import Assessment, Thresholds, assess, live_quality
from crashed.core.reference import PromotedReference
from crashed.errors import CrashedError, InputError
from crashed.monitoring.contracts import (
    MonitorInput,
    MonitorOutput,
    RollbackResult,
    TriggerResult,
)
from crashed.monitoring.log_reader import read_log
from crashed.monitoring.report import render_monitoring_report
from crashed.monitoring.trigger import start_retraining, state_uri
from crashed.pipeline.ops.context import OpContext
from crashed.settings import Settings

SOURCE_TABLE = "crashes_raw"
ID_COLUMN = "accident_no"


def thresholds(settings: Settings) -> Thresholds:
    """Monitor thresholds from settings (``MONITOR_*``, and the gate's ROC-AUC floor)."""
    return Thresholds(
        min_rows=settings.monitor_min_rows,
        feature_psi=settings.monitor_feature_psi,
        score_psi=settings.monitor_score_psi,
        unseen_rate=settings.monitor_unseen_rate,
        min_labelled_positives=settings.monitor_min_labelled_positives,
        max_roc_auc_drop=settings.monitor_max_roc_auc_drop,
        min_roc_auc=settings.gate_min_roc_auc,
    )


def window(inp: MonitorInput, settings: Settings) -> tuple[date, date]:
    """(since, until), inclusive; defaults: the ``MONITOR_WINDOW_DAYS`` up to the run date."""
    try:
        until = (
            date.fromisoformat(inp.until) if inp.until else date.fromisoformat(inp.run_date[:10])
        )
        since = (
            date.fromisoformat(inp.since)
            if inp.since
            else until - timedelta(days=settings.monitor_window_days - 1)
        )
    except ValueError as error:
        raise InputError(f"monitor window: expected ISO dates (YYYY-MM-DD): {error}") from None
    if since > until:
        raise InputError(f"monitor window: since {since} is after until {until}")
    return since, until


def monitor(ctx: OpContext, inp: MonitorInput) -> MonitorOutput:
    """Assess the production model's traffic over the window; act on it when asked."""
    settings = ctx.settings
    since, until = window(inp, settings)
    production = ctx.production_reference()
    if production is None:
        empty = Assessment.model_validate(
            {
                "rows": 0,
                "features": {},
                "score_psi": None,
                "unseen_category_rate": 0.0,
                "drift": False,
                "quality": None,
                "trigger": {"decided": False, "reason": "no model has been promoted yet"},
                "rollback": {"decided": False, "reason": "no model has been promoted yet"},
            }
        )
        return _finish(ctx, inp, None, since, until, empty)
    distributions = json.loads(ctx.fetch_production(production, "distributions"))
    evaluation = _evaluation(ctx, production)
    with ctx.step(f"read the prediction log {since} .. {until}"):
        log = read_log(
            ctx.ports.lake,
            settings.lake_uri(),
            production.model.name,
            production.artifacts.model.sha256,
            since,
            until,
        )
    rules = thresholds(settings)
    quality = None
    labelled = _labelled(ctx, log)
    if labelled is not None and len(labelled):
        quality = live_quality(
            labelled[LABEL].to_numpy(dtype=int),
            labelled["probability"].to_numpy(dtype=float),
            production.metrics.roc_auc,
            production.metrics.pr_auc,
            rules,
        )
    scores = evaluation.candidate_scores if evaluation else None
    assessment = assess(
        log,
        distributions,
        scores.edges if scores else None,
        scores.counts if scores else None,
        quality,
        rules,
    )
    return _finish(ctx, inp, production, since, until, assessment)


def _evaluation(ctx: OpContext, production: PromotedReference) -> Evaluation | None:
    try:
        return Evaluation.model_validate_json(ctx.fetch_production(production, "metrics"))
    except (CrashedError, ValidationError):
        return None  # an older metrics.json without validation scores: no score PSI


def _labelled(ctx: OpContext, log: pd.DataFrame) -> pd.DataFrame | None:
    """Logged predictions whose outcome is in the warehouse now (joined on the client id)."""
    ids = log["client_id"].dropna()
    warehouse = ctx.ports.warehouse
    if ids.empty or not warehouse.table_exists(SOURCE_TABLE):
        return None
    if ID_COLUMN not in warehouse.columns(SOURCE_TABLE):
        return None
    outcomes = warehouse.query(
        f"SELECT {ID_COLUMN}, {LABEL} FROM {SOURCE_TABLE} WHERE {LABEL} IS NOT NULL"
    ).drop_duplicates(ID_COLUMN)
    outcomes[ID_COLUMN] = outcomes[ID_COLUMN].astype(str)
    return log.merge(outcomes, left_on="client_id", right_on=ID_COLUMN, how="inner")


def _finish(
    ctx: OpContext,
    inp: MonitorInput,
    production: PromotedReference | None,
    since: date,
    until: date,
    assessment: Assessment,
) -> MonitorOutput:
    trigger = TriggerResult(**assessment.trigger.model_dump())
    rollback = RollbackResult(**assessment.rollback.model_dump())
    if production is not None and (trigger.decided or rollback.decided):
        if not inp.trigger:
            note = "not asked to act (run with --trigger)"
            trigger = trigger.model_copy(update={"skipped": note}) if trigger.decided else trigger
            rollback = (
                rollback.model_copy(update={"skipped": note}) if rollback.decided else rollback
            )
        else:
            trigger, rollback = _act(ctx, production, trigger, rollback)
    out = MonitorOutput(
        model=production.model.name if production else None,
        model_run_id=production.model.run_id if production else None,
        model_sha256=production.artifacts.model.sha256 if production else None,
        since=since.isoformat(),
        until=until.isoformat(),
        rows=assessment.rows,
        features=assessment.features,
        score_psi=assessment.score_psi,
        unseen_category_rate=assessment.unseen_category_rate,
        drift=assessment.drift,
        quality=assessment.quality,
        trigger=trigger,
        rollback=rollback,
    )
    name = ctx.settings.crashed_model_name
    report_uri = ctx.settings.lake_uri("monitoring", name, ctx.run_id, "report.md")
    ctx.put_text(report_uri, render_monitoring_report(out), "text/markdown")
    out = out.model_copy(update={"report_uri": report_uri})
    ctx.put_text(
        ctx.settings.lake_uri("monitoring", name, ctx.run_id, "report.json"),
        out.model_dump_json(indent=2) + "\n",
    )
    return out


def _act(
    ctx: OpContext,
    production: PromotedReference,
    trigger: TriggerResult,
    rollback: RollbackResult,
) -> tuple[TriggerResult, RollbackResult]:
    settings = ctx.settings
    if trigger.decided:
        if ctx.orchestrator is None:
            trigger = trigger.model_copy(update={"skipped": "no orchestrator configured"})
        else:
            run_id, skipped = start_retraining(
                ctx.orchestrator,
                ctx.ports.lake,
                state_uri(settings.lake_uri(), production.model.name),
                trigger.reason,
                timedelta(hours=settings.monitor_cooldown_hours),
            )
            trigger = trigger.model_copy(update={"started_run": run_id, "skipped": skipped})
            if run_id:
                print(f"  retraining run {run_id} started: {trigger.reason}")
            else:
                print(f"  retraining not started: {skipped}")
    if rollback.decided:
        from crashed.promotion.rollback import propose_rollback

        try:
            result = propose_rollback(ctx.ports.git_host, settings, reason=rollback.reason)
        except CrashedError as error:
            rollback = rollback.model_copy(update={"skipped": error.message})
        else:
            rollback = rollback.model_copy(update={"proposal": f"{result.id} {result.url}"})
            print(f"  rollback proposal {result.action}: {result.id} {result.url}")
    return trigger, rollback
