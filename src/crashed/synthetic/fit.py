"""Fit ``fitted.json`` from the real files: figures only, from the training months only.

Run ``python bench/fit_synthetic.py`` (or ``python -m crashed.synthetic.fit``). It reads

* ``vic_crashes_2018.csv`` and keeps the rows dated **2018-01-01 .. 2018-09-30** — the training
  months of the reference split — right after reading: the validation months Oct–Dec 2018 are
  never used for any figure, so a model trained on synthetic crashes has seen nothing of the
  real validation window (and the generator's Oct–Dec crash volume is the mean daily rate of the
  fitted months);
* the 554-row July 2015 full-schema sample, for what the 2018 file lacks: DCA codes per accident
  type and intersection, the street-lighting split of dark crashes, the unlicensed share.

Every figure is an aggregate (counts, shares, medians, robust spreads, fitted parameters); no
row is written. :mod:`crashed.synthetic.fit_model` fits the two model-shaped parts (light
windows, label coefficients). The few choices that are assumptions, not figures, are the
``ASSUMPTIONS`` below and the fixed label coefficients in ``fit_model``.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, stats

from crashed.synthetic.draws import time_band
from crashed.synthetic.tables import OBJECT, OTHER, SPEED_BAND

TRAIN_START, TRAIN_END = date(2018, 1, 1), date(2018, 9, 30)
DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "victoria-crashes"
REAL_2018 = DATA / "vic_crashes_2018.csv"
SAMPLE_2015 = DATA / "thanhtungdao_vic_crash_2015-07_fullschema_sample.csv"
OUT = Path(__file__).with_name("fitted.json")

CATEGORIES: dict[str, tuple[str, ...]] = {
    "weekdays": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "regions": (
        "EASTERN REGION", "METROPOLITAN NORTH WEST REGION", "METROPOLITAN SOUTH EAST REGION",
        "NORTH EASTERN REGION", "NORTHERN REGION", "SOUTH WESTERN REGION", "WESTERN REGION",
    ),
    "speed_zones": (
        "30km/hr", "40 km/hr", "50 km/hr", "60 km/hr", "70 km/hr", "75 km/hr", "80 km/hr",
        "90 km/hr", "100 km/hr", "110 km/hr", "Camping grounds or off road", "Not known",
        "Other speed limit",
    ),
    "accident_types": (
        "Collision with a fixed object", "Collision with vehicle",
        "Fall from or in moving vehicle", "No collision and no object struck", "Other accident",
        "Struck Pedestrian", "Struck animal", "Vehicle overturned (no collision)",
        "collision with some other object",
    ),
    "road_geometries": (
        "Cross intersection", "Dead end", "Multiple intersection", "Not at intersection",
        "Private property", "Road closure", "T intersection", "Unknown", "Y intersection",
    ),
    "node_types": ("Intersection", "Non-Intersection", "Off Road"),
    "hit_run": ("No", "Not known", "Yes"),
    "severities": ("Fatal accident", "Other injury accident", "Serious injury accident"),
    "lights": (
        "Day", "Dusk/Dawn", "Dark Street lights on", "Dark No street lights",
        "Dark Street lights off", "Dark Street lights unknown", "Unk.",
    ),
}  # fmt: skip
#: Assumptions (no file records them); see the module docstring.
ASSUMPTIONS = {
    "parked_share": 0.08,  # other vehicles of multi-vehicle crashes with nobody in them
    "other_vehicle_driver_share": 0.5,  # non-bicycle "other" vehicles with a driver
    "unlicensed_young_factor": 1.2,  # 8/170 vs 15/384 in the 2015 sample is too thin to fit
}
#: DCA codes added for types the 2015 sample saw once, so they are not single-valued.
ASSUMED_DCA = {
    (OTHER, False): ("OTHER ACCIDENTS NOT CLASSIFIABLE ELSEWHERE", 1),
    (OBJECT, False): ("PERMANENT OBSTRUCTION ON CARRIAGEWAY", 1),
}
_INT_COLUMNS = (
    "total_persons", "inj_or_fatal", "fatality", "seriousinjury", "otherinjury", "males",
    "females", "bicyclist", "passenger", "driver", "pedestrian", "pillion", "motorist",
    "old_pedestrian", "old_driver", "young_driver", "no_of_vehicles", "heavyvehicle",
    "passengervehicle", "motorcycle", "publicvehicle",
)  # fmt: skip


def read_training_rows(path: Path = REAL_2018) -> pd.DataFrame:
    """The real 2018 rows dated within the training months, with derived helper columns."""
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    day = pd.to_datetime(raw["accident_date"], format="%Y-%m-%d")
    f = raw[(day >= pd.Timestamp(TRAIN_START)) & (day <= pd.Timestamp(TRAIN_END))].copy()
    for column in _INT_COLUMNS:
        f[column] = pd.to_numeric(f[column], errors="coerce").fillna(0).astype(np.int64)
    for column in ("latitude", "longitude"):
        f[column] = pd.to_numeric(f[column], errors="coerce")
    f["day"] = pd.to_datetime(f["accident_date"], format="%Y-%m-%d")
    f["wd"] = f["day"].dt.day_of_week
    f["hour"] = f["accident_time"].str[:2].astype(int)
    f["minute"] = f["accident_time"].str[3:5].astype(int)
    f["band"] = time_band(f["hour"].to_numpy())
    f["y"] = (f["alcohol_related"] == "Yes").astype(int)
    f["metro"] = f["region_name"].str.startswith("METROPOLITAN")
    for key, column in (
        ("speed_zones", "speed_zone"),
        ("accident_types", "accident_type"),
        ("road_geometries", "road_geometry"),
        ("node_types", "node_type"),
        ("hit_run", "hit_run_flag"),
        ("severities", "severity"),
    ):
        f[f"{column}_i"] = _codes(f[column], CATEGORIES[key])
    return f


def _codes(values: pd.Series, categories: tuple[str, ...]) -> pd.Series:
    """Index of each value in ``categories``; -1 for blanks and values outside them."""
    index = {c: i for i, c in enumerate(categories)}
    return values.map(index).fillna(-1).astype(np.int64)


def _table(f: pd.DataFrame, row: str, n_rows: int, col: str, n_cols: int) -> list[list[int]]:
    """Counts of (row, col) code pairs, rows with a -1 code dropped."""
    ok = (f[row] >= 0) & (f[col] >= 0)
    flat = np.bincount(f.loc[ok, row] * n_cols + f.loc[ok, col], minlength=n_rows * n_cols)
    return flat.reshape(n_rows, n_cols).tolist()


def _r(x: float, digits: int = 3) -> float:
    return round(float(x), digits)


def fit_when(f: pd.DataFrame) -> dict[str, Any]:
    """Crashes per weekday, month, hour (per weekday group) and minute heaping."""
    group = np.select([f["wd"] <= 3, f["wd"] == 4, f["wd"] == 5], [0, 1, 2], 3)
    minutes = np.bincount(f["minute"], minlength=60)
    return {
        "weekday_counts": np.bincount(f["wd"], minlength=7).tolist(),
        "month_counts": {
            str(m): int(c)
            for m, c in f["day"].dt.month.value_counts(sort=False).sort_index().items()
        },
        "hour_counts": _table(f.assign(g=group), "g", 4, "hour", 24),
        "minute_counts_5": minutes[::5].tolist(),
        "minute_count_other": _r(np.delete(minutes, np.arange(0, 60, 5)).mean(), 2),
    }


def fit_where(f: pd.DataFrame) -> dict[str, Any]:
    """Per LGA: modal region, crashes, median point and robust spread (IQR / 1.349)."""
    regions = CATEGORIES["regions"]
    rows = []
    for name, g in f[f["lga_name"] != ""].groupby("lga_name"):
        region = g.loc[g["region_name"].isin(regions), "region_name"].mode()
        if region.empty:
            continue
        spread = [
            max(_r(stats.iqr(g[c].dropna()) / 1.349), 0.005) for c in ("latitude", "longitude")
        ]
        rows.append(
            [
                name,
                regions.index(region.iloc[0]),
                len(g),
                _r(g["latitude"].median()),
                _r(g["longitude"].median()),
                *spread,
            ]
        )
    return {"lgas": sorted(rows, key=lambda r: (-r[2], r[0]))}


def fit_road(f: pd.DataFrame) -> dict[str, Any]:
    """Speed zone by rural/metro; accident type by speed x time band; geometry, node, hit-run."""
    n = {k: len(v) for k, v in CATEGORIES.items()}
    cond = np.where(f["speed_zone_i"] >= 0, SPEED_BAND[f["speed_zone_i"]] * 3 + f["band"], -1)
    return {
        "speed_zone_counts": _table(
            f.assign(m=f["metro"].astype(int)), "speed_zone_i", n["speed_zones"], "m", 2
        ),
        "accident_type_counts": _table(f.assign(c=cond), "c", 9, "accident_type_i", 9),
        "road_geometry_counts": _table(f, "accident_type_i", 9, "road_geometry_i", 9),
        "node_type_counts": _table(f, "road_geometry_i", 9, "node_type_i", 3),
        "hit_run_counts": _table(f, "accident_type_i", 9, "hit_run_flag_i", 3),
    }


def fit_vehicles(f: pd.DataFrame) -> dict[str, Any]:
    """Vehicles per crash and their kinds, per accident type."""
    kinds = f[["passengervehicle", "motorcycle", "heavyvehicle", "publicvehicle"]]
    other = (f["no_of_vehicles"] - kinds.sum(axis=1)).clip(lower=0)
    by_type = f.assign(other=other).groupby("accident_type_i")
    sums = by_type[[*kinds.columns, "other", "bicyclist"]].sum().reindex(range(9), fill_value=0)
    overall = sums["bicyclist"].sum() / max(sums["other"].sum(), 1)
    # bicyclists per "other" vehicle, shrunk towards the overall share with 10 pseudo-vehicles
    share = ((sums["bicyclist"] + 10 * overall) / (sums["other"] + 10)).clip(upper=1.0)
    nv = f.assign(v=f["no_of_vehicles"].clip(1, 6) - 1)
    return {
        "no_of_vehicles_counts": _table(nv, "accident_type_i", 9, "v", 6),
        "vehicle_type_counts": sums[[*kinds.columns, "other"]].astype(int).values.tolist(),
        "bicycle_share_of_other": [_r(x, 2) for x in share],
    }


def _passenger_dispersion(f: pd.DataFrame, mean: np.ndarray) -> float:
    """Negative-binomial size per vehicle so the share of crashes without passengers is real's."""
    carish = (f["passengervehicle"] + f["heavyvehicle"] + f["publicvehicle"]).to_numpy()
    ok = carish > 0
    target = (f.loc[ok, "passenger"] == 0).mean()
    c, m = carish[ok], mean[f.loc[ok, "band"]] * carish[ok]

    def gap(r: float) -> float:
        size = r * c
        return float(np.mean((size / (size + m)) ** size) - target)

    return _r(optimize.brentq(gap, 0.01, 50.0), 2)


