"""Read the promotion history and open rollback proposals through the ``GitHost`` port.

The CLI (``crashed models history`` / ``rollback``) and the monitor call these with the Git host
built by :mod:`crashed.wiring`; nothing here constructs an adapter or merges anything.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING

from crashed.core.rollback import ROLLBACK_LABEL, Promotion, plan_rollback, promotions
from crashed.ports import FileChange, GitHost, Proposal, ProposalResult

if TYPE_CHECKING:
    from crashed.settings import Settings

log = logging.getLogger(__name__)

REFERENCE_PATH = "model-reference.json"  # the reference's path in the repository


def rollback_branch(model_name: str) -> str:
    """The bot branch of rollback proposals (beside ``model-update/<name>``, so a rollback
    never replaces a model update under review)."""
    return f"model-rollback/{model_name}"


def promotion_history(git_host: GitHost) -> list[Promotion]:
    """Every promotion on the target branch, oldest first."""
    return promotions(git_host.history(REFERENCE_PATH))


def propose_rollback(
    git_host: GitHost,
    settings: Settings,
    *,
    reason: str,
    to_run_id: str | None = None,
) -> ProposalResult:
    """Open (or update) the rollback proposal restoring an earlier reference; never merges.

    ``to_run_id`` picks the run to restore; by default the model promoted before the current
    one. The result's ``extra`` adds ``restored_run_id``, ``restored_commit`` and
    ``current_run_id``.
    """
    history = promotion_history(git_host)
    plan = plan_rollback(
        history,
        git_host.read_file(REFERENCE_PATH),
        reason=reason,
        model_name=settings.crashed_model_name,
        to_run_id=to_run_id,
    )
    result = git_host.propose(
        Proposal(
            branch=rollback_branch(settings.crashed_model_name),
            title=plan.title,
            description=plan.description,
            changes=[FileChange(REFERENCE_PATH, plan.content)],
            labels=(ROLLBACK_LABEL,),
            target_branch=settings.gitlab_target_branch,
        )
    )
    log.info(
        "rollback proposal %s %s: %s → %s",
        result.id,
        result.action,
        plan.current.model.run_id,
        plan.target.run_id,
    )
    restored = {
        "restored_run_id": plan.target.run_id,
        "restored_commit": plan.target.commit,
        "current_run_id": plan.current.model.run_id,
    }
    return replace(result, extra={**result.extra, **restored})
