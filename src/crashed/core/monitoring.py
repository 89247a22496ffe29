"""What the monitor computes from logged traffic: drift per feature and of the score, the
unseen-category rate, live quality where labels arrived, and whether to retrain or roll back.

PSI here is computed on *smoothed* histograms (half a count added to every bin of both sides)
over the reference's frequent categories (rarer ones pooled as ``(other)``): with the raw floor
used for the training-time drift report, one rare category absent from a few hundred live rows
alone would read as drift.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from crashed.core.features import CATEGORY_FEATURES, COUNT_FEATURES, TIME_FEATURE

OTHER = "(other)"


class Thresholds(BaseModel):
    """When drift or a quality breach is decided (settings ``MONITOR_*``)."""

    model_config = ConfigDict(frozen=True)

    min_rows: int = 200
    feature_psi: float = 0.25
    score_psi: float = 0.25
    unseen_rate: float = 0.05
    min_labelled_positives: int = 20
    max_roc_auc_drop: float = 0.05
    min_roc_auc: float = 0.70


class FeatureDrift(BaseModel):
    psi: float
    unseen_rate: float
    drifted: bool


class LiveQuality(BaseModel):
    rows: int
    positives: int
    roc_auc: float | None
    pr_auc: float | None
    reference_roc_auc: float | None
    reference_pr_auc: float | None
    breach: bool
    detail: str


class Decision(BaseModel):
    decided: bool
    reason: str


class Assessment(BaseModel):
    """The monitor's numbers for one window of one production model."""

    rows: int
    features: dict[str, FeatureDrift]
    score_psi: float | None
    unseen_category_rate: float
    drift: bool
    quality: LiveQuality | None
    trigger: Decision
    rollback: Decision


def smoothed_psi(expected: Mapping[str, float], actual: Mapping[str, float]) -> float:
    """PSI of two histograms over the same bins, each bin + 0.5 count (no infinite terms)."""
    keys = sorted(set(expected) | set(actual))
    e = np.array([expected.get(k, 0.0) for k in keys], dtype=float) + 0.5
    a = np.array([actual.get(k, 0.0) for k in keys], dtype=float) + 0.5
    e, a = e / e.sum(), a / a.sum()
    return float(np.sum((a - e) * np.log(a / e)))


def _pooled(
    reference: Mapping[str, int], values: pd.Series, min_share: float
) -> tuple[dict[str, float], dict[str, float], float]:
    """(reference histogram, live histogram, unseen rate) with rare reference values pooled."""
    total = sum(reference.values()) or 1
    frequent = {k for k, v in reference.items() if v / total >= min_share}
    ref: dict[str, float] = {}
    for key, count in reference.items():
        bucket = key if key in frequent else OTHER
        ref[bucket] = ref.get(bucket, 0.0) + count
    live_values = values.dropna().astype(str)
    unseen = ~live_values.isin(list(reference))
    buckets = live_values.where(live_values.isin(list(frequent)), OTHER)
    live = {str(k): float(v) for k, v in buckets.value_counts().items()}
    rate = float(unseen.mean()) if len(live_values) else 0.0
    return ref, live, rate


def feature_drift(
    log: pd.DataFrame, distributions: Mapping[str, Any], thresholds: Thresholds
) -> tuple[dict[str, FeatureDrift], float]:
    """PSI per category feature, the hour of day and each count; and the unseen-category rate."""
    out: dict[str, FeatureDrift] = {}
    unseen_total, seen_total = 0.0, 0
    for feature in CATEGORY_FEATURES:
        counts = distributions.get("categorical", {}).get(feature, {}).get("counts", {})
        if not counts or feature not in log:
            continue
        ref, live, rate = _pooled(counts, log[feature], min_share=0.01)
        value = smoothed_psi(ref, live)
        out[feature] = FeatureDrift(
            psi=round(value, 4),
            unseen_rate=round(rate, 4),
            drifted=value >= thresholds.feature_psi or rate >= thresholds.unseen_rate,
        )
        present = int(log[feature].notna().sum())
        unseen_total += rate * present
        seen_total += present
    hours = distributions.get("time", {}).get("hour_counts")
    if hours and TIME_FEATURE in log:
        live_hours = pd.to_numeric(log[TIME_FEATURE].astype("string").str.slice(0, 2), "coerce")
        live = {str(int(h)): float(c) for h, c in live_hours.dropna().value_counts().items()}
        value = smoothed_psi({str(h): float(c) for h, c in enumerate(hours)}, live)
        out["hour"] = FeatureDrift(
            psi=round(value, 4), unseen_rate=0.0, drifted=value >= thresholds.feature_psi
        )
    for feature in COUNT_FEATURES:
        histogram = distributions.get("numeric", {}).get(feature, {}).get("histogram")
        if not histogram or feature not in log:
            continue
        live = count_histogram(log[feature], len(histogram["counts"]))
        value = smoothed_psi(dict(enumerate_str(histogram["counts"])), dict(enumerate_str(live)))
        out[feature] = FeatureDrift(
            psi=round(value, 4), unseen_rate=0.0, drifted=value >= thresholds.feature_psi
        )
    return out, (unseen_total / seen_total if seen_total else 0.0)


