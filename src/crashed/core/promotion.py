"""Whether a run proposes its candidate for review: one pure decision beside the gate."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from crashed.core.gate import GateDecision


class Outcome(StrEnum):
    """Why a candidate is or is not proposed."""

    IDENTICAL = "identical"
    """Byte-identical to production: nothing to review."""
    GATE_PASSED = "gate_passed"
    FORCED = "forced"
    """The gate failed but ``force_promotion`` was set: proposed, labelled ``forced``."""
    GATE_FAILED = "gate_failed"


class PromotionDecision(BaseModel):
    """The decision and the sentence the report and the run output show for it."""

    model_config = ConfigDict(frozen=True)

    outcome: Outcome
    note: str
    failed_rules: tuple[str, ...] = ()

    @property
    def propose(self) -> bool:
        return self.outcome in (Outcome.GATE_PASSED, Outcome.FORCED)

    @property
    def forced(self) -> bool:
        return self.outcome is Outcome.FORCED


def decide_promotion(
    candidate_sha256: str,
    production_sha256: str | None,
    gate: GateDecision,
    force: bool,
) -> PromotionDecision:
    """Identical to production wins over everything; then the gate; then ``force``."""
    failed = tuple(rule.name for rule in gate.failures())
    if production_sha256 is not None and production_sha256 == candidate_sha256:
        return PromotionDecision(
            outcome=Outcome.IDENTICAL,
            note="The candidate model is byte-identical to production: nothing to propose.",
        )
    if gate.passed:
        return PromotionDecision(outcome=Outcome.GATE_PASSED, note="Every gate rule passed.")
    if force:
        return PromotionDecision(
            outcome=Outcome.FORCED,
            note="⚠️ Promotion was **forced** (`force_promotion=true`) despite failing rules: "
            f"{', '.join(failed)}.",
            failed_rules=failed,
        )
    return PromotionDecision(
        outcome=Outcome.GATE_FAILED,
        note=f"Not proposed: failed rule(s): {', '.join(failed)}.",
        failed_rules=failed,
    )
