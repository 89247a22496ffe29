"""Paired bootstrap of ROC-AUC and PR-AUC (and their candidate − production deltas).

Both models are scored on the *same* resampled rows, so the interval of the delta is much
narrower than the two intervals side by side would suggest. Vectorised: a resample is a row of
counts (how often each row was drawn) and both metrics are weighted sums over the distinct
scores, computed for a block of resamples at once with ``np.add.reduceat`` and ``np.cumsum``.
A weighted metric with integer counts equals sklearn's metric on the resampled rows (duplicated
rows share a score, so they fall in the same threshold group); ``average_precision`` below is
sklearn's ``average_precision_score`` (no interpolation), as ``core/metrics.py`` reports it.
~3,000 rows × 1,000 resamples take a fraction of a second (``bench/bench_bootstrap.py``).
"""

from __future__ import annotations

from enum import StrEnum

import numpy as np
from pydantic import BaseModel, ConfigDict

METRICS = ("roc_auc", "pr_auc")
"""Bootstrapped metrics, in report order."""

_CLIP = 1e-7  # the clipping classification_metrics applies before scoring


class Interval(BaseModel):
    """A point estimate (on all rows) and its percentile bootstrap interval."""

    model_config = ConfigDict(frozen=True)

    estimate: float | None
    low: float | None
    high: float | None


class MetricComparison(BaseModel):
    """One metric: candidate, production and delta (candidate − production) with intervals."""

    model_config = ConfigDict(frozen=True)

    metric: str
    candidate: Interval
    production: Interval | None = None
    delta: Interval | None = None
    share_candidate_worse: float | None = None
    """Share of the valid resamples in which the candidate scored below production."""


class BootstrapResult(BaseModel):
    """Everything the gate and the report need; ``model_dump()`` is JSON-ready."""

    model_config = ConfigDict(frozen=True)

    rows: int
    positives: int
    resamples: int
    valid_resamples: int
    skipped_degenerate: int
    """Resamples without a positive or without a negative (no AUC defined): skipped."""
    seed: int
    level: float
    metrics: dict[str, MetricComparison]


class Verdict(StrEnum):
    """Outcome of a regression rule read from the delta's interval."""

    SIGNIFICANTLY_WORSE = "significantly worse"
    NOT_DISTINGUISHABLE = "not distinguishable"
    BETTER = "better"
    UNDEFINED = "undefined"
    """No interval (no production model, or every resample degenerate)."""


class RegressionCheck(BaseModel):
    """The regression rule for one metric: fails only on a significant drop beyond the allowance."""

    model_config = ConfigDict(frozen=True)

    metric: str
    verdict: Verdict
    allowed_drop: float
    level: float
    delta: Interval | None

    @property
    def fails(self) -> bool:
        """True only when the whole interval lies below ``-allowed_drop`` (or is undefined)."""
        return self.verdict in (Verdict.SIGNIFICANTLY_WORSE, Verdict.UNDEFINED)


