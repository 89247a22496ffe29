"""The two model-shaped fits behind ``fitted.json``: light windows and label coefficients.

Both use only the training months (the frame :func:`crashed.synthetic.fit.read_training_rows`
returns); see :mod:`crashed.synthetic.fit`.

* **Light**: the dusk/dawn windows around sunrise and sunset and the clock noise, grid-searched
  so the sun model, applied to the real crashes' own dates, times and places, reproduces their
  recorded day / dusk-dawn / dark shares per hour and half-year (mean total-variation distance).
* **Label**: ``logit P(alcohol) = intercept + one coefficient per factor level``, raked
  (iterative proportional fitting on the logit scale) on simulated crashes of the training
  months until the synthetic positive rate of every level matches the real one, shrunk towards
  the overall rate with 20 pseudo-crashes (hourly rates then smoothed 1-2-1 over neighbouring
  hours). ``unlicensed`` and ``dca_group`` are not in the 2018 file: their coefficients are
  the fixed assumptions below (2015 sample odds ratio for unlicensed ~4 on 2 of 14).
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pandas as pd

from crashed.synthetic.draws import party_night
from crashed.synthetic.fit import TRAIN_END, TRAIN_START
from crashed.synthetic.light import sun_phase
from crashed.synthetic.simulate import simulate
from crashed.synthetic.tables import FACTORS, from_dict

LEVELS = {
    "hour": 24, "weekday": 7, "party_night": 2, "accident_type": 9, "vehicles": 3,
    "young_driver": 3, "male_majority": 2, "speed": 13, "light": 4, "heavy_vehicle": 2,
    "motorcycle": 2, "old_driver": 2, "severity": 3, "rural": 2, "hit_run": 3,
    "unlicensed": 2, "dca_group": 4,
}  # fmt: skip
#: Assumed, not fitted: other / loss of control / head on / low-risk DCA families; unlicensed.
FIXED_COEF = {"unlicensed": [0.0, 1.2], "dca_group": [0.0, 0.3, 0.3, -0.4]}
PSEUDO_CRASHES = 20
SIMULATED_ROWS = 400_000
_REAL_LIGHT = {"Day": 0, "Dusk/Dawn": 1, "Dark": 2, "Unk.": 3}
_PHASE = {"Day": 0, "Dusk/Dawn": 1, "Dark": 2}


def fit_light(f: pd.DataFrame, seed: int = 0) -> dict[str, Any]:
    """Dusk/dawn windows and clock noise (minutes), and the share of unknown light."""
    known = f["light_condition"].isin(list(_REAL_LIGHT))
    g = f[f["light_condition"].isin(list(_PHASE)) & f["latitude"].notna()]
    real = g["light_condition"].map(_PHASE).to_numpy()
    days = g["day"].to_numpy().astype("datetime64[D]")
    minute = (g["hour"] * 60 + g["minute"]).to_numpy()
    cell = (g["hour"] * 2 + (g["day"].dt.month > 6)).to_numpy()
    counts = np.bincount(cell, minlength=48)
    used = counts >= 30
    real_share = _shares(cell, real, counts)
    best: tuple[float, tuple[float, float, float]] = (np.inf, (0.0, 0.0, 0.0))
    for dawn, dusk, fuzz in itertools.product(
        range(-70, -5, 5), range(-50, 0, 5), (10, 15, 20, 25, 30)
    ):
        rng = np.random.default_rng(seed)
        phase = sun_phase(
            rng,
            days,
            minute,
            g["latitude"].to_numpy(),
            g["longitude"].to_numpy(),
            (dawn, 0.0),
            (dusk, 0.0),
            fuzz,
        )
        tv = 0.5 * np.abs(_shares(cell, phase, counts) - real_share).sum(axis=1)
        best = min(best, (float(tv[used].mean()), (float(dawn), float(dusk), float(fuzz))))
    tv, (dawn, dusk, fuzz) = best
    return {
        "unknown_share": round(float((f.loc[known, "light_condition"] == "Unk.").mean()), 4),
        "dawn_window": [dawn, 0.0],
        "dusk_window": [dusk, 0.0],
        "fuzz_minutes": fuzz,
        "fit_mean_tv": round(tv, 4),
    }


def _shares(cell: np.ndarray, phase: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Share of each phase (columns) per cell (rows)."""
    out = np.stack([np.bincount(cell, phase == k, minlength=48) for k in range(3)], axis=1)
    return out / np.maximum(counts, 1)[:, None]


