"""Normalise VicRoads crash CSVs (upper-case ArcGIS export or lower-case extracts) to one schema.

The normalised table has snake_case columns, ``accident_date`` as a date, ``accident_time`` as
``HH:MM:SS`` text, ``alcohol_related`` as boolean, count features as nullable integers,
category features as trimmed text, every model feature present (null where the source lacks
it), and every other source column kept.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from crashed.core.features import (
    CATEGORY_FEATURES,
    COUNT_FEATURES,
    DATE,
    LABEL,
    RAW_FEATURES,
    TIME_FEATURE,
)
from crashed.errors import InputError

_TRUE = {"yes", "y", "true", "t", "1"}
_FALSE = {"no", "n", "false", "f", "0"}
_TIME = re.compile(r"^\s*(\d{1,2})[.:](\d{2})(?:[.:](\d{2}))?\s*$")
_DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y %H:%M", "%d/%m/%Y", "%d/%m/%y", "%Y-%m-%d %H:%M:%S")
_MAX_REPORTED = 5


@dataclass(frozen=True)
class LoadSummary:
    """What a load produced: rows, date range and positive rate."""

    rows: int
    date_min: str
    date_max: str
    positive_rate: float


def snake_case(name: str) -> str:
    """``ACCIDENT_DATE`` / ``Accident Date`` / ``accident-date`` → ``accident_date``."""
    name = re.sub(r"(?<=[a-z0-9])(?=[A-Z][a-z])", "_", name.strip())
    return re.sub(r"[^0-9a-zA-Z]+", "_", name).strip("_").lower()


def read_crash_csv(path: Path) -> pd.DataFrame:
    """Read a CSV as text columns; :class:`InputError` for a missing, empty or non-CSV file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    raw = path.read_bytes()
    if not raw.strip():
        raise InputError(f"{path}: the file is empty (expected a CSV with a header row)")
    if b"\x00" in raw[:4096]:
        raise InputError(f"{path}: not a CSV file (binary content)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t|")
        delimiter = dialect.delimiter
    except csv.Error:
        delimiter = ","
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            sep=delimiter,
            dtype=str,
            keep_default_na=False,
            na_values=[""],
            index_col=False,
            skip_blank_lines=False,
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise InputError(f"{path}: not a readable CSV ({first})") from None
    if frame.shape[1] < 2:
        raise InputError(
            f"{path}: not a crash CSV (found {frame.shape[1]} column; expected "
            f"comma-separated columns including {DATE} and {LABEL})"
        )
    # Blank lines are read (so row index + 2 is the CSV line number) and then dropped.
    frame = frame[frame.notna().any(axis=1)]
    if frame.empty:
        raise InputError(f"{path}: the CSV has a header but no rows")
    return frame


def normalise(frame: pd.DataFrame, source: str = "input") -> pd.DataFrame:
    """Return the normalised crash table; :class:`InputError` naming column and row on bad data.

    Row numbers in messages are CSV line numbers (the header is line 1).
    """
    frame = frame.rename(columns=snake_case)
    _check_unique_columns(frame, source)
    missing = [c for c in (DATE, LABEL) if c not in frame.columns]
    if missing:
        raise InputError(
            f"{source}: missing required column(s) {', '.join(missing)} "
            f"(found: {', '.join(frame.columns[:12])}{'…' if frame.shape[1] > 12 else ''})"
        )
    out = pd.DataFrame(index=frame.index)
    out[DATE] = _parse_dates(frame[DATE], source)
    out[LABEL] = _parse_label(frame[LABEL], source)
    out[TIME_FEATURE] = (
        _parse_times(frame[TIME_FEATURE], source)
        if TIME_FEATURE in frame
        else pd.Series(pd.NA, index=frame.index, dtype="string")
    )
    for column in COUNT_FEATURES:
        out[column] = (
            _parse_counts(frame[column], column, source)
            if column in frame
            else pd.Series(pd.NA, index=frame.index, dtype="Int64")
        )
    for column in CATEGORY_FEATURES:
        out[column] = (
            _clean_text(frame[column])
            if column in frame
            else pd.Series(pd.NA, index=frame.index, dtype="string")
        )
    for column in frame.columns:
        if column not in out.columns:
            out[column] = _infer(frame[column])
    ordered = [DATE, LABEL, *[c for c in RAW_FEATURES if c in out]]
    rest = [c for c in out.columns if c not in ordered]
    return out[ordered + rest].reset_index(drop=True)


