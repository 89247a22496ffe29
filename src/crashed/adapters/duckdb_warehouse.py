"""The embedded warehouse: one DuckDB file under ``CRASHED_HOME``.

SQL uses the BigQuery parameter style ``@name``; it is rewritten to DuckDB's ``$name`` and the
values are bound, never formatted into the text. Each call opens and closes its own connection
so pipeline steps running as separate processes never hold the file lock longer than a call.
DuckDB lets one process at a time open the file: a call that finds it locked waits up to
``lock_timeout`` seconds (``WAREHOUSE_LOCK_TIMEOUT``) and then fails naming the process that
holds it.
"""

from __future__ import annotations

import contextlib
import re
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from crashed.adapters.tabular import arrow_to_frame, param_value, write_parquet
from crashed.errors import InputError, NotFoundError, ServiceError
from crashed.ports import Lake, QueryParams

# Quoted strings, quoted identifiers and comments are kept as they are; only bare @name changes.
_PARAM = re.compile(r"""('(?:[^']|'')*'|"(?:[^"]|"")*"|--[^\n]*)|(?<![\w@$])@([A-Za-z_]\w*)""")
_HOLDER = re.compile(r"Conflicting lock is held in (?P<exe>.+?) \(PID (?P<pid>\d+)\)")
_CASTS = {"INT64": "BIGINT", "FLOAT64": "DOUBLE"}
_LOAD_MEMORY = "384MB"
"""DuckDB's memory limit while it copies a staged load into its table (it spills beyond)."""
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

    def __init__(self, path: Path, lake: Lake, lock_timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.lake = lake
        self.lock_timeout = lock_timeout

    @contextmanager
    def _connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.lock_timeout
        pause = 0.05
        while True:
            try:
                con = duckdb.connect(str(self.path))
                break
            except duckdb.IOException as error:
                holder = _HOLDER.search(str(error))
                if holder is None:
                    raise ServiceError(
                        f"cannot open warehouse {self.path}: {_first_line(error)}"
                    ) from None
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ServiceError(
                        f"warehouse {self.path} is locked by another process "
                        f"({_describe_process(int(holder['pid']), holder['exe'])}) and stayed "
                        f"locked for {self.lock_timeout:g} s; wait for that command to finish "
                        "or stop it, or set WAREHOUSE_LOCK_TIMEOUT to wait longer"
                    ) from None
                time.sleep(min(pause, left))
                pause = min(pause * 2, 0.5)
        try:
            yield con
        finally:
            con.close()

    def load_frame(self, table: str, frame: pd.DataFrame) -> int:
        return self.load_chunks(table, [frame])

    def load_chunks(
        self,
        table: str,
        chunks: Iterable[pd.DataFrame],
        retype: Callable[[], Mapping[str, str]] | None = None,
    ) -> int:
        """Chunks are staged in a Parquet file beside the database (bounded memory, and the
        file lock is not held while they are parsed), then one transaction replaces the table
        with ``CREATE OR REPLACE … AS SELECT … FROM read_parquet(…)``."""
        name = table_name(table)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        staging = self.path.parent / f".staging-{name}-{uuid.uuid4().hex[:12]}.parquet"
        try:
            rows, schema = write_parquet(chunks, name, staging, staging=True)
            casts = dict(retype() if retype else {})
            select = ", ".join(_cast(c, casts.get(c)) for c in schema.names) if casts else "*"
            source = "'" + str(staging).replace("'", "''") + "'"
            with self._connect() as con:
                try:
                    con.execute(f"SET memory_limit = '{_LOAD_MEMORY}'")
                    con.execute("BEGIN TRANSACTION")
                    con.execute(
                        f'CREATE OR REPLACE TABLE "{name}" AS SELECT {select} '
                        f"FROM read_parquet({source})"
                    )
                    con.execute("COMMIT")
                except duckdb.Error as error:
                    with contextlib.suppress(duckdb.Error):
                        con.execute("ROLLBACK")
                    raise InputError(f"cannot load table {name}: {_first_line(error)}") from None
        finally:
            staging.unlink(missing_ok=True)
        return rows

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


def _cast(column: str, kind: str | None) -> str:
    quoted = '"' + column.replace('"', '""') + '"'
    if kind is None:
        return quoted
    if kind not in _CASTS:
        raise InputError(f"cannot retype column {column!r} to {kind!r} (INT64 or FLOAT64)")
    return f"CAST({quoted} AS {_CASTS[kind]}) AS {quoted}"


def _describe_process(pid: int, exe: str) -> str:
    """``PID 123: crashed data load --csv x.csv`` (the command line when /proc shows it)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return f"PID {pid}: {exe}"
    words = [w.decode(errors="replace") for w in raw.split(b"\0") if w]
    if len(words) > 1 and Path(words[0]).name.startswith("python") and words[1] == "-m":
        words = words[2:]
    elif words:
        words[0] = Path(words[0]).name
    command = " ".join(words)
    return f"PID {pid}: {command[:160]}" if command else f"PID {pid}: {exe}"


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
