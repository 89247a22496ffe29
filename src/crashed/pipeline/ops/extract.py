"""extract: select the training and validation windows into tables and export them to the lake."""

from __future__ import annotations

from datetime import date

from crashed.core.features import DATE, LABEL
from crashed.core.windows import parse_run_date, resolve_windows
from crashed.errors import InputError
from crashed.pipeline.contracts import ExtractInput, ExtractOutput, WindowExport
from crashed.pipeline.ops.context import OpContext

SOURCE_TABLE = "crashes_raw"
WINDOW_SQL = (
    f"SELECT * FROM {SOURCE_TABLE} WHERE {DATE} >= @start AND {DATE} <= @end ORDER BY {DATE}"
)
COUNT_SQL = (
    "SELECT COUNT(*) AS n_rows, "
    f"SUM(CASE WHEN {LABEL} THEN 1 ELSE 0 END) AS positives FROM {{table}}"
)


def extract(ctx: OpContext, inp: ExtractInput) -> ExtractOutput:
    """Resolve the windows, materialise both as warehouse tables and Parquet files in the lake."""
    windows = resolve_windows(
        parse_run_date(inp.run_date),
        inp.train_start,
        inp.train_end,
        inp.validation_start,
        inp.validation_end,
    )
    warehouse = ctx.ports.warehouse
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
    bounds = {
        "train": (windows.train_start, windows.train_end),
        "validation": (windows.validation_start, windows.validation_end),
    }
    exported = {
        part: _export(ctx, part, start, end, has_label=LABEL in columns)
        for part, (start, end) in bounds.items()
    }
    return ExtractOutput(source_table=SOURCE_TABLE, **exported)


def _export(ctx: OpContext, part: str, start: date, end: date, has_label: bool) -> WindowExport:
    warehouse = ctx.ports.warehouse
    table = f"{part}_window"
    with ctx.step(f"select {part} window {start} .. {end} into {table}"):
        rows = warehouse.select_into(table, WINDOW_SQL, {"start": start, "end": end})
    if rows == 0:
        raise InputError(
            f"the {part} window {start} .. {end} has no rows in {SOURCE_TABLE}; set "
            "train_start/train_end/validation_start/validation_end to dates the data covers"
        )
    positives = 0
    if has_label:
        counts = warehouse.query(COUNT_SQL.format(table=table))
        positives = int(counts.iloc[0]["positives"] or 0)
    uri = ctx.run_uri(f"{part}.parquet")
    with ctx.step(f"export {table} ({rows} rows, {positives} positive) to {uri}"):
        warehouse.export(table, uri)
    return WindowExport(
        uri=uri,
        table=table,
        start=start.isoformat(),
        end=end.isoformat(),
        rows=rows,
        positives=positives,
    )
