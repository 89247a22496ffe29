"""Training and validation windows: explicit ISO dates, or relative to the run date."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from crashed.errors import InputError

VALIDATION_MONTHS = 3
TRAINING_MONTHS = 12


@dataclass(frozen=True)
class Windows:
    train_start: date
    train_end: date
    validation_start: date
    validation_end: date

    def as_dict(self) -> dict[str, str]:
        return {k: v.isoformat() for k, v in self.__dict__.items()}


def _months_before(day: date, months: int) -> date:
    year, month = divmod(day.year * 12 + day.month - 1 - months, 12)
    month += 1
    for dd in (day.day, 30, 29, 28):
        try:
            return date(year, month, dd)
        except ValueError:
            continue
    raise AssertionError("unreachable")


def parse_run_date(value: str) -> date:
    """A run date from an ISO date or datetime (KFP gives ``2026-11-22T00:00:00Z``)."""
    text = value.strip()
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).date()
    except ValueError:
        raise InputError(f"run_date: expected an ISO date or datetime, got {value!r}") from None


def _parse(name: str, value: str) -> date | None:
    if not value or not value.strip():
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise InputError(f"{name}: expected an ISO date YYYY-MM-DD, got {value!r}") from None


def resolve_windows(
    run_date: date,
    train_start: str = "",
    train_end: str = "",
    validation_start: str = "",
    validation_end: str = "",
) -> Windows:
    """Fill empty bounds relative to ``run_date``: validation = the 3 months before it,
    training = the 12 months before validation. Explicit bounds win."""
    v_end = _parse("validation_end", validation_end) or run_date - timedelta(days=1)
    v_start = _parse("validation_start", validation_start) or (
        _months_before(v_end, VALIDATION_MONTHS) + timedelta(days=1)
    )
    t_end = _parse("train_end", train_end) or v_start - timedelta(days=1)
    t_start = _parse("train_start", train_start) or (
        _months_before(t_end, TRAINING_MONTHS) + timedelta(days=1)
    )
    windows = Windows(t_start, t_end, v_start, v_end)
    if t_start > t_end:
        raise InputError(f"train_start {t_start} is after train_end {t_end}")
    if v_start > v_end:
        raise InputError(f"validation_start {v_start} is after validation_end {v_end}")
    if t_end >= v_start:
        raise InputError(
            f"the training window must end before validation starts (train_end {t_end}, "
            f"validation_start {v_start})"
        )
    return windows
