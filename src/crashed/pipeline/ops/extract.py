"""extract: select the training and validation windows into tables and export them to the lake."""

from __future__ import annotations

from typing import Any

from crashed.core.features import DATE, LABEL
from crashed.core.windows import Windows, parse_run_date, resolve_windows
from crashed.errors import InputError
from crashed.pipeline.ops.context import OpContext

SOURCE_TABLE = "crashes_raw"
WINDOW_SQL = (
    f"SELECT * FROM {SOURCE_TABLE} WHERE {DATE} >= @start AND {DATE} <= @end ORDER BY {DATE}"
)
COUNT_SQL = (
    "SELECT COUNT(*) AS n_rows, "
    f"SUM(CASE WHEN {LABEL} THEN 1 ELSE 0 END) AS positives FROM {{table}}"
)


def extract(
    ctx: OpContext,
    train_start: str = "",
    train_end: str = "",
    validation_start: str = "",
    validation_end: str = "",
) -> dict[str, Any]:
    """Resolve the windows, materialise both as warehouse tables and Parquet files in the lake."""
    windows = resolve_windows(
        parse_run_date(ctx.run_date), train_start, train_end, validation_start, validation_end
    )
    warehouse = ctx.adapters.warehouse
    if not warehouse.table_exists(SOURCE_TABLE):
        raise InputError(
            f"warehouse table {SOURCE_TABLE} does not exist: load data first "
            "(`crashed data load --csv PATH`)"
        )
    columns = warehouse.columns(SOURCE_TABLE)
    if DATE not in columns:
        raise InputError(
            f"warehouse table {SOURCE_TABLE} has no {DATE} column "
            f"(found: {', '.join(list(columns)[:15])})"
        )
    out: dict[str, Any] = {"windows": windows.as_dict(), "source_table": SOURCE_TABLE}
    for part, (start, end) in _bounds(windows).items():
        table = f"{part}_window"
        with ctx.step(f"select {part} window {start} .. {end} into {table}"):
            rows = warehouse.select_into(table, WINDOW_SQL, {"start": start, "end": end})
        positives = 0
        if LABEL in columns and rows:
            counts = warehouse.query(COUNT_SQL.format(table=table))
            positives = int(counts.iloc[0]["positives"] or 0)
        uri = ctx.run_uri(f"{part}.parquet")
        with ctx.step(f"export {table} ({rows} rows, {positives} positive) to {uri}"):
            warehouse.export(table, uri)
        out[part] = {
            "uri": uri,
            "table": table,
            "start": start.isoformat(),
            "end": end.isoformat(),
            "rows": rows,
            "positives": positives,
        }
        if rows == 0:
            raise InputError(
                f"the {part} window {start} .. {end} has no rows in "
                f"{SOURCE_TABLE}; set train_start/train_end/validation_start/"
                "validation_end to dates the data covers"
            )
    return out


def _bounds(windows: Windows) -> dict[str, tuple[Any, Any]]:
    return {
        "train": (windows.train_start, windows.train_end),
        "validation": (windows.validation_start, windows.validation_end),
    }