def real_levels(f: pd.DataFrame) -> dict[str, np.ndarray]:
    """The label model's factor levels of real crashes; -1 where the real file has no value."""
    hour, wd = f["hour"].to_numpy(), f["wd"].to_numpy()
    rural = np.where(f["region_name"] == "", -1, (~f["metro"]).astype(int))
    return {
        "hour": hour,
        "weekday": wd,
        "party_night": party_night(wd, hour).astype(int),
        "accident_type": f["accident_type_i"].to_numpy(),
        "vehicles": np.minimum(f["no_of_vehicles"].clip(lower=1).to_numpy(), 3) - 1,
        "young_driver": np.minimum(f["young_driver"].to_numpy(), 2),
        "male_majority": (f["males"] > f["females"]).astype(int).to_numpy(),
        "speed": f["speed_zone_i"].to_numpy(),
        "light": f["light_condition"].map(_REAL_LIGHT).fillna(-1).astype(int).to_numpy(),
        "heavy_vehicle": (f["heavyvehicle"] > 0).astype(int).to_numpy(),
        "motorcycle": (f["motorcycle"] > 0).astype(int).to_numpy(),
        "old_driver": (f["old_driver"] > 0).astype(int).to_numpy(),
        "severity": f["severity_i"].to_numpy(),
        "rural": rural,
        "hit_run": f["hit_run_flag_i"].to_numpy(),
    }


def rates(levels: dict[str, np.ndarray], y: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(crashes, positives) per level of each factor, levels of -1 left out."""
    out = {}
    for name, level in levels.items():
        ok = level >= 0
        n = np.bincount(level[ok], minlength=LEVELS[name]).astype(float)
        out[name] = (n, np.bincount(level[ok], y[ok], minlength=LEVELS[name]))
    return out


def targets(f: pd.DataFrame) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Shrunk real positive rate and crash count per level (hour smoothed 1-2-1)."""
    y = f["y"].to_numpy().astype(float)
    overall = y.mean()
    out, counts = {}, {}
    for name, (n, pos) in rates(real_levels(f), y).items():
        rate = (pos + PSEUDO_CRASHES * overall) / (n + PSEUDO_CRASHES)
        if name == "hour":
            rate = (np.roll(rate, 1) + 2 * rate + np.roll(rate, -1)) / 4
        out[name], counts[name] = rate, n
    return out, counts


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def fit_label(f: pd.DataFrame, doc: dict[str, Any], sweeps: int = 80) -> dict[str, Any]:
    """Intercept and coefficients raked on simulated training-month crashes (see module)."""
    target, counts = targets(f)
    coef = {name: np.zeros(k) for name, k in LEVELS.items()}
    coef |= {name: np.asarray(v) for name, v in FIXED_COEF.items()}
    intercept = float(_logit(np.array([f["y"].mean()]))[0])
    label = {"intercept": intercept, "coef": {k: v.tolist() for k, v in coef.items()}}
    tables = from_dict({**doc, "label": label})
    _, levels = simulate(np.random.default_rng(1), tables, SIMULATED_ROWS, TRAIN_START, TRAIN_END)
    z = intercept + sum(coef[name][levels[name]] for name in FACTORS)
    for _ in range(sweeps):
        for name in target:
            p = 1.0 / (1.0 + np.exp(-z))
            n = np.bincount(levels[name], minlength=LEVELS[name])
            synthetic = np.bincount(levels[name], p, minlength=LEVELS[name]) / np.maximum(n, 1)
            delta = np.where(n > 0, _logit(target[name]) - _logit(synthetic), 0.0)
            coef[name] += delta
            z += delta[levels[name]]
    for name in target:  # level 0 is the reference: its coefficient moves into the intercept
        intercept += coef[name][0]
        coef[name] -= coef[name][0]
    p = 1.0 / (1.0 + np.exp(-z))
    worst = 0.0
    for name in target:
        n = np.bincount(levels[name], minlength=LEVELS[name])
        synthetic = np.bincount(levels[name], p, minlength=LEVELS[name]) / np.maximum(n, 1)
        gap = np.abs(_logit(target[name]) - _logit(synthetic))[n > 0]
        worst = max(worst, float(gap.max()))
    return {
        "intercept": round(intercept, 3),
        "coef": {k: [round(float(x), 3) for x in v] for k, v in coef.items()},
        "targets": {k: [round(float(x), 4) for x in v] for k, v in target.items()},
        "real_crashes": {k: v.astype(int).tolist() for k, v in counts.items()},
        "fit_max_logit_gap": round(worst, 4),
    }
