"""The feature encoder shared by training (whole frames) and serving (one request).

Columns, in order:
- the 12 count features as numbers (NaN when unknown);
- ``hour`` (0–23) from ``accident_time`` instead of one-hot of exact times;
- ``speed_kmh`` parsed from ``speed_zone`` (``60 km/hr`` → 60);
- one column per frequent category value of each category feature, plus ``<feature>=__other__``
  for values seen in training too rarely to earn a column of their own.

Category values match case-insensitively (``friday`` = ``Friday``). The batch path maps unseen
values to ``__other__``; the request path rejects them (:class:`FeatureError` lists the allowed
values), because a client typo must not silently become a prediction.

The state is plain JSON (stored inside the model file), never pickle.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from crashed.core.features import CATEGORY_FEATURES, COUNT_FEATURES, TIME_FEATURE
from crashed.core.values import (
    MAX_COUNT,
    InvalidValue,
    clean,
    parse_count,
    parse_hours,
    parse_speed,
    parse_speeds,
    parse_time,
)

ENCODER_VERSION = 1
OTHER = "__other__"
__all__ = ["MAX_COUNT", "Encoder", "FeatureError", "hour_of", "speed_kmh"]


class FeatureError(ValueError):
    """A request value that cannot be encoded; ``field`` names the offending feature."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _key(value: object) -> str:
    return str(value).strip().casefold()


def speed_kmh(value: str | None) -> float:
    """``'60 km/hr'`` → 60.0; anything without a number in km/h → NaN (:func:`parse_speed`)."""
    speed = parse_speed(value)
    return math.nan if speed is None else float(speed)


def hour_of(value: str | None) -> float:
    """Hour of day from an accident time in any accepted format, NaN when absent/invalid."""
    try:
        normalised = parse_time(value)
    except InvalidValue:
        return math.nan
    return float(normalised[:2]) if normalised else math.nan


