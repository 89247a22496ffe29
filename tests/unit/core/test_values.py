"""The one value parser: counts, times, speeds and flags, scalar and vectorised, and the promise
that loading (the CSV normaliser), training and serving (the encoder) accept the same values."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from crashed.core.crash_schema import normalise
from crashed.core.encoder import Encoder, FeatureError
from crashed.core.values import (
    MAX_COUNT,
    InvalidValue,
    clean,
    parse_bools,
    parse_count,
    parse_counts,
    parse_hours,
    parse_speed,
    parse_speeds,
    parse_time,
    parse_times,
)
from crashed.errors import InputError

# Values that look numeric to Python (int(), float()) but are not counts here.
NOT_COUNTS = [
    "1_0",  # int("1_0") == 10
    "\u0661",  # Arabic-Indic one: int() reads it as 1
    "\u0661\u0662",
    "\uff11",  # full-width one
    "+1",
    "-1",
    " 1e1",
    "1e1",
    "0x1",
    "1.5",
    "3.",
    ".0",
    "inf",
    "nan",
    "1 000",
    str(MAX_COUNT + 1),
    "99999",
    "two",
]
NOT_TIMES = [
    "\u0661\u0662:30",  # Arabic-Indic 12:30
    "1_2:30",
    "24:00",
    "12:60",
    "12:30:60",
    "123:00",
    "12:3",
    "12-30",
    "+1:30",
    "noon",
]


# ---- scalar ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("0", 0), ("3", 3), (" 7\t", 7), ("007", 7), ("3.0", 3), ("3.00", 3), ("1000", 1000)],
)
def test_counts(raw: str, expected: int) -> None:
    assert parse_count(raw) == expected


@pytest.mark.parametrize("raw", NOT_COUNTS)
def test_not_counts(raw: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        parse_count(raw)
    assert caught.value.value == raw
    assert caught.value.expected == f"a whole number from 0 to {MAX_COUNT}"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("08.45.00", "08:45:00"),
        ("1:37:00", "01:37:00"),
        ("8:45", "08:45:00"),
        (" 7.05.09 ", "07:05:09"),
        ("23:59:59", "23:59:59"),
        ("0:00:00", "00:00:00"),
    ],
)
def test_times(raw: str, expected: str) -> None:
    assert parse_time(raw) == expected


@pytest.mark.parametrize("raw", NOT_TIMES)
def test_not_times(raw: str) -> None:
    with pytest.raises(InvalidValue):
        parse_time(raw)


@pytest.mark.parametrize("empty", [None, "", "   ", "\t\r\n"])
def test_empty_is_unknown_everywhere(empty: str | None) -> None:
    assert parse_count(empty) is None
    assert parse_time(empty) is None
    assert parse_speed(empty) is None
    assert clean(empty) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("60 km/hr", 60),
        ("100km/hr", 100),
        (" 110 KM/H", 110),
        ("Not known", None),
        ("Other speed limit", None),
        ("\u0666\u0660 km/hr", None),  # Arabic-Indic 60
        ("5 km/hr", None),
        ("1000 km/hr", None),
    ],
)
def test_speeds(raw: str, expected: int | None) -> None:
    assert parse_speed(raw) == expected


def test_non_breaking_space_is_not_whitespace() -> None:
    # only ASCII whitespace is ignored, the same in the loader and in serving
    with pytest.raises(InvalidValue):
        parse_count("\u00a03")


# ---- vectorised = scalar ----------------------------------------------------------------------


def _scalar(parser, value: str | None):  # type: ignore[no-untyped-def]
    try:
        return parser(value)
    except InvalidValue:
        return "invalid"


def _vector_count(value: str | None) -> object:
    counts, bad = parse_counts(pd.Series([value], dtype=object))
    if bad[0]:
        return "invalid"
    return None if pd.isna(counts.iloc[0]) else int(counts.iloc[0])


def _vector_time(value: str | None) -> object:
    times, bad = parse_times(pd.Series([value], dtype=object))
    if bad[0]:
        return "invalid"
    return None if pd.isna(times.iloc[0]) else times.iloc[0]


def test_vectorised_examples() -> None:
    values = pd.Series(["3", " 007 ", "3.0", "1_0", "\u0661", "", None, "1001"], index=range(5, 13))
    counts, bad = parse_counts(values)
    assert list(counts.index) == list(range(5, 13))
    assert [None if pd.isna(v) else int(v) for v in counts] == [
        3,
        7,
        3,
        None,
        None,
        None,
        None,
        None,
    ]
    assert bad.tolist() == [False, False, False, True, True, False, False, True]

    times, bad = parse_times(pd.Series(["08.45.00", "8:45", "24:00", "", None]))
    assert [None if pd.isna(v) else v for v in times] == ["08:45:00", "08:45:00", None, None, None]
    assert bad.tolist() == [False, False, True, False, False]
    hours = parse_hours(pd.Series(["08.45.00", "23:01", "x", None]))
    assert hours[:2].tolist() == [8.0, 23.0] and math.isnan(hours[2]) and math.isnan(hours[3])
    speeds = parse_speeds(pd.Series(["60 km/hr", "Not known", None]))
    assert speeds[0] == 60.0 and math.isnan(speeds[1]) and math.isnan(speeds[2])
    yes, bad = parse_bools(pd.Series(["Yes", " no ", "ON", "maybe", "", None]))
    assert yes.tolist() == [True, False, True, False, False, False]
    assert bad.tolist() == [False, False, False, True, True, True]


# Text that is mostly near the grammar (digits, separators, spaces, lookalike digits), plus
# arbitrary Unicode.
NEAR = st.text(
    alphabet=st.sampled_from(list("0123456789.:_+-eEx kmh/\t\u0661\uff11\u00a0\n")), max_size=10
)
TEXT = st.one_of(NEAR, st.text(max_size=12))


@settings(max_examples=400, deadline=None)
@given(TEXT)
@example("1_0")
@example("\u0661")
@example("12:30\n")
@example("3.0")
def test_counts_scalar_and_vectorised_agree(value: str) -> None:
    assert _vector_count(value) == _scalar(parse_count, value)


@settings(max_examples=400, deadline=None)
@given(TEXT)
@example("\u0661\u0662:30")
@example("08.45.00\n")
def test_times_scalar_and_vectorised_agree(value: str) -> None:
    assert _vector_time(value) == _scalar(parse_time, value)
    scalar = _scalar(parse_time, value)
    hour = parse_hours(pd.Series([value]))[0]
    if isinstance(scalar, str) and scalar != "invalid":
        assert hour == int(scalar[:2])
    else:
        assert math.isnan(hour)


@settings(max_examples=300, deadline=None)
@given(TEXT)
@example("\u0666\u0660 km/hr")
def test_speeds_scalar_and_vectorised_agree(value: str) -> None:
    scalar = parse_speed(value)
    vector = parse_speeds(pd.Series([value]))[0]
    assert (math.isnan(vector) and scalar is None) or vector == scalar


# ---- loading ⇔ training/serving -------------------------------------------------------------


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    distributions = {
        "categorical": {
            "day_of_week": {"counts": {"Friday": 10}},
            "speed_zone": {"counts": {"60 km/hr": 5, "Not known": 5}},
        },
        "numeric": {"males": {"p50": 1.0}},
        "time": {"hour_mode": 8},
    }
    return Encoder.fit(distributions, min_count=1)


def _loader_accepts(column: str, value: str) -> bool:
    frame = pd.DataFrame(
        {"accident_date": ["2018-03-09"], "alcohol_related": ["No"], column: [value]}
    )
    try:
        normalise(frame, "property")
    except InputError:
        return False
    return True


def _encoder_accepts(encoder: Encoder, column: str, value: str) -> bool:
    try:
        encoder.encode_one(encoder.resolve({column: value}))  # the serving path
    except FeatureError as error:
        assert error.field == column
        return False
    return True


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(TEXT)
@example("1_0")
@example("\u0661")
@example(" 1e1")
@example("+1")
@example("0x1")
@example("\u00a03")
def test_a_count_is_valid_for_the_loader_iff_for_the_encoder(encoder: Encoder, value: str) -> None:
    assert _loader_accepts("males", value) == _encoder_accepts(encoder, "males", value)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(TEXT)
@example("\u0661\u0662:30")
@example("1_2:30")
def test_a_time_is_valid_for_the_loader_iff_for_the_encoder(encoder: Encoder, value: str) -> None:
    assert _loader_accepts("accident_time", value) == _encoder_accepts(
        encoder, "accident_time", value
    )


@pytest.mark.parametrize("value", NOT_COUNTS)
def test_every_non_count_is_rejected_by_loader_and_encoder(encoder: Encoder, value: str) -> None:
    assert not _loader_accepts("males", value)
    assert not _encoder_accepts(encoder, "males", value)


def test_loaded_and_served_values_encode_the_same(encoder: Encoder) -> None:
    frame = pd.DataFrame(
        {
            "accident_date": ["2018-03-09", "2018-03-10"],
            "alcohol_related": ["No", "Yes"],
            "males": [" 007 ", "3.0"],
            "accident_time": ["08.45.00", "23:05"],
            "speed_zone": ["60 km/hr", "Not known"],
            "day_of_week": ["Friday", "friday"],
        }
    )
    batch = encoder.encode_frame(normalise(frame, "x"))
    for index, row in frame.drop(columns=["accident_date", "alcohol_related"]).iterrows():
        one = encoder.encode_one(encoder.resolve(dict(row)))
        assert one.tolist() == pytest.approx(batch[index].tolist(), nan_ok=True)
