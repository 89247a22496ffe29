"""The serving fast path: behaviour on the real 2018 model, and equivalence with the batch path."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pytest

from crashed.core.encoder import FeatureError
from crashed.core.features import RAW_FEATURES
from crashed.core.model_bundle import ModelBundle
from crashed.serving.predictor import BatchFeatureError, Predictor

if TYPE_CHECKING:
    from tests.serving_fixtures import TrainedModel


def as_params(row: pd.Series) -> dict[str, str]:
    """A frame row as a request would send it (missing values explicitly empty = unknown)."""
    return {f: "" if pd.isna(row[f]) else str(row[f]) for f in RAW_FEATURES}


@pytest.fixture(scope="module")
def real(real_model: ModelBundle) -> Predictor:
    return Predictor(real_model)


@pytest.fixture(scope="module")
def small(small_model: TrainedModel) -> Predictor:
    return Predictor(small_model.bundle())


def probability(predictor: Predictor, **values: str) -> float:
    return predictor.predict_one(values).probability


# ---- directional expectations on the real model --------------------------------------------


@pytest.mark.real_data
def test_saturday_2am_in_the_dark_is_far_likelier_than_tuesday_2pm(real: Predictor) -> None:
    night = probability(real, day_of_week="Saturday", accident_time="02:00", light_condition="Dark")
    day = probability(real, day_of_week="Tuesday", accident_time="14:00", light_condition="Day")
    assert night > 3 * day


@pytest.mark.real_data
@pytest.mark.parametrize("hour", ["00:30", "02:00", "03:15", "23:00"])
def test_small_hours_beat_late_morning_all_else_equal(real: Predictor, hour: str) -> None:
    assert probability(real, accident_time=hour) > 2 * probability(real, accident_time="10:30")


@pytest.mark.real_data
@pytest.mark.parametrize("when", [{}, {"accident_time": "02:00", "day_of_week": "Saturday"}])
def test_fixed_object_collision_beats_collision_with_vehicle(
    real: Predictor, when: dict[str, str]
) -> None:
    fixed = probability(real, accident_type="Collision with a fixed object", **when)
    vehicle = probability(real, accident_type="Collision with vehicle", **when)
    assert fixed > vehicle


@pytest.mark.real_data
def test_young_driver_is_likelier_than_old_driver(real: Predictor) -> None:
    young = probability(real, young_driver="1", old_driver="0")
    old = probability(real, young_driver="0", old_driver="1")
    assert young > old


@pytest.mark.real_data
def test_invariances(real: Predictor) -> None:
    base = probability(real, day_of_week="Saturday", accident_time="02:05")
    # Category case, time format and minutes within the hour do not matter.
    assert probability(real, day_of_week="saturday", accident_time="02:05") == base
    assert probability(real, day_of_week=" SATURDAY ", accident_time="02.05.00") == base
    assert probability(real, day_of_week="Saturday", accident_time="2:55") == base


@pytest.mark.real_data
def test_real_model_is_served_through_the_compiled_forest(real: Predictor) -> None:
    assert real.forest is not None, "the compiled forest failed its self-check against XGBoost"


def test_without_the_forest_the_direct_call_serves(real_model: ModelBundle) -> None:
    predictor = Predictor(real_model, forest=False)
    assert predictor.forest is None
    assert predictor.direct, "the direct XGBoost call failed its self-check on this XGBoost version"


# ---- equivalence with the batch (training) path --------------------------------------------


def _assert_rows_match(predictor: Predictor, frame: pd.DataFrame) -> None:
    encoder = predictor.encoder
    matrix = encoder.encode_frame(frame)
    batch_p = predictor.predict_matrix(matrix)
    for index, (_, row) in enumerate(frame.iterrows()):
        params = as_params(row)
        one = encoder.encode_one(encoder.resolve(params))
        np.testing.assert_array_equal(one, matrix[index], err_msg=f"row {index}: {params}")
        assert predictor.predict_one(params).probability == pytest.approx(
            float(batch_p[index]), rel=1e-6, abs=1e-7
        )


def test_encode_one_equals_encode_frame_on_synthetic_rows(
    small: Predictor, crash_rows: Callable[..., pd.DataFrame]
) -> None:
    frame = crash_rows(rows=200, seed=7)
    frame.loc[frame.index[:20], "accident_time"] = pd.NA  # unknown values, too
    frame.loc[frame.index[10:30], "males"] = pd.NA
    frame.loc[frame.index[5:15], "light_condition"] = pd.NA
    _assert_rows_match(small, frame)


@pytest.mark.real_data
def test_encode_one_equals_encode_frame_on_real_rows(
    real: Predictor, real_frame: pd.DataFrame
) -> None:
    _assert_rows_match(real, real_frame.sample(300, random_state=0))


def test_direct_call_matches_public_inplace_predict(
    small_model: TrainedModel, crash_rows: Callable[..., pd.DataFrame]
) -> None:
    direct = Predictor(small_model.bundle(), forest=False)
    public = Predictor(small_model.bundle(), direct=False, forest=False)
    assert direct.direct and not public.direct
    for _, row in crash_rows(rows=100, seed=3).iterrows():
        params = as_params(row)
        assert direct.predict_one(params).probability == pytest.approx(
            public.predict_one(params).probability, rel=1e-6, abs=1e-7
        )


def test_batch_equals_one_by_one_and_keeps_order(
    small: Predictor, crash_rows: Callable[..., pd.DataFrame]
) -> None:
    instances = [as_params(row) for _, row in crash_rows(rows=50, seed=4).iterrows()]
    batch = small.predict_many(instances)
    for params, (p, decision) in zip(instances, batch, strict=True):
        single = small.predict_one(params)
        assert p == pytest.approx(single.probability, rel=1e-6, abs=1e-7)
        assert decision == single.prediction == int(p >= small.threshold)


def test_batch_error_names_instance_and_field(small: Predictor) -> None:
    with pytest.raises(BatchFeatureError) as caught:
        small.predict_many([{}, {}, {"day_of_week": "Caturday"}])
    assert caught.value.index == 2
    assert caught.value.field == "day_of_week"
    assert "Saturday" in caught.value.message


def test_defaults_fill_what_a_request_leaves_out(small: Predictor) -> None:
    result = small.predict_one({"males": "3"})
    assert result.features["males"] == "3"
    assert result.features["day_of_week"] == small.encoder.defaults["day_of_week"]
    assert small.predict_one({}).features == small.encoder.resolve({})


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"males": "two"}, "males"),
        ({"males": "-1"}, "males"),
        ({"males": "1.5"}, "males"),
        ({"accident_time": "25:00"}, "accident_time"),
        ({"speed_zone": "61 km/hr"}, "speed_zone"),
    ],
)
def test_bad_values_raise_feature_error(
    small: Predictor, params: dict[str, str], field: str
) -> None:
    with pytest.raises(FeatureError) as caught:
        small.predict_one(params)
    assert caught.value.field == field


def test_a_failed_request_does_not_leak_into_the_next(small: Predictor) -> None:
    expected = small.predict_one({"day_of_week": "Monday"}).probability
    with pytest.raises(FeatureError):
        small.predict_one({"accident_type": "Collision with a fixed object", "males": "x"})
    assert small.predict_one({"day_of_week": "Monday"}).probability == expected


def test_threads_get_their_own_row(
    small: Predictor, crash_rows: Callable[..., pd.DataFrame]
) -> None:
    instances = [as_params(row) for _, row in crash_rows(rows=40, seed=5).iterrows()]
    expected = [small.predict_one(p).probability for p in instances]
    failures: list[str] = []

    def hammer(offset: int) -> None:
        for turn in range(200):
            index = (offset + turn) % len(instances)
            got = small.predict_one(instances[index]).probability
            if got != expected[index]:
                failures.append(f"instance {index}: {got} != {expected[index]}")

    threads = [threading.Thread(target=hammer, args=(i * 7,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures[:3]


# ---- remembered encodings ----------------------------------------------------------------


def test_remembered_encoding_equals_the_encoder(small: Predictor, crash_rows: Callable) -> None:
    """Replaying remembered per-value writes gives exactly ``encode_one(resolve(params))``."""
    frame = crash_rows(300, seed=7)
    row = np.empty(small.width, dtype=np.float32)
    for number, (_, record) in enumerate(frame.iterrows()):
        params = as_params(record)
        params["males"] = ["0", " 1 ", "02", ""][number % 4]
        if number % 3 == 0:
            del params["day_of_week"]  # left out: the default
        expected = small.encoder.resolve(params)
        for _ in range(2):  # first time learned, second time replayed
            entries = small.encode(params, row)
            assert dict(zip(small.features, (e[0] for e in entries), strict=True)) == expected
            assert json.loads("{" + ",".join(e[2] for e in entries) + "}") == expected
            assert np.array_equal(row, small.encoder.encode_one(expected), equal_nan=True)


def test_bad_values_are_never_remembered(small: Predictor) -> None:
    for _ in range(2):
        with pytest.raises(FeatureError) as error:
            small.predict_one({"day_of_week": "Caturday"})
        assert error.value.field == "day_of_week"
    assert "Caturday" not in small._known["day_of_week"]


def test_remembered_values_are_bounded(small: Predictor, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("crashed.serving.predictor.MAX_REMEMBERED", 3)
    small._known["males"].clear()
    results = [small.predict_one({"males": str(n)}).probability for n in range(6)]
    again = [small.predict_one({"males": str(n)}).probability for n in range(6)]
    assert results == again
    assert len(small._known["males"]) == 3
