"""Paired bootstrap: exact agreement with sklearn per resample, intervals, verdicts."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from crashed.core.bootstrap import (
    Verdict,
    paired_bootstrap,
    regression_check,
    regression_checks,
    resample_counts,
    weighted_auc_ap,
)
from crashed.core.calibration import calibration, threshold_analysis
from crashed.core.charts import parse_mermaid, pr_chart, roc_chart
from crashed.core.distributions import analyse
from crashed.core.encoder import Encoder
from crashed.core.features import LABEL
from crashed.core.report_sections import (
    render_calibration,
    render_charts,
    render_intervals,
    render_operating_points,
    render_shadow,
)
from crashed.core.shadow import shadow_compare
from crashed.core.training import TrainParams, train


def synthetic(n: int = 3000, rate: float = 0.033, seed: int = 0):
    """Labels and a latent risk signal shared by 'models' of the same quality."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < rate).astype(int)
    signal = 1.6 * y + rng.normal(0, 1, n)
    return y, signal, rng


def squash(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-(x - 3)))


def test_each_resample_equals_sklearn_on_the_resampled_rows() -> None:
    y, signal, _ = synthetic(800)
    p = np.round(squash(signal), 2)  # many ties
    counts = resample_counts(len(y), 6, seed=4)
    auc, ap = weighted_auc_ap(y, p, counts)
    for b in range(6):
        rows = np.repeat(np.arange(len(y)), counts[b].astype(int))
        assert auc[b] == pytest.approx(roc_auc_score(y[rows], p[rows]), abs=1e-12)
        assert ap[b] == pytest.approx(average_precision_score(y[rows], p[rows]), abs=1e-12)


def test_resample_counts_draw_every_row_count_once_per_resample() -> None:
    counts = resample_counts(100, 7, seed=1)
    assert counts.shape == (7, 100)
    assert (counts.sum(axis=1) == 100).all()
    assert np.array_equal(counts, resample_counts(100, 7, seed=1))
    assert not np.array_equal(counts, resample_counts(100, 7, seed=2))


def test_point_estimates_match_sklearn_and_intervals_bracket_them() -> None:
    y, signal, rng = synthetic()
    cand, prod = squash(signal + rng.normal(0, 0.3, len(y))), squash(signal)
    result = paired_bootstrap(y, cand, prod, resamples=1000, seed=3)
    roc, pr = result.metrics["roc_auc"], result.metrics["pr_auc"]
    assert roc.candidate.estimate == pytest.approx(roc_auc_score(y, cand), abs=1e-12)
    assert pr.production.estimate == pytest.approx(average_precision_score(y, prod), abs=1e-12)
    assert roc.delta.estimate == pytest.approx(roc.candidate.estimate - roc.production.estimate)
    for interval in (roc.candidate, roc.production, roc.delta, pr.candidate, pr.delta):
        assert interval.low < interval.estimate < interval.high
    # ~100 positives: the ROC-AUC interval is several hundredths wide (the point of issue 12).
    assert 0.03 < roc.candidate.high - roc.candidate.low < 0.15
    # Pairing: the delta's interval is narrower than either model's own interval.
    assert roc.delta.high - roc.delta.low < roc.candidate.high - roc.candidate.low
    assert result.valid_resamples == 1000 and result.skipped_degenerate == 0
    assert result.model_dump()["metrics"]["roc_auc"]["delta"]["low"] == roc.delta.low


def test_seeded_and_independent_of_block_size() -> None:
    y, signal, _ = synthetic(1000)
    p = squash(signal)
    a = paired_bootstrap(y, p, p * 0.9, resamples=300, seed=5, block=300)
    b = paired_bootstrap(y, p, p * 0.9, resamples=300, seed=5, block=7)
    assert a == b
    assert a != paired_bootstrap(y, p, p * 0.9, resamples=300, seed=6)


def test_perfect_vs_random_model() -> None:
    rng = np.random.default_rng(2)
    y = (rng.random(2000) < 0.05).astype(int)
    perfect = np.where(y == 1, 0.9, 0.1) + rng.uniform(0, 0.05, len(y))
    random = rng.random(len(y))
    result = paired_bootstrap(y, perfect, random, resamples=1000, seed=0)
    roc = result.metrics["roc_auc"]
    assert (roc.candidate.estimate, roc.candidate.low, roc.candidate.high) == (1.0, 1.0, 1.0)
    assert roc.production.low < 0.5 < roc.production.high
    assert roc.delta.low > 0.4
    assert roc.share_candidate_worse == 0.0
    assert result.metrics["pr_auc"].candidate.low == 1.0
    check = regression_check(roc, allowed_drop=0.01, level=result.level)
    assert check.verdict is Verdict.BETTER and not check.fails
    # The other way round, the random model is a significant drop.
    reverse = paired_bootstrap(y, random, perfect, resamples=1000, seed=0)
    worse = regression_check(reverse.metrics["roc_auc"], 0.01, reverse.level)
    assert worse.verdict is Verdict.SIGNIFICANTLY_WORSE and worse.fails
    assert reverse.metrics["roc_auc"].share_candidate_worse == 1.0


