"""Offline shadow figures and latency summary."""

from __future__ import annotations

import numpy as np
import pytest

from crashed.core.distributions import PSI_ALERT, PSI_WARN
from crashed.core.shadow import latency_summary, score_psi, shadow_compare


@pytest.fixture(scope="module")
def served() -> np.ndarray:
    return np.random.default_rng(0).beta(1, 12, 5000)


def test_identical_models_agree_completely(served: np.ndarray) -> None:
    result = shadow_compare(served, served.copy(), 0.15, production_threshold=0.15)
    assert result.agreement == 1.0
    assert (result.newly_flagged, result.no_longer_flagged) == (0, 0)
    assert result.mean_abs_delta_p == 0.0 and result.max_abs_delta_p == 0.0
    assert result.positive_rate_change == 0.0
    assert result.score_psi == pytest.approx(0.0, abs=1e-12)
    assert result.candidate_positive_rate == pytest.approx((served >= 0.15).mean())


def test_logged_decisions_are_used_as_logged(served: np.ndarray) -> None:
    logged = np.zeros(len(served), dtype=bool)  # production flagged nothing
    result = shadow_compare(served, served, 0.15, production_decision=logged)
    flagged = int((served >= 0.15).sum())
    assert result.newly_flagged == flagged and result.no_longer_flagged == 0
    assert result.agreement == pytest.approx(1 - flagged / len(served))
    assert result.production_positive_rate == 0.0
    assert result.positive_rate_change == pytest.approx(flagged / len(served))


def test_a_shifted_candidate(served: np.ndarray) -> None:
    shifted = np.clip(served * 1.5, 0, 1)
    result = shadow_compare(served, shifted, 0.15, production_threshold=0.15)
    assert result.mean_abs_delta_p == pytest.approx(np.abs(shifted - served).mean())
    assert result.no_longer_flagged == 0 and result.newly_flagged > 0
    assert result.candidate_positive_rate > result.production_positive_rate
    assert result.agreement == pytest.approx(1 - result.newly_flagged / len(served))
    assert result.score_psi > PSI_WARN
    summary = result.summary()
    assert summary["rows"] == 5000 and summary["agreement"] == round(result.agreement, 4)


def test_score_psi_levels(served: np.ndarray) -> None:
    rng = np.random.default_rng(1)
    same_distribution = rng.beta(1, 12, 5000)  # other draws, same distribution
    assert score_psi(served, same_distribution) < 0.02
    assert score_psi(served, rng.beta(2, 6, 5000)) > PSI_ALERT
    # Many tied scores: duplicate decile edges collapse instead of failing.
    tied = np.round(served, 1)
    assert score_psi(tied, tied) == pytest.approx(0.0, abs=1e-12)


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="equal length"):
        shadow_compare(np.array([0.1, 0.2]), np.array([0.1]), 0.5, production_threshold=0.5)
    with pytest.raises(ValueError, match="empty"):
        shadow_compare(np.array([]), np.array([]), 0.5, production_threshold=0.5)
    with pytest.raises(ValueError, match="threshold"):
        shadow_compare(np.array([0.1]), np.array([0.1]), 0.5)


def test_latency_summary_in_microseconds() -> None:
    seconds = np.r_[np.full(98, 50e-6), 1e-3, 2e-3]
    summary = latency_summary(seconds)
    assert summary.samples == 100
    assert summary.p50_us == pytest.approx(50.0)
    assert summary.max_us == pytest.approx(2000.0)
    assert 1000 <= summary.p99_us <= 2000
    assert summary.mean_us == pytest.approx((98 * 50 + 1000 + 2000) / 100)
    with pytest.raises(ValueError, match="no latency"):
        latency_summary([])
