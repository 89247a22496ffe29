"""Classification metrics agree with scikit-learn; best_f1_threshold really maximises F1."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    f1_score,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)

from crashed.core.metrics import (
    HEADLINE,
    best_f1_threshold,
    classification_metrics,
    segment_metrics,
)


def sample(n: int, seed: int, rate: float = 0.1, ties: bool = False) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < rate).astype(int)
    p = np.clip(0.15 + 0.3 * y + rng.normal(0, 0.2, n), 0.01, 0.99)
    if ties:
        p = np.round(p, 1)
    return y, p


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("threshold", [0.2, 0.35, 0.5])
def test_metrics_match_sklearn(seed: int, threshold: float) -> None:
    y, p = sample(500, seed)
    m = classification_metrics(y, p, threshold)
    predicted = (p >= threshold).astype(int)

    assert m["rows"] == 500
    assert m["positives"] == int(y.sum())
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, p))
    assert m["pr_auc"] == pytest.approx(average_precision_score(y, p))
    assert m["log_loss"] == pytest.approx(log_loss(y, p))
    assert m["brier"] == pytest.approx(brier_score_loss(y, p))
    assert m["precision"] == pytest.approx(precision_score(y, predicted, zero_division=0))
    assert m["recall"] == pytest.approx(recall_score(y, predicted, zero_division=0))
    assert m["f1"] == pytest.approx(f1_score(y, predicted, zero_division=0))
    assert m["true_positives"] == int((predicted & y).sum())
    assert m["false_positives"] == int((predicted & (1 - y)).sum())
    assert m["false_negatives"] == int(((1 - predicted) & y).sum())
    assert m["threshold"] == threshold
    assert set(HEADLINE) <= set(m)


def test_threshold_is_inclusive() -> None:
    m = classification_metrics(np.array([1, 0]), np.array([0.5, 0.49]), 0.5)
    assert (m["true_positives"], m["false_positives"], m["false_negatives"]) == (1, 0, 0)
    assert m["precision"] == m["recall"] == m["f1"] == 1.0


def test_single_class_has_no_auc() -> None:
    m = classification_metrics(np.zeros(5, dtype=int), np.full(5, 0.2), 0.5)
    assert m["roc_auc"] is None
    assert m["pr_auc"] is None
    assert m["log_loss"] == pytest.approx(log_loss([0] * 5, [0.2] * 5, labels=[0, 1]))
    assert m["precision"] == m["recall"] == m["f1"] == 0.0


def test_empty_input() -> None:
    m = classification_metrics(np.array([], dtype=int), np.array([]), 0.5)
    assert m["rows"] == 0
    assert m["roc_auc"] is None and m["log_loss"] is None and m["brier"] is None


def test_extreme_probabilities_give_finite_log_loss() -> None:
    m = classification_metrics(np.array([1, 0]), np.array([0.0, 1.0]), 0.5)
    assert np.isfinite(m["log_loss"])
    assert m["log_loss"] > 10


def brute_force_best_f1(y: np.ndarray, p: np.ndarray) -> float:
    """F1 at every possible cut (every distinct score), by direct counting."""
    best = 0.0
    for t in np.unique(p):
        predicted = p >= t
        tp = int((predicted & (y == 1)).sum())
        fp = int((predicted & (y == 0)).sum())
        fn = int((~predicted & (y == 1)).sum())
        best = max(best, 2 * tp / (2 * tp + fp + fn))
    return best


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", range(8))
def test_best_f1_threshold_maximises_f1(seed: int, ties: bool) -> None:
    y, p = sample(200, seed, rate=0.15, ties=ties)
    threshold = best_f1_threshold(y, p)

    assert threshold in set(p.tolist())  # a score that occurs, so the cut is reproducible
    achieved = f1_score(y, (p >= threshold).astype(int))
    assert achieved == pytest.approx(brute_force_best_f1(y, p), abs=1e-12)
    assert classification_metrics(y, p, threshold)["f1"] == pytest.approx(achieved)


def test_best_f1_threshold_on_a_hand_example() -> None:
    y = np.array([1, 1, 0, 1, 0, 0])
    p = np.array([0.9, 0.8, 0.7, 0.6, 0.2, 0.1])
    # cut at 0.6: tp=3 fp=1 -> F1 0.857; at 0.8: tp=2 fp=0 fn=1 -> F1 0.8
    assert best_f1_threshold(y, p) == 0.6


def test_best_f1_threshold_with_tied_scores_keeps_the_whole_tie() -> None:
    y = np.array([1, 0, 0, 0, 1])
    p = np.array([0.5, 0.5, 0.5, 0.5, 0.9])
    assert best_f1_threshold(y, p) == 0.9  # F1 0.667 at 0.9 beats 0.571 at 0.5


def test_best_f1_threshold_without_positives() -> None:
    assert best_f1_threshold(np.zeros(4, dtype=int), np.array([0.1, 0.2, 0.3, 0.4])) == 0.5


def test_segment_metrics_pools_small_segments() -> None:
    rng = np.random.default_rng(3)
    days = ["Friday"] * 60 + ["Saturday"] * 40 + ["Monday"] * 5 + [None] * 3
    frame = pd.DataFrame({"day_of_week": pd.array(days, dtype="string")})
    y = (rng.random(len(days)) < 0.3).astype(int)
    y[:2] = [1, 0]
    p = rng.random(len(days))

    segments = segment_metrics(frame, y, p, 0.5, "day_of_week", min_rows=30)

    assert [s["segment"] for s in segments] == ["Friday", "Saturday", "(other)"]
    assert [s["rows"] for s in segments] == [60, 40, 8]
    assert sum(s["positives"] for s in segments) == int(y.sum())
    friday = classification_metrics(y[:60], p[:60], 0.5)
    assert segments[0]["roc_auc"] == pytest.approx(friday["roc_auc"])
    assert segments[0]["recall"] == pytest.approx(friday["recall"])
    assert set(segments[0]) == {
        "segment",
        "rows",
        "positives",
        "roc_auc",
        "pr_auc",
        "precision",
        "recall",
    }


def test_segment_metrics_unknown_segment_and_missing_feature() -> None:
    frame = pd.DataFrame({"light_condition": pd.array(["Day", None, None], dtype="string")})
    y, p = np.array([1, 0, 1]), np.array([0.9, 0.1, 0.8])
    segments = segment_metrics(frame, y, p, 0.5, "light_condition", min_rows=1)
    assert [(s["segment"], s["rows"]) for s in segments] == [("(unknown)", 2), ("Day", 1)]
    assert segment_metrics(frame, y, p, 0.5, "dca_code") == []
