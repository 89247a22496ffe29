"""The embedded warehouse: one DuckDB file under ``CRASHED_HOME``.

SQL uses the BigQuery parameter style ``@name``; it is rewritten to DuckDB's ``$name`` and the
values are bound, never formatted into the text. Each call opens and closes its own connection
so pipeline steps running as separate processes never hold the file lock longer than a call.
"""

from __future__ import annotations

import contextlib
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from crashed.adapters.tabular import arrow_to_frame, frame_to_arrow, param_value
from crashed.errors import InputError, NotFoundError, ServiceError
from crashed.ports import Lake, QueryParams

# Quoted strings, quoted identifiers and comments are kept as they are; only bare @name changes.
_PARAM = re.compile(r"""('(?:[^']|'')*'|"(?:[^"]|"")*"|--[^\n]*)|(?<![\w@$])@([A-Za-z_]\w*)""")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_TYPES = {
    "VARCHAR": "STRING",
    "BIGINT": "INT64",
    "INTEGER": "INT64",
    "SMALLINT": "INT64",
    "TINYINT": "INT64",
    "HUGEINT": "INT64",
    "DOUBLE": "FLOAT64",
    "FLOAT": "FLOAT64",
    "BOOLEAN": "BOOLEAN",
    "DATE": "DATE",
    "TIMESTAMP": "DATETIME",
    "TIMESTAMP WITH TIME ZONE": "TIMESTAMP",
}


def table_name(table: str) -> str:
    """Validate a bare table identifier (no quoting tricks, no schema)."""
    if not _IDENT.match(table):
        raise InputError(f"invalid table name {table!r} (letters, digits and _ only)")
    return table


def to_duckdb_sql(sql: str, params: QueryParams | None = None) -> tuple[str, dict[str, Any]]:
    """Rewrite ``@name`` to DuckDB's ``$name`` (ints bound as BIGINT, floats as DOUBLE, like
    BigQuery's INT64/FLOAT64) and return the validated parameter values."""
    values = {name: param_value(name, value) for name, value in (params or {}).items()}

    def replace(match: re.Match[str]) -> str:
        if match.group(1):
            return match.group(1)
        name = match.group(2)
        value = values.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return f"CAST(${name} AS BIGINT)"
        if isinstance(value, float):
            return f"CAST(${name} AS DOUBLE)"
        return f"${name}"

    return _PARAM.sub(replace, sql), values


class DuckDBWarehouse:
    """:class:`crashed.ports.Warehouse` on a DuckDB database file."""

    def __init__(self, path: Path, lake: Lake) -> None:
        self.path = Path(path)
        self.lake = lake

    @contextmanager
    def _connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            con = duckdb.connect(str(self.path))
        except duckdb.IOException as error:
            raise ServiceError(f"cannot open warehouse {self.path}: {error}") from None
        try:
            yield con
        finally:
            con.close()

    def load_frame(self, table: str, frame: pd.DataFrame) -> int:
        name = table_name(table)
        with self._connect() as con:
            try:
                con.register("incoming_frame", frame_to_arrow(frame, name))
                con.execute("BEGIN TRANSACTION")
                con.execute(f'CREATE OR REPLACE TABLE "{name}" AS SELECT * FROM incoming_frame')
                con.execute("COMMIT")
            except duckdb.Error as error:
                with contextlib.suppress(duckdb.Error):
                    con.execute("ROLLBACK")
                raise InputError(f"cannot load table {name}: {_first_line(error)}") from None
            finally:
                with contextlib.suppress(duckdb.Error):
                    con.unregister("incoming_frame")
        return len(frame)

    def query(self, sql: str, params: QueryParams | None = None) -> pd.DataFrame:
        with self._connect() as con:
            sql, values = to_duckdb_sql(sql, params)
            try:
                return arrow_to_frame(con.sql(sql, params=values).to_arrow_table())
            except duckdb.CatalogException as error:
                raise NotFoundError(f"warehouse query failed: {_first_line(error)}") from None
            except duckdb.Error as error:
                raise ServiceError(f"warehouse query failed: {_first_line(error)}") from None

    def select_into(self, table: str, sql: str, params: QueryParams | None = None) -> int:
        name = table_name(table)
        sql, values = to_duckdb_sql(sql, params)
        with self._connect() as con:
            try:
                con.execute(f'CREATE OR REPLACE TABLE "{name}" AS {sql}', values)
                row = con.execute(f'SELECT count(*) FROM "{name}"').fetchone()
            except duckdb.CatalogException as error:
                raise NotFoundError(f"cannot create {name}: {_first_line(error)}") from None
            except duckdb.Error as error:
                raise ServiceError(f"cannot create {name}: {_first_line(error)}") from None
        return int(row[0]) if row else 0

    def export(self, table: str, uri: str) -> str:
        name = self._existing(table)
        with tempfile.TemporaryDirectory() as tmp:
            target = Path(tmp) / "export.parquet"
            with self._connect() as con:
                con.execute(f"COPY \"{name}\" TO '{target}' (FORMAT PARQUET)")
            self.lake.put_file(uri, target)
        return uri

    def table_exists(self, table: str) -> bool:
        name = table_name(table)
        with self._connect() as con:
            row = con.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = $name",
                {"name": name},
            ).fetchone()
        return bool(row and row[0])

    def columns(self, table: str) -> dict[str, str]:
        name = self._existing(table)
        with self._connect() as con:
            rows = con.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = $name ORDER BY ordinal_position",
                {"name": name},
            ).fetchall()
        return {column: _TYPES.get(kind.upper(), kind.upper()) for column, kind in rows}

    def _existing(self, table: str) -> str:
        name = table_name(table)
        if not self.table_exists(name):
            raise NotFoundError(f"table {name} does not exist in the warehouse ({self.path})")
        return name


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
