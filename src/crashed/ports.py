"""Ports: the protocols the pipeline, serving and CLI depend on. Adapters implement them.

Every adapter is built once from :class:`crashed.settings.Settings` (see ``crashed.wiring``)
and injected; nothing below ``cli`` constructs an adapter itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import pandas as pd

    from crashed.orchestration_records import CompiledPipeline, DeployResult, RunInfo

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

    def load_chunks(
        self,
        table: str,
        chunks: Iterable[pd.DataFrame],
        retype: Callable[[], Mapping[str, str]] | None = None,
    ) -> int:
        """Replace ``table`` with the rows of ``chunks`` (the same columns and types in each),
        staged and swapped in only after the last one, so memory stays bounded by one chunk.

        Any failure, including an exception raised by the iterator, leaves the old table
        intact. ``retype()`` is called after the last chunk and names text columns to cast in
        the final table (column → ``INT64`` or ``FLOAT64``). Returns the number of rows loaded.
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
    target_branch: str | None = None  # None: the Git host's configured target branch


def proposal_changes(proposal: Proposal, target: str) -> dict[str, str]:
    """Path → content of a proposal's changes; :class:`InputError` if it is malformed.

    Both Git hosts apply the same rules: a bot branch other than the target, a title, at least
    one change, each a relative path inside the repository (no ``.``, ``..``, ``.git`` or empty
    segments), no path twice.
    """
    from crashed.errors import InputError

    if not proposal.branch or proposal.branch == target:
        raise InputError(f"proposal branch must differ from the target {target!r}")
    if not proposal.title.strip():
        raise InputError("proposal title is empty")
    if not proposal.changes:
        raise InputError("proposal has no file changes")
    changes: dict[str, str] = {}
    for change in proposal.changes:
        parts = change.path.split("/")
        if change.path.startswith("/") or any(p in ("", ".", "..", ".git") for p in parts):
            raise InputError(
                f"proposal file path must be relative inside the repo: {change.path!r}"
            )
        if change.path in changes:
            raise InputError(f"proposal changes {change.path!r} twice")
        changes[change.path] = change.content
    return changes


@dataclass(frozen=True)
class ProposalResult:
    """What the Git host did with a proposal."""

    action: str  # "created" | "updated" | "unchanged"
    id: str
    url: str
    branch: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FileRevision:
    """One commit on the target branch that changed a file, and the file's content there."""

    commit: str
    committed_at: str  # ISO 8601
    title: str
    content: str | None  # None: the commit deleted the file
    proposal_id: str = ""  # the merge request / local proposal that brought it ("" if none)
    proposal_url: str = ""
    merged_at: str | None = None  # when that proposal was merged, if known


@runtime_checkable
class GitHost(Protocol):
    """Where model updates are proposed for review (GitLab, or a local git repository)."""

    def read_file(self, path: str, ref: str | None = None) -> str | None:
        """The file's content on ``ref`` (default: the target branch), or ``None`` if absent."""
        ...

    def propose(self, proposal: Proposal) -> ProposalResult:
        """Open or update the single open proposal for ``proposal.branch``."""
        ...

    def history(self, path: str) -> list[FileRevision]:
        """Every commit on the target branch that changed ``path``, oldest first."""
        ...


@runtime_checkable
class Ports(Protocol):
    """The data ports a pipeline op works with, handed in by the composition root.

    ``crashed.wiring.Adapters`` builds the real ones lazily (an op that never touches the Git
    host never needs its token); tests hand in small in-memory fakes.
    """

    @property
    def lake(self) -> Lake: ...

    @property
    def warehouse(self) -> Warehouse: ...

    @property
    def git_host(self) -> GitHost: ...


# -- Orchestrator ---------------------------------------------------------------------------


@runtime_checkable
class Orchestrator(Protocol):
    """Where compiled pipelines are deployed and run (Kubeflow Pipelines, or this machine).

    Records live in :mod:`crashed.orchestration_records` (``CompiledPipeline``, ``DeployResult``,
    ``RunInfo``). ``pipeline`` is the crashed pipeline name (``crashed_pipeline``).
    """

    def deploy(
        self, compiled: CompiledPipeline, environment: str = "prod", dry_run: bool = False
    ) -> DeployResult:
        """Make ``compiled`` the pipeline's current version (idempotent; keeps history)."""
        ...

    def start_run(
        self,
        pipeline: str,
        parameters: Mapping[str, str],
        reason: str,
        environment: str = "prod",
    ) -> RunInfo:
        """Start one run of the deployed pipeline version with ``parameters``; ``reason`` says
        why (recorded with the run; pass it as a parameter too if the pipeline declares one)."""
        ...

    def runs_in_flight(self, pipeline: str, environment: str = "prod") -> list[RunInfo]:
        """The pipeline's runs that are pending or running."""
        ...


# -- Cluster (Kubernetes) ----------------------------------------------------------------------

from crashed.k8s_records import Applied, DeploymentInfo, Progress, RolloutState  # noqa: E402


@runtime_checkable
class Cluster(Protocol):
    """A Kubernetes cluster, seen from the inference service's deployment.

    Records (:class:`Applied`, :class:`DeploymentInfo`, :class:`RolloutState`) live in
    :mod:`crashed.k8s_records`.
    """

    def apply(self, objects: Sequence[Mapping[str, Any]]) -> list[Applied]:
        """Create or update each object (idempotent: an unchanged object stays untouched)."""
        ...

    def wait_for_rollout(
        self, namespace: str, name: str, timeout: float, progress: Progress
    ) -> RolloutState:
        """Wait until the Deployment's rollout completes, reporting progress lines.

        Raises :class:`crashed.errors.ServiceError` on timeout or ProgressDeadlineExceeded,
        naming the pods that are not ready, their conditions and recent warning events.
        """
        ...

    def deployment(self, namespace: str, name: str) -> DeploymentInfo | None:
        """The Deployment's images, ConfigMap volumes and state; ``None`` if absent."""
        ...

    def config_map_data(self, namespace: str, name: str) -> dict[str, str] | None:
        """A ConfigMap's ``data``; ``None`` if absent."""
        ...
