"""Ports: the protocols the pipeline, serving and CLI depend on. Adapters implement them.

Every adapter is built once from :class:`crashed.settings.Settings` (see ``crashed.wiring``)
and injected; nothing below ``cli`` constructs an adapter itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import pandas as pd

QueryParams = Mapping[str, Any]
"""Named query parameters. SQL refers to them as ``@name`` (BigQuery style) in every adapter.

Values may be ``str``, ``int``, ``float``, ``bool``, ``datetime.date`` or ``datetime.datetime``.
Values are never formatted into SQL text.
"""


@runtime_checkable
class Warehouse(Protocol):
    """A SQL warehouse holding the crash tables (DuckDB locally, BigQuery on GCP).

    Table names are bare identifiers (``crashes_raw``); the adapter qualifies them with its
    dataset. SQL passed to :meth:`query` and :meth:`select_into` uses bare table names and
    ``@name`` parameters, and the common subset of DuckDB and GoogleSQL.
    """

    def load_frame(self, table: str, frame: pd.DataFrame) -> int:
        """Replace ``table`` with ``frame`` atomically; a failed load leaves the old table intact.

        Returns the number of rows loaded.
        """
        ...

    def query(self, sql: str, params: QueryParams | None = None) -> pd.DataFrame:
        """Run a parameterised SELECT and return the result as a DataFrame."""
        ...

    def select_into(self, table: str, sql: str, params: QueryParams | None = None) -> int:
        """Create or replace ``table`` from a parameterised SELECT; return its row count."""
        ...

    def export(self, table: str, uri: str) -> str:
        """Export ``table`` as one Parquet file to the lake URI ``gs://bucket/path``."""
        ...

    def table_exists(self, table: str) -> bool:
        """Whether ``table`` exists."""
        ...

    def columns(self, table: str) -> dict[str, str]:
        """Column name → warehouse type name (upper case, e.g. ``DATE``, ``BOOLEAN``, ``INT64``)."""
        ...


@dataclass(frozen=True)
class ObjectInfo:
    """What the lake knows about one stored object."""

    uri: str
    sha256: str
    md5: str
    bytes: int

    def as_dict(self) -> dict[str, Any]:
        return {"uri": self.uri, "sha256": self.sha256, "md5": self.md5, "bytes": self.bytes}


@runtime_checkable
class Lake(Protocol):
    """An object store addressed by ``gs://bucket/path`` URIs (a folder locally, GCS on GCP)."""

    def put_bytes(self, uri: str, data: bytes, content_type: str | None = None) -> ObjectInfo:
        """Store ``data`` at ``uri`` (whole or not at all) and return its checksums."""
        ...

    def get_bytes(self, uri: str) -> bytes:
        """Return the object's content; :class:`crashed.errors.NotFoundError` if absent."""
        ...

    def put_file(self, uri: str, path: Path) -> ObjectInfo:
        """Upload a local file to ``uri``."""
        ...

    def get_file(self, uri: str, path: Path) -> Path:
        """Download ``uri`` to ``path`` (written atomically) and return ``path``."""
        ...

    def exists(self, uri: str) -> bool:
        """Whether an object exists at ``uri``."""
        ...

    def list(self, prefix: str) -> list[str]:
        """URIs of all objects whose URI starts with ``prefix``, sorted."""
        ...

    def checksum(self, uri: str) -> ObjectInfo:
        """sha256, md5 and size of the stored object (computed from its content)."""
        ...


@dataclass(frozen=True)
class FileChange:
    """One file's new content in a proposal."""

    path: str
    content: str


@dataclass(frozen=True)
class Proposal:
    """A change to propose for review (a merge request on GitLab, a local proposal record)."""

    branch: str
    title: str
    description: str
    changes: Sequence[FileChange]
    labels: Sequence[str] = ("model-update",)
    target_branch: str = "main"


def proposal_changes(proposal: Proposal, target: str) -> dict[str, str]:
    """Path → content of a proposal's changes; :class:`InputError` if it is malformed.

    Both Git hosts apply the same rules: a bot branch other than the target, a title, at least
    one change, each a relative path inside the repository (no ``.``, ``..``, ``.git`` or empty
    segments), no path twice.
    """
    from crashed.errors import InputError

    if not proposal.branch or proposal.branch == target:
        raise InputError(
            f"proposal branch must be a bot branch other than the target {target!r} "
            f"(got {proposal.branch!r})"
        )
    if not proposal.title.strip():
        raise InputError("proposal title is empty")
    if not proposal.changes:
        raise InputError("proposal has no file changes")
    changes: dict[str, str] = {}
    for change in proposal.changes:
        if not isinstance(change, FileChange) or not isinstance(change.content, str):
            raise InputError(f"proposal change must be a FileChange with text content: {change!r}")
        path = change.path
        if (
            not path
            or path.startswith("/")
            or any(part in ("", ".", "..", ".git") for part in path.split("/"))
        ):
            raise InputError(f"proposal file path must be relative inside the repo: {path!r}")
        if path in changes:
            raise InputError(f"proposal changes {path!r} twice")
        changes[path] = change.content
    return changes


@dataclass(frozen=True)
class ProposalResult:
    """What the Git host did with a proposal."""

    action: str  # "created" | "updated" | "unchanged"
    id: str
    url: str
    branch: str
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class GitHost(Protocol):
    """Where model updates are proposed for review (GitLab, or a local git repository)."""

    def read_file(self, path: str, ref: str | None = None) -> str | None:
        """The file's content on ``ref`` (default: the target branch), or ``None`` if absent."""
        ...

    def propose(self, proposal: Proposal) -> ProposalResult:
        """Open or update the single open proposal for ``proposal.branch``."""
        ...
