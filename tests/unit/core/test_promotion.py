"""Whether a run proposes its candidate: identical, gate passed, forced or refused."""

from __future__ import annotations

import pytest

from crashed.core.gate import GateDecision, RuleResult
from crashed.core.promotion import Outcome, decide_promotion

PASSED = GateDecision(True, (RuleResult("ROC-AUC floor", True, "0.86 vs 0.70"),))
FAILED = GateDecision(
    False,
    (
        RuleResult("ROC-AUC floor", True, "0.86 vs 0.70"),
        RuleResult("PR-AUC no worse than production", False, "drop 0.05 > 0.03"),
        RuleResult("enough validation positives", False, "4 < 10"),
    ),
)


@pytest.mark.parametrize(
    ("production", "gate", "force", "outcome", "propose"),
    [
        (None, PASSED, False, Outcome.GATE_PASSED, True),
        ("b" * 64, PASSED, False, Outcome.GATE_PASSED, True),
        ("b" * 64, FAILED, False, Outcome.GATE_FAILED, False),
        ("b" * 64, FAILED, True, Outcome.FORCED, True),
        (None, FAILED, True, Outcome.FORCED, True),
        # identical to production wins over a passing gate and over force
        ("a" * 64, PASSED, False, Outcome.IDENTICAL, False),
        ("a" * 64, FAILED, True, Outcome.IDENTICAL, False),
    ],
)
def test_outcomes(
    production: str | None, gate: GateDecision, force: bool, outcome: Outcome, propose: bool
) -> None:
    decision = decide_promotion("a" * 64, production, gate, force)
    assert decision.outcome is outcome
    assert decision.propose is propose
    assert decision.forced is (outcome is Outcome.FORCED)


def test_refusal_and_force_name_the_failed_rules() -> None:
    refused = decide_promotion("a" * 64, None, FAILED, force=False)
    forced = decide_promotion("a" * 64, None, FAILED, force=True)
    expected = ("PR-AUC no worse than production", "enough validation positives")
    assert refused.failed_rules == forced.failed_rules == expected
    assert "Not proposed" in refused.note and "forced" in forced.note
    assert decide_promotion("a" * 64, None, PASSED, force=True).failed_rules == ()