def _sex_shares(f: pd.DataFrame) -> dict[str, list[list[float]]]:
    """(male, female) per person of each role and time band: least squares on the role counts."""
    per_band, pooled = ("driver", "passenger", "pedestrian"), ("motorist", "bicyclist", "pillion")
    unknown = (f["total_persons"] - f[[*per_band, *pooled]].sum(axis=1)).clip(lower=0)
    columns = [f[r] * (f["band"] == b) for r in per_band for b in range(3)]
    design = np.column_stack([*columns, *(f[r] for r in pooled), unknown]).astype(float)
    out: dict[str, list[list[float]]] = {}
    fits = [optimize.nnls(design, f[s].to_numpy(float))[0] for s in ("males", "females")]
    male, female = (np.clip(x, 0.01, 0.98) for x in fits)
    names = [*per_band, *pooled, "unknown"]
    for i, role in enumerate(names):
        idx = [i * 3 + b for b in range(3)] if role in per_band else [9 + i - 3] * 3
        out[role] = [[_r(male[j], 2), _r(min(female[j], 0.99 - male[j]), 2)] for j in idx]
    return out


def fit_people(f: pd.DataFrame, sample: pd.DataFrame) -> dict[str, Any]:
    """Passengers, pedestrians, unknown roles, sex, young/old and unlicensed operators."""
    carish = f["passengervehicle"] + f["heavyvehicle"] + f["publicvehicle"]
    mean = np.array(
        [
            f.loc[(f["band"] == b), "passenger"].sum() / max(carish[f["band"] == b].sum(), 1)
            for b in range(3)
        ]
    )
    roles = ["driver", "passenger", "pedestrian", "bicyclist", "motorist", "pillion"]
    unknown = (f["total_persons"] - f[roles].sum(axis=1)).clip(lower=0)
    ped = f[f["accident_type_i"] == 5]["pedestrian"].clip(1, 3)
    has_ped = (f["pedestrian"] > 0).groupby(f["accident_type_i"]).mean().reindex(range(9))
    operators = f["driver"] + f["motorist"]
    by_band = f.assign(op=operators).groupby("band")[["young_driver", "old_driver", "op"]].sum()
    young_any = (f.loc[operators > 0, "young_driver"] > 0).mean()
    unlicensed = (sample["UNLICENCSED"] == "1").mean()
    factor = ASSUMPTIONS["unlicensed_young_factor"]
    return {
        "pillion_per_motorist": _r(f["pillion"].sum() / f["motorist"].sum(), 4),
        "old_pedestrian_share": _r(f["old_pedestrian"].sum() / f["pedestrian"].sum()),
        "passenger_mean": [_r(x) for x in mean],
        "passenger_dispersion": _passenger_dispersion(f, mean),
        "pedestrian_share": [1.0 if t == 5 else _r(x, 4) for t, x in has_ped.fillna(0).items()],
        "extra_pedestrians": [_r((ped == k).mean()) for k in (1, 2, 3)],
        "unknown_role_share": _r((unknown > 0).mean()),
        "unknown_role_geometric": _r(1.0 / unknown[unknown > 0].mean(), 2),
        "sex_shares": _sex_shares(f),
        "young_share": [_r(x) for x in by_band["young_driver"] / by_band["op"]],
        "old_share": [_r(x) for x in by_band["old_driver"] / by_band["op"]],
        "unlicensed_share": _r(unlicensed / (1 + (factor - 1) * young_any)),
    }


