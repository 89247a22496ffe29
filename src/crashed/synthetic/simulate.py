"""Draw every column but the label, as a chain of conditional draws from the fitted tables.

date -> hour -> place -> speed zone -> accident type -> geometry -> vehicles -> people ->
injuries -> light. Returns the columns and the factor levels the label model reads.
"""

from __future__ import annotations

from datetime import date

import numpy as np

from crashed.synthetic.draws import draw, draw_given, party_night, time_band, weekday
from crashed.synthetic.light import light
from crashed.synthetic.tables import LIGHT_LEVEL, PED, SPEED_BAND, VEHICLE, VIC_BOX, Tables, cdf

Columns = dict[str, np.ndarray]


def _when(rng: np.random.Generator, t: Tables, n: int, start: date, end: date) -> Columns:
    """Day weighted by month and weekday, hour by weekday group, heaped minutes; sorted."""
    all_days = np.arange(np.datetime64(start, "D"), np.datetime64(end, "D") + 1)
    wd_all = weekday(all_days)
    month_all = all_days.astype("datetime64[M]").astype("int64") % 12
    day_idx = draw(rng, cdf(t.day_rate_by_month[month_all] * t.weekday_counts[wd_all]), n)
    wd = wd_all[day_idx]
    hour_group = np.select([wd <= 3, wd == 4, wd == 5], [0, 1, 2], 3)
    hour = draw_given(rng, t.hour_cdf, hour_group)
    minute = draw(rng, t.minute_cdf, n)
    key = np.sort(day_idx * 1440 + hour * 60 + minute)
    day_idx, tod = key // 1440, key % 1440
    return {"days": all_days[day_idx], "weekday": wd_all[day_idx], "minute_of_day": tod}


def _where(rng: np.random.Generator, t: Tables, n: int) -> Columns:
    """LGA by crash count, jittered around its median point, kept inside Victoria."""
    lga = draw(rng, cdf(t.lga[:, 1]), n)
    region = t.lga[lga, 0].astype(np.int64)
    jitter = np.clip(rng.standard_normal((n, 2)), -2.5, 2.5)
    lat = np.clip(t.lga[lga, 2] + t.lga[lga, 4] * jitter[:, 0], *VIC_BOX[:2])
    lon = np.clip(t.lga[lga, 3] + t.lga[lga, 5] * jitter[:, 1], *VIC_BOX[2:])
    return {"lga": lga, "region": region, "lat": lat, "lon": lon}


def _vehicles(rng: np.random.Generator, t: Tables, n: int, atype: np.ndarray) -> Columns:
    """The first vehicle's type depends on the accident type; the others (multi-vehicle
    crashes) follow the mix of "Collision with vehicle". Some of those others were parked."""
    nv = draw_given(rng, t.vehicles_cdf, atype) + 1
    nv = np.minimum(nv + np.where(nv == 6, rng.geometric(0.6, n) - 1, 0), 9)
    vehicles = np.zeros((n, 5), dtype=np.int64)
    parked = np.zeros(n, dtype=np.int64)
    parked_share = float(t.raw["assumptions"]["parked_share"])
    rows = np.arange(n)
    for slot in range(int(nv.max(initial=0))):
        cond = atype if slot == 0 else np.full(n, VEHICLE)
        kind = draw_given(rng, t.vehicle_type_cdf, cond)
        active = nv > slot
        vehicles[rows[active], kind[active]] += 1
        if slot:
            parked += active & (kind != 1) & (kind != 4) & (rng.random(n) < parked_share)
    car, moto, heavy, public, other = vehicles.T
    return {"nv": nv, "car": car, "moto": moto, "heavy": heavy, "public": public,
            "other": other, "parked": parked}  # fmt: skip


def _people(
    rng: np.random.Generator, t: Tables, n: int, atype: np.ndarray, band: np.ndarray, v: Columns
) -> Columns:
    """One operator per vehicle (none if parked), passengers, pedestrians, unknown roles."""
    p = t.raw["people"]
    carish = v["car"] + v["heavy"] + v["public"]
    share = t.num("vehicles", "bicycle_share_of_other")
    bicyclist = rng.binomial(v["other"], share[atype])
    other_driver = float(t.raw["assumptions"]["other_vehicle_driver_share"])
    driver = carish - v["parked"] + rng.binomial(v["other"] - bicyclist, other_driver)
    motorist = rng.binomial(v["moto"], 0.995)
    pillion = rng.binomial(motorist, float(p["pillion_per_motorist"]))
    mean = t.num("people", "passenger_mean")[band]
    disp = float(p["passenger_dispersion"]) * np.maximum(carish, 1)
    passenger = rng.negative_binomial(disp, disp / (disp + mean * np.maximum(carish, 1)))
    passenger = np.where(carish > 0, passenger, 0)
    has_ped = rng.random(n) < t.num("people", "pedestrian_share")[atype]
    extra_ped = draw(rng, t.extra_pedestrians_cdf, n)
    pedestrian = has_ped * (1 + np.where(atype == PED, extra_ped, 0))
    old_pedestrian = rng.binomial(pedestrian, float(p["old_pedestrian_share"]))
    unknown = (rng.random(n) < float(p["unknown_role_share"])) * rng.geometric(
        float(p["unknown_role_geometric"]), n
    )
    nobody = (driver + passenger + pedestrian + bicyclist + motorist + pillion) == 0
    bicyclist = bicyclist + (nobody & (v["other"] > 0))
    motorist = motorist + (nobody & (v["other"] == 0) & (v["moto"] > 0))
    driver = driver + (nobody & (v["other"] == 0) & (v["moto"] == 0))
    roles = {"driver": driver, "motorist": motorist, "passenger": passenger,
             "pedestrian": pedestrian, "bicyclist": bicyclist, "pillion": pillion,
             "unknown": unknown}  # fmt: skip
    males = np.zeros(n, dtype=np.int64)
    females = np.zeros(n, dtype=np.int64)
    for role, count in roles.items():
        sex = t.sex_shares(role)[band]  # (n, 2): male, female
        m = rng.binomial(count, sex[:, 0])
        males += m
        females += rng.binomial(count - m, sex[:, 1] / (1.0 - sex[:, 0]))
    operators = driver + motorist
    p_young = t.num("people", "young_share")[band]
    young = rng.binomial(operators, p_young)
    old = rng.binomial(operators - young, t.num("people", "old_share")[band] / (1 - p_young))
    young_factor = float(t.raw["assumptions"]["unlicensed_young_factor"])
    p_unlicensed = float(p["unlicensed_share"]) * np.where(young > 0, young_factor, 1.0)
    unlicensed = ((operators > 0) & (rng.random(n) < p_unlicensed)).astype(np.int64)
    total = sum(roles.values())
    return {**roles, "total_persons": total, "old_pedestrian": old_pedestrian, "males": males,
            "females": females, "young_driver": young, "old_driver": old,
            "unlicencsed": unlicensed}  # fmt: skip


