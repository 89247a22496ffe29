"""Light condition from the sun's position at the crash's place and clock time.

A sunrise/sunset model (solar declination, equation of time, AEST plus Victorian daylight
saving). The dusk/dawn windows and the clock noise are fitted (``light`` in ``fitted.json``)
against the light recorded on the training months; dark is split by street lighting with the
shares of the 2015 full-schema sample, the only file that records that split.
"""

from __future__ import annotations

import numpy as np

from crashed.synthetic.draws import draw_given, weekday
from crashed.synthetic.tables import Tables


def _first_sunday(month_starts: np.ndarray) -> np.ndarray:
    """The first Sunday on or after each ``datetime64[D]`` month start."""
    return month_starts + (6 - weekday(month_starts)) % 7


def daylight_saving(days: np.ndarray) -> np.ndarray:
    """Victorian daylight saving: first Sunday of October to (before) first Sunday of April."""
    years = days.astype("datetime64[Y]")
    uniq, inv = np.unique(years, return_inverse=True)
    months = uniq.astype("datetime64[M]")
    starts = _first_sunday((months + 9).astype("datetime64[D]"))
    ends = _first_sunday((months + 3).astype("datetime64[D]"))
    return (days >= starts[inv]) | (days < ends[inv])


def sun_phase(
    rng: np.random.Generator,
    days: np.ndarray,
    minute_of_day: np.ndarray,
    lat: np.ndarray,
    lon: np.ndarray,
    dawn: tuple[float, float],
    dusk: tuple[float, float],
    fuzz: float,
) -> np.ndarray:
    """0 = day, 1 = dusk/dawn, 2 = dark, with the clock blurred by ``fuzz`` minutes."""
    doy = (days - days.astype("datetime64[Y]").astype("datetime64[D]")).astype("int64") + 1
    decl = np.radians(-23.44) * np.cos(2 * np.pi * (doy + 10) / 365)
    cos_w = np.clip(-np.tan(np.radians(lat)) * np.tan(decl), -1.0, 1.0)
    half_day = np.degrees(np.arccos(cos_w)) * 4.0  # minutes from solar noon to sunset
    b = 2 * np.pi * (doy - 81) / 364
    eot = 9.87 * np.sin(2 * b) - 7.53 * np.cos(b) - 1.5 * np.sin(b)  # equation of time, minutes
    noon = 720.0 + 4.0 * (150.0 - lon) - eot + 60.0 * daylight_saving(days)
    t = minute_of_day + rng.normal(0.0, fuzz, len(days))
    from_rise = t - (noon - half_day)
    from_set = t - (noon + half_day)
    twilight = ((from_rise > dawn[0]) & (from_rise < dawn[1])) | (
        (from_set > dusk[0]) & (from_set < dusk[1])
    )
    day = (from_rise >= dawn[1]) & (from_set <= dusk[0])
    return np.where(twilight, 1, np.where(day, 0, 2))


def light(
    rng: np.random.Generator,
    tables: Tables,
    days: np.ndarray,
    minute_of_day: np.ndarray,
    lat: np.ndarray,
    lon: np.ndarray,
    metro: np.ndarray,
) -> np.ndarray:
    """Index into ``tables.lights`` for each crash."""
    fit = tables.raw["light"]
    phase = sun_phase(
        rng, days, minute_of_day, lat, lon,
        tuple(fit["dawn_window"]), tuple(fit["dusk_window"]), float(fit["fuzz_minutes"]),
    )  # fmt: skip
    dark_kind = 2 + draw_given(rng, tables.dark_cdf, metro.astype(np.int64))
    out = np.where(phase == 2, dark_kind, phase)
    out[rng.random(len(days)) < float(fit["unknown_share"])] = len(tables.lights) - 1
    return out
