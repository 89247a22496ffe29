"""The one parser for the values people type: flags, counts, speeds and times.

Loading (whole CSV columns), training (the encoder) and serving (one request) all parse through
here, so a value is either valid everywhere or rejected everywhere. Each kind has a scalar
variant (``parse_count``) and a vectorised one for pandas Series (``parse_counts``); the
vectorised ones run the *same* regular expressions through Arrow's engine, and a property test
(``tests/unit/core/test_values.py``) checks that both agree on arbitrary text.

The grammar is deliberately narrow: ASCII digits only (no ``1_0``, ``+1``, ``1e1``, ``0x1``, no
Arabic-Indic or full-width digits), surrounding ASCII whitespace ignored, empty = unknown.

- count: a whole number 0–:data:`MAX_COUNT` (``3``, ``007``, ``3.0``);
- time: ``HH.MM.SS``, ``H:MM:SS``, ``H:MM`` (hour 0–23) → ``HH:MM:SS``;
- speed: the km/h number that starts a speed zone (``60 km/hr`` → 60); anything else
  (``Not known``) is a valid zone with an unknown speed, never an error.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from crashed.errors import InputError

TRUE_WORDS = frozenset({"true", "t", "yes", "y", "1", "on"})
FALSE_WORDS = frozenset({"false", "f", "no", "n", "0", "off"})
WHITESPACE = " \t\r\n\f\v"
"""What surrounds a value and is ignored: ASCII whitespace only, in every parser."""
MAX_COUNT = 1000
"""Largest count of people or vehicles in one crash that is accepted."""

COUNT_EXPECTED = f"a whole number from 0 to {MAX_COUNT}"
TIME_EXPECTED = "a time like 08.45.00, 8:45:00 or 8:45 (hour 0-23)"

_COUNT = r"0*(?P<n>[0-9]{1,4})(?:\.0+)?"
_TIME = r"(?P<h>[0-9]{1,2})[.:](?P<m>[0-9]{2})(?:[.:](?P<s>[0-9]{2}))?"
_SPEED = r"(?P<k>[0-9]{2,3})[ \t]*[Kk][Mm]"
_COUNT_RE = re.compile(_COUNT, re.ASCII)
_TIME_RE = re.compile(_TIME, re.ASCII)
_SPEED_RE = re.compile(_SPEED, re.ASCII)


class InvalidValue(ValueError):
    """A non-empty value that is not of the expected kind; ``expected`` says what would be."""

    def __init__(self, value: str, expected: str) -> None:
        super().__init__(f"expected {expected}, got {value[:80]!r}")
        self.value = value
        self.expected = expected


# ---- scalar --------------------------------------------------------------------------------


def clean(value: object) -> str | None:
    """``value`` as text without surrounding ASCII whitespace; ``None`` when empty or None."""
    if value is None:
        return None
    text = str(value).strip(WHITESPACE)
    return text or None


def parse_bool(value: object, field: str, *, empty: bool | None = False) -> bool | None:
    """``value`` as a boolean; words are case-insensitive, surrounding space is ignored.

    An empty value gives ``empty`` (``None`` where the caller treats it as missing). Anything
    else is an :class:`InputError` naming ``field`` and what was expected.
    """
    if isinstance(value, bool):
        return value
    text = clean(value)
    if text is None:
        return empty
    word = text.lower() if text.isascii() else text
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise InputError(f"{field}: expected true or false (yes/no, 1/0), got {str(value)[:80]!r}")


def parse_count(value: object) -> int | None:
    """A count (see the module doc); ``None`` when empty, :class:`InvalidValue` otherwise."""
    text = clean(value)
    if text is None:
        return None
    match = _COUNT_RE.fullmatch(text)
    if not match or int(match["n"]) > MAX_COUNT:
        raise InvalidValue(str(value), COUNT_EXPECTED)
    return int(match["n"])


def parse_time(value: object) -> str | None:
    """A time as ``HH:MM:SS``; ``None`` when empty, :class:`InvalidValue` otherwise."""
    text = clean(value)
    if text is None:
        return None
    match = _TIME_RE.fullmatch(text)
    if match:
        hour, minute, second = int(match["h"]), int(match["m"]), int(match["s"] or 0)
        if hour <= 23 and minute <= 59 and second <= 59:
            return f"{hour:02d}:{minute:02d}:{second:02d}"
    raise InvalidValue(str(value), TIME_EXPECTED)


def parse_speed(value: object) -> int | None:
    """The km/h number a speed zone starts with (``60 km/hr`` → 60), else ``None``."""
    text = clean(value)
    if text is None:
        return None
    match = _SPEED_RE.match(text)
    return int(match["k"]) if match else None


# ---- vectorised (pandas Series in, Series out; index kept) ----------------------------------


def trim(values: pd.Series) -> pa.Array:
    """The Series as an Arrow string array with surrounding whitespace trimmed."""
    try:
        array = pa.array(values, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        array = None
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if array is None or not (
        pa.types.is_string(array.type)
        or pa.types.is_large_string(array.type)
        or pa.types.is_null(array.type)
    ):
        text = [None if pd.isna(v) else str(v) for v in values.astype(object)]
        array = pa.array(text, type=pa.string())
    if not pa.types.is_string(array.type):
        array = array.cast(pa.string())
    return pc.utf8_trim(array, characters=WHITESPACE)


def _blank(trimmed: pa.Array) -> np.ndarray:
    return pc.fill_null(pc.equal(pc.utf8_length(trimmed), 0), True).to_numpy(zero_copy_only=False)


def _ints(parts: pa.StructArray, name: str) -> np.ndarray:
    """Group ``name`` of a regex match as int64 (0 where the group did not match)."""
    group = pc.struct_field(parts, name)
    group = pc.if_else(pc.equal(pc.utf8_length(group), 0), None, group)
    return pc.fill_null(pc.cast(group, pa.int64()), 0).to_numpy(zero_copy_only=False)


def _matched(parts: pa.StructArray) -> np.ndarray:
    return pc.is_valid(parts).to_numpy(zero_copy_only=False)


def parse_counts(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Counts as ``Int64`` (``<NA>`` when empty) and a mask of the invalid non-empty values."""
    trimmed = trim(values)
    blank = _blank(trimmed)
    plain = pc.match_substring_regex(trimmed, "^[0-9]{1,4}$")
    if bool(pc.all(pc.or_kleene(plain, pa.array(blank))).as_py()):
        # fast path (nearly every file): plain digits, a subset of the count grammar
        empty = pc.if_else(pa.array(blank), None, trimmed)
        number = pc.fill_null(pc.cast(empty, pa.int64()), 0).to_numpy(zero_copy_only=False)
        bad = ~blank & (number > MAX_COUNT)
    else:
        parts = pc.extract_regex(trimmed, f"^{_COUNT}$")
        number = _ints(parts, "n")
        bad = ~blank & ~(_matched(parts) & (number <= MAX_COUNT))
    counts = pd.array(np.array(number), dtype="Int64")  # a writable copy of the Arrow data
    counts[blank | bad] = pd.NA
    return pd.Series(counts, index=values.index, name=values.name), bad


