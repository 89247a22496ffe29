"""The one parser for flag values (pipeline parameters, environment switches, CSV booleans)."""

from __future__ import annotations

from crashed.errors import InputError

TRUE_WORDS = frozenset({"true", "t", "yes", "y", "1", "on"})
FALSE_WORDS = frozenset({"false", "f", "no", "n", "0", "off"})


def parse_bool(value: object, field: str, *, empty: bool | None = False) -> bool | None:
    """``value`` as a boolean; words are case-insensitive, surrounding space is ignored.

    An empty value gives ``empty`` (``None`` where the caller treats it as missing). Anything
    else is an :class:`InputError` naming ``field`` and what was expected.
    """
    if isinstance(value, bool):
        return value
    text = "" if value is None else str(value).strip().lower()
    if text == "":
        return empty
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    raise InputError(f"{field}: expected true or false (yes/no, 1/0), got {str(value)[:80]!r}")
