"""Local proposal records: ``<CRASHED_HOME>/proposals/<id>.json``, the local merge requests.

Every record write is atomic (:func:`crashed.fsio.atomic_write`), and every operation of the
local Git host holds :meth:`ProposalStore.locked`, so concurrent runs neither interleave nor
leave half-written records. Ids only grow: ``last-id`` remembers the highest ever handed out.
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from crashed.errors import CrashedError, InputError, NotFoundError
from crashed.fsio import atomic_write

Status = Literal["open", "merged", "rejected", "superseded"]
STATUSES: tuple[Status, ...] = ("open", "merged", "rejected", "superseded")


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class ProposalRecord:
    """One local proposal (the local stand-in for a merge request)."""

    id: int
    status: Status
    branch: str
    target_branch: str
    title: str
    description: str
    commit: str
    base: str
    created_at: str
    updated_at: str
    files: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    merge_commit: str | None = None
    merged_at: str | None = None
    note: str | None = None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def parse_id(value: int | str) -> int:
    """A proposal id from ``7``, ``"7"``, ``"#7"`` or ``"!7"``; :class:`InputError` otherwise."""
    text = str(value).strip().lstrip("#!")
    if not text.isdigit() or int(text) < 1:
        raise InputError(f"proposal id must be a positive integer (got {value!r})")
    return int(text)


class ProposalStore:
    """The proposal records in one folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, number: int) -> Path:
        return self.folder / f"{number}.json"

    def url(self, number: int) -> str:
        return self.path(number).as_uri()

    def all(self, status: Status | None = None) -> list[ProposalRecord]:
        """Every record (optionally only those with ``status``), oldest first."""
        if not self.folder.is_dir():
            return []
        paths = [p for p in self.folder.glob("*.json") if p.stem.isdigit()]
        records = sorted((self._read(p) for p in paths), key=lambda r: r.id)
        return [r for r in records if status is None or r.status == status]

    def get(self, proposal_id: int | str) -> ProposalRecord:
        """The record with ``proposal_id``; :class:`NotFoundError` if there is none."""
        number = parse_id(proposal_id)
        path = self.path(number)
        if not path.is_file():
            raise NotFoundError(f"no proposal #{number} (looked in {self.folder})")
        return self._read(path)

    def find(self, number: int) -> ProposalRecord | None:
        path = self.path(number)
        return self._read(path) if path.is_file() else None

    def next_id(self) -> int:
        highest = max((r.id for r in self.all()), default=0)
        return max(highest, self._last_id()) + 1

    def write(self, record: ProposalRecord) -> None:
        atomic_write(self.path(record.id), json.dumps(record.as_dict(), indent=2) + "\n")
        if record.id > self._last_id():
            atomic_write(self.folder / "last-id", f"{record.id}\n")

    def set_status(self, record: ProposalRecord, status: Status, note: str) -> ProposalRecord:
        record.status, record.note, record.updated_at = status, note, now()
        self.write(record)
        return record

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold an exclusive lock on the folder (one operation at a time, across processes)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with (self.folder / ".lock").open("a+") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def _last_id(self) -> int:
        """The highest id ever handed out (kept even if a record file is deleted)."""
        try:
            return int((self.folder / "last-id").read_text().strip())
        except (FileNotFoundError, ValueError):
            return 0

    @staticmethod
    def _read(path: Path) -> ProposalRecord:
        try:
            return ProposalRecord(**json.loads(path.read_text(encoding="utf-8")))
        except (ValueError, TypeError) as error:
            raise CrashedError(f"proposal record {path} is unreadable: {error}") from None