def _injuries(
    rng: np.random.Generator, t: Tables, n: int, atype: np.ndarray, speed: np.ndarray, total
) -> Columns:
    """At least one injured person; severity is the worst injury."""
    i = t.raw["injuries"]
    injured = 1 + rng.binomial(total - 1, rng.beta(*i["extra_injured_beta"], n))
    sev_base = np.asarray(i["severity_counts"], dtype=float)
    sev_base /= sev_base.sum(axis=1, keepdims=True)
    speed_band = SPEED_BAND[speed]
    p_fatal = sev_base[atype, 0] * t.num("injuries", "fatal_speed_factor")[speed_band]
    p_serious = sev_base[atype, 2] * t.num("injuries", "serious_speed_factor")[speed_band]
    u = rng.random(n)
    severity = np.where(u < p_fatal, 0, np.where(u < p_fatal + p_serious, 2, 1))
    fatal = severity == 0
    extra = rng.random(n) < float(i["extra_fatality"])
    fatality = np.where(fatal, np.minimum(1 + extra, injured), 0)
    serious = np.where(
        fatal,
        rng.binomial(injured - fatality, float(i["serious_in_fatal"])),
        np.where(severity == 2, 1 + rng.binomial(injured - 1, float(i["extra_serious"])), 0),
    )
    return {"severity": severity, "inj_or_fatal": injured, "fatality": fatality,
            "seriousinjury": serious, "otherinjury": injured - fatality - serious,
            "noninjured": total - injured}  # fmt: skip


def simulate(
    rng: np.random.Generator, t: Tables, n: int, start: date, end: date
) -> tuple[Columns, Columns]:
    """Draw every column but the label; return (columns, label-model factor levels)."""
    c = _when(rng, t, n, start, end)
    hour = c["minute_of_day"] // 60
    band = time_band(hour)
    c |= _where(rng, t, n)
    metro = (c["region"] == 1) | (c["region"] == 2)
    speed = draw_given(rng, t.speed_cdf, metro.astype(np.int64))
    atype = draw_given(rng, t.atype_cdf, SPEED_BAND[speed] * 3 + band)
    geometry = draw_given(rng, t.geometry_cdf, atype)
    c |= {
        "speed": speed,
        "atype": atype,
        "geometry": geometry,
        "node": draw_given(rng, t.node_cdf, geometry),
        "hit_run": draw_given(rng, t.hit_run_cdf, atype),
        "dca": draw_given(rng, t.dca_cdf, atype * 2 + t.intersection[geometry]),
    }
    v = _vehicles(rng, t, n, atype)
    c |= {"no_of_vehicles": v["nv"], "heavyvehicle": v["heavy"], "passengervehicle": v["car"],
          "motorcycle": v["moto"], "publicvehicle": v["public"]}  # fmt: skip
    c |= _people(rng, t, n, atype, band, v)
    c |= _injuries(rng, t, n, atype, speed, c["total_persons"])
    c["light"] = light(rng, t, c["days"], c["minute_of_day"], c["lat"], c["lon"], metro)
    levels = {
        "hour": hour,
        "weekday": c["weekday"],
        "party_night": party_night(c["weekday"], hour).astype(np.int64),
        "accident_type": atype,
        "vehicles": np.minimum(v["nv"], 3) - 1,
        "young_driver": np.minimum(c["young_driver"], 2),
        "male_majority": (c["males"] > c["females"]).astype(np.int64),
        "speed": speed,
        "light": LIGHT_LEVEL[c["light"]],
        "heavy_vehicle": (v["heavy"] > 0).astype(np.int64),
        "motorcycle": (v["moto"] > 0).astype(np.int64),
        "old_driver": (c["old_driver"] > 0).astype(np.int64),
        "severity": c["severity"],
        "rural": (~metro).astype(np.int64),
        "hit_run": c["hit_run"],
        "unlicensed": c["unlicencsed"],
        "dca_group": t.dca_group[c["dca"]],
    }
    return c, levels
