"""Data use cases behind ``crashed data``: load a CSV, describe a table."""

from __future__ import annotations

import queue
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from crashed.core.crash_csv import inspect_csv, read_chunks, record_lines
from crashed.core.crash_schema import LoadSummary, Normaliser
from crashed.core.features import DATE, LABEL
from crashed.errors import InputError, NotFoundError
from crashed.ports import Warehouse

if TYPE_CHECKING:
    import pandas as pd

_COLUMN = re.compile(r"^[a-z_][a-z0-9_]*$")
CHUNK_ROWS = 50_000
T = TypeVar("T")
Progress = Callable[[int, float], None]
"""Called after each chunk with (rows so far, seconds since the load started)."""


def load_csv(
    warehouse: Warehouse,
    path: Path,
    table: str = "crashes_raw",
    *,
    progress: Progress | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> LoadSummary:
    """Stream the CSV at ``path`` through the normaliser into ``table`` (all or nothing).

    The file is read ``chunk_rows`` rows at a time and every chunk validated before it is
    staged; the table is replaced only after the last chunk and the whole-file checks passed.
    """
    started = time.perf_counter()
    source = inspect_csv(path)
    normaliser = Normaliser(
        list(source.header), str(path), lambda records: record_lines(source, records)
    )

    def chunks() -> Iterator[pd.DataFrame]:
        for raw in read_chunks(source, chunk_rows):
            yield normaliser.chunk(raw)
            if progress is not None:
                progress(normaliser.rows, time.perf_counter() - started)
        if not normaliser.rows:
            raise InputError(f"{path}: the CSV has a header but no rows")

    warehouse.load_chunks(table, prefetch(chunks()), normaliser.finish)
    return normaliser.summary()


def prefetch(items: Iterator[T], depth: int = 1) -> Iterator[T]:
    """``items``, produced by a background thread up to ``depth`` ahead of the consumer.

    Parsing the next chunk (Arrow kernels, which release the GIL) overlaps with the warehouse
    storing this one. An exception in the producer is re-raised here, in order; a consumer that
    stops early stops the producer at its next item.
    """
    buffer: queue.Queue[tuple[str, object]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry: tuple[str, object]) -> bool:
        while not stop.is_set():
            try:
                buffer.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(("item", item)):
                    return
            put(("done", None))
        except BaseException as error:  # noqa: BLE001 - handed to the consumer, raised there
            put(("error", error))

    worker = threading.Thread(target=produce, name="crashed-load-reader", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = buffer.get()
            if kind == "done":
                return
            if kind == "error":
                raise value  # type: ignore[misc]
            yield value  # type: ignore[misc]
    finally:
        stop.set()
        worker.join(timeout=60)


@dataclass(frozen=True)
class TableDescription:
    """Rows, date range, positive rate and null counts of a crash table."""

    table: str
    rows: int
    date_min: str | None
    date_max: str | None
    positive_rate: float | None
    positives: int
    nulls: dict[str, int]

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def describe_table(warehouse: Warehouse, table: str = "crashes_raw") -> TableDescription:
    """Describe ``table`` with one aggregate query (cheap on BigQuery too)."""
    if not warehouse.table_exists(table):
        raise NotFoundError(
            f"table {table} does not exist yet: load data with `crashed data load --csv PATH`"
        )
    columns = [c for c in warehouse.columns(table) if _COLUMN.match(c)]
    missing = [c for c in (DATE, LABEL) if c not in columns]
    if missing:
        raise InputError(f"table {table} is not a crash table (missing {', '.join(missing)})")
    null_sums = ", ".join(
        f"SUM(CASE WHEN {c} IS NULL THEN 1 ELSE 0 END) AS null_{i}" for i, c in enumerate(columns)
    )
    frame = warehouse.query(
        f"SELECT COUNT(*) AS n_rows, MIN({DATE}) AS date_min, MAX({DATE}) AS date_max, "
        f"SUM(CASE WHEN {LABEL} THEN 1 ELSE 0 END) AS positives, {null_sums} FROM {table}"
    )
    row = frame.iloc[0]
    rows = int(row["n_rows"])
    positives = int(row["positives"] or 0) if rows else 0
    return TableDescription(
        table=table,
        rows=rows,
        date_min=str(row["date_min"])[:10] if rows else None,
        date_max=str(row["date_max"])[:10] if rows else None,
        positive_rate=positives / rows if rows else None,
        positives=positives,
        nulls={c: int(row[f"null_{i}"]) for i, c in enumerate(columns)},
    )
