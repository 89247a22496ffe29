"""Reliability table, Brier, and operating points read from the precision-recall curve."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import brier_score_loss, precision_score, recall_score

from crashed.core.calibration import calibration, operating_point, threshold_analysis
from crashed.core.metrics import best_f1_threshold, classification_metrics


def calibrated(n: int = 5000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from the probabilities themselves: calibrated by construction."""
    rng = np.random.default_rng(seed)
    p = rng.beta(1, 12, n)
    return (rng.random(n) < p).astype(int), p


def test_reliability_deciles_of_a_calibrated_model() -> None:
    y, p = calibrated()
    result = calibration(y, p)
    assert len(result.bins) == 10
    assert [b.bin for b in result.bins] == list(range(1, 11))
    assert all(b.rows == 500 for b in result.bins)
    assert sum(b.positives for b in result.bins) == result.positives == y.sum()
    means = [b.mean_predicted for b in result.bins]
    assert means == sorted(means)
    for b in result.bins:
        assert b.min_predicted <= b.mean_predicted <= b.max_predicted
        assert b.observed_rate == pytest.approx(b.positives / b.rows)
        assert abs(b.observed_rate - b.mean_predicted) < 0.04
    assert result.expected_calibration_error < 0.02
    assert result.brier == pytest.approx(brier_score_loss(y, p), abs=1e-12)
    assert result.brier == pytest.approx(classification_metrics(y, p, 0.5)["brier"], abs=1e-12)


def test_overconfident_model_shows_in_the_table_and_the_ece() -> None:
    y, p = calibrated()
    inflated = np.clip(p * 3, 0, 1)  # what a heavy class weight does
    result = calibration(y, inflated)
    top = result.bins[-1]
    assert top.mean_predicted > 2 * top.observed_rate
    assert result.expected_calibration_error > 3 * calibration(y, p).expected_calibration_error
    assert result.brier > calibration(y, p).brier


def test_few_rows_give_fewer_bins_and_empty_input_none() -> None:
    assert len(calibration(np.array([0, 1, 0]), np.array([0.1, 0.8, 0.3])).bins) == 3
    empty = calibration(np.array([], dtype=int), np.array([]))
    assert (empty.bins, empty.brier, empty.expected_calibration_error) == ((), None, None)


def test_operating_point_matches_sklearn_and_classification_metrics() -> None:
    y, p = calibrated(seed=3)
    point = operating_point(y, p, 0.15, "chosen")
    predicted = p >= 0.15
    assert point.precision == pytest.approx(precision_score(y, predicted))
    assert point.recall == pytest.approx(recall_score(y, predicted))
    assert point.flagged_share == pytest.approx(predicted.mean())
    reference = classification_metrics(y, p, 0.15)
    assert (point.precision, point.recall, point.f1) == pytest.approx(
        (reference["precision"], reference["recall"], reference["f1"])
    )


def test_alternative_operating_points_reach_their_recall_at_the_best_precision() -> None:
    y, p = calibrated(seed=4)
    analysis = threshold_analysis(y, p, threshold=0.2)
    names = [a.name for a in analysis.alternatives]
    assert names == ["recall ≥ 0.5", "recall ≥ 0.7", "best F1"]
    half, seventy, best = analysis.alternatives
    for point, target in ((half, 0.5), (seventy, 0.7)):
        assert point.recall >= target
        # Raising the threshold to the next distinct score loses the recall target.
        higher = np.unique(p[p > point.threshold])
        if len(higher):
            assert operating_point(y, p, higher[0], "x").recall < target
        assert point == operating_point(y, p, point.threshold, point.name)
    assert half.threshold > seventy.threshold and half.precision >= seventy.precision
    assert best.threshold == best_f1_threshold(y, p)
    assert best.f1 >= max(half.f1, seventy.f1, analysis.chosen.f1)


def test_no_positives_leaves_alternatives_undefined() -> None:
    analysis = threshold_analysis(np.zeros(20, dtype=int), np.linspace(0, 1, 20), 0.5)
    assert analysis.chosen.recall == 0.0
    assert all(a.threshold is None and a.precision is None for a in analysis.alternatives)


def test_length_mismatch_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="same length"):
        calibration(np.array([0, 1]), np.array([0.5]))
