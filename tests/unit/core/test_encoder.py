"""The shared encoder: fit from distributions, batch and request paths agree, JSON round trip."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from crashed.core.distributions import analyse
from crashed.core.encoder import (
    MAX_COUNT,
    OTHER,
    Encoder,
    FeatureError,
    hour_of,
    speed_kmh,
)
from crashed.core.features import CATEGORY_FEATURES, COUNT_FEATURES, TIME_FEATURE

N_COUNTS = len(COUNT_FEATURES)
HOUR = N_COUNTS
SPEED = N_COUNTS + 1

# Invented category values; weights make some values rare (below min_count) in a 400-row frame.
VALUES: dict[str, list[tuple[str, float]]] = {
    "accident_type": [
        ("Collision with vehicle", 0.6),
        ("Struck Pedestrian", 0.2),
        ("Collision with a fixed object", 0.2),
    ],
    "day_of_week": [
        (day, 1 / 7)
        for day in ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
    ],
    "dca_code": [("REAR END(VEHICLES IN SAME LANE)", 0.7), ("U TURN", 0.29), ("PARKED", 0.01)],
    "hit_run_flag": [("No", 0.9), ("Yes", 0.09), ("Not known", 0.01)],
    "light_condition": [("Day", 0.7), ("Dark", 0.25), ("Dusk/Dawn", 0.05)],
    "road_geometry": [
        ("Not at intersection", 0.5),
        ("T intersection", 0.3),
        ("Cross intersection", 0.2),
    ],
    "speed_zone": [
        ("60 km/hr", 0.4),
        ("100 km/hr", 0.3),
        ("80 km/hr", 0.2),
        ("Not known", 0.095),
        ("Camping grounds or off road", 0.005),
    ],
}


def crash_frame(rows: int, seed: int) -> pd.DataFrame:
    """A normalised-shape frame with nulls in every feature."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "accident_date": pd.date_range("2018-01-01", periods=rows, freq="h").date,
            "alcohol_related": rng.random(rows) < 0.2,
        }
    )
    for feature in COUNT_FEATURES:
        values = pd.array(rng.poisson(1.2, rows), dtype="Int64")
        values[rng.random(rows) < 0.05] = pd.NA
        frame[feature] = values
    times = [
        f"{h:02d}:{m:02d}:00"
        for h, m in zip(rng.integers(0, 24, rows), rng.integers(0, 60, rows), strict=True)
    ]
    frame[TIME_FEATURE] = pd.array(times, dtype="string")
    frame.loc[rng.random(rows) < 0.05, TIME_FEATURE] = pd.NA
    for feature, choices in VALUES.items():
        names = [name for name, _ in choices]
        weights = np.array([w for _, w in choices])
        picked = rng.choice(names, size=rows, p=weights / weights.sum())
        column = pd.array(picked, dtype="string")
        column[rng.random(rows) < 0.05] = pd.NA
        frame[feature] = column
    return frame


@pytest.fixture(scope="module")
def training() -> pd.DataFrame:
    return crash_frame(400, seed=7)


@pytest.fixture(scope="module")
def encoder(training: pd.DataFrame) -> Encoder:
    return Encoder.fit(analyse(training))


def column(encoder: Encoder, name: str) -> int:
    return encoder.columns.index(name)


# ---- fit ------------------------------------------------------------------------------------


def test_columns_layout(encoder: Encoder, training: pd.DataFrame) -> None:
    assert encoder.columns[:N_COUNTS] == COUNT_FEATURES
    assert encoder.columns[HOUR] == "hour"
    assert encoder.columns[SPEED] == "speed_kmh"
    assert encoder.width == len(encoder.columns)
    assert len(set(encoder.columns)) == encoder.width
    # every frequent value has its own column, named feature=value
    counts = training["speed_zone"].value_counts()
    for value, count in counts.items():
        if count >= 5:
            assert f"speed_zone={value}" in encoder.columns


