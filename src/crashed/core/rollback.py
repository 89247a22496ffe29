"""Promotion history and rollback plans, from the target branch's history of the reference.

Pure: the Git host hands in :class:`~crashed.ports.FileRevision` records (every commit on the
target branch that changed ``model-reference.json``, oldest first); this module turns them into
promotions, picks the reference a rollback restores and writes the proposal's title and report.
A rollback restores an earlier reference *byte for byte* (its artifacts are immutable in the
lake, so the checksums still hold), as ``git revert`` would.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from crashed.core.names import validate_run_id
from crashed.core.reference import PromotedReference, Window, parse_reference
from crashed.errors import CrashedError, InputError, NotFoundError
from crashed.ports import FileRevision

ROLLBACK_LABEL = "rollback"


@dataclass(frozen=True)
class Promotion:
    """One commit on the target branch that made a model the production one."""

    commit: str
    when: str  # when its proposal was merged (else when it was committed), ISO 8601
    title: str
    proposal_id: str
    proposal_url: str
    kind: str  # "promotion", or "rollback" when it restores a model promoted before
    reference: PromotedReference
    content: str  # the reference file's exact text at that commit

    @property
    def run_id(self) -> str:
        return self.reference.model.run_id

    @property
    def model_sha256(self) -> str:
        return self.reference.artifacts.model.sha256

    def as_dict(self) -> dict[str, Any]:
        """The JSON row of ``crashed models history --json``."""
        m = self.reference.metrics
        return {
            "commit": self.commit,
            "when": self.when,
            "run_id": self.run_id,
            "kind": self.kind,
            "proposal_id": self.proposal_id,
            "proposal_url": self.proposal_url,
            "title": self.title,
            "roc_auc": m.roc_auc,
            "pr_auc": m.pr_auc,
            "model_sha256": self.model_sha256,
        }


def promotions(revisions: Sequence[FileRevision]) -> list[Promotion]:
    """The revisions that promoted a model, oldest first.

    Revisions holding the empty state, a deletion or an invalid hand edit promoted nothing and
    are left out.
    """
    found: list[Promotion] = []
    for revision in revisions:
        if revision.content is None:
            continue
        try:
            reference = parse_reference(revision.content, f"model-reference.json@{revision.commit}")
        except CrashedError:
            continue
        if not isinstance(reference, PromotedReference):
            continue
        sha = reference.artifacts.model.sha256
        seen = any(p.model_sha256 == sha for p in found)
        found.append(
            Promotion(
                commit=revision.commit,
                when=revision.merged_at or revision.committed_at,
                title=revision.title,
                proposal_id=revision.proposal_id,
                proposal_url=revision.proposal_url,
                kind="rollback" if seen else "promotion",
                reference=reference,
                content=revision.content,
            )
        )
    return found


@dataclass(frozen=True)
class RollbackPlan:
    """What a rollback proposal restores, and its title and report."""

    target: Promotion
    current: PromotedReference
    title: str
    description: str

    @property
    def content(self) -> str:
        return self.target.content


def choose_target(
    history: Sequence[Promotion], current: PromotedReference, to_run_id: str | None = None
) -> Promotion:
    """The promotion a rollback restores.

    With ``to_run_id``: the newest promotion of that run. Without: the newest promotion before
    the current one whose model differs from the current model (after a rollback, that is the
    model the rollback replaced: rolling back twice undoes the first rollback, like
    ``git revert``).
    """
    current_sha = current.artifacts.model.sha256
    if to_run_id is not None:
        validate_run_id(to_run_id, "--to")
        matches = [p for p in history if p.run_id == to_run_id]
        if not matches:
            known = ", ".join(dict.fromkeys(p.run_id for p in history)) or "none"
            raise NotFoundError(
                f"run {to_run_id!r} was never promoted on the target branch (promoted: {known})"
            )
        if matches[-1].model_sha256 == current_sha:
            raise InputError(f"run {to_run_id!r} is the current model: nothing to roll back")
        return matches[-1]
    positions = [i for i, p in enumerate(history) if p.model_sha256 == current_sha]
    before = history[: positions[-1]] if positions else history
    for promotion in reversed(before):
        if promotion.model_sha256 != current_sha:
            return promotion
    raise NotFoundError(
        f"no earlier promotion to roll back to: {current.model.run_id} is the only model ever "
        "promoted on the target branch"
    )


def plan_rollback(
    history: Sequence[Promotion],
    current_text: str | None,
    *,
    reason: str,
    model_name: str,
    to_run_id: str | None = None,
) -> RollbackPlan:
    """Choose the reference to restore and write the proposal's title and report."""
    if not reason.strip():
        raise InputError("rollback reason is empty: say why the model is rolled back")
    if current_text is None:
        raise NotFoundError("model-reference.json is missing on the target branch")
    current = parse_reference(current_text, "model-reference.json on the target branch")
    if not isinstance(current, PromotedReference):
        raise NotFoundError("no model is promoted on the target branch: nothing to roll back")
    target = choose_target(history, current, to_run_id)
    serving = next((p for p in reversed(history) if p.content == current_text), None)
    title = f"Rollback: {model_name} to {target.run_id} (from {current.model.run_id})"
    return RollbackPlan(target, current, title, _report(target, current, serving, reason))


def _report(
    target: Promotion, current: PromotedReference, serving: Promotion | None, reason: str
) -> str:
    restored = target.reference
    lines = [
        f"## Rollback to `{target.run_id}`",
        "",
        f"**Reason:** {reason.strip()}",
        "",
        f"This restores `model-reference.json` exactly as promoted in {_origin(target)}. It goes "
        "through the "
        "same review, merge and deploy as any model update; nothing is merged automatically.",
        "",
        "| | current | restored | Δ (restored − current) |",
        "|---|---|---|---:|",
        f"| run | `{current.model.run_id}` | `{restored.model.run_id}` | |",
    ]
    for label, name in (
        ("ROC-AUC", "roc_auc"),
        ("PR-AUC", "pr_auc"),
        ("log loss", "log_loss"),
        ("Brier", "brier"),
    ):
        now, then = getattr(current.metrics, name), getattr(restored.metrics, name)
        delta = f"{then - now:+.4f}" if now is not None and then is not None else ""
        lines.append(f"| {label} | {_num(now)} | {_num(then)} | {delta} |")
    lines += [
        f"| validation window | {_window(current.lineage.validation_window)} "
        f"| {_window(restored.lineage.validation_window)} | |",
        f"| model sha256 | `{current.artifacts.model.sha256[:16]}…` "
        f"| `{restored.artifacts.model.sha256[:16]}…` | |",
        f"| promoted | {_origin(serving) if serving else 'unknown'} | {_origin(target)} | |",
        "",
        "Metrics are each model's own validation results at its promotion (different windows "
        "when the data moved on).",
        "",
    ]
    return "\n".join(lines)


def _origin(promotion: Promotion) -> str:
    via = f" (proposal {promotion.proposal_id})" if promotion.proposal_id else ""
    return f"commit `{promotion.commit[:12]}`{via}, {promotion.when}"


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _window(window: Window) -> str:
    return f"{window.start}..{window.end} ({window.rows} rows, {window.positives} positives)"
