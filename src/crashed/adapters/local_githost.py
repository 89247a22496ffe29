"""The embedded Git host: the project's own git repository plus JSON proposal records.

A proposal is a bot branch (target branch tip + one commit changing only the proposed files)
and a record ``<CRASHED_HOME>/proposals/<id>.json`` playing the merge request. Proposals are
built with plumbing only (``hash-object``, ``read-tree`` into a temporary index,
``update-index``, ``write-tree``, ``commit-tree``, ``update-ref``), so the user's working tree,
index and HEAD are never touched: it works with uncommitted changes and in CI.

Reviewer operations (:meth:`LocalGitHost.approve`, :meth:`LocalGitHost.reject`, …) back the
``crashed models proposals/review/approve/reject`` commands. Approving merges into the target
branch with a compare-and-swap ref update; when the target branch is checked out in a working
tree, the merge is a ``git merge --ff-only`` there (refused if the proposed files have local
modifications), so the checked-out copy follows the branch.

Every record write is a temp file + rename, and every operation holds a lock on the
proposals folder, so concurrent runs neither interleave nor leave half-written records.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from crashed.errors import ConfigError, CrashedError, InputError, NotFoundError, ServiceError
from crashed.ports import Proposal, ProposalResult, proposal_changes

if TYPE_CHECKING:
    from crashed.settings import Settings

log = logging.getLogger(__name__)

Status = Literal["open", "merged", "rejected", "superseded"]
BOT_NAME = "crashed-bot"
BOT_EMAIL = "crashed-bot@localhost"
_ZERO_OID = "0" * 40
_DEFAULT_PROPOSAL_TARGET = Proposal.__dataclass_fields__["target_branch"].default
# Variables that would redirect our git calls away from the repository we were given.
_GIT_LOCATION_VARS = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
)


class RefusedError(CrashedError):
    """The repository's state blocks the operation (local edits, conflict): exit code 5."""

    exit_code = 5


def _now() -> str:
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
    note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProposalRecord:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class Approval:
    """What :meth:`LocalGitHost.approve` did."""

    record: ProposalRecord
    merge_commit: str
    rebased: bool
    worktree: Path | None  # the working tree whose checkout was fast-forwarded, if any
    branch_deleted: bool


@dataclass(frozen=True)
class _Entry:
    """A file in a git tree."""

    mode: str
    oid: str