def fit_injuries(f: pd.DataFrame) -> dict[str, Any]:
    """Injured persons (beta-binomial), severity per type and speed band, deaths and serious."""
    many = f[f["total_persons"] >= 2]
    k, n = (many["inj_or_fatal"] - 1).clip(lower=0), many["total_persons"] - 1

    def nll(log_ab: np.ndarray) -> float:
        return -float(stats.betabinom.logpmf(k, n, *np.exp(log_ab)).sum())

    beta = np.exp(optimize.minimize(nll, np.log([0.5, 1.0]), method="Nelder-Mead").x)
    severity = _table(f, "accident_type_i", 9, "severity_i", 3)
    shares = np.asarray(severity, float) / np.maximum(np.sum(severity, axis=1, keepdims=True), 1)
    ok = (f["accident_type_i"] >= 0) & (f["speed_zone_i"] >= 0)
    g, speed_band = f[ok], SPEED_BAND[f.loc[ok, "speed_zone_i"]]
    factors = {}
    for name, col, level in (("fatal", 0, 0), ("serious", 2, 2)):
        observed = np.bincount(speed_band, g["severity_i"] == level, minlength=3)
        expected = np.bincount(speed_band, shares[g["accident_type_i"], col], minlength=3)
        factors[name] = [_r(o / e, 2) for o, e in zip(observed, expected, strict=True)]
    fatal, serious = f[f["fatality"] > 0], f[f["severity_i"] == 2]
    return {
        "extra_injured_beta": [_r(x, 2) for x in beta],
        "severity_counts": severity,
        "fatal_speed_factor": factors["fatal"],
        "serious_speed_factor": factors["serious"],
        "extra_fatality": _r((fatal["fatality"] > 1).mean()),
        "serious_in_fatal": _r(
            fatal["seriousinjury"].sum() / (fatal["inj_or_fatal"] - fatal["fatality"]).sum(), 2
        ),
        "extra_serious": _r(
            (serious["seriousinjury"] - 1).clip(lower=0).sum()
            / (serious["inj_or_fatal"] - 1).sum(),
            2,
        ),
    }


