"""Normalise VicRoads crash CSVs (upper-case ArcGIS export or lower-case extracts) to one schema.

The normalised table has snake_case columns, ``accident_date`` as a date, ``accident_time`` as
``HH:MM:SS`` text, ``alcohol_related`` as boolean, count features as nullable integers,
category features as trimmed text, every model feature present (null where the source lacks
it), and every other source column kept (as integers or decimals when every value in the
whole file is one, else text).

A :class:`Normaliser` works chunk by chunk (so a 1M-row file streams) with the one value parser
(:mod:`crashed.core.values`); :meth:`Normaliser.finish` makes the whole-file decisions: the
types of the other columns, and whether ``accident_date`` has month and day swapped.
:func:`normalise` does all of it on one in-memory frame.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from crashed.core import values as parse
from crashed.core.crash_csv import inspect_csv, read_chunks, record_lines
from crashed.core.features import (
    CATEGORY_FEATURES,
    COUNT_FEATURES,
    DATE,
    LABEL,
    RAW_FEATURES,
    TIME_FEATURE,
)
from crashed.errors import InputError

_DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y %H:%M", "%d/%m/%Y", "%d/%m/%y", "%Y-%m-%d %H:%M:%S")
_MAX_REPORTED = 5
_INT = r"-?[0-9]{1,18}"
_FLOAT = r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]{1,2})?"
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_SWAP_MIN_ROWS = 5
Lines = Callable[[Sequence[int]], dict[int, int]]
"""Record numbers → CSV line numbers (for messages only)."""


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


def _default_lines(records: Sequence[int]) -> dict[int, int]:
    return {r: r + 2 for r in records}


@dataclass
class _Swap:
    """Rows whose day and month could be swapped: how many disagree with day_of_week."""

    rows: int = 0
    disagree: int = 0
    agree_swapped: int = 0
    example: tuple[int, str, str] | None = None


@dataclass
class Normaliser:
    """Normalises one file's chunks; errors name the column and the CSV line."""

    columns: Sequence[str]
    source: str = "input"
    lines: Lines = _default_lines
    rows: int = 0
    positives: int = 0
    date_min: object = None
    date_max: object = None
    _names: list[str] = field(default_factory=list)
    _kinds: dict[str, str] = field(default_factory=dict)
    _swap: _Swap = field(default_factory=_Swap)

    def __post_init__(self) -> None:
        self._names = [snake_case(str(c)) for c in self.columns]
        first: dict[str, int] = {}
        for position, name in enumerate(self._names, start=1):
            if name in first:
                a, b = self.columns[first[name] - 1], self.columns[position - 1]
                raise InputError(
                    f"{self.source}: duplicate column {name!r}: {a!r} (column {first[name]}) and "
                    f"{b!r} (column {position}) are the same column after normalising names"
                )
            first[name] = position
        missing = [c for c in (DATE, LABEL) if c not in first]
        if missing:
            shown = ", ".join(self._names[:12]) + ("…" if len(self._names) > 12 else "")
            raise InputError(
                f"{self.source}: missing required column(s) {', '.join(missing)} (found: {shown})"
            )
        known = {DATE, LABEL, *RAW_FEATURES}
        self._kinds = {n: "none" for n in self._names if n not in known}

    # ---- per chunk ------------------------------------------------------------------------
    def chunk(self, raw: pd.DataFrame) -> pd.DataFrame:
        """The normalised chunk; other source columns stay text until :meth:`finish`."""
        frame = raw.set_axis(self._names, axis=1)
        index = frame.index
        out: dict[str, object] = {}
        dates = self._dates(frame[DATE])
        out[DATE] = pd.Series(
            pd.arrays.ArrowExtensionArray(pa.array(dates.to_numpy().astype("datetime64[D]"))),
            index=index,
        )
        yes, bad = parse.parse_bools(frame[LABEL])
        self._reject(bad, frame[LABEL], LABEL, "must be Yes/No (or 1/0, true/false)")
        out[LABEL] = pd.Series(yes, index=index)
        if TIME_FEATURE in frame:
            times, bad = parse.parse_times(frame[TIME_FEATURE])
            self._reject(bad, frame[TIME_FEATURE], TIME_FEATURE, f"must be {parse.TIME_EXPECTED}")
            out[TIME_FEATURE] = times
        else:
            out[TIME_FEATURE] = pd.Series(pd.NA, index=index, dtype="string")
        for column in COUNT_FEATURES:
            if column in frame:
                counts, bad = parse.parse_counts(frame[column])
                self._reject(
                    bad,
                    frame[column],
                    column,
                    f"must hold non-negative whole numbers up to {parse.MAX_COUNT}",
                )
                out[column] = counts
            else:
                out[column] = pd.Series(pd.NA, index=index, dtype="Int64")
        for column in CATEGORY_FEATURES:
            out[column] = (
                _text(frame[column])
                if column in frame
                else pd.Series(pd.NA, index=index, dtype="string")
            )
        for column in self._names:
            if column not in out:
                out[column] = self._other(column, frame[column])
        if "day_of_week" in frame:
            self._count_swaps(dates, out["day_of_week"])
        ordered = [DATE, LABEL, *RAW_FEATURES]
        names = ordered + [c for c in out if c not in ordered]
        result = pd.DataFrame({c: out[c] for c in names}, index=index)
        self.rows += len(result)
        self.positives += int(yes.sum())
        if len(result):
            low, high = dates.min(), dates.max()
            self.date_min = low if self.date_min is None else min(self.date_min, low)
            self.date_max = high if self.date_max is None else max(self.date_max, high)
        return result

    # ---- whole file -----------------------------------------------------------------------
    def finish(self) -> dict[str, str]:
        """Whole-file checks; returns the other columns to retype (``INT64``/``FLOAT64``)."""
        swap = self._swap
        if (
            swap.rows >= _SWAP_MIN_ROWS
            and swap.disagree > swap.rows / 2
            and swap.agree_swapped > swap.rows / 2
            and swap.example is not None
        ):
            record, stored, weekday = swap.example
            line = self.lines([record]).get(record, record + 2)
            raise InputError(
                f"{self.source}: column {DATE} looks month/day swapped: for "
                f"{swap.disagree} of the {swap.rows} rows whose day is 12 or less, day_of_week "
                f"disagrees with the date, and {swap.agree_swapped} agree once day and month are "
                f"swapped (line {line}: {stored} but day_of_week is {weekday}); write the dates "
                "as YYYY-MM-DD or D/MM/YYYY with the day in its place, and load again"
            )
        return {
            c: {"int": "INT64", "float": "FLOAT64"}[k]
            for c, k in self._kinds.items()
            if k in ("int", "float")
        }

    def summary(self) -> LoadSummary:
        """Rows, date range and positive rate of everything normalised so far."""
        return LoadSummary(
            rows=self.rows,
            date_min=str(pd.Timestamp(self.date_min).date()),
            date_max=str(pd.Timestamp(self.date_max).date()),
            positive_rate=self.positives / self.rows if self.rows else 0.0,
        )

    # ---- helpers --------------------------------------------------------------------------
    def _reject(self, bad: np.ndarray, raw: pd.Series, column: str, rule: str) -> None:
        if bad.any():
            raise InputError(f"{self.source}: column {column} {rule}; got {self._where(bad, raw)}")

    def _where(self, bad: np.ndarray, raw: pd.Series) -> str:
        positions = np.flatnonzero(bad)
        shown = positions[:_MAX_REPORTED]
        records = [int(raw.index[i]) for i in shown]
        lines = self.lines(records)
        parts = [
            f"line {lines.get(r, r + 2)}: {_shown(raw.iloc[i])!r}"
            for r, i in zip(records, shown, strict=True)
        ]
        more = len(positions) - len(shown)
        return ", ".join(parts) + (f" and {more} more" if more > 0 else "")

    def _dates(self, raw: pd.Series) -> pd.Series:
        text = _text(raw)
        empty = text.isna().to_numpy()
        if empty.any():
            raise InputError(f"{self.source}: column {DATE} is empty on {self._where(empty, raw)}")
        plain = text.astype(str)
        parsed = pd.Series(pd.NaT, index=raw.index, dtype="datetime64[s]")
        for fmt in _DATE_FORMATS:
            todo = parsed.isna()
            if not todo.any():
                break
            parsed[todo] = pd.to_datetime(plain[todo], format=fmt, errors="coerce")
        bad = parsed.isna().to_numpy()
        if bad.any():
            us = pd.to_datetime(plain[bad], format="%m/%d/%Y", errors="coerce").notna().all()
            hint = (
                " (they read as month-first M/D/YYYY dates: write them as YYYY-MM-DD or D/MM/YYYY)"
                if us
                else "; expected YYYY-MM-DD or D/MM/YYYY [H:MM]"
            )
            where = self._where(bad, raw)
            raise InputError(f"{self.source}: column {DATE} has unparseable dates ({where}){hint}")
        return parsed

    def _other(self, column: str, raw: pd.Series) -> pd.Series:
        """Cleaned text; narrows the column's kind (none → int → float → text)."""
        text = _text_array(raw)
        kind = self._kinds[column]
        if kind != "text" and text.null_count < len(text):
            if kind in ("none", "int") and _all_match(text, _INT):
                kind = "int"
            elif _all_match(text, _FLOAT):
                kind = "float"
            else:
                kind = "text"
            self._kinds[column] = kind
        return pd.Series(pd.arrays.ArrowExtensionArray(text), index=raw.index)

    def _count_swaps(self, dates: pd.Series, weekdays: pd.Series) -> None:
        named = weekdays.str.lower().map({d: i for i, d in enumerate(_WEEKDAYS)})
        day, month = dates.dt.day, dates.dt.month
        candidates = named.notna() & (day <= 12) & (day != month)
        if not candidates.any():
            return
        when = dates[candidates]
        stated = named[candidates].astype(int)
        swapped = pd.to_datetime(
            pd.DataFrame({"year": when.dt.year, "month": when.dt.day, "day": when.dt.month}),
            errors="coerce",
        )
        disagree = when.dt.day_of_week != stated
        self._swap.rows += int(candidates.sum())
        self._swap.disagree += int(disagree.sum())
        self._swap.agree_swapped += int((swapped.dt.day_of_week == stated).sum())
        if self._swap.example is None:
            hits = disagree & (swapped.dt.day_of_week == stated)
            if hits.any():
                record = hits.idxmax()
                self._swap.example = (
                    int(record),
                    f"{when[record].date()} is a {when[record].day_name()}",
                    str(weekdays[record]),
                )


