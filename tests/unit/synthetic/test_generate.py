"""Tests for the synthetic crash generator (``crashed.synthetic``)."""

from __future__ import annotations

import time
from datetime import date
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crashed.core.crash_schema import normalise, read_crash_csv
from crashed.core.features import RAW_FEATURES
from crashed.errors import InputError
from crashed.synthetic import COLUMNS, generate_crashes, write_csv
from crashed.synthetic.fit import dumps, fit_all, read_training_rows
from crashed.synthetic.tables import load_tables

LIGHTS = {
    "Day", "Dusk/Dawn", "Dark Street lights on", "Dark No street lights", "Dark Street lights off",
    "Dark Street lights unknown", "Unk.",
}  # fmt: skip


@pytest.fixture(scope="module")
def big() -> pd.DataFrame:
    """50k crashes of 2018 (seed 0), shared by the rate tests."""
    return generate_crashes(50_000, seed=0)


@pytest.fixture(scope="module")
def training() -> pd.DataFrame:
    """100k crashes of the training months (Jan-Sep 2018), the window the figures come from."""
    return generate_crashes(100_000, seed=21, end=date(2018, 9, 30))


def levels_of(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Factor levels read from the CSV columns (the same for real and synthetic rows)."""
    tables = load_tables()
    hour = _hour(frame).to_numpy()
    weekday = pd.to_datetime(frame["accident_date"]).dt.day_of_week.to_numpy()
    party = ((weekday >= 4) & (weekday <= 5) & (hour >= 20)) | ((weekday >= 5) & (hour < 6))
    light = frame["light_condition"]
    return {
        "hour": hour,
        "weekday": weekday,
        "party_night": party.astype(int),
        "accident_type": _codes(frame["accident_type"], tables.accident_types),
        "vehicles": np.minimum(frame["no_of_vehicles"].clip(lower=1).to_numpy(), 3) - 1,
        "young_driver": np.minimum(frame["young_driver"].to_numpy(), 2),
        "male_majority": (frame["males"] > frame["females"]).astype(int).to_numpy(),
        "speed": _codes(frame["speed_zone"], tables.speed_zones),
        "light": np.select(
            [light == "Day", light == "Dusk/Dawn", light.str.startswith("Dark"), light == "Unk."],
            [0, 1, 2, 3],
            -1,
        ),
        "rural": np.where(frame["region_name"] == "", -1, (
            ~frame["region_name"].str.startswith("METROPOLITAN")).astype(int)),
        "hit_run": _codes(frame["hit_run_flag"], tables.hit_run),
    }  # fmt: skip


def _codes(values: pd.Series, categories: tuple[str, ...]) -> np.ndarray:
    """Index of each value in ``categories`` (the fit's level order); -1 for anything else."""
    index = {c: i for i, c in enumerate(categories)}
    return values.map(index).fillna(-1).astype(np.int64).to_numpy()


def _hour(frame: pd.DataFrame) -> pd.Series:
    return frame["accident_time"].str[:2].astype(int)


def _positive(frame: pd.DataFrame) -> pd.Series:
    return frame["alcohol_related"] == "Yes"


def test_same_seed_same_frame_and_seeds_differ() -> None:
    a = generate_crashes(3_000, seed=7)
    pd.testing.assert_frame_equal(a, generate_crashes(3_000, seed=7))
    b = generate_crashes(3_000, seed=8)
    assert not a["accident_time"].equals(b["accident_time"])
    assert not a["alcohol_related"].equals(b["alcohol_related"])


def test_columns_and_model_features(big: pd.DataFrame) -> None:
    assert list(big.columns) == list(COLUMNS)
    assert len(COLUMNS) == 42 and {"dca_code", "unlicencsed"} <= set(COLUMNS)
    assert set(RAW_FEATURES) <= set(big.columns) and len(RAW_FEATURES) == 20
    assert set(big["alcohol_related"]) == {"Yes", "No"}
    assert set(big["unlicencsed"]) == {0, 1}


@pytest.mark.real_data
def test_columns_follow_the_real_2018_header(real_crashes_csv: Path) -> None:
    header = real_crashes_csv.open(encoding="utf-8").readline().strip().split(",")
    assert list(COLUMNS) == [*header, "dca_code", "unlicencsed"]


def test_zero_rows_and_bad_arguments() -> None:
    empty = generate_crashes(0)
    assert empty.empty and list(empty.columns) == list(COLUMNS)
    with pytest.raises(InputError):
        generate_crashes(-1)
    with pytest.raises(InputError):
        generate_crashes(10, start=date(2019, 1, 2), end=date(2019, 1, 1))


def test_dates_times_and_numbers(big: pd.DataFrame) -> None:
    frame = generate_crashes(5_000, seed=3, start=date(2019, 12, 20), end=date(2020, 1, 10))
    days = pd.to_datetime(frame["accident_date"], format="%Y-%m-%d")
    assert days.min() >= pd.Timestamp("2019-12-20") and days.max() <= pd.Timestamp("2020-01-10")
    assert (days.dt.day_name() == frame["day_of_week"]).all()
    assert frame["accident_time"].str.fullmatch(r"\d{2}\.\d{2}\.\d{2}").all()
    assert frame["accident_no"].is_unique
    assert frame["accident_no"].str.fullmatch(r"T\d{11}").all()
    assert (frame["accident_no"].str[1:5] == frame["accident_date"].str[:4]).all()
    stamp = frame["accident_date"] + " " + frame["accident_time"]
    assert stamp.is_monotonic_increasing
    assert big["accident_time"].str.fullmatch(r"([01]\d|2[0-3])\.[0-5]\d\.00").all()
    assert big["accident_date"].str.startswith("2018-").all()
    assert (pd.to_datetime(big["accident_date"]).dt.day_name() == big["day_of_week"]).all()


def test_categories_use_real_spellings(big: pd.DataFrame) -> None:
    assert set(big["light_condition"]) == LIGHTS
    assert set(big["hit_run_flag"]) == {"No", "Yes", "Not known"}
    assert {"60 km/hr", "100 km/hr", "Not known"} <= set(big["speed_zone"])
    assert "REAR END(VEHICLES IN SAME LANE)" in set(big["dca_code"])
    assert "Collision with a fixed object" in set(big["accident_type"])
    assert set(big["severity"]) == {
        "Fatal accident", "Serious injury accident", "Other injury accident",
    }  # fmt: skip
    assert big["lga_name"].str.len().gt(0).all() and big["region_name"].str.len().gt(0).all()
    assert big["latitude"].between(-39.2, -33.9).all()
    assert big["longitude"].between(140.9, 150.0).all()


def test_counts_are_consistent(big: pd.DataFrame) -> None:
    f = big
    assert (f["inj_or_fatal"] == f["fatality"] + f["seriousinjury"] + f["otherinjury"]).all()
    assert (f["inj_or_fatal"] >= 1).all() and (f["inj_or_fatal"] <= f["total_persons"]).all()
    assert (f["noninjured"] == f["total_persons"] - f["inj_or_fatal"]).all()
    assert (f["males"] + f["females"] <= f["total_persons"]).all()
    roles = ["driver", "passenger", "pedestrian", "bicyclist", "motorist", "pillion"]
    assert (f[roles].sum(axis=1) <= f["total_persons"]).all()
    assert (f["young_driver"] + f["old_driver"] <= f["driver"] + f["motorist"]).all()
    assert (f["old_pedestrian"] <= f["pedestrian"]).all() and (f["pillion"] <= f["motorist"]).all()
    vehicles = ["heavyvehicle", "passengervehicle", "motorcycle", "publicvehicle"]
    assert (f[vehicles].sum(axis=1) <= f["no_of_vehicles"]).all()
    assert (f.loc[f["accident_type"] == "Struck Pedestrian", "pedestrian"] >= 1).all()
    assert (f.loc[f["accident_type"] == "Collision with vehicle", "no_of_vehicles"] >= 2).all()
    assert ((f["severity"] == "Fatal accident") == (f["fatality"] > 0)).all()
    serious = f["severity"] == "Serious injury accident"
    assert (f.loc[serious, "seriousinjury"] >= 1).all()
    assert 0.005 < (f["fatality"] > 0).mean() < 0.03
    assert (f.loc[f["unlicencsed"] == 1, ["driver", "motorist"]].sum(axis=1) >= 1).all()
    at_intersection = f["road_geometry"].str.contains("intersection") & (
        f["road_geometry"] != "Not at intersection"
    )
    assert at_intersection[f["dca_code"].str.contains("INTERSECTIONS ONLY")].all()


def test_light_follows_the_clock(big: pd.DataFrame) -> None:
    hour = _hour(big)
    light = big["light_condition"]
    assert not (light[hour.between(0, 3)] == "Day").any()
    assert not light[hour.between(10, 14)].str.startswith("Dark").any()
    assert (light[hour.between(10, 14)] == "Day").mean() > 0.95


def test_positive_rate(big: pd.DataFrame, training: pd.DataFrame) -> None:
    assert 0.025 <= _positive(big).mean() <= 0.04
    # fitted on Jan-Sep 2018: 269 of 8,480 real crashes (3.17 %)
    assert 0.028 <= _positive(training).mean() <= 0.036


def test_night_weekend_and_crash_type_effects(big: pd.DataFrame) -> None:
    y = _positive(big)
    hour = _hour(big)
    night = y[(hour >= 22) | (hour <= 3)].mean()
    day = y[hour.between(9, 15)].mean()
    assert night > 5 * day
    weekday = pd.to_datetime(big["accident_date"]).dt.day_of_week
    assert y[weekday >= 5].mean() > 1.5 * y[weekday <= 3].mean()
    party = (weekday.isin([4, 5]) & (hour >= 20)) | (weekday.isin([5, 6]) & (hour < 6))
    other_night = ~party & ((hour >= 20) | (hour < 6))
    assert y[party].mean() > 1.5 * y[other_night].mean()
    kind = big["accident_type"]
    assert (
        y[kind == "Collision with a fixed object"].mean()
        > 3 * y[kind == "Collision with vehicle"].mean()
    )
    assert y[big["no_of_vehicles"] == 1].mean() > 2 * y[big["no_of_vehicles"] >= 2].mean()
    assert y[big["pedestrian"] > 0].mean() < y[big["pedestrian"] == 0].mean()


def test_driver_effects(big: pd.DataFrame) -> None:
    y = _positive(big)
    assert y[big["young_driver"] >= 1].mean() > 1.05 * y[big["young_driver"] == 0].mean()
    assert y[big["unlicencsed"] == 1].mean() > 1.5 * y[big["unlicencsed"] == 0].mean()
    assert y[big["males"] > big["females"]].mean() > 1.5 * y[big["males"] <= big["females"]].mean()


def test_rates_per_level_match_the_fitted_targets(training: pd.DataFrame) -> None:
    """Synthetic positive rate per factor level vs the (shrunk) real rate it was fitted to."""
    label = load_tables().raw["label"]
    levels = levels_of(training)
    y = _positive(training).to_numpy()
    checked = 0
    for name, level in levels.items():
        for value, (target, real_n) in enumerate(  # every level has a target and a real count
            zip(label["targets"][name], label["real_crashes"][name], strict=True)
        ):
            rows = level == value
            if real_n < 300 or rows.sum() < 2_000:
                continue
            assert y[rows].mean() == pytest.approx(target, rel=0.2, abs=0.004), (name, value)
            checked += 1
    assert checked >= 40


@pytest.mark.real_data
def test_rates_close_to_the_real_training_months(
    training: pd.DataFrame, real_crashes_csv: Path
) -> None:
    """Against the raw real rows of Jan-Sep 2018: within sampling noise of the real rate."""
    real = pd.read_csv(real_crashes_csv, dtype=str, keep_default_na=False)
    real = real[real["accident_date"] <= "2018-09-30"]
    for column in ("no_of_vehicles", "young_driver", "males", "females"):
        real[column] = real[column].astype(int)
    synthetic, truth = levels_of(training), levels_of(real)
    y_syn, y_real = _positive(training).to_numpy(), _positive(real).to_numpy()
    checked = 0
    for name, real_level in truth.items():
        for value in np.unique(real_level[real_level >= 0]):
            n = int((real_level == value).sum())
            if n < 300:
                continue
            rate = y_real[real_level == value].mean()
            noise = 3 * np.sqrt(max(rate, 0.01) * (1 - rate) / n)
            assert abs(y_syn[synthetic[name] == value].mean() - rate) <= noise + 0.004, (
                name, value, rate
            )  # fmt: skip
            checked += 1
    assert checked >= 30


@pytest.mark.real_data
def test_fitted_only_on_the_training_months(real_crashes_csv: Path) -> None:
    raw = load_tables().raw
    real = pd.read_csv(real_crashes_csv, dtype=str, keep_default_na=False)
    training = real[real["accident_date"].between("2018-01-01", "2018-09-30")]
    assert raw["fitted_on"]["dates"] == ["2018-01-01", "2018-09-30"]
    assert raw["fitted_on"]["rows"] == len(training) == 8_480
    assert raw["fitted_on"]["positives"] == (training["alcohol_related"] == "Yes").sum()
    assert sum(raw["when"]["weekday_counts"]) == len(training)
    assert sorted(raw["when"]["month_counts"], key=int) == [str(m) for m in range(1, 10)]
    assert sum(sum(row) for row in raw["road"]["accident_type_counts"]) <= len(training)


def test_training_rows_never_include_the_validation_months(tmp_path: Path) -> None:
    """Two files that differ only in Oct-Dec give the fit the same rows."""
    year = generate_crashes(3_000, seed=9)
    other = year.copy()
    late = other["accident_date"] >= "2018-10-01"
    other.loc[late, "alcohol_related"] = "Yes"
    other.loc[late, "males"] = 7
    a = read_training_rows(write_csv(year, tmp_path / "a.csv"))
    b = read_training_rows(write_csv(other, tmp_path / "b.csv"))
    pd.testing.assert_frame_equal(a, b)
    assert a["accident_date"].max() <= "2018-09-30" and len(a) == (~late).sum()


@pytest.mark.slow
@pytest.mark.real_data
def test_the_fit_reproduces_the_packaged_figures(real_crashes_csv: Path) -> None:
    assert dumps(fit_all(real_crashes_csv)) == (
        resources.files("crashed.synthetic").joinpath("fitted.json").read_text("utf-8")
    )


def test_learnable_but_not_trivial() -> None:
    xgb = pytest.importorskip("xgboost")
    metrics = pytest.importorskip("sklearn.metrics")
    frame = generate_crashes(20_000, seed=1)
    x = frame[list(RAW_FEATURES)].copy()
    x["accident_time"] = _hour(frame) + frame["accident_time"].str[3:5].astype(int) / 60
    x = pd.get_dummies(x, dtype=float)
    y = _positive(frame).astype(int).to_numpy()
    train = (frame["accident_date"] < "2018-10-01").to_numpy()
    model = xgb.XGBClassifier(
        n_estimators=60, max_depth=3, learning_rate=0.12, n_jobs=2, tree_method="hist"
    )
    model.fit(x[train], y[train])
    auc = metrics.roc_auc_score(y[~train], model.predict_proba(x[~train])[:, 1])
    assert 0.78 <= auc <= 0.92


def test_speed_of_100k_rows() -> None:
    """~0.5 s quiet, ~0.9 s with the machine shared; the bound only catches a lost
    vectorisation (a per-row Python loop would take minutes), not a busy machine."""
    generate_crashes(100)
    best = np.inf
    for _ in range(2):
        started = time.perf_counter()
        generate_crashes(100_000, seed=2)
        best = min(best, time.perf_counter() - started)
    assert best < 10.0


def test_write_csv_round_trip_and_atomicity(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    frame = generate_crashes(200, seed=4)
    target = write_csv(frame, tmp_path / "out" / "crashes.csv")
    assert target == tmp_path / "out" / "crashes.csv"
    back = pd.read_csv(target, dtype={"accident_time": str})
    assert list(back.columns) == list(COLUMNS) and len(back) == 200
    assert back["accident_time"].tolist() == frame["accident_time"].tolist()
    assert back["accident_no"].tolist() == frame["accident_no"].tolist()

    def boom(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", boom)
    before = target.read_bytes()
    with pytest.raises(OSError, match="disk full"):
        write_csv(frame, target)
    assert target.read_bytes() == before
    assert [p.name for p in target.parent.iterdir()] == ["crashes.csv"]


def test_csv_loads_through_the_crash_schema(tmp_path: Path) -> None:
    path = write_csv(generate_crashes(2_000, seed=5), tmp_path / "synthetic.csv")
    table = normalise(read_crash_csv(path), source=path.name)
    assert len(table) == 2_000
    assert table[list(RAW_FEATURES)].notna().all().all()
    assert table["accident_time"].str.fullmatch(r"\d{2}:\d{2}:00").all()
