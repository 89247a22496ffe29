"""The model's raw features: the 20 columns of the original demo, by kind."""

from __future__ import annotations

LABEL = "alcohol_related"
DATE = "accident_date"

COUNT_FEATURES: tuple[str, ...] = (
    "inj_or_fatal",
    "fatality",
    "males",
    "females",
    "driver",
    "pedestrian",
    "old_driver",
    "young_driver",
    "unlicencsed",  # sic: the VicRoads column name
    "heavyvehicle",
    "passengervehicle",
    "motorcycle",
)
CATEGORY_FEATURES: tuple[str, ...] = (
    "accident_type",
    "day_of_week",
    "dca_code",
    "hit_run_flag",
    "light_condition",
    "road_geometry",
    "speed_zone",
)
TIME_FEATURE = "accident_time"

RAW_FEATURES: tuple[str, ...] = (*COUNT_FEATURES, TIME_FEATURE, *CATEGORY_FEATURES)
"""All 20 raw model inputs, in a stable order."""

REQUIRED_COLUMNS: tuple[str, ...] = (DATE, LABEL)
SEGMENT_FEATURES: tuple[str, ...] = ("day_of_week", "light_condition")
"""Features the evaluation reports per-segment metrics for."""