def fit_from_sample(sample: pd.DataFrame) -> tuple[dict[str, Any], list[list[int]]]:
    """DCA tables per (accident type, intersection) and the dark split, from the 2015 sample."""
    types = _codes(sample["ACCIDENT_TYPE"], CATEGORIES["accident_types"])
    geometry = sample["ROAD_GEOMETRY"]
    inter = geometry.str.contains("intersection") & (geometry != "Not at intersection")
    tables: dict[tuple[int, bool], dict[str, int]] = {}
    for (t, i), codes in sample[types >= 0].groupby([types[types >= 0], inter[types >= 0]]):
        tables[(int(t), bool(i))] = codes["DCA_CODE"].value_counts().to_dict()
    for key, (code, count) in ASSUMED_DCA.items():
        tables.setdefault(key, {}).setdefault(code, count)
    dca = {
        "tables": [
            {"type": t, "intersection": i, "codes": sorted(c.items(), key=lambda x: (-x[1], x[0]))}
            for (t, i), c in sorted(tables.items())
        ]
    }
    metro = sample["REGION_NAME"].str.startswith("METROPOLITAN").astype(int)
    kinds = _codes(sample["LIGHT_CONDITION"], CATEGORIES["lights"]) - 2
    dark = _table(
        pd.DataFrame({"m": metro, "k": kinds.where(kinds.between(0, 3), -1)}), "m", 2, "k", 4
    )
    dark = [[max(c, 1) for c in row] for row in dark]  # every kind possible on every road
    return dca, dark


