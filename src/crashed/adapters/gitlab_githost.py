"""GitLab as the Git host: one stable bot branch, at most one open merge request.

``propose`` makes the bot branch exactly "target branch + one commit changing the proposed
files" and keeps a single open merge request from it: created when none is open, otherwise
updated in place; leftover duplicates are closed with a note; identical content opens nothing.

Every HTTP request python-gitlab makes goes through :meth:`_RetryingGitlab.http_request`,
which retries transient failures (5xx, connection errors, timeouts) with exponential backoff
(tenacity). 401/403/404 and other 4xx fail at once. Errors are translated into
:class:`~crashed.errors.ServiceError` / :class:`~crashed.errors.NotFoundError` messages that
name the GitLab URL, the project and the status, and never the token.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import quote

import gitlab
import requests
from gitlab import const as gitlab_const
from gitlab.exceptions import GitlabError
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from crashed.errors import ConfigError, CrashedError, NotFoundError, ServiceError
from crashed.ports import Proposal, ProposalResult, proposal_changes

if TYPE_CHECKING:
    from gitlab.v4.objects import Project, ProjectMergeRequest

    from crashed.settings import Settings

log = logging.getLogger(__name__)

_TRANSIENT_STATUS = frozenset(gitlab_const.RETRYABLE_TRANSIENT_ERROR_CODES)
_NETWORK_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)
_DEFAULT_PROPOSAL_TARGET = Proposal.__dataclass_fields__["target_branch"].default


def _is_transient(error: BaseException) -> bool:
    """5xx (incl. Cloudflare's 52x), GitLab's "Resource lock" 409, connection errors, timeouts."""
    if isinstance(error, _NETWORK_ERRORS):
        return True
    if isinstance(error, GitlabError):
        code = error.response_code
        if code in _TRANSIENT_STATUS:
            return True
        return code == 409 and "resource lock" in str(error.error_message).lower()
    return False


class _RetryingGitlab(gitlab.Gitlab):
    """A python-gitlab client whose every HTTP request is retried by tenacity.

    python-gitlab's own ``retry_transient_errors`` is turned off: its backoff is fixed
    (0.1 s × 2ⁿ) and its retry count can only be set per call, not per client. Retrying at this
    one choke point covers every call (including pagination) with a configurable count and
    backoff, and is testable with a fake server. 429 stays with python-gitlab
    (``obey_rate_limit``, honouring ``Retry-After``), capped at the same count.
    """

    def __init__(
        self,
        url: str,
        *,
        private_token: str,
        timeout: float,
        retries: int,
        backoff: float,
        max_backoff: float,
        scrub: Callable[[str], str],
    ) -> None:
        super().__init__(
            url,
            private_token=private_token,
            timeout=timeout,
            retry_transient_errors=False,
            keep_base_url=True,
            user_agent="crashed (python-gitlab)",
        )
        self._crashed_retries = retries
        self._crashed_backoff = backoff
        self._crashed_max_backoff = max_backoff
        self._crashed_scrub = scrub

    def http_request(self, verb: str, path: str, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs["retry_transient_errors"] = False
        kwargs.setdefault("max_retries", self._crashed_retries)
        retrying = Retrying(
            stop=stop_after_attempt(self._crashed_retries + 1),
            wait=wait_exponential(multiplier=self._crashed_backoff, max=self._crashed_max_backoff),
            retry=retry_if_exception(_is_transient),
            before_sleep=self._log_retry(verb, path),
            reraise=True,
        )
        return retrying(super().http_request, verb, path, *args, **kwargs)

    def _log_retry(self, verb: str, path: str) -> Callable[[RetryCallState], None]:
        def before_sleep(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            if isinstance(error, GitlabError) and error.response_code is not None:
                reason = f"HTTP {error.response_code}"
            else:
                reason = type(error).__name__
            wait = state.next_action.sleep if state.next_action else 0.0
            log.warning(
                "GitLab %s %s failed (%s); retry %d/%d in %.1fs",
                verb.upper(),
                self._crashed_scrub(path.split("?", 1)[0]),
                reason,
                state.attempt_number,
                self._crashed_retries,
                wait,
            )

        return before_sleep


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
        self._token = token
        self._client = _RetryingGitlab(
            self.url,
            private_token=token,
            timeout=timeout,
            retries=retries,
            backoff=backoff,
            max_backoff=max_backoff,
            scrub=self._scrub,
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
        with self._errors(f"reading {path} at {ref}"):
            return self._read(self._project(), path, ref)

    def propose(self, proposal: Proposal) -> ProposalResult:
        """Reset the bot branch, commit the changes, and open or update its single open MR."""
        target = self._target_of(proposal)
        changes = proposal_changes(proposal, target)
        with self._errors(f"proposing {proposal.branch} → {target}"):
            return self._propose(proposal, target, changes)

    # ------------------------------------------------------------------ internals

    def _target_of(self, proposal: Proposal) -> str:
        """A proposal naming a non-default target wins; otherwise ``GITLAB_TARGET_BRANCH``."""
        if proposal.target_branch and proposal.target_branch != _DEFAULT_PROPOSAL_TARGET:
            return proposal.target_branch
        return self.target_branch

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
                    self._scrub(
                        f"ref {ref!r} not found in GitLab project {self.project!r} at {self.url} "
                        f"(404: {error.error_message})"
                    )
                ) from None
            raise
        return data.decode("utf-8") if isinstance(data, bytes) else str(data)

    def _propose(self, proposal: Proposal, target: str, changes: dict[str, str]) -> ProposalResult:
        project = self._project()
        branch = proposal.branch
        labels = [label for label in proposal.labels if label]
        try:
            target_head: str = project.branches.get(target).commit["id"]
        except GitlabError as error:
            if error.response_code == 404:
                raise NotFoundError(
                    f"target branch {target!r} not found in GitLab project {self.project!r} "
                    f"at {self.url} (check GITLAB_TARGET_BRANCH)"
                ) from None
            raise
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

    # ------------------------------------------------------------------ errors

    def _scrub(self, text: str) -> str:
        """``text`` with the token (raw or URL-encoded) replaced by ``***``."""
        for secret in {self._token, quote(self._token, safe="")}:
            if secret:
                text = text.replace(secret, "***")
        return text

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """Translate python-gitlab and requests failures into one clear, token-free line."""
        try:
            yield
        except CrashedError as error:
            error.message = self._scrub(error.message)
            error.args = (error.message,)
            raise
        except GitlabError as error:
            self._raise_http(error, action)
        except requests.RequestException as error:
            detail = self._scrub(str(error))[:300]
            raise ServiceError(
                f"GitLab at {self.url} is unreachable while {action} for project "
                f"{self.project!r} (gave up after {self.retries + 1} attempts): "
                f"{type(error).__name__}: {detail}"
            ) from None

    def _raise_http(self, error: GitlabError, action: str) -> NoReturn:
        code = error.response_code
        detail = self._scrub(str(error.error_message))[:300]
        where = f"GitLab at {self.url}, project {self.project!r}"
        if code == 401:
            message = (
                f"{where}: 401 Unauthorized while {action}: the token was rejected "
                "(check GITLAB_TOKEN: expired, revoked, or for another GitLab instance)"
            )
            raise ServiceError(self._scrub(message)) from None
        if code == 403:
            message = (
                f"{where}: 403 Forbidden while {action}: the token needs the api scope and at "
                f"least the Developer role ({detail})"
            )
            raise ServiceError(self._scrub(message)) from None
        if code == 404:
            if "project" in detail.lower():
                message = (
                    f"{where}: 404 project not found while {action} (check GITLAB_PROJECT, "
                    "and that the token's user can see the project)"
                )
            else:
                message = f"{where}: 404 not found while {action} ({detail})"
            raise NotFoundError(self._scrub(message)) from None
        if code is None:
            message = f"{where}: {type(error).__name__} while {action}: {detail}"
        elif code in _TRANSIENT_STATUS:
            message = (
                f"{where}: HTTP {code} while {action}, still failing after "
                f"{self.retries + 1} attempts ({detail})"
            )
        else:
            message = f"{where}: HTTP {code} while {action} ({detail})"
        raise ServiceError(self._scrub(message)) from None
