"""Small in-memory fakes of the ports (cosmicpython style) for fast, process-free tests.

They keep the contracts the adapter contract suites pin down (atomic replace, NotFoundError,
checksums from content, one open proposal per branch) and nothing more.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from crashed.core.checksums import bytes_digest
from crashed.errors import NotFoundError
from crashed.orchestration_records import RunInfo
from crashed.ports import (
    FileRevision,
    Lake,
    ObjectInfo,
    Proposal,
    ProposalResult,
    QueryParams,
    Warehouse,
    proposal_changes,
)


class FakeLake:
    """A dict of URI → bytes."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put_bytes(self, uri: str, data: bytes, content_type: str | None = None) -> ObjectInfo:
        self.objects[uri] = bytes(data)
        return self.checksum(uri)

    def get_bytes(self, uri: str) -> bytes:
        if uri not in self.objects:
            raise NotFoundError(f"no object at {uri}")
        return self.objects[uri]

    def put_file(self, uri: str, path: Any) -> ObjectInfo:
        return self.put_bytes(uri, Path(path).read_bytes())

    def get_file(self, uri: str, path: Any) -> Any:
        path.write_bytes(self.get_bytes(uri))
        return path

    def exists(self, uri: str) -> bool:
        return uri in self.objects

    def list(self, prefix: str) -> list[str]:
        return sorted(uri for uri in self.objects if uri.startswith(prefix))

    def checksum(self, uri: str) -> ObjectInfo:
        sha256, md5, size = bytes_digest(self.get_bytes(uri))
        return ObjectInfo(uri=uri, sha256=sha256, md5=md5, bytes=size)


class FakeWarehouse:
    """Tables as DataFrames; SQL runs on them through an in-memory DuckDB (``@name`` params)."""

    def __init__(self, lake: Lake) -> None:
        self.tables: dict[str, pd.DataFrame] = {}
        self.lake = lake

    def _sql(self, sql: str, params: QueryParams | None) -> pd.DataFrame:
        con = duckdb.connect()
        for name, frame in self.tables.items():
            con.register(name, frame)
        return con.execute(re.sub(r"@(\w+)", r"$\1", sql), dict(params or {})).df()

    def load_frame(self, table: str, frame: pd.DataFrame) -> int:
        self.tables[table] = frame.copy()
        return len(frame)

    def load_chunks(self, table: str, chunks: Any, retype: Any = None) -> int:
        frame = pd.concat(list(chunks), ignore_index=True)  # the old table stays on failure
        for column, kind in (retype() if retype else {}).items():
            frame[column] = pd.to_numeric(frame[column]).astype(
                "Int64" if kind == "INT64" else "Float64"
            )
        return self.load_frame(table, frame)

    def query(self, sql: str, params: QueryParams | None = None) -> pd.DataFrame:
        return self._sql(sql, params)

    def select_into(self, table: str, sql: str, params: QueryParams | None = None) -> int:
        self.tables[table] = self._sql(sql, params)
        return len(self.tables[table])

    def export(self, table: str, uri: str) -> str:
        buffer = io.BytesIO()
        self.tables[table].to_parquet(buffer, index=False)
        self.lake.put_bytes(uri, buffer.getvalue())
        return uri

    def table_exists(self, table: str) -> bool:
        return table in self.tables

    def columns(self, table: str) -> dict[str, str]:
        if table not in self.tables:
            raise NotFoundError(f"table {table} does not exist")
        return {str(c): str(t).upper() for c, t in self.tables[table].dtypes.items()}


class FakeGitHost:
    """Files on the target branch, and the open proposals by branch."""

    def __init__(self, target: str = "main") -> None:
        self.target = target
        self.files: dict[str, str] = {}
        self.proposals: dict[str, Proposal] = {}
        self.revisions: dict[str, list[FileRevision]] = {}
        self.merged = 0

    def read_file(self, path: str, ref: str | None = None) -> str | None:
        return self.files.get(path)

    def propose(self, proposal: Proposal) -> ProposalResult:
        proposal_changes(proposal, self.target)
        action = "updated" if proposal.branch in self.proposals else "created"
        self.proposals[proposal.branch] = proposal
        number = list(self.proposals).index(proposal.branch) + 1
        return ProposalResult(action, str(number), f"fake://proposals/{number}", proposal.branch)

    def history(self, path: str) -> list[FileRevision]:
        return list(self.revisions.get(path, []))

    def merge(self, branch: str) -> None:
        """The reviewer merges: the proposal's files land on the target branch."""
        proposal = self.proposals.pop(branch)
        changes = proposal_changes(proposal, self.target)
        self.files.update(changes)
        self.merged += 1
        for path, content in changes.items():
            self.revisions.setdefault(path, []).append(
                FileRevision(
                    commit=f"{self.merged:040x}",
                    committed_at=f"2026-12-01T00:00:{self.merged:02d}+00:00",
                    title=proposal.title,
                    content=content,
                    proposal_id=str(self.merged),
                )
            )


@dataclass
class FakePorts:
    """The ports an op needs, all in memory."""

    lake: FakeLake = field(default_factory=FakeLake)
    git_host: FakeGitHost = field(default_factory=FakeGitHost)
    warehouse: Warehouse = field(init=False)

    def __post_init__(self) -> None:
        self.warehouse = FakeWarehouse(self.lake)


class FakeOrchestrator:
    """Records the runs it is asked to start; ``finish`` ends them."""

    def __init__(self) -> None:
        self.runs: list[RunInfo] = []

    def deploy(self, compiled: Any, environment: str = "prod", dry_run: bool = False) -> Any:
        raise NotImplementedError("the fake orchestrator only starts runs")

    def start_run(
        self, pipeline: str, parameters: Any, reason: str, environment: str = "prod"
    ) -> RunInfo:
        run = RunInfo(
            run_id=f"fake-run-{len(self.runs) + 1}",
            pipeline=pipeline,
            status="running",
            started_at="2026-12-01T00:00:00+00:00",
            parameters=dict(parameters),
            reason=reason,
        )
        self.runs.append(run)
        return run

    def runs_in_flight(self, pipeline: str, environment: str = "prod") -> list[RunInfo]:
        return [r for r in self.runs if r.pipeline == pipeline and r.in_flight]

    def finish(self) -> None:
        self.runs = [replace(r, status="succeeded") for r in self.runs]