def _text_array(values: pd.Series) -> pa.Array:
    """Text without surrounding ASCII whitespace, empty → null, as an Arrow array."""
    trimmed = parse.trim(values)
    return pc.if_else(pc.equal(pc.utf8_length(trimmed), 0), None, trimmed)


def _all_match(text: pa.Array, pattern: str) -> bool:
    matched = pc.match_substring_regex(text, f"^(?:{pattern})$")
    return bool(pc.all(matched, skip_nulls=True).as_py())


def _text(values: pd.Series) -> pd.Series:
    """Text without surrounding ASCII whitespace; empty → ``<NA>``."""
    return pd.Series(pd.arrays.ArrowExtensionArray(_text_array(values)), index=values.index)


def _shown(value: object) -> object:
    return value[:80] if isinstance(value, str) else value


def read_crash_csv(path: Path) -> pd.DataFrame:
    """Read a whole CSV as text columns, indexed so that ``index + 2`` is the CSV line number.

    For small files (tests, examples); ``crashed data load`` streams (:mod:`crashed.data_ops`).
    """
    source = inspect_csv(path)
    chunks = list(read_chunks(source))
    if not chunks or not sum(len(c) for c in chunks):
        raise InputError(f"{path}: the CSV has a header but no rows")
    frame = pd.concat(chunks)
    lines = record_lines(source, frame.index)
    frame.index = pd.Index([lines.get(r, r + 2) - 2 for r in frame.index])
    return frame


