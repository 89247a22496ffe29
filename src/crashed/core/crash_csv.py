"""Reading crash CSVs: what the file is, its header, and its rows in bounded-memory chunks.

:func:`inspect_csv` looks at the file once (size, UTF-16 or binary content, encoding, delimiter,
header) and rejects what cannot be a crash CSV with one line naming the file; :func:`read_chunks`
then streams the rows through Arrow's CSV reader as text columns, ``chunk_rows`` at a time, so
a 1M-row file never sits in memory whole. Line numbers are only needed for error messages, so
they are computed then (:func:`record_lines`), by re-reading the file with the ``csv`` module.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pcsv

from crashed.core.features import DATE, LABEL
from crashed.errors import InputError, NotFoundError

_HEAD = 1 << 16
_BLOCK = 1 << 20


@dataclass(frozen=True)
class CsvFile:
    """What :func:`inspect_csv` found: encoding, delimiter and the header's column names."""

    path: Path
    encoding: str
    delimiter: str
    header: tuple[str, ...]
    skip_lines: int
    """Lines before the first data row (leading blank lines and the header)."""
    quoted: bool = True
    """Whether the file has any ``"`` (else no value can hold a newline: faster parsing)."""


def inspect_csv(path: Path) -> CsvFile:
    """Check ``path`` is a readable crash CSV and return how to read it; one-line errors."""
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"{path}: no such file")
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(_HEAD)
    if not head.strip() and size <= len(head):
        raise InputError(f"{path}: the file is empty (expected a CSV with a header row)")
    if _is_utf16(head):
        raise InputError(
            f"{path}: the file is UTF-16 text, not UTF-8; re-save it as UTF-8 "
            "(in Excel: CSV UTF-8) and load it again"
        )
    if b"\x00" in head[:4096]:
        raise InputError(f"{path}: not a CSV file (binary content)")
    utf8, quoted = _scan(path)
    encoding = "utf-8" if utf8 else "latin-1"
    text = head.decode("utf-8-sig" if encoding == "utf-8" else encoding, errors="ignore")
    try:
        delimiter = csv.Sniffer().sniff(text[:4096], delimiters=",;\t|").delimiter
    except csv.Error:
        delimiter = ","
    lines = text.splitlines()
    blank = next((i for i, line in enumerate(lines) if line.strip()), len(lines))
    try:
        header = next(csv.reader(io.StringIO("\n".join(lines[blank:])), delimiter=delimiter))
    except (StopIteration, csv.Error):
        header = []
    if len(header) < 2:
        raise InputError(
            f"{path}: not a crash CSV (found {len(header)} column; expected "
            f"comma-separated columns including {DATE} and {LABEL})"
        )
    names = tuple(name.strip() or f"Unnamed: {i}" for i, name in enumerate(header))
    _check_duplicates(path, names)
    return CsvFile(path, encoding, delimiter, names, blank + 1, quoted)


def read_chunks(source: CsvFile, chunk_rows: int = 100_000) -> Iterator[pd.DataFrame]:
    """The data rows as text frames (Arrow-backed), indexed by record number from 0.

    Rows whose every field is blank are dropped (their record numbers are skipped). A row with
    the wrong number of fields is an :class:`InputError` naming its line.
    """
    columns = [f"c{i}" for i in range(len(source.header))]
    start, pending, pending_rows = 0, [], 0
    try:
        for batch in _open(source, columns):
            pending.append(batch)
            pending_rows += batch.num_rows
            if pending_rows >= chunk_rows:
                yield _frame(source, pending, start)
                start, pending, pending_rows = start + pending_rows, [], 0
    except pa.ArrowInvalid as error:
        raise _parse_error(source, error) from None
    if pending_rows:
        yield _frame(source, pending, start)