def fit_all(real: Path = REAL_2018, sample_path: Path = SAMPLE_2015) -> dict[str, Any]:
    """Every figure of ``fitted.json`` (the label and light fits included)."""
    from crashed.synthetic import fit_model

    f = read_training_rows(real)
    sample = pd.read_csv(sample_path, dtype=str, keep_default_na=False)
    dca, dark = fit_from_sample(sample)
    doc: dict[str, Any] = {
        "fitted_on": {
            "file": real.name,
            "sha256": hashlib.sha256(real.read_bytes()).hexdigest(),
            "dates": [TRAIN_START.isoformat(), TRAIN_END.isoformat()],
            "rows": len(f),
            "positives": int(f["y"].sum()),
            "never_used": "validation months 2018-10-01 .. 2018-12-31",
            "sample": {"file": sample_path.name, "rows": len(sample)},
        },
        "categories": {k: list(v) for k, v in CATEGORIES.items()},
        "when": fit_when(f),
        "where": fit_where(f),
        "road": fit_road(f),
        "vehicles": fit_vehicles(f),
        "people": fit_people(f, sample),
        "injuries": fit_injuries(f),
        "light": {"dark_counts": dark},
        "dca": dca,
        "assumptions": ASSUMPTIONS,
    }
    doc["light"] |= fit_model.fit_light(f)
    doc["label"] = fit_model.fit_label(f, doc)
    return doc


def dumps(doc: dict[str, Any]) -> str:
    """JSON with every innermost list on one line (readable diffs, a small file)."""
    text = json.dumps(doc, indent=1, ensure_ascii=False)
    one_line = lambda m: json.dumps(json.loads(m[0]), ensure_ascii=False)  # noqa: E731
    return re.sub(r"\[[^\[\]{}]*\]", one_line, text) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Fit and write ``fitted.json`` (``argv``: optional output path)."""
    out = Path(argv[0]) if argv else OUT
    from crashed.fsio import atomic_write

    missing = [p for p in (REAL_2018, SAMPLE_2015) if not p.is_file()]
    if missing:
        print(
            f"error: {missing[0]} is absent (the fit needs ../shared beside the repo)",
            file=sys.stderr,
        )
        return 4
    atomic_write(out, dumps(fit_all()))
    print(f"wrote {out} (fitted on {TRAIN_START} .. {TRAIN_END} only)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
