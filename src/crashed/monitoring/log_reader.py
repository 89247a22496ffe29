"""Read the prediction log of one model over a window of days from the lake."""

from __future__ import annotations

import io
from datetime import date

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from crashed.core.prediction_log import COLUMNS, SCHEMA, day_prefix, days
from crashed.ports import Lake


def read_log(
    lake: Lake, lake_root: str, model: str, sha256: str | None, since: date, until: date
) -> pd.DataFrame:
    """Logged predictions of ``model`` (only those served by ``sha256`` when given), oldest
    first. Files that cannot be read as the log's schema are skipped, never fatal."""
    tables: list[pa.Table] = []
    for day in days(since, until):
        for uri in lake.list(day_prefix(lake_root, model, day)):
            if not uri.endswith(".parquet"):
                continue
            try:
                table = pq.read_table(io.BytesIO(lake.get_bytes(uri)))
                tables.append(table.select(list(COLUMNS)).cast(SCHEMA))
            except (pa.ArrowException, KeyError, ValueError):
                continue
    if not tables:
        return SCHEMA.empty_table().to_pandas()
    frame = pa.concat_tables(tables).to_pandas()
    if sha256 is not None:
        frame = frame[frame["model_sha256"] == sha256]
    return frame.sort_values("ts", kind="stable").reset_index(drop=True)
