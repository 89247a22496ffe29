"""Training/validation windows relative to a run date, explicit overrides, errors."""

from __future__ import annotations

from datetime import date

import pytest

from crashed.core.windows import Windows, parse_run_date, resolve_windows
from crashed.errors import InputError


def test_relative_windows_from_run_date() -> None:
    windows = resolve_windows(date(2026, 11, 22))
    assert windows == Windows(
        train_start=date(2025, 8, 22),
        train_end=date(2026, 8, 21),
        validation_start=date(2026, 8, 22),
        validation_end=date(2026, 11, 21),
    )
    assert windows.as_dict() == {
        "train_start": "2025-08-22",
        "train_end": "2026-08-21",
        "validation_start": "2026-08-22",
        "validation_end": "2026-11-21",
    }


def test_run_on_the_first_of_a_month_gives_whole_months() -> None:
    windows = resolve_windows(date(2019, 1, 1))
    assert windows == Windows(
        train_start=date(2017, 10, 1),
        train_end=date(2018, 9, 30),
        validation_start=date(2018, 10, 1),
        validation_end=date(2018, 12, 31),
    )


def test_month_end_is_clamped() -> None:
    # validation ends 31 May; three months earlier there is no 31 February
    windows = resolve_windows(date(2026, 6, 1))
    assert windows.validation_start == date(2026, 3, 1)
    assert windows.train_end == date(2026, 2, 28)
    assert windows.train_start == date(2025, 3, 1)


def test_leap_day() -> None:
    windows = resolve_windows(date(2024, 3, 1))
    assert windows.validation_end == date(2024, 2, 29)
    assert windows.validation_start == date(2023, 11, 30)
    assert windows.train_end == date(2023, 11, 29)
    assert windows.train_start == date(2022, 11, 30)


@pytest.mark.parametrize(
    "run_date", [date(2020, 1, 1), date(2021, 3, 31), date(2024, 2, 29), date(2030, 12, 31)]
)
def test_windows_are_contiguous_and_ordered(run_date: date) -> None:
    w = resolve_windows(run_date)
    assert w.train_start <= w.train_end < w.validation_start <= w.validation_end < run_date
    assert (w.validation_start - w.train_end).days == 1
    assert (run_date - w.validation_end).days == 1
    assert 89 <= (w.validation_end - w.validation_start).days + 1 <= 92
    assert 365 <= (w.train_end - w.train_start).days + 1 <= 366


def test_explicit_bounds_win() -> None:
    windows = resolve_windows(
        date(2026, 11, 22),
        train_start="2018-01-01",
        train_end="2018-09-30",
        validation_start="2018-10-01",
        validation_end="2018-12-31",
    )
    assert windows == Windows(
        date(2018, 1, 1), date(2018, 9, 30), date(2018, 10, 1), date(2018, 12, 31)
    )


def test_partial_override_fills_the_rest_relative_to_it() -> None:
    windows = resolve_windows(date(2026, 11, 22), validation_end=" 2018-12-31 ")
    assert windows == Windows(
        date(2017, 10, 1), date(2018, 9, 30), date(2018, 10, 1), date(2018, 12, 31)
    )
    only_train_start = resolve_windows(date(2019, 1, 1), train_start="2018-01-01")
    assert only_train_start.train_start == date(2018, 1, 1)
    assert only_train_start.train_end == date(2018, 9, 30)


def test_blank_strings_mean_relative() -> None:
    assert resolve_windows(date(2019, 1, 1), "", " ", "", "") == resolve_windows(date(2019, 1, 1))


@pytest.mark.parametrize(
    "field", ["train_start", "train_end", "validation_start", "validation_end"]
)
def test_invalid_date_names_the_field(field: str) -> None:
    with pytest.raises(InputError) as caught:
        resolve_windows(date(2019, 1, 1), **{field: "2018-13-01"})
    assert caught.value.message.startswith(f"{field}:")
    assert "'2018-13-01'" in caught.value.message
    assert caught.value.exit_code == 2


def test_train_start_after_train_end() -> None:
    with pytest.raises(InputError, match="train_start 2018-10-01 is after train_end 2018-09-30"):
        resolve_windows(date(2019, 1, 1), train_start="2018-10-01", train_end="2018-09-30")


def test_validation_start_after_validation_end() -> None:
    with pytest.raises(InputError, match="validation_start 2018-12-31 is after validation_end"):
        resolve_windows(
            date(2019, 1, 1),
            train_start="2018-01-01",
            train_end="2018-06-30",
            validation_start="2018-12-31",
            validation_end="2018-12-01",
        )


@pytest.mark.parametrize("train_end", ["2018-10-01", "2018-11-15"])
def test_overlapping_windows_are_rejected(train_end: str) -> None:
    with pytest.raises(InputError, match="must end before validation starts"):
        resolve_windows(
            date(2019, 1, 1),
            train_start="2018-01-01",
            train_end=train_end,
            validation_start="2018-10-01",
        )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-22", date(2026, 11, 22)),
        ("2026-11-22T00:00:00Z", date(2026, 11, 22)),
        ("2026-11-22T23:59:59+10:00", date(2026, 11, 22)),
        (" 2026-11-22 ", date(2026, 11, 22)),
    ],
)
def test_parse_run_date(text: str, expected: date) -> None:
    assert parse_run_date(text) == expected


@pytest.mark.parametrize("text", ["", "yesterday", "22/11/2026", "2026-02-30"])
def test_parse_run_date_errors(text: str) -> None:
    with pytest.raises(InputError, match="run_date"):
        parse_run_date(text)
