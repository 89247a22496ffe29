"""Training on a small synthetic frame: learns the signal, sane threshold, deterministic."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from crashed.core.distributions import analyse
from crashed.core.encoder import Encoder
from crashed.core.model_bundle import ModelBundle
from crashed.core.training import TrainParams, TrainResult, chronological_split, train

FAST = TrainParams(max_rounds=80, early_stopping_rounds=20, nthread=1, seed=3)


def synthetic(rows: int, seed: int) -> pd.DataFrame:
    """Night-time weekend crashes with young male drivers are mostly the positive ones."""
    rng = np.random.default_rng(seed)
    hour = rng.integers(0, 24, rows)
    weekend = rng.random(rows) < 0.3
    males = rng.integers(0, 3, rows)
    night = (hour >= 21) | (hour <= 3)
    logit = -3.0 + 2.2 * night + 1.0 * weekend + 0.6 * males
    label = rng.random(rows) < 1 / (1 + np.exp(-logit))
    days = np.sort(rng.integers(0, 365, rows))
    return pd.DataFrame(
        {
            "accident_date": (pd.Timestamp("2018-01-01") + pd.to_timedelta(days, "D")).date,
            "alcohol_related": label,
            "accident_time": [
                f"{h:02d}:{m:02d}:00" for h, m in zip(hour, rng.integers(0, 60, rows), strict=True)
            ],
            "day_of_week": np.where(
                weekend,
                rng.choice(["Saturday", "Sunday"], rows),
                rng.choice(["Monday", "Wednesday", "Friday"], rows),
            ),
            "males": pd.array(males, dtype="Int64"),
            "speed_zone": rng.choice(["60 km/hr", "100 km/hr", "Not known"], rows),
        }
    )


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return synthetic(1200, seed=11)


@pytest.fixture(scope="module")
def encoder(frame: pd.DataFrame) -> Encoder:
    return Encoder.fit(analyse(frame))


@pytest.fixture(scope="module")
def result(frame: pd.DataFrame, encoder: Encoder) -> TrainResult:
    return train(frame, encoder, FAST, name="crashed-test")


def test_trains_a_model_that_learns_the_signal(result: TrainResult, encoder: Encoder) -> None:
    test = synthetic(1500, seed=12)
    p = result.bundle.predict_matrix(encoder.encode_frame(test))
    assert p.shape == (1500,)
    assert ((p > 0) & (p < 1)).all()
    assert roc_auc_score(test["alcohol_related"], p) > 0.75


def test_threshold_and_diagnostics(result: TrainResult, frame: pd.DataFrame) -> None:
    assert 0 < result.bundle.threshold < 1
    assert 1 <= result.best_rounds <= FAST.max_rounds
    assert result.holdout["rows"] == len(frame) - round(len(frame) * 0.8)
    assert result.holdout["positives"] > 0
    assert 0.5 < result.holdout["roc_auc"] <= 1
    assert result.bundle.name == "crashed-test"
    assert result.params["seed"] == 3
    positives = int(frame["alcohol_related"].sum())
    assert result.params["scale_pos_weight_used"] == pytest.approx(
        np.sqrt((len(frame) - positives) / positives), abs=1e-4
    )
    assert result.seconds > 0


def test_importance_shares(result: TrainResult, encoder: Encoder) -> None:
    shares = dict(result.importance)
    assert sum(shares.values()) == pytest.approx(1.0)
    assert set(shares) <= set(encoder.columns)
    assert [v for _, v in result.importance] == sorted(shares.values(), reverse=True)
    assert result.importance[0][0] == "hour"  # the strongest planted signal


def test_bundle_round_trips_through_bytes(
    result: TrainResult, encoder: Encoder, frame: pd.DataFrame
) -> None:
    loaded = ModelBundle.from_bytes(result.bundle.to_bytes())
    assert loaded.threshold == result.bundle.threshold
    assert loaded.encoder == encoder
    matrix = encoder.encode_frame(frame.head(50))
    np.testing.assert_allclose(
        loaded.predict_matrix(matrix), result.bundle.predict_matrix(matrix), rtol=1e-6
    )


def test_deterministic_for_a_seed(
    frame: pd.DataFrame, encoder: Encoder, result: TrainResult
) -> None:
    again = train(frame, encoder, FAST, name="crashed-test")
    first, second = result.bundle.to_bytes(), again.bundle.to_bytes()
    assert hashlib.sha256(first).hexdigest() == hashlib.sha256(second).hexdigest()
    assert again.best_rounds == result.best_rounds
    assert again.bundle.threshold == result.bundle.threshold


def test_seed_changes_the_model(frame: pd.DataFrame, encoder: Encoder, result: TrainResult) -> None:
    other = train(
        frame, encoder, TrainParams(**(FAST.as_dict() | {"seed": 4})), name="crashed-test"
    )
    assert other.bundle.to_bytes() != result.bundle.to_bytes()


def test_explicit_scale_pos_weight(frame: pd.DataFrame, encoder: Encoder) -> None:
    params = TrainParams(**(FAST.as_dict() | {"scale_pos_weight": 2.5, "max_rounds": 5}))
    assert train(frame, encoder, params).params["scale_pos_weight_used"] == 2.5


def test_no_positives_is_an_error(frame: pd.DataFrame, encoder: Encoder) -> None:
    negatives = frame.assign(alcohol_related=False)
    with pytest.raises(ValueError, match="no positive"):
        train(negatives, encoder, FAST)


def test_holdout_without_positives_falls_back(frame: pd.DataFrame, encoder: Encoder) -> None:
    # positives only in the earliest 80 %: no early stopping, all rounds, threshold 0.5
    fit, holdout = chronological_split(frame, 0.2)
    data = pd.concat([fit, holdout.assign(alcohol_related=False)])
    params = TrainParams(**(FAST.as_dict() | {"max_rounds": 7}))
    result = train(data, encoder, params)
    assert result.best_rounds == 7
    assert result.bundle.threshold == 0.5
    assert np.isnan(result.holdout["roc_auc"])


def test_chronological_split() -> None:
    frame = pd.DataFrame(
        {
            "accident_date": pd.to_datetime(
                ["2018-03-01", "2018-01-01", "2018-02-01", "2018-05-01", "2018-04-01"]
            ).date,
            "alcohol_related": [True] * 5,
        }
    )
    fit, holdout = chronological_split(frame, 0.4)
    assert [str(d) for d in fit["accident_date"]] == ["2018-01-01", "2018-02-01", "2018-03-01"]
    assert [str(d) for d in holdout["accident_date"]] == ["2018-04-01", "2018-05-01"]
    assert max(fit["accident_date"]) < min(holdout["accident_date"])