def resample_counts(rows: int, resamples: int, seed: int) -> np.ndarray:
    """(resamples, rows) matrix of how often each row is drawn (rows drawn with replacement)."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, rows, size=(resamples, rows))
    idx += (np.arange(resamples) * rows)[:, None]
    counts = np.bincount(idx.ravel(), minlength=resamples * rows)
    return counts.reshape(resamples, rows).astype(np.float64)


def weighted_auc_ap(
    y: np.ndarray, p: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """ROC-AUC and average precision for each row of ``weights`` (shape (B, n)); NaN if degenerate.

    Scores are clipped to [1e-7, 1 − 1e-7] first, like ``classification_metrics``.
    """
    y = np.asarray(y, dtype=np.float64)
    p = np.clip(np.asarray(p, dtype=np.float64), _CLIP, 1 - _CLIP)
    weights = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    order = np.argsort(-p, kind="stable")
    sorted_p = p[order]
    starts = np.flatnonzero(np.r_[True, sorted_p[1:] != sorted_p[:-1]])
    w = weights[:, order]
    pos = np.add.reduceat(w * y[order], starts, axis=1)  # positive weight per distinct score
    neg = np.add.reduceat(w, starts, axis=1) - pos
    tp = np.cumsum(pos, axis=1)
    fp = np.cumsum(neg, axis=1)
    total_pos, total_neg = tp[:, -1], fp[:, -1]
    valid = (total_pos > 0) & (total_neg > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        # Positives of a group beat the negatives below it and tie with those beside it.
        auc = (pos * (total_neg[:, None] - fp + 0.5 * neg)).sum(axis=1) / (total_pos * total_neg)
        precision = np.where(tp + fp > 0, tp / np.where(tp + fp > 0, tp + fp, 1.0), 0.0)
        ap = (pos * precision).sum(axis=1) / total_pos
    return np.where(valid, auc, np.nan), np.where(valid, ap, np.nan)


def _interval(estimate: float | None, samples: np.ndarray, level: float) -> Interval:
    if estimate is None or not len(samples):
        return Interval(estimate=estimate, low=None, high=None)
    low, high = np.quantile(samples, [(1 - level) / 2, (1 + level) / 2])
    return Interval(estimate=estimate, low=float(low), high=float(high))


def _point(y: np.ndarray, p: np.ndarray) -> tuple[float | None, float | None]:
    if not len(y):
        return None, None
    auc, ap = weighted_auc_ap(y, p, np.ones((1, len(y))))
    return (
        None if np.isnan(auc[0]) else float(auc[0]),
        None if np.isnan(ap[0]) else float(ap[0]),
    )


def paired_bootstrap(
    y: np.ndarray,
    candidate: np.ndarray,
    production: np.ndarray | None = None,
    *,
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    block: int = 250,
) -> BootstrapResult:
    """Percentile intervals of ROC-AUC and PR-AUC for candidate (and production and the delta).

    The same resampled rows score both models. Resamples without a positive or a negative are
    skipped and counted. ``block`` bounds memory (block × rows floats per temporary); the
    result does not depend on it.
    """
    y = np.asarray(y, dtype=np.int64)
    candidate = np.asarray(candidate, dtype=np.float64)
    if candidate.shape != y.shape or (production is not None and np.shape(production) != y.shape):
        raise ValueError("labels and score vectors must have the same length")
    if resamples < 1 or not 0 < level < 1:
        raise ValueError("resamples must be ≥ 1 and level in (0, 1)")
    models = {"candidate": candidate}
    if production is not None:
        models["production"] = np.asarray(production, dtype=np.float64)
    counts = resample_counts(len(y), resamples, seed) if len(y) else np.zeros((resamples, 0))
    samples: dict[tuple[str, str], list[np.ndarray]] = {(m, k): [] for m in models for k in METRICS}
    for start in range(0, resamples, block):
        weights = counts[start : start + block]
        for name, scores in models.items():
            if not len(y):
                nan = np.full(len(weights), np.nan)
                auc, ap = nan, nan
            else:
                auc, ap = weighted_auc_ap(y, scores, weights)
            samples[(name, "roc_auc")].append(auc)
            samples[(name, "pr_auc")].append(ap)
    flat = {key: np.concatenate(parts) for key, parts in samples.items()}
    valid = ~np.isnan(flat[("candidate", "roc_auc")])
    points = {name: _point(y, scores) for name, scores in models.items()}
    out: dict[str, MetricComparison] = {}
    for i, metric in enumerate(METRICS):
        cand = flat[("candidate", metric)][valid]
        cand_point = points["candidate"][i]
        comparison = MetricComparison(metric=metric, candidate=_interval(cand_point, cand, level))
        if production is not None:
            prod = flat[("production", metric)][valid]
            prod_point = points["production"][i]
            delta = cand - prod
            delta_point = (
                None if cand_point is None or prod_point is None else cand_point - prod_point
            )
            comparison = comparison.model_copy(
                update={
                    "production": _interval(prod_point, prod, level),
                    "delta": _interval(delta_point, delta, level),
                    "share_candidate_worse": float((delta < 0).mean()) if len(delta) else None,
                }
            )
        out[metric] = comparison
    return BootstrapResult(
        rows=len(y),
        positives=int(y.sum()),
        resamples=resamples,
        valid_resamples=int(valid.sum()),
        skipped_degenerate=int((~valid).sum()),
        seed=seed,
        level=level,
        metrics=out,
    )


def regression_check(
    comparison: MetricComparison, allowed_drop: float, level: float
) -> RegressionCheck:
    """Tri-state regression rule on the delta's interval (computed at ``level``).

    Significantly worse: the interval's upper bound is below ``-allowed_drop`` (the drop is
    beyond the allowance with confidence ``level``). Better: the lower bound is above
    ``+allowed_drop`` (the same margin, mirrored: a gain smaller than the drop we tolerate is not
    news). Otherwise not distinguishable — e.g. the same recipe retrained with another seed.
    Undefined when there is no delta interval (no production model, or all resamples skipped).
    """
    delta = comparison.delta
    if delta is None or delta.low is None or delta.high is None:
        verdict = Verdict.UNDEFINED
    elif delta.high < -allowed_drop:
        verdict = Verdict.SIGNIFICANTLY_WORSE
    elif delta.low > allowed_drop:
        verdict = Verdict.BETTER
    else:
        verdict = Verdict.NOT_DISTINGUISHABLE
    return RegressionCheck(
        metric=comparison.metric,
        verdict=verdict,
        allowed_drop=allowed_drop,
        level=level,
        delta=delta,
    )


def regression_checks(
    result: BootstrapResult, allowed_drops: dict[str, float]
) -> list[RegressionCheck]:
    """``regression_check`` for each metric named in ``allowed_drops`` (e.g. the gate's drops)."""
    return [
        regression_check(result.metrics[metric], allowed, result.level)
        for metric, allowed in allowed_drops.items()
    ]