def test_frequent_values_ordered_by_count(encoder: Encoder, training: pd.DataFrame) -> None:
    counts = training["accident_type"].value_counts()
    assert encoder.vocabularies["accident_type"][0] == counts.index[0]
    assert list(encoder.vocabularies["accident_type"]) == sorted(
        counts.index, key=lambda v: (-counts[v], v)
    )


def test_rare_values_share_the_other_column() -> None:
    frame = pd.DataFrame(
        {
            "accident_date": ["2018-01-01"] * 14,
            "alcohol_related": [False] * 14,
            "day_of_week": ["Friday"] * 10 + ["Sunday"] * 2 + ["Monday"] * 2,
        }
    )
    encoder = Encoder.fit(analyse(frame), min_count=5)

    friday = column(encoder, "day_of_week=Friday")
    other = column(encoder, f"day_of_week={OTHER}")
    assert "day_of_week=Sunday" not in encoder.columns
    assert "day_of_week=Monday" not in encoder.columns
    assert encoder.other_columns["day_of_week"] == other
    assert encoder.category_columns["day_of_week"] == {
        "friday": friday,
        "sunday": other,
        "monday": other,
    }
    # the vocabulary still lists rare values (a request may use them)
    assert set(encoder.vocabularies["day_of_week"]) == {"Friday", "Sunday", "Monday"}
    # no other column when every value is frequent; none at all for an absent feature
    assert encoder.other_columns["dca_code"] is None
    assert not any(c.startswith("dca_code=") for c in encoder.columns)


def test_min_count_controls_which_values_get_columns() -> None:
    frame = pd.DataFrame(
        {
            "accident_date": ["2018-01-01"] * 6,
            "alcohol_related": [True] * 6,
            "light_condition": ["Day"] * 4 + ["Dark"] * 2,
        }
    )
    assert "light_condition=Dark" in Encoder.fit(analyse(frame), min_count=2).columns
    assert "light_condition=Dark" not in Encoder.fit(analyse(frame), min_count=3).columns


def test_defaults_come_from_training(encoder: Encoder, training: pd.DataFrame) -> None:
    assert encoder.defaults["day_of_week"] == encoder.vocabularies["day_of_week"][0]
    assert encoder.defaults["accident_type"] == "Collision with vehicle"
    median = training["males"].astype("float64").median()
    assert encoder.defaults["males"] == str(round(median))
    hours = training[TIME_FEATURE].dropna().str.slice(0, 2).astype(int)
    mode = hours.value_counts().sort_index().idxmax()
    assert encoder.defaults[TIME_FEATURE] == f"{mode:02d}:00:00"


def test_fit_on_empty_distributions_gives_numeric_columns_only() -> None:
    encoder = Encoder.fit(analyse(pd.DataFrame({"accident_date": [], "alcohol_related": []})))
    assert encoder.columns == (*COUNT_FEATURES, "hour", "speed_kmh")
    assert all(v is None for v in encoder.defaults.values())
    row = encoder.encode_one(encoder.resolve({}))
    assert np.isnan(row).all()


# ---- JSON round trip -----------------------------------------------------------------------


def test_json_round_trip(encoder: Encoder, training: pd.DataFrame) -> None:
    text = json.dumps(encoder.to_json(), sort_keys=True)
    again = Encoder.from_json(json.loads(text))

    assert again == encoder
    np.testing.assert_array_equal(again.encode_frame(training), encoder.encode_frame(training))
    assert json.dumps(again.to_json(), sort_keys=True) == text


@pytest.mark.parametrize("version", [None, 0, 2, "1"])
def test_from_json_rejects_other_versions(encoder: Encoder, version: object) -> None:
    state = encoder.to_json() | {"encoder_version": version}
    with pytest.raises(ValueError, match="encoder_version"):
        Encoder.from_json(state)


# ---- batch path ----------------------------------------------------------------------------


