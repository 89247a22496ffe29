"""The offline shadow: the candidate scored on the traffic production served (its prediction
log over the last ``SHADOW_WINDOW_DAYS``), beside production's logged decisions."""

from __future__ import annotations

import time
from datetime import date, timedelta

import numpy as np

from crashed.core.encoder import FeatureError
from crashed.core.features import RAW_FEATURES
from crashed.core.model_bundle import ModelBundle
from crashed.core.report import ShadowSection
from crashed.core.shadow import LatencySummary, latency_summary, shadow_compare
from crashed.monitoring.log_reader import read_log
from crashed.pipeline.ops.context import OpContext

LATENCY_CALLS = 300


def shadow_on_log(ctx: OpContext, candidate: ModelBundle, run_date: str) -> ShadowSection:
    """Score ``candidate`` on production's logged requests; say why when there are none."""
    until = date.fromisoformat(run_date[:10])
    since = until - timedelta(days=ctx.settings.shadow_window_days - 1)
    window = f"{since} .. {until}"
    production = ctx.production_reference()
    if production is None:
        return ShadowSection(None, None, window, "no model in production yet")
    log = read_log(
        ctx.ports.lake,
        ctx.settings.lake_uri(),
        production.model.name,
        production.artifacts.model.sha256,
        since,
        until,
    )
    if log.empty:
        return ShadowSection(
            None, None, window, f"no prediction log of `{production.model.run_id}`"
        )
    with ctx.step(f"shadow: score the candidate on {len(log)} logged requests"):
        p_candidate = candidate.predict_matrix(candidate.encoder.encode_frame(log))
        result = shadow_compare(
            log["probability"].to_numpy(dtype=float),
            p_candidate,
            candidate.threshold,
            production_decision=log["decision"].to_numpy(dtype=int),
        )
    return ShadowSection(result, _latency(candidate, log), window)


def _latency(candidate: ModelBundle, log) -> LatencySummary:  # type: ignore[no-untyped-def]
    """The candidate's single-row latency through the serving predictor, on logged requests."""
    from crashed.serving.predictor import Predictor

    predictor = Predictor(candidate)
    rows = log[list(RAW_FEATURES)].head(LATENCY_CALLS)
    requests = [
        {k: str(v) for k, v in row.items() if v is not None and v == v}
        for row in rows.to_dict("records")
    ]
    seconds: list[float] = []
    for request in requests:
        started = time.perf_counter()
        try:
            predictor.predict_one(request)
        except FeatureError:
            continue  # a value the candidate's vocabulary lacks: a 400 when served, not timed
        seconds.append(time.perf_counter() - started)
    return latency_summary(np.asarray(seconds))