def normalise(frame: pd.DataFrame, source: str = "input") -> pd.DataFrame:
    """Return the normalised crash table; :class:`InputError` naming column and row on bad data.

    Row numbers in messages are ``index + 2`` (CSV line numbers for :func:`read_crash_csv`).
    """
    normaliser = Normaliser(list(frame.columns), source)
    return finish_frame(normaliser.chunk(frame), normaliser.finish())


def finish_frame(table: pd.DataFrame, types: dict[str, str]) -> pd.DataFrame:
    """Apply :meth:`Normaliser.finish`'s types in pandas, with plain pandas dtypes."""
    out = table.reset_index(drop=True)
    out[DATE] = pd.Series(out[DATE].tolist(), dtype=object)
    for column, kind in types.items():
        numbers = pd.to_numeric(out[column])
        out[column] = numbers.astype("Int64" if kind == "INT64" else "Float64")
    for column in out.columns:
        if isinstance(out[column].dtype, pd.ArrowDtype) or str(out[column].dtype) == "str":
            out[column] = out[column].astype("string")
    return out.copy(deep=True)  # writable: some arrays above are views of Arrow memory


def summarise(table: pd.DataFrame) -> LoadSummary:
    """Rows, date range and positive rate of a normalised table."""
    dates = pd.to_datetime(table[DATE])
    return LoadSummary(
        rows=len(table),
        date_min=str(dates.min().date()),
        date_max=str(dates.max().date()),
        positive_rate=float(table[LABEL].astype(bool).mean()),
    )


def normalise_chunks(
    chunks: Iterable[pd.DataFrame], normaliser: Normaliser
) -> Iterable[pd.DataFrame]:
    """Each chunk normalised (a generator: errors surface while the caller consumes it)."""
    for chunk in chunks:
        yield normaliser.chunk(chunk)