@dataclass(frozen=True)
class Encoder:
    """Maps raw crash features to a ``float32`` model row. Build with :meth:`fit`."""

    columns: tuple[str, ...]
    vocabularies: dict[str, tuple[str, ...]]
    """Per category feature: every value seen in training (its canonical spelling)."""
    category_columns: dict[str, dict[str, int]]
    """Per category feature: casefolded value → column index (rare values → ``__other__``)."""
    defaults: dict[str, str | None]
    """Value used for a feature a request leaves out (training mode/median, None = unknown)."""
    other_columns: dict[str, int | None]
    """Per category feature: the ``__other__`` column index, None if every value has its own."""

    # ---- construction ------------------------------------------------------------------
    @classmethod
    def fit(cls, distributions: Mapping[str, Any], min_count: int = 5) -> Encoder:
        """Build from ``distributions.json`` (see :mod:`crashed.core.distributions`)."""
        columns: list[str] = [*COUNT_FEATURES, "hour", "speed_kmh"]
        vocabularies: dict[str, tuple[str, ...]] = {}
        category_columns: dict[str, dict[str, int]] = {}
        defaults: dict[str, str | None] = {}
        other_columns: dict[str, int | None] = {}
        categorical = distributions["categorical"]
        for feature in CATEGORY_FEATURES:
            counts = _merge_case_variants(categorical.get(feature, {}).get("counts", {}))
            ordered = sorted(counts, key=lambda v: (-counts[v], v))
            vocabularies[feature] = tuple(ordered)
            mapping: dict[str, int] = {}
            other_index: int | None = None
            for value in ordered:
                if counts[value] >= min_count:
                    mapping[_key(value)] = len(columns)
                    columns.append(f"{feature}={value}")
                else:
                    if other_index is None:
                        other_index = len(columns)
                        columns.append(f"{feature}={OTHER}")
                    mapping[_key(value)] = other_index
            category_columns[feature] = mapping
            other_columns[feature] = other_index
            defaults[feature] = ordered[0] if ordered else None
        numeric = distributions["numeric"]
        for feature in COUNT_FEATURES:
            median = numeric.get(feature, {}).get("p50")
            defaults[feature] = None if median is None else str(round(median))
        hour_mode = distributions.get("time", {}).get("hour_mode")
        defaults[TIME_FEATURE] = None if hour_mode is None else f"{int(hour_mode):02d}:00:00"
        return cls(tuple(columns), vocabularies, category_columns, defaults, other_columns)

    # ---- serialisation -----------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "encoder_version": ENCODER_VERSION,
            "columns": list(self.columns),
            "vocabularies": {k: list(v) for k, v in self.vocabularies.items()},
            "category_columns": self.category_columns,
            "defaults": self.defaults,
            "other_columns": self.other_columns,
        }

    @classmethod
    def from_json(cls, state: Mapping[str, Any]) -> Encoder:
        if state.get("encoder_version") != ENCODER_VERSION:
            raise ValueError(
                f"encoder_version {state.get('encoder_version')!r} is not {ENCODER_VERSION}"
            )
        return cls(
            columns=tuple(state["columns"]),
            vocabularies={k: tuple(v) for k, v in state["vocabularies"].items()},
            category_columns={
                k: {str(v): int(i) for v, i in m.items()}
                for k, m in state["category_columns"].items()
            },
            defaults=dict(state["defaults"]),
            other_columns={
                k: (None if v is None else int(v)) for k, v in state["other_columns"].items()
            },
        )

    @property
    def features(self) -> tuple[str, ...]:
        return (*COUNT_FEATURES, TIME_FEATURE, *CATEGORY_FEATURES)

    @property
    def width(self) -> int:
        return len(self.columns)

    # ---- batch path (training, evaluation) ----------------------------------------------
    def encode_frame(self, frame: pd.DataFrame) -> np.ndarray:
        """Encode every row of a normalised crash frame; unseen categories → ``__other__``."""
        n = len(frame)
        matrix = np.zeros((n, self.width), dtype=np.float32)
        for index, feature in enumerate(COUNT_FEATURES):
            if feature in frame:
                values = pd.to_numeric(frame[feature], errors="coerce")
                matrix[:, index] = values.astype("float64").fillna(np.nan).to_numpy(np.float32)
            else:
                matrix[:, index] = np.nan
        matrix[:, len(COUNT_FEATURES)] = self._hours(frame)
        matrix[:, len(COUNT_FEATURES) + 1] = self._speeds(frame)
        rows = np.arange(n)
        for feature in CATEGORY_FEATURES:
            if feature not in frame:
                continue
            mapping = self.category_columns[feature]
            keys = frame[feature].astype("string").str.strip().str.casefold()
            codes = keys.map(mapping)
            unseen = keys.notna() & codes.isna()
            other = self.other_columns.get(feature)
            if unseen.any() and other is not None:
                codes = codes.mask(unseen, other)
            known = codes.notna().to_numpy()
            matrix[rows[known], codes[known].astype(int).to_numpy()] = 1.0
        return matrix

    @staticmethod
    def _hours(frame: pd.DataFrame) -> np.ndarray:
        if TIME_FEATURE not in frame:
            return np.full(len(frame), np.nan, dtype=np.float32)
        return parse_hours(frame[TIME_FEATURE]).astype(np.float32)

    @staticmethod
    def _speeds(frame: pd.DataFrame) -> np.ndarray:
        if "speed_zone" not in frame:
            return np.full(len(frame), np.nan, dtype=np.float32)
        return parse_speeds(frame["speed_zone"]).astype(np.float32)

    # ---- request path (serving) --------------------------------------------------------
    def resolve(self, params: Mapping[str, str]) -> dict[str, str | None]:
        """The feature values a request uses: given values, else the documented defaults.

        An explicitly empty value (``dca_code=``) means unknown; surrounding ASCII whitespace
        is ignored, as the CSV loader ignores it (:func:`crashed.core.values.clean`).
        """
        return {f: clean(params[f]) if f in params else self.defaults.get(f) for f in self.features}

    def encode_one(
        self, values: Mapping[str, str | None], out: np.ndarray | None = None
    ) -> np.ndarray:
        """Encode one crash into ``out`` (a fresh row when None); :class:`FeatureError` on bad
        values. Same rules as :meth:`encode_frame` except that unseen categories are errors."""
        row = np.zeros(self.width, dtype=np.float32) if out is None else out
        if out is not None:
            row.fill(0.0)
        for index, feature in enumerate(COUNT_FEATURES):
            row[index] = _count(feature, values.get(feature))
        try:
            time = parse_time(values.get(TIME_FEATURE))
        except InvalidValue as error:
            raise FeatureError(TIME_FEATURE, str(error)) from None
        row[len(COUNT_FEATURES)] = math.nan if time is None else float(time[:2])
        row[len(COUNT_FEATURES) + 1] = speed_kmh(values.get("speed_zone"))
        for feature in CATEGORY_FEATURES:
            value = values.get(feature)
            if value is None:
                continue
            column = self.category_columns[feature].get(_key(value))
            if column is None:
                allowed = self.vocabularies[feature]
                shown = ", ".join(allowed[:20]) + (" …" if len(allowed) > 20 else "")
                raise FeatureError(
                    feature,
                    f"value {value!r} was never seen in training; allowed: {shown or 'none'}"
                    " (or leave it empty for unknown)",
                )
            row[column] = 1.0
        return row


def _merge_case_variants(counts: Mapping[str, int]) -> dict[str, int]:
    """Sum counts of spellings that match case-insensitively under the most frequent one."""
    merged: dict[str, list] = {}
    for value, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        key = _key(value)
        if key in merged:
            merged[key][1] += count
        else:
            merged[key] = [value, count]
    return {value: count for value, count in merged.values()}


def _count(feature: str, value: str | None) -> float:
    """One count as the CSV loader reads it (:func:`crashed.core.values.parse_count`)."""
    try:
        number = parse_count(value)
    except InvalidValue as error:
        raise FeatureError(feature, str(error)) from None
    return math.nan if number is None else float(number)
