"""Conversions both warehouse adapters share, so they load, bind and return data alike."""

from __future__ import annotations

import datetime as dt
import numbers
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from crashed.errors import InputError

ParamValue = str | int | float | bool | dt.date | dt.datetime


def param_value(name: str, value: object) -> ParamValue:
    """A plain Python value for query parameter ``@name`` (numpy scalars unwrapped).

    Only str, int, float, bool, date and datetime are accepted: anything else (None, lists,
    objects) is an :class:`InputError` naming the parameter.
    """
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool | str | dt.date):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    raise InputError(
        f"query parameter @{name}: unsupported value {value!r} ({type(value).__name__}); "
        "use str, int, float, bool, date or datetime"
    )


def frame_to_arrow(frame: pd.DataFrame, table: str) -> pa.Table:
    """The frame as an Arrow table with warehouse-neutral types; :class:`InputError` if not.

    Integers widen to int64 and floats to float64; categoricals and all-null columns become
    strings; mixed-type object columns are rejected (never stored as Python reprs).
    """
    if frame.columns.duplicated().any():
        raise InputError(f"cannot load table {table}: duplicate column names")
    try:
        arrow = pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowException, TypeError, ValueError) as error:
        reason = "; ".join(str(arg) for arg in error.args) or type(error).__name__
        raise InputError(f"cannot load table {table}: {reason}") from None
    for index, field in enumerate(arrow.schema):
        kind = field.type
        target = None
        if pa.types.is_dictionary(kind) or pa.types.is_null(kind) or pa.types.is_large_string(kind):
            target = pa.string()
        elif pa.types.is_integer(kind) and kind != pa.int64():
            target = pa.int64()
        elif pa.types.is_floating(kind) and kind != pa.float64():
            target = pa.float64()
        elif not (
            pa.types.is_boolean(kind)
            or pa.types.is_integer(kind)
            or pa.types.is_floating(kind)
            or pa.types.is_string(kind)
            or pa.types.is_date(kind)
            or pa.types.is_timestamp(kind)
        ):
            raise InputError(
                f"cannot load table {table}: column {field.name!r} has type "
                f"{kind}, expected text, number, boolean, date or timestamp"
            )
        if target is not None:
            arrow = arrow.set_column(index, field.name, arrow.column(index).cast(target))
    return arrow


def arrow_to_frame(table: pa.Table) -> pd.DataFrame:
    """Query results as a DataFrame: nullable ``boolean``/``Int64``, DATE as ``datetime64[us]``."""
    for index, field in enumerate(table.schema):
        if pa.types.is_date(field.type):
            table = table.set_column(
                index, field.name, table.column(index).cast(pa.timestamp("us"))
            )
        elif pa.types.is_integer(field.type) and field.type != pa.int64():
            table = table.set_column(index, field.name, table.column(index).cast(pa.int64()))
        elif pa.types.is_decimal(field.type):
            table = table.set_column(index, field.name, table.column(index).cast(pa.float64()))
    nullable = {pa.bool_(): pd.BooleanDtype(), pa.int64(): pd.Int64Dtype()}
    return table.to_pandas(types_mapper=nullable.get)


def write_parquet(
    chunks: Iterable[pd.DataFrame], table: str, path: Path, *, staging: bool = False
) -> tuple[int, pa.Schema]:
    """Append every chunk (as :func:`frame_to_arrow` converts it) to one Parquet file.

    Returns (rows, schema). Memory holds one chunk at a time. :class:`InputError` when there
    is no chunk or a chunk's columns differ from the first one's. ``staging``: a file read
    once, locally, right away: no dictionaries or statistics (a third of the write time).
    """
    options = (
        {"compression": "snappy", "use_dictionary": False, "write_statistics": False}
        if staging
        else {"compression": "snappy"}
    )
    writer: pq.ParquetWriter | None = None
    schema: pa.Schema | None = None
    rows = 0
    try:
        for chunk in chunks:
            arrow = frame_to_arrow(chunk, table)
            if schema is None:
                schema = arrow.schema
                writer = pq.ParquetWriter(
                    path, schema, coerce_timestamps="us", allow_truncated_timestamps=True, **options
                )
            elif not arrow.schema.equals(schema):
                raise InputError(f"cannot load table {table}: chunks have different columns")
            assert writer is not None
            writer.write_table(arrow)
            rows += arrow.num_rows
    finally:
        if writer is not None:
            writer.close()
    if schema is None:
        raise InputError(f"cannot load table {table}: no rows")
    return rows, schema
