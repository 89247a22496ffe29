"""The model artifact: UBJSON bytes carrying the encoder; never pickle."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from crashed.core.distributions import analyse
from crashed.core.encoder import Encoder
from crashed.core.model_bundle import ModelBundle, ModelFormatError


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    frame = pd.DataFrame(
        {
            "accident_date": ["2018-01-01"] * 12,
            "alcohol_related": [True, False] * 6,
            "accident_time": ["01:00:00", "14:00:00"] * 6,
            "day_of_week": ["Saturday", "Monday", "Tuesday"] * 4,
            "males": [2, 1, 0] * 4,
        }
    )
    return Encoder.fit(analyse(frame), min_count=2)


@pytest.fixture(scope="module")
def matrix(encoder: Encoder) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 3, size=(60, encoder.width)).astype(np.float32)


@pytest.fixture(scope="module")
def booster(encoder: Encoder, matrix: np.ndarray) -> xgb.Booster:
    y = (matrix[:, 0] + matrix[:, 2] > 2).astype(int)
    data = xgb.DMatrix(matrix, label=y, feature_names=list(encoder.columns))
    return xgb.train(
        {"objective": "binary:logistic", "max_depth": 2, "nthread": 1}, data, num_boost_round=5
    )


def fresh(booster: xgb.Booster) -> xgb.Booster:
    """A copy without crashed attributes."""
    return xgb.Booster(model_file=bytearray(booster.save_raw(raw_format="ubj")))


def test_round_trip(booster: xgb.Booster, encoder: Encoder, matrix: np.ndarray) -> None:
    bundle = ModelBundle(fresh(booster), encoder, threshold=0.3125, name="crashed-test")
    data = bundle.to_bytes()

    assert isinstance(data, bytes)
    assert data[:1] == b"{"  # UBJSON object
    loaded = ModelBundle.from_bytes(data, nthread=1)
    assert loaded.threshold == 0.3125
    assert loaded.name == "crashed-test"
    assert loaded.encoder == encoder
    np.testing.assert_allclose(
        loaded.predict_matrix(matrix), bundle.predict_matrix(matrix), rtol=1e-6
    )
    assert loaded.to_bytes() == data  # stable bytes: same checksum after a reload


def test_json_model_bytes_also_load(booster: xgb.Booster, encoder: Encoder) -> None:
    bundle = ModelBundle(fresh(booster), encoder, 0.5)
    bundle.to_bytes()  # sets the attributes
    data = bytes(bundle.booster.save_raw(raw_format="json"))
    assert json.loads(data)  # really JSON
    loaded = ModelBundle.from_bytes(data)
    assert loaded.encoder == encoder
    assert loaded.name == "crashed"


def test_prediction_from_an_encoded_request(booster: xgb.Booster, encoder: Encoder) -> None:
    loaded = ModelBundle.from_bytes(ModelBundle(fresh(booster), encoder, 0.5).to_bytes())
    row = loaded.encoder.encode_one(loaded.encoder.resolve({"day_of_week": "saturday"}))
    p = loaded.predict_matrix(row[None, :])
    assert p.shape == (1,)
    assert 0 < float(p[0]) < 1


def test_pickle_is_refused(booster: xgb.Booster, encoder: Encoder) -> None:
    bundle = ModelBundle(fresh(booster), encoder, 0.5)
    with pytest.raises(ModelFormatError, match="not an XGBoost"):
        ModelBundle.from_bytes(pickle.dumps(bundle))
    with pytest.raises(ModelFormatError):
        ModelBundle.from_bytes(pickle.dumps({"any": "object"}, protocol=0))


@pytest.mark.parametrize(
    "data",
    [b"", b"garbage", b"{not a model", b'{"learner": 1}', b"\x00\x01\x02"],
    ids=["empty", "text", "brace-garbage", "json-not-model", "binary"],
)
def test_garbage_is_refused(data: bytes) -> None:
    with pytest.raises(ModelFormatError):
        ModelBundle.from_bytes(data)


def test_model_without_encoder_attributes(booster: xgb.Booster) -> None:
    data = bytes(fresh(booster).save_raw(raw_format="ubj"))
    with pytest.raises(ModelFormatError, match="no crashed encoder/threshold"):
        ModelBundle.from_bytes(data)


def test_model_with_invalid_encoder_state(booster: xgb.Booster) -> None:
    bad = fresh(booster)
    bad.set_attr(crashed_encoder=json.dumps({"encoder_version": 99}), crashed_threshold="0.5")
    with pytest.raises(ModelFormatError, match="encoder state is invalid"):
        ModelBundle.from_bytes(bytes(bad.save_raw(raw_format="ubj")))

    bad.set_attr(crashed_encoder="{not json")
    with pytest.raises(ModelFormatError, match="encoder state is invalid"):
        ModelBundle.from_bytes(bytes(bad.save_raw(raw_format="ubj")))


def test_encoder_width_must_match_the_model(booster: xgb.Booster) -> None:
    other = Encoder.fit(
        analyse(pd.DataFrame({"accident_date": ["2018-01-01"], "alcohol_related": [True]}))
    )
    data = ModelBundle(fresh(booster), other, 0.5).to_bytes()
    with pytest.raises(ModelFormatError, match="columns"):
        ModelBundle.from_bytes(data)


def test_model_format_error_is_a_value_error() -> None:
    assert issubclass(ModelFormatError, ValueError)
