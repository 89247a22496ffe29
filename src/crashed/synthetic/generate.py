"""``generate_crashes``: simulated columns + the label, as the VicRoads lower-case CSV shape."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from crashed.errors import InputError
from crashed.fsio import atomic_write
from crashed.synthetic.simulate import simulate
from crashed.synthetic.tables import FACTORS, Tables, load_tables

#: Output columns: those of ``vic_crashes_2018.csv`` in order, then ``dca_code``, ``unlicencsed``.
COLUMNS: tuple[str, ...] = (
    "OBJECTID", "accident_no", "accident_date", "accident_time", "accident_type", "day_of_week",
    "road_geometry", "severity", "speed_zone", "node_id", "longitude", "latitude", "node_type",
    "lga_name", "region_name", "total_persons", "inj_or_fatal", "fatality", "seriousinjury",
    "otherinjury", "noninjured", "males", "females", "bicyclist", "passenger", "driver",
    "pedestrian", "pillion", "motorist", "old_pedestrian", "old_driver", "young_driver",
    "alcohol_related", "no_of_vehicles", "heavyvehicle", "passengervehicle", "motorcycle",
    "publicvehicle", "hit_run_flag", "light_condition", "dca_code", "unlicencsed",
)  # fmt: skip
_CLOCK = tuple(f"{m // 60:02d}.{m % 60:02d}.00" for m in range(1440))


def logit(tables: Tables, levels: dict[str, np.ndarray]) -> np.ndarray:
    """Latent log-odds of an alcohol-related crash: intercept + one coefficient per factor."""
    z = np.full(len(levels["hour"]), tables.intercept)
    for name in FACTORS:
        z += tables.coef[name][levels[name]]
    return z


def _accident_numbers(rng: np.random.Generator, days: np.ndarray) -> np.ndarray:
    """``T<year><7 digits>``, increasing with the (sorted) date, unique, with small gaps."""
    n = len(days)
    if n == 0:
        return np.zeros(0, dtype=object)
    years = days.astype("datetime64[Y]").astype("int64") + 1970
    first = np.r_[0, np.flatnonzero(np.diff(years)) + 1]  # first row of each year
    group = np.cumsum(np.isin(np.arange(n), first)) - 1
    for step in (rng.integers(1, 4, n), np.ones(n, dtype=np.int64)):
        cum = np.cumsum(step)
        seq = 100 + cum - (cum[first] - step[first])[group]
        if seq.max() <= 9_999_999:
            break
    else:
        raise InputError("too many crashes in one year for 7-digit accident numbers")
    text = np.char.add(np.char.add("T", years.astype("U4")), np.char.zfill(seq.astype("U7"), 7))
    return text.astype(object)


def _text(labels: object, codes: np.ndarray) -> pd.api.extensions.ExtensionArray:
    return pd.array(np.asarray(labels, dtype=object), dtype="str").take(codes)


def generate_crashes(
    rows: int,
    seed: int = 0,
    start: date = date(2018, 1, 1),
    end: date = date(2018, 12, 31),
    tables: Tables | None = None,
) -> pd.DataFrame:
    """Generate ``rows`` synthetic crashes dated ``start``..``end`` (inclusive), sorted by time.

    Deterministic for a given ``seed``. Columns are :data:`COLUMNS` (VicRoads lower-case CSV
    shape); ``alcohol_related`` is "Yes"/"No", about 3 % "Yes". ``tables`` defaults to the
    packaged fit (:func:`crashed.synthetic.tables.load_tables`).
    """
    if isinstance(rows, bool) or not isinstance(rows, int | np.integer) or rows < 0:
        raise InputError(f"rows must be a non-negative integer, got {rows!r}")
    if start > end:
        raise InputError(f"start {start} is after end {end}")
    t = tables or load_tables()
    n = int(rows)
    rng = np.random.default_rng(seed)
    c, levels = simulate(rng, t, n, start, end)
    alcohol = rng.random(n) < 1.0 / (1.0 + np.exp(-logit(t, levels)))
    unique_days, day_codes = np.unique(c["days"], return_inverse=True)
    return pd.DataFrame(
        {
            "OBJECTID": 3_500_000 + np.arange(n, dtype=np.int64),
            "accident_no": pd.array(_accident_numbers(rng, c["days"]), dtype="str"),
            "accident_date": _text(np.datetime_as_string(unique_days, unit="D"), day_codes),
            "accident_time": _text(_CLOCK, c["minute_of_day"]),
            "accident_type": _text(t.accident_types, c["atype"]),
            "day_of_week": _text(t.weekdays, c["weekday"]),
            "road_geometry": _text(t.road_geometries, c["geometry"]),
            "severity": _text(t.severities, c["severity"]),
            "speed_zone": _text(t.speed_zones, c["speed"]),
            "node_id": rng.integers(1, 345_000, n),
            "longitude": np.round(c["lon"], 5),
            "latitude": np.round(c["lat"], 5),
            "node_type": _text(t.node_types, c["node"]),
            "lga_name": _text(t.lga_names, c["lga"]),
            "region_name": _text(t.regions, c["region"]),
            **{k: c[k].astype(np.int64) for k in COLUMNS[15:32]},
            "alcohol_related": _text(("No", "Yes"), alcohol.astype(np.int64)),
            **{k: c[k].astype(np.int64) for k in COLUMNS[33:38]},
            "hit_run_flag": _text(t.hit_run, c["hit_run"]),
            "light_condition": _text(t.lights, c["light"]),
            "dca_code": _text(t.dca_codes, c["dca"]),
            "unlicencsed": c["unlicencsed"].astype(np.int64),
        },
        columns=list(COLUMNS),
    )


def write_csv(frame: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write ``frame`` as CSV (no index) atomically (:func:`crashed.fsio.atomic_write`)."""
    return atomic_write(Path(path), frame.to_csv(index=False, lineterminator="\n"))