def test_encode_frame_values(encoder: Encoder) -> None:
    frame = pd.DataFrame(
        {
            "males": pd.array([2, pd.NA], dtype="Int64"),
            "accident_time": pd.array(["23:10:00", pd.NA], dtype="string"),
            "speed_zone": pd.array(["100 km/hr", "Not known"], dtype="string"),
            "day_of_week": pd.array(["FRIDAY ", pd.NA], dtype="string"),
        }
    )
    matrix = encoder.encode_frame(frame)

    assert matrix.dtype == np.float32
    assert matrix.shape == (2, encoder.width)
    males = COUNT_FEATURES.index("males")
    assert matrix[0, males] == 2
    assert np.isnan(matrix[1, males])
    assert matrix[0, HOUR] == 23
    assert np.isnan(matrix[1, HOUR])
    assert matrix[0, SPEED] == 100
    assert np.isnan(matrix[1, SPEED])
    # count features absent from the frame are unknown
    assert np.isnan(matrix[:, COUNT_FEATURES.index("females")]).all()
    # one-hot: exactly one column per present category value, case and spaces ignored
    assert matrix[0, column(encoder, "day_of_week=Friday")] == 1
    assert matrix[0, column(encoder, "speed_zone=100 km/hr")] == 1
    assert matrix[1, column(encoder, "speed_zone=Not known")] == 1
    day_columns = [i for i, c in enumerate(encoder.columns) if c.startswith("day_of_week=")]
    assert matrix[0, day_columns].sum() == 1
    assert matrix[1, day_columns].sum() == 0
    # categories absent from the frame stay zero
    assert matrix[:, N_COUNTS + 2 :].sum() == 3


def test_encode_frame_maps_unseen_values_to_other_or_zero(encoder: Encoder) -> None:
    assert encoder.other_columns["speed_zone"] == column(encoder, f"speed_zone={OTHER}")
    assert encoder.other_columns["road_geometry"] is None
    frame = pd.DataFrame({"speed_zone": ["110 km/hr"], "road_geometry": ["Multiple intersection"]})
    matrix = encoder.encode_frame(frame)

    assert matrix[0, encoder.other_columns["speed_zone"]] == 1
    assert matrix[0, SPEED] == 110  # the numeric speed still comes through
    road = [i for i, c in enumerate(encoder.columns) if c.startswith("road_geometry=")]
    assert matrix[0, road].sum() == 0


def test_encode_frame_accepts_raw_time_and_text_counts(encoder: Encoder) -> None:
    frame = pd.DataFrame(
        {"accident_time": ["08.45.00", "1:37:00", "24.00.00", "noon"], "males": ["3", "", "x", "1"]}
    )
    matrix = encoder.encode_frame(frame)
    np.testing.assert_array_equal(matrix[:, HOUR], [8, 1, np.nan, np.nan])
    np.testing.assert_array_equal(matrix[:, COUNT_FEATURES.index("males")], [3, np.nan, np.nan, 1])


def test_encode_empty_frame(encoder: Encoder) -> None:
    assert encoder.encode_frame(crash_frame(0, seed=1)).shape == (0, encoder.width)


# ---- request path --------------------------------------------------------------------------


def test_resolve_uses_defaults_and_empty_means_unknown(encoder: Encoder) -> None:
    resolved = encoder.resolve({"day_of_week": " Sunday ", "dca_code": "", "males": "2"})

    assert set(resolved) == set(encoder.features)
    assert resolved["day_of_week"] == "Sunday"
    assert resolved["dca_code"] is None
    assert resolved["males"] == "2"
    assert resolved["accident_type"] == encoder.defaults["accident_type"]
    assert resolved[TIME_FEATURE] == encoder.defaults[TIME_FEATURE]
    assert "unrelated" not in encoder.resolve({"unrelated": "x"})


def test_encode_one_is_case_insensitive(encoder: Encoder) -> None:
    rows = [
        encoder.encode_one(encoder.resolve({"day_of_week": spelling}))
        for spelling in ("Friday", "friday", "FRIDAY", "  fRiDaY ")
    ]
    for row in rows[1:]:
        np.testing.assert_array_equal(row, rows[0])
    assert rows[0][column(encoder, "day_of_week=Friday")] == 1


