"""distributions.json (analyse), the population stability index and drift findings."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from crashed.core.distributions import (
    DISTRIBUTIONS_VERSION,
    PSI_ALERT,
    PSI_WARN,
    analyse,
    drift,
    psi,
)
from crashed.core.features import CATEGORY_FEATURES, COUNT_FEATURES


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "accident_date": ["2018-01-01"] * 6,
            "alcohol_related": [True, False, False, True, False, False],
            "accident_time": pd.array(
                ["08:45:00", "08:10:00", "23:59:00", None, "00:05:00", "08:00:00"], dtype="string"
            ),
            "day_of_week": pd.array(
                ["Friday", " Friday ", "Saturday", None, "Friday", "Monday"], dtype="string"
            ),
            "males": pd.array([1, 2, 3, 4, None, 0], dtype="Int64"),
            "females": pd.array([None] * 6, dtype="Int64"),
        }
    )


def test_analyse_header(frame: pd.DataFrame) -> None:
    result = analyse(frame)
    assert result["distributions_version"] == DISTRIBUTIONS_VERSION
    assert result["rows"] == 6
    assert result["positive_rate"] == pytest.approx(2 / 6)
    assert set(result["categorical"]) == set(CATEGORY_FEATURES)
    assert set(result["numeric"]) == set(COUNT_FEATURES)
    json.dumps(result)  # plain JSON, no numpy scalars


def test_analyse_categorical_counts_trimmed(frame: pd.DataFrame) -> None:
    day = analyse(frame)["categorical"]["day_of_week"]
    assert day == {"counts": {"Friday": 3, "Saturday": 1, "Monday": 1}, "nulls": 1}
    assert all(type(v) is int for v in day["counts"].values())


def test_analyse_absent_category_is_all_nulls(frame: pd.DataFrame) -> None:
    assert analyse(frame)["categorical"]["dca_code"] == {"counts": {}, "nulls": 6}


def test_analyse_numeric_summary(frame: pd.DataFrame) -> None:
    males = analyse(frame)["numeric"]["males"]
    present = np.array([1, 2, 3, 4, 0], dtype=float)
    assert males["count"] == 5
    assert males["nulls"] == 1
    assert males["mean"] == pytest.approx(present.mean())
    assert males["std"] == pytest.approx(present.std(ddof=0))
    assert males["min"] == 0
    assert males["max"] == 4
    assert males["p25"] == pytest.approx(np.percentile(present, 25))
    assert males["p50"] == pytest.approx(2.0)
    assert males["p75"] == pytest.approx(np.percentile(present, 75))


@pytest.mark.parametrize("feature", ["females", "motorcycle"])  # all-null and absent
def test_analyse_numeric_without_values(frame: pd.DataFrame, feature: str) -> None:
    summary = analyse(frame)["numeric"][feature]
    assert summary["count"] == 0
    assert summary["nulls"] == 6
    for key in ("mean", "std", "min", "p25", "p50", "p75", "max"):
        assert summary[key] is None


def test_analyse_hour_histogram(frame: pd.DataFrame) -> None:
    time = analyse(frame)["time"]
    expected = [0] * 24
    expected[8], expected[23], expected[0] = 3, 1, 1
    assert time["hour_counts"] == expected
    assert time["hour_mode"] == 8
    assert time["nulls"] == 1


def test_analyse_empty_frame() -> None:
    result = analyse(pd.DataFrame({"accident_date": [], "alcohol_related": []}))
    assert result["rows"] == 0
    assert result["positive_rate"] is None
    assert result["time"] == {"hour_counts": [0] * 24, "hour_mode": None, "nulls": 0}


def test_analyse_without_label() -> None:
    result = analyse(pd.DataFrame({"day_of_week": ["Monday"]}))
    assert result["positive_rate"] is None
    assert result["rows"] == 1


# ---- PSI -----------------------------------------------------------------------------------


def test_psi_identical_is_zero() -> None:
    assert psi({"a": 10, "b": 30}, {"a": 10, "b": 30}) == 0
    assert psi({"a": 10, "b": 30}, {"a": 1, "b": 3}) == pytest.approx(0)  # proportions equal


def test_psi_matches_the_formula() -> None:
    expected = {"a": 50, "b": 50}
    actual = {"a": 80, "b": 20}
    by_hand = (0.8 - 0.5) * math.log(0.8 / 0.5) + (0.2 - 0.5) * math.log(0.2 / 0.5)
    assert psi(expected, actual) == pytest.approx(by_hand)
    assert psi(actual, expected) == pytest.approx(by_hand)  # symmetric


def test_psi_new_category_uses_the_floor() -> None:
    value = psi({"a": 100}, {"a": 50, "b": 50})
    by_hand = (0.5 - 1.0) * math.log(0.5 / 1.0) + (0.5 - 1e-4) * math.log(0.5 / 1e-4)
    assert value == pytest.approx(by_hand)
    assert math.isfinite(value)


def test_psi_empty_side_is_zero() -> None:
    assert psi({}, {"a": 1}) == 0.0
    assert psi({"a": 1}, {"a": 0}) == 0.0


def test_psi_grows_with_shift() -> None:
    base = {"a": 50, "b": 50}
    values = [psi(base, {"a": 50 + k, "b": 50 - k}) for k in (0, 10, 20, 30, 40)]
    assert values == sorted(values)
    assert values[0] == 0 < values[1]


# ---- drift ---------------------------------------------------------------------------------


def distributions(day: dict[str, int], hours: list[int] | None = None) -> dict:
    return {
        "categorical": {"day_of_week": {"counts": day, "nulls": 0}},
        "time": {"hour_counts": hours} if hours is not None else {},
    }


def test_drift_levels_and_new_values() -> None:
    reference = distributions({"Friday": 50, "Saturday": 50}, hours=[10] * 24)
    same = drift(reference, distributions({"Friday": 50, "Saturday": 50}, hours=[5] * 24))
    assert same == [
        {"feature": "day_of_week", "psi": 0.0, "level": "ok", "new_values": []},
        {"feature": "hour", "psi": 0.0, "level": "ok", "new_values": []},
    ]

    shifted = drift(reference, distributions({"Friday": 95, "Saturday": 5, "Sunday": 1}))
    assert len(shifted) == 1  # no hour histogram on one side: hour not compared
    finding = shifted[0]
    assert finding["feature"] == "day_of_week"
    assert finding["level"] == "alert"
    assert finding["psi"] >= PSI_ALERT
    assert finding["new_values"] == ["Sunday"]
    expected = psi({"Friday": 50, "Saturday": 50}, {"Friday": 95, "Saturday": 5, "Sunday": 1})
    assert finding["psi"] == round(expected, 4)


def test_drift_warn_band() -> None:
    reference = distributions({"a": 50, "b": 50})
    # find a shift inside [PSI_WARN, PSI_ALERT)
    for k in range(1, 50):
        value = psi({"a": 50, "b": 50}, {"a": 50 + k, "b": 50 - k})
        if PSI_WARN <= value < PSI_ALERT:
            break
    finding = drift(reference, distributions({"a": 50 + k, "b": 50 - k}))[0]
    assert finding["level"] == "warn"


def test_drift_hour_uses_hour_numbers_as_keys() -> None:
    night = [0] * 24
    night[1] = night[2] = 100
    day = [0] * 24
    day[13] = day[14] = 100
    findings = drift(distributions({}, night), distributions({}, day))
    assert [f["feature"] for f in findings] == ["hour"]
    assert findings[0]["level"] == "alert"
    assert findings[0]["new_values"] == []  # every hour key exists on both sides


def test_drift_new_values_capped_and_sorted() -> None:
    current = {f"v{i:02d}": 1 for i in range(15)}
    finding = drift(distributions({"a": 10}), distributions(current))[0]
    assert finding["new_values"] == [f"v{i:02d}" for i in range(10)]


def test_drift_on_analysed_frames(frame: pd.DataFrame) -> None:
    findings = drift(analyse(frame), analyse(frame))
    assert {f["feature"] for f in findings} == {"day_of_week", "hour"}
    assert all(f["psi"] == 0 and f["level"] == "ok" for f in findings)
