"""The promotion gate: every rule reports its numbers and a pass/fail."""

from __future__ import annotations

import pytest

from crashed.core.gate import GateDecision, GateRules, RuleResult, decide

RULES = GateRules(
    min_roc_auc=0.70, max_roc_auc_drop=0.01, max_pr_auc_drop=0.03, min_validation_positives=10
)
GOOD = {"positives": 88, "roc_auc": 0.86, "pr_auc": 0.20}


def by_name(decision: GateDecision) -> dict[str, RuleResult]:
    return {rule.name: rule for rule in decision.rules}


def test_defaults() -> None:
    assert GateRules() == RULES


def test_first_model_passes_with_three_rules() -> None:
    decision = decide(GOOD, None, RULES)

    assert decision.passed
    assert [r.name for r in decision.rules] == [
        "enough validation positives",
        "ROC-AUC floor",
        "no regression vs production",
    ]
    assert decision.failures() == []
    rules = by_name(decision)
    assert rules["enough validation positives"].candidate == 88
    assert rules["enough validation positives"].limit == 10
    assert "88 positives" in rules["enough validation positives"].detail
    assert rules["ROC-AUC floor"].detail == "candidate ROC-AUC 0.8600 vs floor 0.700"
    assert "no model in production" in rules["no regression vs production"].detail


def test_comparison_with_production() -> None:
    decision = decide(GOOD, {"roc_auc": 0.85, "pr_auc": 0.21}, RULES)

    assert decision.passed
    rules = by_name(decision)
    assert set(rules) == {
        "enough validation positives",
        "ROC-AUC floor",
        "ROC-AUC no worse than production",
        "PR-AUC no worse than production",
    }
    roc = rules["ROC-AUC no worse than production"]
    assert (roc.candidate, roc.production, roc.limit) == (0.86, 0.85, 0.01)
    assert "Δ +0.0100" in roc.detail
    pr = rules["PR-AUC no worse than production"]
    assert "Δ -0.0100" in pr.detail
    assert "allowed drop 0.030" in pr.detail


@pytest.mark.parametrize("positives", [0, 9, None])
def test_too_few_positives_fail(positives: int | None) -> None:
    decision = decide(GOOD | {"positives": positives}, None, RULES)
    assert not decision.passed
    assert [r.name for r in decision.failures()] == ["enough validation positives"]


def test_positives_at_the_limit_pass() -> None:
    assert decide(GOOD | {"positives": 10}, None, RULES).passed


@pytest.mark.parametrize(("auc", "passed"), [(0.70, True), (0.6999, False), (None, False)])
def test_roc_auc_floor(auc: float | None, passed: bool) -> None:
    decision = decide(GOOD | {"roc_auc": auc}, None, RULES)
    assert by_name(decision)["ROC-AUC floor"].passed is passed
    assert decision.passed is passed
    if auc is None:
        assert "n/a" in by_name(decision)["ROC-AUC floor"].detail


def test_regression_beyond_allowed_drop_fails() -> None:
    production = {"roc_auc": 0.90, "pr_auc": 0.30}
    decision = decide(GOOD, production, RULES)  # drops 0.04 and 0.10

    assert not decision.passed
    assert [r.name for r in decision.failures()] == [
        "ROC-AUC no worse than production",
        "PR-AUC no worse than production",
    ]


def test_drop_exactly_at_the_allowance_passes() -> None:
    # 0.86 - 0.85 is not exactly 0.01 in floating point; the rule must still pass
    decision = decide(
        {"positives": 50, "roc_auc": 0.85, "pr_auc": 0.17}, {"roc_auc": 0.86, "pr_auc": 0.20}, RULES
    )
    assert decision.passed, decision.failures()


def test_drop_just_over_the_allowance_fails() -> None:
    decision = decide(
        {"positives": 50, "roc_auc": 0.8499, "pr_auc": 0.20},
        {"roc_auc": 0.86, "pr_auc": 0.20},
        RULES,
    )
    assert [r.name for r in decision.failures()] == ["ROC-AUC no worse than production"]


def test_undefined_production_metrics_fail_never_silently_pass() -> None:
    decision = decide(GOOD, {"roc_auc": None, "pr_auc": None}, RULES)

    assert not decision.passed
    failures = decision.failures()
    assert len(failures) == 2
    assert all("undefined" in r.detail and "production n/a" in r.detail for r in failures)


def test_custom_rules_are_used() -> None:
    strict = GateRules(
        min_roc_auc=0.9, max_roc_auc_drop=0.0, max_pr_auc_drop=0.0, min_validation_positives=100
    )
    decision = decide(GOOD, {"roc_auc": 0.86, "pr_auc": 0.20}, strict)
    assert [r.name for r in decision.failures()] == [
        "enough validation positives",
        "ROC-AUC floor",
    ]


def test_dict_round_trip() -> None:
    decision = decide(GOOD, {"roc_auc": 0.9, "pr_auc": 0.1}, RULES)
    data = decision.as_dict()

    assert data["passed"] is False
    assert data["rules"][0] == {
        "name": "enough validation positives",
        "passed": True,
        "detail": "88 positives in the validation window, need ≥ 10",
        "candidate": 88,
        "production": None,
        "limit": 10,
    }
    assert GateDecision.from_dict(data) == decision