def test_same_quality_candidate_is_not_distinguishable_and_a_worse_one_fails() -> None:
    y, signal, rng = synthetic(2700, seed=11)
    # Two "seeds" of one model: the shared signal plus a little model-specific noise.
    production = squash(signal + rng.normal(0, 0.25, len(y)))
    same = squash(signal + rng.normal(0, 0.25, len(y)))
    worse = squash(signal + rng.normal(0, 1.5, len(y)))
    drops = {"roc_auc": 0.01, "pr_auc": 0.03}
    same_checks = regression_checks(paired_bootstrap(y, same, production), drops)
    assert [c.verdict for c in same_checks] == [Verdict.NOT_DISTINGUISHABLE] * 2
    assert not any(c.fails for c in same_checks)
    worse_result = paired_bootstrap(y, worse, production)
    worse_checks = regression_checks(worse_result, drops)
    assert worse_checks[0].verdict is Verdict.SIGNIFICANTLY_WORSE and worse_checks[0].fails
    assert worse_result.metrics["roc_auc"].share_candidate_worse > 0.99


def test_tolerated_drop_needs_the_whole_interval_beyond_the_allowance() -> None:
    y, signal, rng = synthetic(2700, seed=11)
    production = squash(signal + rng.normal(0, 0.25, len(y)))
    worse = squash(signal + rng.normal(0, 1.5, len(y)))
    comparison = paired_bootstrap(y, worse, production).metrics["roc_auc"]
    assert comparison.delta.high < 0
    generous = -comparison.delta.low + 0.01  # allowance wider than any plausible drop
    assert regression_check(comparison, generous, 0.95).verdict is Verdict.NOT_DISTINGUISHABLE


def test_degenerate_resamples_are_skipped_and_counted() -> None:
    y = np.zeros(60, dtype=int)
    y[0] = 1  # one positive: ~37 % of resamples miss it
    p = np.linspace(0.9, 0.1, 60)
    result = paired_bootstrap(y, p, p[::-1], resamples=400, seed=0)
    assert 100 < result.skipped_degenerate < 200
    assert result.valid_resamples + result.skipped_degenerate == 400
    roc = result.metrics["roc_auc"]
    assert roc.candidate.estimate == 1.0 and roc.production.estimate == 0.0
    assert roc.delta.low == 1.0


def test_no_production_and_no_positive() -> None:
    y, signal, _ = synthetic(500)
    alone = paired_bootstrap(y, squash(signal), resamples=200)
    assert alone.metrics["roc_auc"].production is None and alone.metrics["roc_auc"].delta is None
    assert regression_check(alone.metrics["roc_auc"], 0.01, 0.95).verdict is Verdict.UNDEFINED
    none = paired_bootstrap(np.zeros(50, dtype=int), np.linspace(0, 1, 50), resamples=50)
    assert none.valid_resamples == 0 and none.skipped_degenerate == 50
    assert none.metrics["pr_auc"].candidate.estimate is None


def test_bad_input_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="same length"):
        paired_bootstrap(np.array([0, 1]), np.array([0.1, 0.2, 0.3]))
    with pytest.raises(ValueError, match="level"):
        paired_bootstrap(np.array([0, 1]), np.array([0.1, 0.2]), level=1.5)


@pytest.mark.real_data
@pytest.mark.slow
def test_real_split_another_seed_is_not_distinguishable(real_frame: pd.DataFrame) -> None:
    dates = pd.to_datetime(real_frame["accident_date"])
    train_frame = real_frame[(dates >= "2018-01-01") & (dates <= "2018-09-30")]
    valid_frame = real_frame[(dates >= "2018-10-01") & (dates <= "2018-12-31")]
    y = valid_frame[LABEL].astype(int).to_numpy()
    encoder = Encoder.fit(analyse(train_frame))
    x = encoder.encode_frame(valid_frame)
    scores = [
        train(train_frame, encoder, TrainParams(seed=seed)).bundle.predict_matrix(x)
        for seed in (0, 1)
    ]
    result = paired_bootstrap(y, scores[1], scores[0], resamples=1000, seed=0)
    checks = regression_checks(result, {"roc_auc": 0.01, "pr_auc": 0.03})
    assert [c.verdict for c in checks] == [Verdict.NOT_DISTINGUISHABLE] * 2
    roc = result.metrics["roc_auc"].candidate
    assert roc.estimate > 0.84 and roc.high - roc.low > 0.03  # 88 positives: wide
    # Every issue-12 section renders from the real scores, and its charts parse.
    cand, prod = scores[1], scores[0]
    sections = [
        *render_intervals(result, checks),
        *render_calibration(calibration(y, cand), calibration(y, prod)),
        *render_operating_points(
            threshold_analysis(y, cand, 0.3), threshold_analysis(y, prod, 0.3)
        ),
        *render_shadow(shadow_compare(prod, cand, 0.3, production_threshold=0.3)),
        *render_charts([roc_chart(y, cand, prod), pr_chart(y, cand, prod)]),
    ]
    text = "\n".join(sections)
    assert text.count("≈ not distinguishable") == 2
    blocks = re.findall(r"```mermaid\n.*?\n```", text, flags=re.S)
    assert [len(parse_mermaid(b).lines) for b in blocks] == [3, 3]