def record_lines(source: CsvFile, records: Iterable[int]) -> dict[int, int]:
    """CSV line number (header = line 1 when it is the first line) of each record number."""
    wanted = sorted(set(records))
    found: dict[int, int] = {}
    if not wanted:
        return found
    with source.path.open(encoding=_codec(source), newline="", errors="replace") as handle:
        reader = csv.reader(handle, delimiter=source.delimiter)
        record, previous_end, seen_header = -1, 0, False
        for row in reader:
            first_line, previous_end = previous_end + 1, reader.line_num
            if not row:
                continue
            if not seen_header:
                seen_header = True
                continue
            record += 1
            if record == wanted[len(found)]:
                found[record] = first_line
                if len(found) == len(wanted):
                    break
    return found


# ---- helpers --------------------------------------------------------------------------------


def _codec(source: CsvFile) -> str:
    return "utf-8-sig" if source.encoding == "utf-8" else source.encoding


def _is_utf16(head: bytes) -> bool:
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return True
    sample = head[:4096]
    if len(sample) < 8:
        return False
    even, odd = sample[0::2], sample[1::2]
    return max(even.count(0) / len(even), odd.count(0) / len(odd)) > 0.4


def _scan(path: Path) -> tuple[bool, bool]:
    """(whether the whole file is valid UTF-8, whether it has any ``"``), in one pass."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    utf8, quoted = True, False
    with path.open("rb") as handle:
        while block := handle.read(8 << 20):
            quoted = quoted or b'"' in block
            if utf8:
                try:
                    decoder.decode(block)
                except UnicodeDecodeError:
                    utf8 = False
            if quoted and not utf8:
                break
    if utf8:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            utf8 = False
    return utf8, quoted


def _check_duplicates(path: Path, names: tuple[str, ...]) -> None:
    first: dict[str, int] = {}
    for position, name in enumerate(names, start=1):
        if name in first:
            raise InputError(
                f"{path}: column {name!r} appears twice in the header (columns {first[name]} "
                f"and {position}); remove or rename one of them"
            )
        first[name] = position


def _open(source: CsvFile, columns: list[str]) -> pcsv.CSVStreamingReader:
    return pcsv.open_csv(
        source.path,
        read_options=pcsv.ReadOptions(
            column_names=columns,
            skip_rows=source.skip_lines,
            block_size=_BLOCK,
            encoding="utf8" if source.encoding == "utf-8" else source.encoding,
        ),
        parse_options=pcsv.ParseOptions(
            delimiter=source.delimiter, newlines_in_values=source.quoted
        ),
        convert_options=pcsv.ConvertOptions(
            column_types=dict.fromkeys(columns, pa.string()),
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )


def _frame(source: CsvFile, batches: list[pa.RecordBatch], start: int) -> pd.DataFrame:
    table = pa.Table.from_batches(batches)
    frame = table.to_pandas(types_mapper=pd.ArrowDtype, split_blocks=True, self_destruct=True)
    frame.columns = list(source.header)
    frame.index = pd.RangeIndex(start, start + len(frame))
    blank = (frame.iloc[:, 0].str.strip() == "").to_numpy(dtype=bool)
    for column in range(1, frame.shape[1]):
        if not blank.any():
            return frame
        blank &= (frame.iloc[:, column].str.strip() == "").to_numpy(dtype=bool)
    return frame[~blank] if blank.any() else frame


def _parse_error(source: CsvFile, error: pa.ArrowInvalid) -> InputError:
    """Which line has the wrong number of fields (found by re-reading with ``csv``)."""
    expected = len(source.header)
    with source.path.open(encoding=_codec(source), newline="", errors="replace") as handle:
        reader = csv.reader(handle, delimiter=source.delimiter)
        previous_end, seen_header = 0, False
        for row in reader:
            first_line, previous_end = previous_end + 1, reader.line_num
            if not row:
                continue
            if seen_header and len(row) != expected:
                return InputError(
                    f"{source.path}: not a readable CSV (line {first_line} has {len(row)} "
                    f"fields, the header has {expected})"
                )
            seen_header = True
    reason = str(error).splitlines()[0] if str(error) else type(error).__name__
    return InputError(f"{source.path}: not a readable CSV ({reason})")
