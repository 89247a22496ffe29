"""Offline shadow: the candidate scored on the rows production actually served.

"What would have changed had this model served last week": decision agreement, mean
|Δprobability|, the change in predicted positive rate and the PSI between the two score
distributions, plus the candidate's single-row latency on the same machine.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from crashed.core.monitoring import enumerate_str, score_edges, score_histogram, smoothed_psi


class ShadowResult(BaseModel):
    """Production's logged decisions vs the candidate's on the same rows."""

    model_config = ConfigDict(frozen=True)

    rows: int
    agreement: float
    """Share of rows where both models decide the same."""
    newly_flagged: int
    """Rows production did not flag and the candidate would."""
    no_longer_flagged: int
    """Rows production flagged and the candidate would not."""
    mean_abs_delta_p: float
    max_abs_delta_p: float
    production_positive_rate: float
    candidate_positive_rate: float
    positive_rate_change: float
    """candidate − production, as a share of rows (0.01 = one percentage point)."""
    score_psi: float
    """PSI of the candidate's scores vs production's, over production's score deciles."""
    candidate_threshold: float

    def summary(self, digits: int = 4) -> dict[str, Any]:
        """Small rounded dict for a report or a run's output."""
        return {
            k: round(v, digits) if isinstance(v, float) else v for k, v in self.model_dump().items()
        }


class LatencySummary(BaseModel):
    """Single-row predict latency in microseconds."""

    model_config = ConfigDict(frozen=True)

    samples: int
    p50_us: float
    p99_us: float
    mean_us: float
    max_us: float


def score_psi(expected: np.ndarray, actual: np.ndarray, bins: int = 10) -> float:
    """PSI of ``actual`` scores vs ``expected`` over the deciles of ``expected``.

    The same computation as the monitor's score PSI (``core/monitoring.py``: decile edges,
    histograms, +0.5-smoothed PSI), so the shadow's figure and the monitor's mean the same.
    """
    expected = np.asarray(expected, dtype=np.float64)
    actual = np.asarray(actual, dtype=np.float64)
    if not len(expected) or not len(actual):
        return 0.0
    edges = score_edges(expected, bins)
    return smoothed_psi(
        dict(enumerate_str(score_histogram(expected, edges))),
        dict(enumerate_str(score_histogram(actual, edges))),
    )


def shadow_compare(
    production_p: np.ndarray,
    candidate_p: np.ndarray,
    candidate_threshold: float,
    production_decision: np.ndarray | None = None,
    production_threshold: float | None = None,
) -> ShadowResult:
    """Compare the candidate with production's logged predictions on the same N rows.

    ``production_decision`` is the logged decision per row; without it, production's decisions
    are ``production_p ≥ production_threshold``. The candidate decides ``p ≥ candidate_threshold``.
    """
    prod_p = np.asarray(production_p, dtype=np.float64)
    cand_p = np.asarray(candidate_p, dtype=np.float64)
    if prod_p.shape != cand_p.shape or prod_p.ndim != 1:
        raise ValueError("production and candidate probabilities must be 1-D and of equal length")
    if not len(prod_p):
        raise ValueError("no rows to compare: the prediction log is empty")
    if production_decision is not None:
        prod_d = np.asarray(production_decision).astype(bool)
        if prod_d.shape != prod_p.shape:
            raise ValueError("production decisions and probabilities differ in length")
    elif production_threshold is not None:
        prod_d = prod_p >= production_threshold
    else:
        raise ValueError("give production's logged decisions or its threshold")
    cand_d = cand_p >= candidate_threshold
    delta = np.abs(cand_p - prod_p)
    return ShadowResult(
        rows=len(prod_p),
        agreement=float((prod_d == cand_d).mean()),
        newly_flagged=int((cand_d & ~prod_d).sum()),
        no_longer_flagged=int((prod_d & ~cand_d).sum()),
        mean_abs_delta_p=float(delta.mean()),
        max_abs_delta_p=float(delta.max()),
        production_positive_rate=float(prod_d.mean()),
        candidate_positive_rate=float(cand_d.mean()),
        positive_rate_change=float(cand_d.mean() - prod_d.mean()),
        score_psi=float(score_psi(prod_p, cand_p)),
        candidate_threshold=float(candidate_threshold),
    )


def latency_summary(seconds: Sequence[float] | np.ndarray) -> LatencySummary:
    """p50/p99/mean/max in µs of single-row predict timings given in seconds (perf_counter)."""
    us = np.asarray(seconds, dtype=np.float64) * 1e6
    if not len(us):
        raise ValueError("no latency samples")
    p50, p99 = np.percentile(us, [50, 99])
    return LatencySummary(
        samples=len(us),
        p50_us=float(p50),
        p99_us=float(p99),
        mean_us=float(us.mean()),
        max_us=float(us.max()),
    )