def count_histogram(values: pd.Series, bins: int) -> list[int]:
    """Counts of 0, 1, …, ``bins - 2`` and ``≥ bins - 1`` (the last bin is open-ended)."""
    numbers = pd.to_numeric(values, errors="coerce").dropna().clip(upper=bins - 1)
    return np.bincount(numbers.astype(int).to_numpy(), minlength=bins)[:bins].tolist()


def enumerate_str(counts: Sequence[float]) -> list[tuple[str, float]]:
    return [(str(i), float(c)) for i, c in enumerate(counts)]


def score_histogram(scores: np.ndarray, edges: Sequence[float]) -> list[int]:
    """Counts of ``scores`` in the bins ``edges`` (first and last bins open-ended)."""
    inner = np.asarray(edges, dtype=float)[1:-1]
    return np.bincount(
        np.searchsorted(inner, scores, side="right"), minlength=len(edges) - 1
    ).tolist()


def score_edges(scores: np.ndarray, bins: int = 10) -> list[float]:
    """Quantile bin edges of reference scores (deduplicated; 0 and 1 at the ends)."""
    inner = np.quantile(np.asarray(scores, dtype=float), np.linspace(0, 1, bins + 1)[1:-1])
    return [0.0, *sorted(set(np.round(inner, 6).tolist())), 1.0]


def live_quality(
    y: np.ndarray,
    p: np.ndarray,
    reference_roc_auc: float | None,
    reference_pr_auc: float | None,
    thresholds: Thresholds,
) -> LiveQuality:
    """ROC-AUC/PR-AUC on logged predictions whose outcome is now known, against the reference's
    validation metrics; a breach needs enough labelled positives to mean anything."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    y = np.asarray(y, dtype=int)
    positives = int(y.sum())
    both = 0 < positives < len(y)
    roc = float(roc_auc_score(y, p)) if both else None
    pr = float(average_precision_score(y, p)) if both else None
    enough = positives >= thresholds.min_labelled_positives
    breach, detail = (
        False,
        f"{positives} labelled positives (need {thresholds.min_labelled_positives})",
    )
    if enough and roc is not None:
        floor = thresholds.min_roc_auc
        if reference_roc_auc is not None:
            floor = max(floor, reference_roc_auc - thresholds.max_roc_auc_drop)
        breach = roc < floor
        detail = (
            f"live ROC-AUC {roc:.4f} vs floor {floor:.4f} on {len(y)} rows, {positives} positive"
        )
    return LiveQuality(
        rows=len(y),
        positives=positives,
        roc_auc=roc,
        pr_auc=pr,
        reference_roc_auc=reference_roc_auc,
        reference_pr_auc=reference_pr_auc,
        breach=breach,
        detail=detail,
    )


def assess(
    log: pd.DataFrame,
    distributions: Mapping[str, Any],
    score_edges_: Sequence[float] | None,
    score_counts: Sequence[int] | None,
    quality: LiveQuality | None,
    thresholds: Thresholds,
) -> Assessment:
    """Drift of logged traffic against training, the score against validation, and decisions."""
    rows = len(log)
    features, unseen = feature_drift(log, distributions, thresholds) if rows else ({}, 0.0)
    score_psi: float | None = None
    if rows and score_edges_ and score_counts:
        live = score_histogram(log["probability"].to_numpy(dtype=float), score_edges_)
        score_psi = round(
            smoothed_psi(dict(enumerate_str(score_counts)), dict(enumerate_str(live))), 4
        )
    enough = rows >= thresholds.min_rows
    drifted = sorted(name for name, f in features.items() if f.drifted)
    score_drift = score_psi is not None and score_psi >= thresholds.score_psi
    drift = enough and (bool(drifted) or score_drift)
    reasons: list[str] = []
    if drift:
        parts = [f"{n} PSI {features[n].psi:.2f}" for n in drifted]
        if score_drift:
            parts.append(f"score PSI {score_psi:.2f}")
        reasons.append(f"drift on {rows} logged predictions: " + ", ".join(parts))
    if quality is not None and quality.breach:
        reasons.append(f"live quality below the gate: {quality.detail}")
    if reasons:
        trigger = Decision(decided=True, reason="; ".join(reasons))
    elif not enough:
        trigger = Decision(
            decided=False, reason=f"{rows} logged predictions (need {thresholds.min_rows})"
        )
    else:
        trigger = Decision(decided=False, reason="no drift and no quality breach")
    rollback = (
        Decision(
            decided=True, reason=f"live quality below the gate after promotion: {quality.detail}"
        )
        if quality is not None and quality.breach
        else Decision(decided=False, reason="live quality within the gate or not yet measurable")
    )
    return Assessment(
        rows=rows,
        features=features,
        score_psi=score_psi,
        unseen_category_rate=round(unseen, 4),
        drift=drift,
        quality=quality,
        trigger=trigger,
        rollback=rollback,
    )


def finite(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else value
