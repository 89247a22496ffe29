"""The embedded Git host: the project's own git repository plus JSON proposal records.

A proposal is a bot branch (target branch tip + one commit changing only the proposed files)
and a record ``<CRASHED_HOME>/proposals/<id>.json`` playing the merge request
(:mod:`crashed.adapters.local_proposals`). Proposals are built with plumbing only
(:mod:`crashed.adapters.git_plumbing`), so the user's working tree, index and HEAD are never
touched: it works with uncommitted changes and in CI.

Reviewer operations (:meth:`LocalGitHost.approve`, :meth:`LocalGitHost.reject`, …) back the
``crashed models proposals/review/approve/reject`` commands. Approving merges into the target
branch with a compare-and-swap ref update; when the target branch is checked out in a working
tree, the merge is a ``git merge --ff-only`` there (refused if the proposed files have local
modifications), so the checked-out copy follows the branch.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from crashed.adapters.git_plumbing import Entry, Git, find_repository
from crashed.adapters.local_proposals import ProposalRecord, ProposalStore, Status, now
from crashed.errors import ConfigError, CrashedError, InputError, NotFoundError
from crashed.ports import FileRevision, Proposal, ProposalResult, proposal_changes

if TYPE_CHECKING:
    from crashed.settings import Settings

log = logging.getLogger(__name__)

_PROPOSAL_IN_MESSAGE = re.compile(r"^Proposal #(\d+) from crashed", re.MULTILINE)


class RefusedError(CrashedError):
    """The repository's state blocks the operation (local edits, conflict): exit code 5."""

    exit_code = 5


@dataclass(frozen=True)
class Approval:
    """What :meth:`LocalGitHost.approve` did."""

    record: ProposalRecord
    merge_commit: str
    rebased: bool
    worktree: Path | None  # the working tree whose checkout was fast-forwarded, if any
    branch_deleted: bool