def test_encode_one_rare_value_goes_to_other(encoder: Encoder) -> None:
    rare = "Camping grounds or off road"
    assert rare in encoder.vocabularies["speed_zone"]
    row = encoder.encode_one(encoder.resolve({"speed_zone": rare}))
    assert row[encoder.other_columns["speed_zone"]] == 1
    assert np.isnan(row[SPEED])


def test_encode_one_unseen_category_lists_allowed_values(encoder: Encoder) -> None:
    with pytest.raises(FeatureError) as caught:
        encoder.encode_one(encoder.resolve({"day_of_week": "Fryday"}))

    error = caught.value
    assert error.field == "day_of_week"
    assert "'Fryday'" in error.message
    for day in ("Monday", "Friday", "Sunday"):
        assert day in error.message
    assert str(error).startswith("day_of_week: ")
    assert isinstance(error, ValueError)


def test_allowed_values_list_is_truncated() -> None:
    frame = pd.DataFrame(
        {
            "accident_date": ["2018-01-01"] * 25,
            "alcohol_related": [False] * 25,
            "dca_code": [f"CODE {i:02d}" for i in range(25)],
        }
    )
    encoder = Encoder.fit(analyse(frame))
    with pytest.raises(FeatureError) as caught:
        encoder.encode_one({"dca_code": "nope"})
    assert "CODE 19" in caught.value.message
    assert "CODE 20" not in caught.value.message
    assert "…" in caught.value.message


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("-1", "from 0 to"),
        ("1.5", "from 0 to"),
        (str(MAX_COUNT + 1), "from 0 to"),
        ("nan", "from 0 to"),
        ("two", "expected a whole number"),
        # int()/float() accept these; the CSV loader never did (issue 10)
        ("1_0", "from 0 to"),
        ("\u0661", "from 0 to"),  # Arabic-Indic digit one
        ("+1", "from 0 to"),
        ("1e1", "from 0 to"),
        ("0x1", "from 0 to"),
        ("inf", "from 0 to"),
    ],
)
def test_encode_one_rejects_bad_counts(encoder: Encoder, value: str, fragment: str) -> None:
    with pytest.raises(FeatureError, match=fragment) as caught:
        encoder.encode_one(encoder.resolve({"males": value}))
    assert caught.value.field == "males"


@pytest.mark.parametrize("value", ["0", "3", "3.0", str(MAX_COUNT)])
def test_encode_one_accepts_whole_counts(encoder: Encoder, value: str) -> None:
    row = encoder.encode_one(encoder.resolve({"males": value}))
    assert row[COUNT_FEATURES.index("males")] == float(value)


@pytest.mark.parametrize(
    "value", ["25:00", "7 pm", "12.75.00", "\u0661\u0662:30", "1_2:30", "\uff11\uff12:30"]
)
def test_encode_one_rejects_bad_times(encoder: Encoder, value: str) -> None:
    with pytest.raises(FeatureError) as caught:
        encoder.encode_one(encoder.resolve({TIME_FEATURE: value}))
    assert caught.value.field == TIME_FEATURE
    assert repr(value) in caught.value.message


def test_encode_one_writes_into_a_reused_buffer(encoder: Encoder) -> None:
    buffer = np.full(encoder.width, 7.0, dtype=np.float32)
    first = encoder.encode_one(encoder.resolve({"day_of_week": "Monday"}), out=buffer)
    assert first is buffer
    second = encoder.encode_one(encoder.resolve({"day_of_week": "Tuesday"}), out=buffer)
    assert second is buffer
    assert buffer[column(encoder, "day_of_week=Monday")] == 0  # previous request cleared
    assert buffer[column(encoder, "day_of_week=Tuesday")] == 1
    np.testing.assert_array_equal(
        buffer, encoder.encode_one(encoder.resolve({"day_of_week": "Tuesday"}))
    )


