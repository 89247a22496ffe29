"""Feature distributions (``distributions.json``) and drift between two of them."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from crashed.core.features import CATEGORY_FEATURES, COUNT_FEATURES, LABEL, TIME_FEATURE

DISTRIBUTIONS_VERSION = 1
PSI_WARN = 0.1
PSI_ALERT = 0.25
COUNT_BINS = 11


def analyse(frame: pd.DataFrame) -> dict[str, Any]:
    """Vocabularies with counts, numeric summaries and the hour-of-day histogram."""
    categorical: dict[str, Any] = {}
    for feature in CATEGORY_FEATURES:
        values = frame[feature] if feature in frame else pd.Series([], dtype="string")
        values = values.astype("string").str.strip()
        counts = values.value_counts(dropna=True)
        categorical[feature] = {
            "counts": {str(k): int(v) for k, v in counts.items()},
            "nulls": int(values.isna().sum()) if feature in frame else len(frame),
        }
    numeric: dict[str, Any] = {}
    for feature in COUNT_FEATURES:
        values = (
            pd.to_numeric(frame[feature], errors="coerce").astype("float64")
            if feature in frame
            else pd.Series(np.nan, index=frame.index)
        )
        present = values.dropna()
        numeric[feature] = _summary(present) | {
            "nulls": int(values.isna().sum()),
            "histogram": {"counts": _count_histogram(present)},
        }
    hours = _hours(frame)
    histogram = np.bincount(hours[~np.isnan(hours)].astype(int), minlength=24)[:24]
    label = frame[LABEL].astype(bool) if LABEL in frame else pd.Series([], dtype=bool)
    return {
        "distributions_version": DISTRIBUTIONS_VERSION,
        "rows": len(frame),
        "positive_rate": float(label.mean()) if len(label) else None,
        "categorical": categorical,
        "numeric": numeric,
        "time": {
            "hour_counts": [int(c) for c in histogram],
            "hour_mode": int(np.argmax(histogram)) if histogram.sum() else None,
            "nulls": int(np.isnan(hours).sum()),
        },
    }


def _summary(values: pd.Series) -> dict[str, float | int | None]:
    if values.empty:
        keys = ("mean", "std", "min", "p25", "p50", "p75", "max")
        return {"count": 0, **dict.fromkeys(keys)}
    q = values.quantile([0.25, 0.5, 0.75])
    return {
        "count": len(values),
        "mean": float(values.mean()),
        "std": float(values.std(ddof=0)),
        "min": float(values.min()),
        "p25": float(q.loc[0.25]),
        "p50": float(q.loc[0.5]),
        "p75": float(q.loc[0.75]),
        "max": float(values.max()),
    }


def _count_histogram(values: pd.Series) -> list[int]:
    """Counts of 0 … ``COUNT_BINS - 2`` and an open-ended last bin (the monitor's PSI of counts)."""
    clipped = values.clip(upper=COUNT_BINS - 1).astype(int).to_numpy()
    return [int(c) for c in np.bincount(clipped, minlength=COUNT_BINS)[:COUNT_BINS]]


def _hours(frame: pd.DataFrame) -> np.ndarray:
    if TIME_FEATURE not in frame:
        return np.full(len(frame), np.nan)
    hours = frame[TIME_FEATURE].astype("string").str.slice(0, 2)
    return pd.to_numeric(hours, errors="coerce").astype("float64").to_numpy()


def psi(expected: dict[str, int], actual: dict[str, int], floor: float = 1e-4) -> float:
    """Population stability index between two category histograms."""
    keys = set(expected) | set(actual)
    total_e, total_a = sum(expected.values()), sum(actual.values())
    if not total_e or not total_a:
        return 0.0
    value = 0.0
    for key in keys:
        e = max(expected.get(key, 0) / total_e, floor)
        a = max(actual.get(key, 0) / total_a, floor)
        value += (a - e) * math.log(a / e)
    return value


def drift(reference: dict[str, Any], current: dict[str, Any]) -> list[dict[str, Any]]:
    """Per feature: PSI, new values and level (ok / warn / alert) of ``current`` vs ``reference``.

    Covers the category features and the hour of day. Informational: drift never fails a run.
    """
    findings: list[dict[str, Any]] = []
    for feature in CATEGORY_FEATURES:
        ref = reference.get("categorical", {}).get(feature, {}).get("counts", {})
        cur = current.get("categorical", {}).get(feature, {}).get("counts", {})
        if not ref and not cur:
            continue
        findings.append(_finding(feature, ref, cur))
    ref_hours = reference.get("time", {}).get("hour_counts")
    cur_hours = current.get("time", {}).get("hour_counts")
    if ref_hours and cur_hours:
        findings.append(
            _finding(
                "hour",
                {str(h): c for h, c in enumerate(ref_hours)},
                {str(h): c for h, c in enumerate(cur_hours)},
            )
        )
    return findings


def _finding(feature: str, ref: dict[str, int], cur: dict[str, int]) -> dict[str, Any]:
    value = psi(ref, cur)
    level = "alert" if value >= PSI_ALERT else "warn" if value >= PSI_WARN else "ok"
    new = sorted(k for k in cur if k not in ref)
    return {"feature": feature, "psi": round(value, 4), "level": level, "new_values": new[:10]}
