"""The fitted figures of the synthetic generator, loaded from the packaged ``fitted.json``.

``fitted.json`` is written by :mod:`crashed.synthetic.fit` from the *training months* of the
real 2018 file (Jan–Sep; the validation months Oct–Dec are never read) plus the 554-row July
2015 full-schema sample for the columns the 2018 file lacks. It holds figures only (counts,
shares, medians, fitted coefficients), never a row. :class:`Tables` turns it into the numpy
arrays the simulation draws from; the few fixed choices that are not figures (Victoria's
bounding box, speed bands, which geometries are intersections) live here as named constants.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np

#: Victoria's bounding box (lat min, lat max, lon min, lon max); 2018 spans -39.02..-34.16,
#: 141.0..149.75.
VIC_BOX = (-39.15, -34.0, 140.97, 149.97)
#: Speed band per speed zone (VicRoads order): 0 = up to 60 or unknown, 1 = 70..90, 2 = 100+.
SPEED_BAND = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 0, 0, 0])
#: Label-model light level per light condition: day, dusk/dawn, dark (4 kinds), unknown.
LIGHT_LEVEL = np.array([0, 1, 2, 2, 2, 2, 3])
#: Indices into the accident types (VicRoads spelling order).
FIXED, VEHICLE, FALL, NOCOLL, OTHER, PED, ANIMAL, OVERTURN, OBJECT = range(9)
#: Label-model factors, in the order their coefficients are added.
FACTORS = (
    "hour", "weekday", "party_night", "accident_type", "vehicles", "young_driver",
    "male_majority", "speed", "light", "heavy_vehicle", "motorcycle", "old_driver", "severity",
    "rural", "hit_run", "unlicensed", "dca_group",
)  # fmt: skip


def dca_group(code: str) -> int:
    """DCA family for the label model: 0 other, 1 loss of control, 2 head on, 3 low risk."""
    if any(k in code for k in ("OFF CARRIAGEWAY", "OUT OF CONTROL", "BEND INTO", "OFF END OF")):
        return 1
    if code.startswith("HEAD ON"):
        return 2
    if any(k in code for k in ("REAR END", "PARKING", "DOOR OF", "REVERSING", "PARKED CAR")):
        return 3
    return 0


def cdf(weights: object) -> np.ndarray:
    """Row-normalised cumulative distribution of a weight vector or matrix."""
    w = np.asarray(weights, dtype=float)
    c = np.cumsum(w, axis=-1)
    return c / c[..., -1:]


@dataclass(frozen=True)
class Tables:
    """Every figure the simulation draws from, as arrays (see ``fitted.json`` for sources)."""

    raw: dict[str, Any]
    weekdays: tuple[str, ...]
    regions: tuple[str, ...]
    speed_zones: tuple[str, ...]
    accident_types: tuple[str, ...]
    road_geometries: tuple[str, ...]
    node_types: tuple[str, ...]
    hit_run: tuple[str, ...]
    severities: tuple[str, ...]
    lights: tuple[str, ...]
    lga_names: tuple[str, ...]
    lga: np.ndarray  # (region, crashes, lat, lon, sd lat, sd lon) per LGA
    day_rate_by_month: np.ndarray  # crashes per day, Jan..Dec (unfitted months: the mean)
    weekday_counts: np.ndarray
    hour_cdf: np.ndarray
    minute_cdf: np.ndarray
    speed_cdf: np.ndarray  # (rural, metro) x speed zone
    atype_cdf: np.ndarray  # speed band * 3 + time band
    geometry_cdf: np.ndarray
    intersection: np.ndarray
    node_cdf: np.ndarray
    hit_run_cdf: np.ndarray
    vehicles_cdf: np.ndarray
    vehicle_type_cdf: np.ndarray
    dca_codes: tuple[str, ...]
    dca_cdf: np.ndarray  # accident type * 2 + intersection
    dca_group: np.ndarray
    dark_cdf: np.ndarray  # (rural, metro) x (on, none, off, unknown)
    extra_pedestrians_cdf: np.ndarray
    intercept: float
    coef: dict[str, np.ndarray]

    def num(self, section: str, name: str) -> Any:
        """One figure of a section as a float or a float array."""
        value = self.raw[section][name]
        return np.asarray(value, dtype=float) if isinstance(value, list) else float(value)

    def sex_shares(self, role: str) -> np.ndarray:
        """(male, female) shares per time band (day, evening, night) for one role."""
        return np.asarray(self.raw["people"]["sex_shares"][role], dtype=float)


def _dca(raw: dict[str, Any], n_types: int) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """Codes, weights (accident type * 2 + intersection, code), code -> DCA family.

    A type with no table for one side borrows the other side's; a code seen only at
    intersections is never drawn off them.
    """
    tables = {(int(t["type"]), bool(t["intersection"])): t["codes"] for t in raw["tables"]}
    codes = tuple(sorted({c for table in tables.values() for c, _ in table}))
    index = {c: i for i, c in enumerate(codes)}
    weights = np.zeros((n_types * 2, len(codes)))
    for t in range(n_types):
        for inter in (False, True):
            table = tables.get((t, inter)) or tables[(t, not inter)]
            for code, count in table:
                if inter or "INTERSECTIONS ONLY" not in code:
                    weights[t * 2 + int(inter), index[code]] = count
    return codes, cdf(weights), np.array([dca_group(c) for c in codes])


def from_dict(raw: dict[str, Any]) -> Tables:
    """Build :class:`Tables` from the ``fitted.json`` document."""
    cat = {k: tuple(v) for k, v in raw["categories"].items()}
    when, road = raw["when"], raw["road"]
    days_in_month = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=float)
    rate = np.full(12, np.nan)
    for month, count in when["month_counts"].items():
        rate[int(month) - 1] = count / days_in_month[int(month) - 1]
    rate[np.isnan(rate)] = np.nanmean(rate)  # months not fitted: the mean daily rate
    minute_w = np.full(60, float(when["minute_count_other"]))
    minute_w[::5] = when["minute_counts_5"]
    lgas = raw["where"]["lgas"]
    codes, dca_cdf, groups = _dca(raw["dca"], len(cat["accident_types"]))
    label = raw["label"]
    return Tables(
        raw=raw,
        weekdays=cat["weekdays"],
        regions=cat["regions"],
        speed_zones=cat["speed_zones"],
        accident_types=cat["accident_types"],
        road_geometries=cat["road_geometries"],
        node_types=cat["node_types"],
        hit_run=cat["hit_run"],
        severities=cat["severities"],
        lights=cat["lights"],
        lga_names=tuple(row[0] for row in lgas),
        lga=np.array([row[1:] for row in lgas], dtype=float),
        day_rate_by_month=rate,
        weekday_counts=np.asarray(when["weekday_counts"], dtype=float),
        hour_cdf=cdf(when["hour_counts"]),
        minute_cdf=cdf(minute_w),
        speed_cdf=cdf(np.asarray(road["speed_zone_counts"]).T),
        atype_cdf=cdf(road["accident_type_counts"]),
        geometry_cdf=cdf(road["road_geometry_counts"]),
        intersection=np.array(
            ["intersection" in g and g != "Not at intersection" for g in cat["road_geometries"]]
        ),
        node_cdf=cdf(road["node_type_counts"]),
        hit_run_cdf=cdf(road["hit_run_counts"]),
        vehicles_cdf=cdf(raw["vehicles"]["no_of_vehicles_counts"]),
        vehicle_type_cdf=cdf(raw["vehicles"]["vehicle_type_counts"]),
        dca_codes=codes,
        dca_cdf=dca_cdf,
        dca_group=groups,
        dark_cdf=cdf(raw["light"]["dark_counts"]),
        extra_pedestrians_cdf=cdf(raw["people"]["extra_pedestrians"]),
        intercept=float(label["intercept"]),
        coef={name: np.asarray(label["coef"][name], dtype=float) for name in FACTORS},
    )


@lru_cache(maxsize=1)
def load_tables() -> Tables:
    """The packaged fitted tables (read once per process)."""
    text = resources.files("crashed.synthetic").joinpath("fitted.json").read_text("utf-8")
    return from_dict(json.loads(text))