def test_helpers() -> None:
    assert speed_kmh("60 km/hr") == 60
    assert speed_kmh(" 100 km/hr") == 100
    assert math.isnan(speed_kmh("Not known"))
    assert math.isnan(speed_kmh(None))
    assert hour_of("08.45.00") == 8
    assert hour_of("1:37:00") == 1
    assert math.isnan(hour_of(None))
    assert math.isnan(hour_of("99:00"))
    assert math.isnan(hour_of("\u0661\u0662:30"))
    assert math.isnan(speed_kmh("\u0666\u0660 km/hr"))


def test_batch_hours_and_speeds_use_the_same_parser(encoder: Encoder) -> None:
    frame = pd.DataFrame(
        {
            TIME_FEATURE: ["08:45:00", "\u0661\u0662:30", None],
            "speed_zone": ["60 km/hr", "\u0666\u0660 km/hr", "Not known"],
        }
    )
    matrix = encoder.encode_frame(frame)
    hours, speeds = matrix[:, len(COUNT_FEATURES)], matrix[:, len(COUNT_FEATURES) + 1]
    assert hours[0] == 8 and np.isnan(hours[1:]).all()
    assert speeds[0] == 60 and np.isnan(speeds[1:]).all()


# ---- property: the request path reproduces the batch path ---------------------------------


def _mangle(value: str, rng: np.random.Generator) -> str:
    """Same value as a client might type it: random case and surrounding spaces."""
    cased = "".join(c.upper() if rng.random() < 0.5 else c.lower() for c in value)
    return " " * int(rng.integers(0, 2)) + cased + " " * int(rng.integers(0, 2))


def test_encode_one_matches_encode_frame_for_random_rows(
    encoder: Encoder, training: pd.DataFrame
) -> None:
    rng = np.random.default_rng(2024)
    frame = crash_frame(300, seed=99)  # same vocabularies, different rows
    for feature, choices in VALUES.items():
        assert {v for v, _ in choices} == set(encoder.vocabularies[feature])
    for feature in CATEGORY_FEATURES:
        frame[feature] = pd.array(
            [v if pd.isna(v) else _mangle(v, rng) for v in frame[feature]], dtype="string"
        )
    times = frame[TIME_FEATURE].to_numpy(dtype=object)
    for i in range(0, len(frame), 3):  # some times in the dotted source format
        if not pd.isna(times[i]):
            times[i] = times[i].replace(":", ".")
    frame[TIME_FEATURE] = pd.array(times, dtype="string")

    batch = encoder.encode_frame(frame)
    assert np.isnan(batch).any()  # the property covers unknown values too
    for i in rng.choice(len(frame), size=200, replace=False):
        row = frame.iloc[int(i)]
        params = {f: "" if pd.isna(row[f]) else str(row[f]) for f in encoder.features}
        single = encoder.encode_one(encoder.resolve(params))
        np.testing.assert_array_equal(single, batch[i], err_msg=f"row {i}: {params}")
        assert single.dtype == np.float32


def test_defaults_row_matches_batch_row_of_defaults(encoder: Encoder) -> None:
    defaults = encoder.resolve({})
    frame = pd.DataFrame({f: pd.array([v], dtype="string") for f, v in defaults.items()})
    np.testing.assert_array_equal(encoder.encode_one(defaults), encoder.encode_frame(frame)[0])


def test_case_variants_in_training_share_one_column() -> None:
    frame = pd.DataFrame(
        {
            "accident_date": ["2018-01-01"] * 14,
            "alcohol_related": [False] * 14,
            "day_of_week": ["Friday"] * 10 + ["friday"] * 2 + ["Monday"] * 2,
        }
    )
    encoder = Encoder.fit(analyse(frame))
    friday = column(encoder, "day_of_week=Friday")
    assert encoder.encode_one({"day_of_week": "Friday"})[friday] == 1
    assert encoder.encode_frame(pd.DataFrame({"day_of_week": ["friday"]}))[0, friday] == 1
