"""Data use cases behind ``crashed data``: load a CSV, describe a table."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path

from crashed.core.crash_schema import LoadSummary, normalise, read_crash_csv, summarise
from crashed.core.features import DATE, LABEL
from crashed.errors import InputError, NotFoundError
from crashed.ports import Warehouse

_COLUMN = re.compile(r"^[a-z_][a-z0-9_]*$")


def load_csv(warehouse: Warehouse, path: Path, table: str = "crashes_raw") -> LoadSummary:
    """Normalise the CSV at ``path`` and replace ``table`` with it (all or nothing)."""
    frame = normalise(read_crash_csv(path), source=str(path))
    warehouse.load_frame(table, frame)
    return summarise(frame)


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
