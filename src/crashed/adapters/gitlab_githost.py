"""GitLab as the Git host: one stable bot branch, at most one open merge request.

``propose`` makes the bot branch exactly "target branch + one commit changing the proposed
files" and keeps a single open merge request from it: created when none is open, otherwise
updated in place; leftover duplicates are closed with a note; identical content opens nothing.
``history`` reads the target branch's commits that changed a file, each with the merge request
that merged it. Retries and token-free errors live in :mod:`crashed.adapters.gitlab_client`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from gitlab.exceptions import GitlabError

from crashed.adapters.gitlab_client import ErrorTranslator, RetryingGitlab
from crashed.errors import ConfigError, NotFoundError
from crashed.ports import FileRevision, Proposal, ProposalResult, proposal_changes

if TYPE_CHECKING:
    from gitlab.v4.objects import Project, ProjectMergeRequest

    from crashed.settings import Settings

log = logging.getLogger(__name__)


class GitLabHost:
    """:class:`~crashed.ports.GitHost` on a GitLab project, via python-gitlab."""

    def __init__(
        self,
        url: str,
        project: str,
        token: str,
        target_branch: str = "main",
        timeout: float = 30,
        retries: int = 4,
        *,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"GITLAB_URL must start with http:// or https:// (got {url!r})")
        if not project.strip():
            raise ConfigError("GITLAB_PROJECT is empty: set it to group/name or a project id")
        if not token:
            raise ConfigError("GITLAB_TOKEN is empty: set it to a token with the api scope")
        if not target_branch:
            raise ConfigError("GITLAB_TARGET_BRANCH is empty")
        if retries < 0:
            raise ConfigError(f"retries must be >= 0 (got {retries})")
        self.url = url.rstrip("/")
        self.project = project.strip()
        self.target_branch = target_branch
        self.retries = retries
        self._translate = ErrorTranslator(self.url, self.project, token, retries)
        self._client = RetryingGitlab(
            self.url,
            private_token=token,
            timeout=timeout,
            retries=retries,
            backoff=backoff,
            max_backoff=max_backoff,
            scrub=self._translate.scrub,
        )
        self._project_obj: Project | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> GitLabHost:
        """Build from ``GITLAB_URL``/``_PROJECT``/``_TOKEN``/``_TARGET_BRANCH`` settings."""
        if not settings.gitlab_project:
            raise ConfigError(
                "GITLAB_PROJECT is not set: name the GitLab project (group/name or numeric id) "
                "that model updates are proposed to"
            )
        token = settings.gitlab_token.get_secret_value() if settings.gitlab_token else ""
        if not token.strip():
            raise ConfigError(
                "GITLAB_TOKEN is not set: provide a GitLab access token with the api scope "
                "(from a CI/CD variable or a Kubernetes secret)"
            )
        return cls(
            settings.gitlab_url,
            settings.gitlab_project,
            token.strip(),
            target_branch=settings.gitlab_target_branch,
        )

    def __repr__(self) -> str:
        return (
            f"GitLabHost(url={self.url!r}, project={self.project!r}, target={self.target_branch!r})"
        )

    # ------------------------------------------------------------------ GitHost

    def read_file(self, path: str, ref: str | None = None) -> str | None:
        """The file's content on ``ref`` (default: the target branch), ``None`` if absent."""
        ref = ref or self.target_branch
        with self._translate.errors(f"reading {path} at {ref}"):
            return self._read(self._project(), path, ref)

    def propose(self, proposal: Proposal) -> ProposalResult:
        """Reset the bot branch, commit the changes, and open or update its single open MR."""
        target = proposal.target_branch or self.target_branch
        changes = proposal_changes(proposal, target)
        with self._translate.errors(f"proposing {proposal.branch} → {target}"):
            return self._propose(proposal, target, changes)

    def history(self, path: str) -> list[FileRevision]:
        """Commits on the target branch that changed ``path``, oldest first, each with the
        merge request that merged it (``commit.merge_requests()``)."""
        target = self.target_branch
        with self._translate.errors(f"reading the history of {path} on {target}"):
            project = self._project()
            self._head(project, target)  # a missing branch is a clear NotFoundError
            # ``path=`` would override python-gitlab's URL path: pass the filter as a parameter.
            commits = project.commits.list(
                query_parameters={"path": path}, ref_name=target, get_all=True
            )
            revisions = []
            for commit in reversed(commits):  # GitLab lists newest first
                merged = [
                    mr
                    for mr in commit.merge_requests()
                    if mr.get("state") == "merged" and mr.get("target_branch") == target
                ]
                mr: dict[str, Any] = merged[0] if merged else {}
                revisions.append(
                    FileRevision(
                        commit=commit.id,
                        committed_at=commit.committed_date,
                        title=commit.title,
                        content=self._read(project, path, commit.id),
                        proposal_id=str(mr.get("iid", "")),
                        proposal_url=mr.get("web_url", ""),
                        merged_at=mr.get("merged_at"),
                    )
                )
            return revisions

    # ------------------------------------------------------------------ internals

    def _project(self) -> Project:
        if self._project_obj is None:
            key: str | int = int(self.project) if self.project.isdigit() else self.project
            self._project_obj = self._client.projects.get(key)
        return self._project_obj

    def _read(self, project: Project, path: str, ref: str) -> str | None:
        try:
            data = project.files.raw(file_path=path, ref=ref)
        except GitlabError as error:
            if error.response_code == 404 and "file" in str(error.error_message).lower():
                return None
            if error.response_code == 404:
                raise NotFoundError(
                    self._translate.scrub(
                        f"ref {ref!r} not found in GitLab project {self.project!r} at {self.url} "
                        f"(404: {error.error_message})"
                    )
                ) from None
            raise
        return data.decode("utf-8") if isinstance(data, bytes) else str(data)

    def _head(self, project: Project, branch: str) -> str:
        """The commit id at the tip of ``branch``; :class:`NotFoundError` if it is missing."""
        try:
            return str(project.branches.get(branch).commit["id"])
        except GitlabError as error:
            if error.response_code == 404:
                raise NotFoundError(
                    f"target branch {branch!r} not found in GitLab project {self.project!r} "
                    f"at {self.url} (check GITLAB_TARGET_BRANCH)"
                ) from None
            raise

    def _propose(self, proposal: Proposal, target: str, changes: dict[str, str]) -> ProposalResult:
        project = self._project()
        branch = proposal.branch
        labels = [label for label in proposal.labels if label]
        target_head = self._head(project, target)
        on_target = {path: self._read(project, path, target_head) for path in changes}

        open_mrs = self._open_mrs(project, branch)
        keep = next((mr for mr in open_mrs if mr.target_branch == target), None)
        keep = keep or (open_mrs[0] if open_mrs else None)
        closed = [
            self._close(mr, f"Superseded by !{keep.iid}: one open model-update merge request.")
            for mr in open_mrs
            if keep is not None and mr.iid != keep.iid
        ]

        if all(on_target[path] == content for path, content in changes.items()):
            if keep is not None:
                closed.append(
                    self._close(
                        keep,
                        f"`{target}` already has exactly the proposed content; nothing to merge.",
                    )
                )
            log.info("GitLab %s: %s already has the proposed content", self.project, target)
            return ProposalResult(
                action="unchanged",
                id="",
                url=f"{project.web_url}/-/tree/{target}",
                branch=branch,
                extra={"closed": closed, "reason": "target-has-content", "target_branch": target},
            )

        current = self._branch_is_current(project, branch, changes, target_head)
        if keep is None and current:
            rejected = self._closed_with_same_description(project, branch, proposal)
            if rejected is not None:
                log.info(
                    "GitLab %s: !%s proposed exactly this and was closed; not reopening",
                    self.project,
                    rejected.iid,
                )
                return ProposalResult(
                    "unchanged",
                    str(rejected.iid),
                    rejected.web_url,
                    branch,
                    {"closed": closed, "reason": "closed-by-reviewer", "target_branch": target},
                )

        commit_sha: str | None = None
        if not current:
            commit_sha = self._commit(project, proposal, changes, on_target, target_head)

        extra: dict[str, Any] = {"closed": closed, "commit": commit_sha, "target_branch": target}
        if keep is None:
            mr = self._create_mr(project, proposal, target, labels)
            log.info("GitLab %s: opened merge request !%s (%s)", self.project, mr.iid, branch)
            return ProposalResult("created", str(mr.iid), mr.web_url, branch, extra)

        metadata_changed = self._update_mr(keep, proposal, target, labels)
        if commit_sha is None and not metadata_changed:
            log.info("GitLab %s: merge request !%s is up to date", self.project, keep.iid)
            return ProposalResult("unchanged", str(keep.iid), keep.web_url, branch, extra)
        log.info("GitLab %s: updated merge request !%s (%s)", self.project, keep.iid, branch)
        return ProposalResult("updated", str(keep.iid), keep.web_url, branch, extra)

    def _open_mrs(self, project: Project, branch: str) -> list[ProjectMergeRequest]:
        """Open merge requests from ``branch``, newest first."""
        found = project.mergerequests.list(state="opened", source_branch=branch, get_all=True)
        return sorted(found, key=lambda mr: int(mr.iid), reverse=True)  # type: ignore[union-attr]

    def _closed_with_same_description(
        self, project: Project, branch: str, proposal: Proposal
    ) -> ProjectMergeRequest | None:
        """The newest MR from ``branch`` if a reviewer closed it while it proposed exactly this.

        Called only when the branch already holds exactly the proposed change on the current
        target, so reopening would re-propose what a human rejected (the nightly-MR complaint).
        """
        newest = project.mergerequests.list(
            source_branch=branch,
            state="all",
            order_by="created_at",
            sort="desc",
            per_page=1,
            get_all=False,
        )
        for mr in newest:
            if mr.state == "closed" and (mr.description or "") == proposal.description:
                return mr  # type: ignore[return-value]
        return None

    def _close(self, mr: ProjectMergeRequest, note: str) -> int:
        mr.notes.create({"body": note})
        mr.state_event = "close"
        mr.save()
        log.info("GitLab %s: closed merge request !%s (%s)", self.project, mr.iid, note)
        return int(mr.iid)

    def _branch_is_current(
        self, project: Project, branch: str, changes: Mapping[str, str], target_head: str
    ) -> bool:
        """Whether ``branch`` is exactly one commit on ``target_head`` with the proposed files."""
        try:
            head = project.branches.get(branch).commit
        except GitlabError as error:
            if error.response_code == 404:
                return False
            raise
        if list(head.get("parent_ids") or []) != [target_head]:
            return False
        diff = project.repository_compare(target_head, head["id"])
        touched = {d["new_path"] for d in diff["diffs"]} | {d["old_path"] for d in diff["diffs"]}
        if not touched <= set(changes):
            return False
        return all(self._read(project, path, head["id"]) == text for path, text in changes.items())

    def _commit(
        self,
        project: Project,
        proposal: Proposal,
        changes: Mapping[str, str],
        on_target: Mapping[str, str | None],
        target_head: str,
    ) -> str:
        """One commit on ``target_head`` with the changed files; the bot branch is reset to it.

        ``force`` + ``start_sha`` resets and commits atomically in one request, so an open merge
        request never sees its source branch missing (as delete + recreate would show).
        """
        actions = [
            {
                "action": "create" if on_target[path] is None else "update",
                "file_path": path,
                "content": content,
            }
            for path, content in changes.items()
            if on_target[path] != content
        ]
        commit = project.commits.create(
            {
                "branch": proposal.branch,
                "commit_message": proposal.title,
                "actions": actions,
                "start_sha": target_head,
                "force": True,
            }
        )
        log.info(
            "GitLab %s: %s reset to %s + %s (%s)",
            self.project,
            proposal.branch,
            target_head[:8],
            commit.short_id,
            ", ".join(a["file_path"] for a in actions),
        )
        return str(commit.id)

    def _create_mr(
        self, project: Project, proposal: Proposal, target: str, labels: list[str]
    ) -> ProjectMergeRequest:
        data = {
            "source_branch": proposal.branch,
            "target_branch": target,
            "title": proposal.title,
            "description": proposal.description,
            "labels": ",".join(labels),
            "remove_source_branch": True,
        }
        try:
            return project.mergerequests.create(data)  # type: ignore[return-value]
        except GitlabError as error:
            if error.response_code != 409:
                raise
            # An earlier attempt's answer was lost (retried POST) or another run raced us:
            # the open merge request exists; make it say what we propose.
            existing = self._open_mrs(project, proposal.branch)
            if not existing:
                raise
            self._update_mr(existing[0], proposal, target, labels)
            return existing[0]

    @staticmethod
    def _update_mr(
        mr: ProjectMergeRequest, proposal: Proposal, target: str, labels: list[str]
    ) -> bool:
        """Make the MR's title/description/labels/target match; return whether anything changed."""
        wanted: dict[str, Any] = {}
        if mr.title != proposal.title:
            wanted["title"] = proposal.title
        if (mr.description or "") != proposal.description:
            wanted["description"] = proposal.description
        if set(mr.labels or []) != set(labels):
            wanted["labels"] = ",".join(labels)
        if mr.target_branch != target:
            wanted["target_branch"] = target
        if not wanted:
            return False
        for key, value in wanted.items():
            setattr(mr, key, value)
        mr.save()
        return True
