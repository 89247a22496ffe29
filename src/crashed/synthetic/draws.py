"""Vectorised inverse-CDF draws and calendar helpers shared by the simulation."""

from __future__ import annotations

import numpy as np


def draw(rng: np.random.Generator, cdf: np.ndarray, n: int) -> np.ndarray:
    """``n`` inverse-CDF draws from one distribution."""
    idx = np.searchsorted(cdf, rng.random(n), side="right")
    return np.minimum(idx, len(cdf) - 1)


def draw_given(rng: np.random.Generator, cdf: np.ndarray, cond: np.ndarray) -> np.ndarray:
    """One inverse-CDF draw per row from the distribution ``cdf[cond[i]]``."""
    k = cdf.shape[1]
    flat = (cdf + np.arange(cdf.shape[0])[:, None]).ravel()  # row r lives in (r, r + 1]
    idx = np.searchsorted(flat, cond + rng.random(len(cond)), side="right") - cond * k
    return np.minimum(idx, k - 1)


def weekday(days: np.ndarray) -> np.ndarray:
    """Monday = 0 .. Sunday = 6 for ``datetime64[D]`` values (1970-01-01 was a Thursday)."""
    return (days.astype("int64") + 3) % 7


def time_band(hour: np.ndarray) -> np.ndarray:
    """0 = day (06-17 h), 1 = evening (18-21 h), 2 = night (22-05 h)."""
    return np.where((hour >= 22) | (hour <= 5), 2, np.where(hour >= 18, 1, 0))


def party_night(wd: np.ndarray, hour: np.ndarray) -> np.ndarray:
    """Fri/Sat 20:00-24:00 and Sat/Sun 00:00-06:00."""
    return ((wd >= 4) & (wd <= 5) & (hour >= 20)) | ((wd >= 5) & (hour < 6))