def parse_times(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Times as ``HH:MM:SS`` strings (``<NA>`` when empty) and a mask of the invalid values."""
    trimmed = trim(values)
    parts = pc.extract_regex(trimmed, f"^{_TIME}$")
    hour, minute, second = _ints(parts, "h"), _ints(parts, "m"), _ints(parts, "s")
    valid = _matched(parts) & (hour <= 23) & (minute <= 59) & (second <= 59)
    bad = ~_blank(trimmed) & ~valid
    clock = hour * 10_000 + minute * 100 + second
    text = pc.utf8_lpad(pa.array(clock).cast(pa.string()), 6, "0")
    formatted = pc.binary_join_element_wise(
        pc.utf8_slice_codeunits(text, 0, 2),
        pc.utf8_slice_codeunits(text, 2, 4),
        pc.utf8_slice_codeunits(text, 4, 6),
        ":",
    )
    formatted = pc.if_else(pa.array(valid), formatted, None)
    series = pd.Series(formatted.to_pandas(), index=values.index, name=values.name)
    return series.astype("string"), bad


def parse_hours(values: pd.Series) -> np.ndarray:
    """Hour of day (float, NaN when empty or invalid) of each time."""
    trimmed = trim(values)
    parts = pc.extract_regex(trimmed, f"^{_TIME}$")
    hour, minute, second = _ints(parts, "h"), _ints(parts, "m"), _ints(parts, "s")
    valid = _matched(parts) & (hour <= 23) & (minute <= 59) & (second <= 59)
    return np.where(valid, hour, np.nan)


def parse_speeds(values: pd.Series) -> np.ndarray:
    """Speed (float km/h, NaN when a zone has no km/h number) of each speed zone."""
    parts = pc.extract_regex(trim(values), f"^{_SPEED}")
    return np.where(_matched(parts), _ints(parts, "k"), np.nan)


def parse_bools(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Booleans as :func:`parse_bool` reads them: (value, invalid mask); empty is invalid."""
    trimmed = trim(values)
    lower = pc.if_else(pc.string_is_ascii(trimmed), pc.ascii_lower(trimmed), trimmed)
    yes = pc.fill_null(pc.is_in(lower, pa.array(sorted(TRUE_WORDS))), False)
    no = pc.fill_null(pc.is_in(lower, pa.array(sorted(FALSE_WORDS))), False)
    yes_np, no_np = yes.to_numpy(zero_copy_only=False), no.to_numpy(zero_copy_only=False)
    return yes_np, ~(yes_np | no_np)