class LocalGitHost:
    """:class:`~crashed.ports.GitHost` on a local git repository, with reviewer operations."""

    def __init__(self, repo: Path | None, home: Path, target_branch: str = "main") -> None:
        if not target_branch:
            raise ConfigError("GITLAB_TARGET_BRANCH is empty")
        self.target_branch = target_branch
        self.root = find_repository(Path(repo) if repo else Path.cwd(), repo)
        self.git = Git(self.root)
        self.store = ProposalStore(Path(home).expanduser().resolve() / "proposals")
        self.proposals_dir = self.store.folder

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
        commit = self.git.resolve(ref)
        if commit is None:
            raise NotFoundError(f"git ref {ref!r} not found in {self.root}")
        return self.git.read(commit, path)

    def propose(self, proposal: Proposal) -> ProposalResult:
        """Open or update the single open proposal for ``proposal.branch``."""
        target = proposal.target_branch or self.target_branch
        changes = proposal_changes(proposal, target)
        if not self.git.valid_branch_name(proposal.branch):
            raise InputError(f"proposal branch {proposal.branch!r} is not a valid branch name")
        with self.store.locked():
            where = self.git.checked_out(proposal.branch)
            if where is not None:
                raise RefusedError(
                    f"bot branch {proposal.branch!r} is checked out in {where}; switch away "
                    "from it so crashed can move it"
                )
            tip = self._require_branch(target)
            open_records = [r for r in self.store.all("open") if r.branch == proposal.branch]
            keep = open_records.pop() if open_records else None  # the newest stays open
            superseded = [
                self.store.set_status(r, "superseded", f"superseded by #{keep.id}")
                for r in open_records
                if keep is not None
            ]
            current = {p: e for p in changes if (e := self.git.entry(tip, p)) is not None}
            wanted = {path: self.git.hash(content) for path, content in changes.items()}
            if all(p in current and current[p].oid == oid for p, oid in wanted.items()):
                if keep is not None:
                    note = f"{target} already has this content"
                    superseded.append(self.store.set_status(keep, "superseded", note))
                for record in superseded:
                    self._delete_branch(record)
                log.info("%s already has the proposed content; nothing proposed", target)
                return ProposalResult(
                    action="unchanged",
                    id="",
                    url=self.store.folder.as_uri(),
                    branch=proposal.branch,
                    extra={
                        "reason": "target-has-content",
                        "target_branch": target,
                        "base": tip,
                        "superseded": [r.id for r in superseded],
                    },
                )
            for record in superseded:
                self._delete_branch(record)
            entries = {
                path: Entry(current[path].mode if path in current else "100644", oid)
                for path, oid in wanted.items()
            }
            return self._open_or_update(proposal, target, tip, keep, superseded, entries)

    def history(self, path: str) -> list[FileRevision]:
        """Commits on the target branch that changed ``path``, oldest first, with the local
        proposal each came from (its id is in the commit message)."""
        tip = self._require_branch(self.target_branch)
        revisions = []
        for entry in self.git.log(tip, path):
            found = _PROPOSAL_IN_MESSAGE.search(entry.message)
            record = self.store.find(int(found.group(1))) if found else None
            revisions.append(
                FileRevision(
                    commit=entry.commit,
                    committed_at=entry.committed_at,
                    title=entry.message.splitlines()[0] if entry.message else "",
                    content=self.git.read(entry.commit, path),
                    proposal_id=found.group(1) if found else "",
                    proposal_url=self.store.url(record.id) if record else "",
                    merged_at=record.merged_at if record else None,
                )
            )
        return revisions

    # -- reviewer operations ---------------------------------------------------------------

    def list_proposals(self, status: Status | None = None) -> list[ProposalRecord]:
        """All proposal records (optionally only those with ``status``), oldest first."""
        return self.store.all(status)

    def get(self, proposal_id: int | str) -> ProposalRecord:
        """The record with ``proposal_id``; :class:`NotFoundError` if there is none."""
        return self.store.get(proposal_id)

    def diff(self, proposal_id: int | str) -> str:
        """``git diff base commit`` of the proposal (plain text, no colour)."""
        record = self.store.get(proposal_id)
        for oid in (record.base, record.commit):
            if self.git.resolve(oid) is None:
                raise NotFoundError(
                    f"proposal #{record.id}: commit {oid[:12]} is no longer in {self.root} "
                    "(garbage-collected?)"
                )
        return self.git.diff(record.base, record.commit)

    def approve(self, proposal_id: int | str) -> Approval:
        """Merge the proposal into its target branch, mark it merged, delete its branch.

        Fast-forwards when the target has not moved; otherwise re-applies the proposed files on
        the new tip unless the target changed them meanwhile (then refuses). When the target is
        checked out in a working tree, the proposed files must be unmodified there and the
        checkout is fast-forwarded with ``git merge --ff-only``.
        """
        with self.store.locked():
            record = self._require_open(proposal_id, "approve")
            tip = self._require_branch(record.target_branch)
            if self.git.resolve(record.commit) is None:
                raise NotFoundError(
                    f"proposal #{record.id}: commit {record.commit[:12]} is missing from "
                    f"{self.root}; reject it and propose again"
                )
            files = record.files or self.git.changed_files(record.base, record.commit)
            new_tip, rebased = self._merged_tip(record, tip, files)
            worktree = self.git.checked_out(record.target_branch)
            if worktree is not None:
                self._require_clean(worktree, files, record)
            if new_tip != tip:
                if worktree is not None:
                    self.git("merge", "--ff-only", "--quiet", new_tip, cwd=worktree)
                else:
                    ref = f"refs/heads/{record.target_branch}"
                    self.git.update_ref(ref, new_tip, tip, f"crashed: merge proposal #{record.id}")
            record.merge_commit, record.merged_at = new_tip, now()
            how = " (re-applied on the moved target)" if rebased else ""
            note = f"merged into {record.target_branch} as {new_tip[:12]}{how}"
            self.store.set_status(record, "merged", note)
            deleted = self._delete_branch(record)
            log.debug("proposal #%s %s", record.id, note)
            return Approval(record, new_tip, rebased, worktree if new_tip != tip else None, deleted)

    def reject(self, proposal_id: int | str) -> ProposalRecord:
        """Mark the proposal rejected and delete its bot branch; the target is untouched."""
        with self.store.locked():
            record = self._require_open(proposal_id, "reject")
            self.store.set_status(record, "rejected", "rejected by a reviewer")
            self._delete_branch(record)
            return record

    def has_branch(self, branch: str) -> bool:
        """Whether ``refs/heads/<branch>`` exists."""
        return self.git.resolve(f"refs/heads/{branch}") is not None

    # -- helpers ---------------------------------------------------------------------------

    def _open_or_update(
        self,
        proposal: Proposal,
        target: str,
        tip: str,
        keep: ProposalRecord | None,
        superseded: Sequence[ProposalRecord],
        entries: Mapping[str, Entry],
    ) -> ProposalResult:
        number = keep.id if keep is not None else self.store.next_id()
        branch_ref = f"refs/heads/{proposal.branch}"
        head = self.git.resolve(branch_ref)
        tree = self.git.tree_with(tip, entries)
        reusable = (
            keep is not None
            and head == keep.commit
            and self.git.parents(head) == [tip]
            and self.git.resolve(f"{head}^{{tree}}") == tree
        )
        if reusable and head:
            commit = head
        else:
            commit = self.git.commit(tree, [tip], _commit_message(proposal, number))
        moved = commit != head
        if moved:
            self.git.update_ref(branch_ref, commit, head, f"crashed: proposal #{number}")
        labels = [label for label in proposal.labels if label]
        stamp = now()
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
                created_at=stamp,
                updated_at=stamp,
                files=sorted(entries),
                labels=labels,
            )
            action = "created"
        else:
            record = keep
            metadata = (proposal.title, proposal.description, target, labels)
            recorded = (record.title, record.description, record.target_branch, record.labels)
            if not moved and recorded == metadata:
                return self._result("unchanged", record, superseded)
            record.title, record.description, record.target_branch, record.labels = metadata
            record.commit, record.base, record.files = commit, tip, sorted(entries)
            record.updated_at = stamp
            action = "updated"
        try:
            self.store.write(record)
        except BaseException:
            if moved:  # leave the branch as it was: no half-made proposal
                if head is None:
                    self.git.delete_ref(branch_ref, commit)
                else:
                    self.git.try_("update-ref", branch_ref, head, commit)
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
            url=self.store.url(record.id),
            branch=record.branch,
            extra={
                "commit": record.commit,
                "base": record.base,
                "target_branch": record.target_branch,
                "superseded": [r.id for r in superseded],
            },
        )

    def _require_open(self, proposal_id: int | str, action: str) -> ProposalRecord:
        record = self.store.get(proposal_id)
        if record.status != "open":
            raise InputError(
                f"cannot {action} proposal #{record.id}: it is {record.status}, not open"
            )
        return record

    def _require_branch(self, branch: str) -> str:
        tip = self.git.resolve(f"refs/heads/{branch}")
        if tip is None:
            raise NotFoundError(
                f"target branch {branch!r} not found in {self.root} (check GITLAB_TARGET_BRANCH)"
            )
        return tip

    def _merged_tip(
        self, record: ProposalRecord, tip: str, files: Sequence[str]
    ) -> tuple[str, bool]:
        """(new target tip, whether the change was re-applied on a moved target)."""
        if tip == record.base:
            return record.commit, False
        changed: dict[str, Entry] = {}
        for path in files:
            at_base = self.git.entry(record.base, path)
            at_tip = self.git.entry(tip, path)
            proposed = self.git.entry(record.commit, path)
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
        tree = self.git.tree_with(tip, changed)
        message = self.git.message(record.commit)
        message += f"\n\n(re-applied on {record.target_branch} at {tip[:12]})\n"
        return self.git.commit(tree, [tip], message), True

    def _require_clean(self, worktree: Path, files: Sequence[str], record: ProposalRecord) -> None:
        status = self.git.status(worktree, files)
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
        if self.git.resolve(ref) != record.commit or self.git.checked_out(record.branch):
            return False
        return self.git.delete_ref(ref, record.commit)


def _commit_message(proposal: Proposal, number: int) -> str:
    return (
        f"{proposal.title.strip()}\n\n"
        f"Proposal #{number} from crashed on branch {proposal.branch}; review it with\n"
        f"`crashed models review {number}`.\n"
    )
