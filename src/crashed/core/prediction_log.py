"""The prediction log's shape: one row per served prediction, stored as Parquet in the lake.

Serving writes it (``serving/prediction_log.py``: bounded queue per worker, background flush);
the monitor and the review's offline shadow read it. Files live under
``predictions/<model>/date=YYYY-MM-DD/<worker>-<first-ts>-<seq>.parquet`` (Hive-style
partitions, so BigQuery external tables and DuckDB read them as they are).
"""

from __future__ import annotations

from datetime import date, timedelta

import pyarrow as pa

from crashed.core.features import CATEGORY_FEATURES, COUNT_FEATURES, TIME_FEATURE

PREFIX = "predictions"
SCHEMA_VERSION = 1

SCHEMA = pa.schema(
    [
        pa.field("ts", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("model_name", pa.string(), nullable=False),
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("model_sha256", pa.string(), nullable=False),
        pa.field("client_id", pa.string()),
        pa.field("source", pa.string(), nullable=False),  # "get" | "batch"
        *(pa.field(name, pa.int64()) for name in COUNT_FEATURES),
        pa.field(TIME_FEATURE, pa.string()),
        *(pa.field(name, pa.string()) for name in CATEGORY_FEATURES),
        pa.field("probability", pa.float64(), nullable=False),
        pa.field("decision", pa.int8(), nullable=False),
        pa.field("latency_us", pa.float64(), nullable=False),
    ],
    metadata={"crashed.prediction_log.schema_version": str(SCHEMA_VERSION)},
)
"""Feature columns hold the *resolved* values the model saw (defaults filled in)."""

COLUMNS: tuple[str, ...] = tuple(SCHEMA.names)


def day_prefix(lake_root: str, model: str, day: date) -> str:
    """``<lake_root>/predictions/<model>/date=YYYY-MM-DD/``."""
    return f"{lake_root.rstrip('/')}/{PREFIX}/{model}/date={day.isoformat()}/"


def days(since: date, until: date) -> list[date]:
    """Every day from ``since`` to ``until`` inclusive."""
    return [since + timedelta(days=i) for i in range((until - since).days + 1)]
