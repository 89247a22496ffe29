"""The compiled forest: XGBoost's probabilities on real and random rows, and only for the
boosters it covers (anything else is served by XGBoost itself)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from crashed.core.model_bundle import ModelBundle
from crashed.serving.forest import MAX_DEPTH, Forest
from crashed.serving.model_state import ModelState
from crashed.serving.predictor import Predictor, _forest_agrees

if TYPE_CHECKING:
    from tests.serving_fixtures import Served, TrainedModel


def random_rows(width: int, count: int, seed: int) -> np.ndarray:
    """Counts, one-hot flags and missing values in every mix."""
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, 5, (count, width)).astype(np.float32)
    rows[rng.random((count, width)) < 0.3] = np.nan
    return rows


def assert_matches_xgboost(booster: xgb.Booster, forest: Forest, rows: np.ndarray) -> None:
    expected = booster.inplace_predict(rows, validate_features=False)
    got = np.array([forest.predict(row) for row in rows])
    np.testing.assert_allclose(got, expected, rtol=0, atol=2e-7)


def test_the_small_model_matches_xgboost_on_random_rows(small_model: TrainedModel) -> None:
    booster = small_model.bundle().booster
    forest = Forest.compile(booster)
    assert forest is not None and forest.trees == booster.num_boosted_rounds()
    assert_matches_xgboost(booster, forest, random_rows(forest_width(booster), 2000, seed=4))


def test_the_real_model_matches_xgboost_on_real_and_random_rows(
    real_model: ModelBundle, real_frame: pd.DataFrame
) -> None:
    forest = Forest.compile(real_model.booster)
    assert forest is not None
    matrix = real_model.encoder.encode_frame(real_frame.head(3000))
    assert_matches_xgboost(real_model.booster, forest, matrix)
    assert_matches_xgboost(
        real_model.booster, forest, random_rows(real_model.encoder.width, 2000, seed=5)
    )


def forest_width(booster: xgb.Booster) -> int:
    return int(booster.num_features())


def train(params: dict[str, object], labels: np.ndarray, rounds: int = 5) -> xgb.Booster:
    rng = np.random.default_rng(0)
    features = rng.normal(size=(400, 6)).astype(np.float32)
    features[rng.random(features.shape) < 0.1] = np.nan
    return xgb.train({"nthread": 1, **params}, xgb.DMatrix(features, labels), rounds)


BINARY = (np.arange(400) % 3 == 0).astype(int)


@pytest.mark.parametrize(
    ("params", "labels"),
    [
        ({"objective": "binary:logistic", "max_depth": MAX_DEPTH + 2}, BINARY),
        ({"objective": "reg:squarederror", "max_depth": 2}, BINARY.astype(float)),
        ({"objective": "multi:softprob", "num_class": 3, "max_depth": 2}, np.arange(400) % 3),
        ({"objective": "binary:logistic", "booster": "gblinear"}, BINARY),
    ],
    ids=["too-deep", "regression", "multiclass", "linear"],
)
def test_boosters_it_does_not_cover_are_not_compiled(
    params: dict[str, object], labels: np.ndarray
) -> None:
    assert Forest.compile(train(params, labels)) is None


def test_a_shallow_binary_booster_is_compiled_and_matches() -> None:
    booster = train({"objective": "binary:logistic", "max_depth": 2}, BINARY, rounds=40)
    forest = Forest.compile(booster)
    assert forest is not None and forest.depth == 2
    assert_matches_xgboost(booster, forest, random_rows(6, 1000, seed=6))


def test_a_forest_that_disagrees_is_not_used(
    small_model: TrainedModel, small_model_b: TrainedModel
) -> None:
    """The self-check compares with XGBoost itself: another model's forest fails it."""
    predictor = Predictor(small_model.bundle())
    other = Forest.compile(small_model_b.bundle().booster)
    assert other is not None
    assert _forest_agrees(predictor, predictor.forest)  # type: ignore[arg-type]
    assert not _forest_agrees(predictor, other)


@pytest.mark.parametrize("enabled", [True, False])
def test_the_setting_chooses_the_single_row_path(served: Served, enabled: bool) -> None:
    settings = served.settings.model_copy(update={"crashed_serving_forest": enabled})
    state = ModelState.from_settings(settings, served.lake)
    assert state.load()
    predictor = state.model.predictor  # type: ignore[union-attr]
    assert (predictor.forest is not None) is enabled
    assert predictor.direct is not enabled  # XGBoost's direct call when the forest is off