class LocalGitHost:
    """:class:`~crashed.ports.GitHost` on a local git repository, with reviewer operations."""

    def __init__(self, repo: Path | None, home: Path, target_branch: str = "main") -> None:
        if not target_branch:
            raise ConfigError("GITLAB_TARGET_BRANCH is empty")
        self.target_branch = target_branch
        self.root, self.bare = _find_repository(Path(repo) if repo else Path.cwd(), repo)
        self.proposals_dir = Path(home).expanduser().resolve() / "proposals"

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalGitHost:
        """The repository is ``CRASHED_REPO`` (default: the one around the current directory)."""
        return cls(settings.crashed_repo, settings.home, settings.gitlab_target_branch)

    def __repr__(self) -> str:
        return f"LocalGitHost(root={str(self.root)!r}, target={self.target_branch!r})"

    # -- GitHost port -----------------------------------------------------------------------

    def read_file(self, path: str, ref: str | None = None) -> str | None:
        """The file's content on ``ref`` (default: the target branch), ``None`` if absent."""
        ref = ref or self.target_branch
        commit = self._resolve(ref)
        if commit is None:
            raise NotFoundError(f"git ref {ref!r} not found in {self.root}")
        entry = self._entry(commit, path)
        return None if entry is None else self._blob(entry.oid).decode("utf-8")

    def propose(self, proposal: Proposal) -> ProposalResult:
        """Open or update the single open proposal for ``proposal.branch``."""
        target = self._target_of(proposal)
        changes = _validated_changes(proposal, target, self.root)
        with self._locked():
            self._refuse_if_checked_out(proposal.branch, "move")
            tip = self._require_branch(target)
            records = self._load_all()
            open_records = sorted(
                (r for r in records if r.status == "open" and r.branch == proposal.branch),
                key=lambda r: r.id,
                reverse=True,
            )
            keep = open_records[0] if open_records else None
            superseded = [
                self._set_status(r, "superseded", f"superseded by #{keep.id}")
                for r in open_records[1:]
                if keep is not None
            ]
            current = {path: self._entry(tip, path) for path in changes}
            wanted = {path: self._hash(content) for path, content in changes.items()}
            if all(
                current[path] is not None and current[path].oid == oid  # type: ignore[union-attr]
                for path, oid in wanted.items()
            ):
                return self._already_on_target(proposal, target, tip, keep, superseded)
            return self._open_or_update(
                proposal, target, tip, keep, superseded, records, current, wanted
            )

    # -- reviewer operations ---------------------------------------------------------------

    def list_proposals(self, status: Status | None = None) -> list[ProposalRecord]:
        """All proposal records (optionally only those with ``status``), oldest first."""
        records = sorted(self._load_all(), key=lambda r: r.id)
        return [r for r in records if status is None or r.status == status]

    def get(self, proposal_id: int | str) -> ProposalRecord:
        """The record with ``proposal_id``; :class:`NotFoundError` if there is none."""
        number = _parse_id(proposal_id)
        path = self._record_path(number)
        if not path.is_file():
            raise NotFoundError(f"no proposal #{number} (looked in {self.proposals_dir})")
        return self._read_record(path)

    def diff(self, proposal_id: int | str) -> str:
        """``git diff base commit`` of the proposal (plain text, no colour)."""
        record = self.get(proposal_id)
        for oid in (record.base, record.commit):
            if self._resolve(oid) is None:
                raise NotFoundError(
                    f"proposal #{record.id}: commit {oid[:12]} is no longer in {self.root} "
                    "(garbage-collected?)"
                )
        return self._git(
            "-c",
            "color.ui=never",
            "diff",
            "--no-ext-diff",
            "--no-color",
            record.base,
            record.commit,
            "--",
        ).decode("utf-8", errors="replace")

    def approve(self, proposal_id: int | str) -> Approval:
        """Merge the proposal into its target branch, mark it merged, delete its branch.

        Fast-forwards when the target has not moved; otherwise re-applies the proposed files on
        the new tip unless the target changed them meanwhile (then refuses). When the target is
        checked out in a working tree, the proposed files must be unmodified there and the
        checkout is fast-forwarded with ``git merge --ff-only``.
        """
        with self._locked():
            record = self._require_open(proposal_id, "approve")
            tip = self._require_branch(record.target_branch)
            if self._resolve(record.commit) is None:
                raise NotFoundError(
                    f"proposal #{record.id}: commit {record.commit[:12]} is missing from "
                    f"{self.root}; reject it and propose again"
                )
            files = record.files or self._changed_files(record.base, record.commit)
            new_tip, rebased = self._merged_tip(record, tip, files)
            worktree = self._checked_out(record.target_branch)
            if worktree is not None:
                self._require_clean(worktree, files, record)
            if new_tip != tip:
                if worktree is not None:
                    self._git("merge", "--ff-only", "--quiet", new_tip, cwd=worktree)
                else:
                    self._git(
                        "update-ref",
                        "-m",
                        f"crashed: merge proposal #{record.id}",
                        f"refs/heads/{record.target_branch}",
                        new_tip,
                        tip,
                    )
            record.merge_commit = new_tip
            self._set_status(
                record,
                "merged",
                f"merged into {record.target_branch} as {new_tip[:12]}"
                + (" (re-applied on the moved target)" if rebased else ""),
            )
            deleted = self._delete_branch(record)
            log.debug(
                "proposal #%s merged into %s (%s)", record.id, record.target_branch, new_tip[:12]
            )
            return Approval(record, new_tip, rebased, worktree if new_tip != tip else None, deleted)

    def reject(self, proposal_id: int | str) -> ProposalRecord:
        """Mark the proposal rejected and delete its bot branch; the target is untouched."""
        with self._locked():
            record = self._require_open(proposal_id, "reject")
            self._set_status(record, "rejected", "rejected by a reviewer")
            self._delete_branch(record)
            return record

    def has_branch(self, branch: str) -> bool:
        """Whether ``refs/heads/<branch>`` exists."""
        return self._resolve(f"refs/heads/{branch}") is not None

    # -- propose helpers -------------------------------------------------------------------

    def _target_of(self, proposal: Proposal) -> str:
        """A proposal naming a non-default target wins; otherwise ``GITLAB_TARGET_BRANCH``."""
        if proposal.target_branch and proposal.target_branch != _DEFAULT_PROPOSAL_TARGET:
            return proposal.target_branch
        return self.target_branch

    def _already_on_target(
        self,
        proposal: Proposal,
        target: str,
        tip: str,
        keep: ProposalRecord | None,
        superseded: list[ProposalRecord],
    ) -> ProposalResult:
        """The target already has the content: open nothing, retire any open proposal."""
        if keep is not None:
            superseded.append(
                self._set_status(keep, "superseded", f"{target} already has this content")
            )
        for record in superseded:
            self._delete_branch(record)
        log.info("%s already has the proposed content; nothing proposed", target)
        return ProposalResult(
            action="unchanged",
            id="",
            url=self.proposals_dir.as_uri(),
            branch=proposal.branch,
            extra={
                "reason": "target-has-content",
                "target_branch": target,
                "base": tip,
                "superseded": [r.id for r in superseded],
            },
        )

    def _open_or_update(
        self,
        proposal: Proposal,
        target: str,
        tip: str,
        keep: ProposalRecord | None,
        superseded: list[ProposalRecord],
        records: Sequence[ProposalRecord],
        current: Mapping[str, _Entry | None],
        wanted: Mapping[str, str],
    ) -> ProposalResult:
        for record in superseded:
            self._delete_branch(record)
        number = keep.id if keep is not None else self._next_id(records)
        branch_ref = f"refs/heads/{proposal.branch}"
        head = self._resolve(branch_ref)
        tree = self._tree_with(
            tip,
            {
                path: _Entry(entry.mode if entry else "100644", oid)
                for path, oid in wanted.items()
                for entry in [current[path]]
            },
        )
        reusable = (
            keep is not None
            and head == keep.commit
            and self._parents(head) == [tip]
            and self._resolve(f"{head}^{{tree}}") == tree
        )
        commit = (
            head
            if reusable and head
            else self._commit(tree, [tip], _commit_message(proposal, number))
        )
        moved = commit != head
        if moved:
            self._git(
                "update-ref",
                "-m",
                f"crashed: proposal #{number}",
                branch_ref,
                commit,
                head or _ZERO_OID,
            )
        now = _now()
        labels = [label for label in proposal.labels if label]
        if keep is None:
            record = ProposalRecord(
                id=number,
                status="open",
                branch=proposal.branch,
                target_branch=target,
                title=proposal.title,
                description=proposal.description,
                commit=commit,
                base=tip,
                created_at=now,
                updated_at=now,
                files=sorted(wanted),
                labels=labels,
            )
            action = "created"
        else:
            record = keep
            same = not moved and (
                record.title,
                record.description,
                record.target_branch,
                record.labels,
            ) == (proposal.title, proposal.description, target, labels)
            if same:
                return self._result("unchanged", record, superseded)
            record.title, record.description = proposal.title, proposal.description
            record.target_branch, record.labels = target, labels
            record.commit, record.base, record.files = commit, tip, sorted(wanted)
            record.updated_at = now
            action = "updated"
        try:
            self._write_record(record)
        except BaseException:
            if moved:  # leave the branch as it was: no half-made proposal
                if head is None:
                    self._git("update-ref", "-d", branch_ref, commit, check=False)
                else:
                    self._git("update-ref", branch_ref, head, commit, check=False)
            raise
        log.info(
            "proposal #%s %s (%s → %s, commit %s)",
            number,
            action,
            proposal.branch,
            target,
            commit[:12],
        )
        return self._result(action, record, superseded)

    def _result(
        self, action: str, record: ProposalRecord, superseded: Sequence[ProposalRecord]
    ) -> ProposalResult:
        return ProposalResult(
            action=action,
            id=str(record.id),
            url=self._record_path(record.id).as_uri(),
            branch=record.branch,
            extra={
                "commit": record.commit,
                "base": record.base,
                "target_branch": record.target_branch,
                "superseded": [r.id for r in superseded],
            },
        )

    def _next_id(self, records: Sequence[ProposalRecord]) -> int:
        return max(max((r.id for r in records), default=0), self._last_id()) + 1

    def _last_id(self) -> int:
        """The highest id ever handed out (kept even if a record file is deleted)."""
        try:
            return int((self.proposals_dir / "last-id").read_text().strip())
        except (FileNotFoundError, ValueError):
            return 0

    # -- approve helpers -------------------------------------------------------------------

    def _require_open(self, proposal_id: int | str, action: str) -> ProposalRecord:
        record = self.get(proposal_id)
        if record.status != "open":
            raise InputError(
                f"cannot {action} proposal #{record.id}: it is {record.status}, not open"
            )
        return record

    def _merged_tip(
        self, record: ProposalRecord, tip: str, files: Sequence[str]
    ) -> tuple[str, bool]:
        """(new target tip, whether the change was re-applied on a moved target)."""
        if tip == record.base:
            return record.commit, False
        changed: dict[str, _Entry] = {}
        for path in files:
            at_base = self._entry(record.base, path)
            at_tip = self._entry(tip, path)
            proposed = self._entry(record.commit, path)
            if at_tip == proposed:
                continue
            if at_tip != at_base:
                raise RefusedError(
                    f"cannot approve proposal #{record.id}: {path} changed on "
                    f"{record.target_branch} since the proposal was made (base "
                    f"{record.base[:12]}, now {tip[:12]}); reject it and propose again"
                )
            if proposed is None:
                raise CrashedError(
                    f"cannot approve proposal #{record.id}: it deletes {path}, which local "
                    "proposals do not support"
                )
            changed[path] = proposed
        if not changed:
            return tip, False  # the target already has the proposed content
        tree = self._tree_with(tip, changed)
        message = self._git("log", "-1", "--format=%B", record.commit).decode().rstrip()
        message += f"\n\n(re-applied on {record.target_branch} at {tip[:12]})\n"
        return self._commit(tree, [tip], message), True

    def _require_clean(self, worktree: Path, files: Sequence[str], record: ProposalRecord) -> None:
        status = self._git(
            "status", "--porcelain=v1", "--untracked-files=all", "--", *files, cwd=worktree
        ).decode("utf-8", errors="replace")
        if status.strip():
            dirty = ", ".join(sorted({line[3:] for line in status.splitlines() if line}))
            raise RefusedError(
                f"cannot approve proposal #{record.id}: {dirty} has local modifications in "
                f"{worktree} (where {record.target_branch} is checked out); commit, stash "
                "(git stash) or discard them, then approve again"
            )

    def _delete_branch(self, record: ProposalRecord) -> bool:
        """Delete the bot branch if it still points at the proposal and nobody has it out."""
        ref = f"refs/heads/{record.branch}"
        if self._resolve(ref) != record.commit or self._checked_out(record.branch) is not None:
            return False
        return self._git("update-ref", "-d", ref, record.commit, check=False) is not None

    # -- git plumbing ----------------------------------------------------------------------

    def _git(
        self,
        *args: str,
        stdin: bytes | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        check: bool = True,
    ) -> bytes:
        """Run git in the repository; stdout, or :class:`ServiceError` (``None`` if unchecked)."""
        return _run_git(cwd or self.root, args, stdin=stdin, env=env, check=check)  # type: ignore[return-value]

    def _resolve(self, ref: str) -> str | None:
        """The object id ``ref`` names (peeled to a commit unless it names a tree), or None."""
        spec = ref if ref.endswith("}") else f"{ref}^{{commit}}"
        out = _run_git(self.root, ("rev-parse", "--verify", "--quiet", spec), check=False)
        oid = out.decode().strip() if out else ""
        return oid or None

    def _require_branch(self, branch: str) -> str:
        tip = self._resolve(f"refs/heads/{branch}")
        if tip is None:
            raise NotFoundError(
                f"target branch {branch!r} not found in {self.root} (check GITLAB_TARGET_BRANCH)"
            )
        return tip

    def _entry(self, commit: str, path: str) -> _Entry | None:
        out = self._git("ls-tree", "-z", commit, "--", path).decode()
        for item in out.split("\0"):
            meta, _, name = item.partition("\t")
            if name == path:
                mode, kind, oid = meta.split()
                if kind != "blob":
                    raise InputError(f"{path} is a {kind} in {commit[:12]}, not a file")
                return _Entry(mode, oid)
        return None

    def _blob(self, oid: str) -> bytes:
        return self._git("cat-file", "blob", oid)

    def _hash(self, content: str) -> str:
        """Store ``content`` as a blob (exact bytes, no filters) and return its id."""
        out = self._git(
            "hash-object", "-w", "--no-filters", "--stdin", stdin=content.encode("utf-8")
        )
        return out.decode().strip()

    def _tree_with(self, commit: str, entries: Mapping[str, _Entry]) -> str:
        """The tree of ``commit`` with ``entries`` replaced, built in a temporary index."""
        with tempfile.TemporaryDirectory(prefix="crashed-index-") as folder:
            env = {"GIT_INDEX_FILE": str(Path(folder) / "index")}
            self._git("read-tree", commit, env=env)
            for path, entry in entries.items():
                self._git(
                    "update-index",
                    "--add",
                    "--cacheinfo",
                    f"{entry.mode},{entry.oid},{path}",
                    env=env,
                )
            return self._git("write-tree", env=env).decode().strip()

    def _commit(self, tree: str, parents: Sequence[str], message: str) -> str:
        env = {
            "GIT_AUTHOR_NAME": BOT_NAME,
            "GIT_AUTHOR_EMAIL": BOT_EMAIL,
            "GIT_COMMITTER_NAME": BOT_NAME,
            "GIT_COMMITTER_EMAIL": BOT_EMAIL,
        }
        args = ["commit-tree", "--no-gpg-sign", tree]
        for parent in parents:
            args += ["-p", parent]
        return self._git(*args, stdin=message.encode("utf-8"), env=env).decode().strip()

    def _parents(self, commit: str) -> list[str]:
        out = self._git("rev-list", "--parents", "-n", "1", commit).decode().split()
        return out[1:]

    def _changed_files(self, base: str, commit: str) -> list[str]:
        out = self._git("diff-tree", "-r", "-z", "--name-only", "--no-renames", base, commit)
        return [name for name in out.decode().split("\0") if name]

    def _checked_out(self, branch: str) -> Path | None:
        """The working tree that has ``branch`` checked out, if any."""
        out = self._git("worktree", "list", "--porcelain").decode("utf-8", errors="replace")
        for block in out.split("\n\n"):
            lines = dict(
                (line.partition(" ")[0], line.partition(" ")[2]) for line in block.splitlines()
            )
            if lines.get("branch") == f"refs/heads/{branch}" and "worktree" in lines:
                path = Path(lines["worktree"])
                if path.is_dir() and "bare" not in lines:
                    return path
        return None

    def _refuse_if_checked_out(self, branch: str, action: str) -> None:
        where = self._checked_out(branch)
        if where is not None:
            raise RefusedError(
                f"bot branch {branch!r} is checked out in {where}; switch away from it so "
                f"crashed can {action} it"
            )

    # -- records ---------------------------------------------------------------------------

    def _record_path(self, number: int) -> Path:
        return self.proposals_dir / f"{number}.json"

    def _read_record(self, path: Path) -> ProposalRecord:
        try:
            return ProposalRecord.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (ValueError, TypeError) as error:
            raise CrashedError(f"proposal record {path} is unreadable: {error}") from None

    def _load_all(self) -> list[ProposalRecord]:
        if not self.proposals_dir.is_dir():
            return []
        return [
            self._read_record(path)
            for path in self.proposals_dir.glob("*.json")
            if path.stem.isdigit()
        ]

    def _write_record(self, record: ProposalRecord) -> None:
        _atomic_write(self._record_path(record.id), json.dumps(record.as_dict(), indent=2) + "\n")
        if record.id > self._last_id():
            _atomic_write(self.proposals_dir / "last-id", f"{record.id}\n")

    def _set_status(self, record: ProposalRecord, status: Status, note: str) -> ProposalRecord:
        record.status, record.note, record.updated_at = status, note, _now()
        self._write_record(record)
        return record

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold an exclusive lock on the proposals folder (one operation at a time)."""
        self.proposals_dir.mkdir(parents=True, exist_ok=True)
        with (self.proposals_dir / ".lock").open("a+") as handle:
            try:
                import fcntl
            except ImportError:  # pragma: no cover - not POSIX: best effort, no lock
                yield
                return
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


# -- module helpers ------------------------------------------------------------------------


def _run_git(
    cwd: Path,
    args: Sequence[str],
    *,
    stdin: bytes | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
) -> bytes | None:
    full_env = {k: v for k, v in os.environ.items() if k not in _GIT_LOCATION_VARS}
    full_env.update({"GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"})
    full_env.update(env or {})
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=cwd,
            input=stdin,
            env=full_env,
            capture_output=True,
            check=False,
        )
    except FileNotFoundError:
        raise ConfigError("git is not installed (the local Git host needs it)") from None
    if done.returncode != 0:
        if not check:
            return None
        detail = done.stderr.decode("utf-8", errors="replace").strip() or f"exit {done.returncode}"
        raise ServiceError(f"git {' '.join(args[:2])} failed in {cwd}: {detail}")
    return done.stdout


def _find_repository(start: Path, configured: Path | None) -> tuple[Path, bool]:
    """(working tree top-level, or git dir when bare; whether bare) of the repo at ``start``."""
    name = f"CRASHED_REPO={configured}" if configured else f"the current directory ({start})"
    start = start.expanduser().resolve()
    if not start.is_dir():
        raise ConfigError(f"{name} is not a git repository (no such directory)")
    out = _run_git(start, ("rev-parse", "--is-bare-repository", "--absolute-git-dir"), check=False)
    if out is None:
        raise ConfigError(
            f"{name} is not a git repository: set CRASHED_REPO to one, or run `git init`"
        )
    bare, git_dir = out.decode().split("\n")[:2]
    if bare == "true":
        return Path(git_dir), True
    top = _run_git(start, ("rev-parse", "--show-toplevel"), check=False)
    if top is None or not top.strip():
        raise ConfigError(f"{name} is inside a .git folder, not a working tree")
    return Path(top.decode().strip()), False


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _parse_id(value: int | str) -> int:
    text = str(value).strip().lstrip("#!")
    if not text.isdigit() or int(text) < 1:
        raise InputError(f"proposal id must be a positive integer (got {value!r})")
    return int(text)


def _commit_message(proposal: Proposal, number: int) -> str:
    return (
        f"{proposal.title.strip()}\n\n"
        f"Proposal #{number} from crashed on branch {proposal.branch}; review it with\n"
        f"`crashed models review {number}`.\n"
    )


def _validated_changes(proposal: Proposal, target: str, root: Path) -> dict[str, str]:
    """:func:`crashed.ports.proposal_changes` plus git's own branch-name rules."""
    changes = proposal_changes(proposal, target)
    if _run_git(root, ("check-ref-format", "--branch", proposal.branch), check=False) is None:
        raise InputError(f"proposal branch {proposal.branch!r} is not a valid branch name")
    return changes