def summarise(table: pd.DataFrame) -> LoadSummary:
    """Rows, date range and positive rate of a normalised table."""
    dates = pd.to_datetime(table[DATE])
    return LoadSummary(
        rows=len(table),
        date_min=str(dates.min().date()),
        date_max=str(dates.max().date()),
        positive_rate=float(table[LABEL].astype(bool).mean()),
    )


def _check_unique_columns(frame: pd.DataFrame, source: str) -> None:
    seen = frame.columns[frame.columns.duplicated()].tolist()
    if seen:
        raise InputError(f"{source}: duplicate column(s) after normalising names: {seen}")


def _bad_rows(mask: pd.Series, values: pd.Series) -> str:
    rows = np.flatnonzero(mask.to_numpy())[:_MAX_REPORTED]
    shown = ", ".join(f"line {values.index[i] + 2}: {values.iloc[i]!r}" for i in rows)
    more = int(mask.sum()) - len(rows)
    return shown + (f" and {more} more" if more > 0 else "")


def _parse_dates(values: pd.Series, source: str) -> pd.Series:
    text = values.astype("string").str.strip()
    if text.isna().any():
        raise InputError(
            f"{source}: column {DATE} is empty on {_bad_rows(text.isna(), values.fillna(''))}"
        )
    parsed = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]")
    for fmt in _DATE_FORMATS:
        todo = parsed.isna()
        if not todo.any():
            break
        parsed[todo] = pd.to_datetime(text[todo], format=fmt, errors="coerce")
    bad = parsed.isna()
    if bad.any():
        raise InputError(
            f"{source}: column {DATE} has unparseable dates ({_bad_rows(bad, values)}); "
            "expected YYYY-MM-DD or D/MM/YYYY [H:MM]"
        )
    return parsed.dt.date


def _parse_label(values: pd.Series, source: str) -> pd.Series:
    text = values.fillna("").str.strip().str.lower()
    yes, no = text.isin(_TRUE), text.isin(_FALSE)
    bad = ~(yes | no)
    if bad.any():
        raise InputError(
            f"{source}: column {LABEL} must be Yes/No (or 1/0, true/false); "
            f"got {_bad_rows(bad, values.fillna(''))}"
        )
    return yes.astype(bool)


def parse_time(value: str | None) -> str | None:
    """``08.45.00`` / ``1:37:00`` / ``8:45`` → ``08:45:00``; ``None`` when empty or invalid."""
    if value is None:
        return None
    match = _TIME.match(str(value))
    if not match:
        return None
    hour, minute, second = int(match[1]), int(match[2]), int(match[3] or 0)
    if hour > 23 or minute > 59 or second > 59:
        return None
    return f"{hour:02d}:{minute:02d}:{second:02d}"


def _parse_times(values: pd.Series, source: str) -> pd.Series:
    text = values.fillna("").str.strip()
    parts = text.str.extract(_TIME)
    hour = pd.to_numeric(parts[0], errors="coerce")
    minute = pd.to_numeric(parts[1], errors="coerce")
    second = pd.to_numeric(parts[2], errors="coerce").fillna(0)
    valid = hour.le(23) & minute.le(59) & second.le(59)
    bad = (text != "") & ~valid
    if bad.any():
        raise InputError(
            f"{source}: column {TIME_FEATURE} has invalid times ({_bad_rows(bad, values)}); "
            "expected HH.MM.SS or H:MM:SS"
        )
    formatted = (
        hour.fillna(0).astype(int).map("{:02d}".format)
        + ":"
        + minute.fillna(0).astype(int).map("{:02d}".format)
        + ":"
        + second.astype(int).map("{:02d}".format)
    )
    return formatted.where(valid, pd.NA).astype("string")


def _parse_counts(values: pd.Series, column: str, source: str) -> pd.Series:
    text = values.astype("string").str.strip()
    numbers = pd.to_numeric(text, errors="coerce")
    bad = text.notna() & (numbers.isna() | (numbers < 0) | (numbers % 1 != 0))
    if bad.any():
        raise InputError(
            f"{source}: column {column} must hold non-negative whole numbers; "
            f"got {_bad_rows(bad, values)}"
        )
    return numbers.astype("Int64")


def _clean_text(values: pd.Series) -> pd.Series:
    text = values.astype("string").str.strip()
    return text.mask(text == "", pd.NA)


def _infer(values: pd.Series) -> pd.Series:
    """Other source columns: numeric when every non-empty value is a number, else text."""
    text = _clean_text(values)
    numbers = pd.to_numeric(text, errors="coerce")
    if text.notna().any() and numbers.notna().sum() == text.notna().sum():
        if (numbers.dropna() % 1 == 0).all() and numbers.abs().max() < 2**53:
            return numbers.astype("Int64")
        return numbers.astype("Float64")
    return text
