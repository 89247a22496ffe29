"""The promotion gate: explicit rules, each with its numbers and a pass/fail (never a bare 'no')."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from crashed.core.bootstrap import RegressionCheck


@dataclass(frozen=True)
class GateRules:
    """Thresholds (settings ``GATE_*``)."""

    min_roc_auc: float = 0.70
    max_roc_auc_drop: float = 0.01
    max_pr_auc_drop: float = 0.03
    min_validation_positives: int = 10


@dataclass(frozen=True)
class RuleResult:
    name: str
    passed: bool
    detail: str
    candidate: float | None = None
    production: float | None = None
    limit: float | None = None


@dataclass(frozen=True)
class GateDecision:
    passed: bool
    rules: tuple[RuleResult, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "rules": [asdict(r) for r in self.rules]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GateDecision:
        return cls(bool(data["passed"]), tuple(RuleResult(**r) for r in data["rules"]))

    def failures(self) -> list[RuleResult]:
        return [r for r in self.rules if not r.passed]


def decide(
    candidate: dict[str, Any],
    production: dict[str, Any] | None,
    rules: GateRules,
    checks: Sequence[RegressionCheck] = (),
) -> GateDecision:
    """Apply every rule to candidate (and production, when there is one) validation metrics.

    With ``checks`` (the paired bootstrap's verdict per metric) a regression rule fails only on a
    *significant* drop beyond its allowance; without them, on the point estimates.
    """
    by_metric = {check.metric: check for check in checks}
    results: list[RuleResult] = []
    positives = int(candidate.get("positives") or 0)
    results.append(
        RuleResult(
            "enough validation positives",
            positives >= rules.min_validation_positives,
            f"{positives} positives in the validation window, need ≥ "
            f"{rules.min_validation_positives}",
            candidate=positives,
            limit=rules.min_validation_positives,
        )
    )
    auc = candidate.get("roc_auc")
    results.append(
        RuleResult(
            "ROC-AUC floor",
            auc is not None and auc >= rules.min_roc_auc,
            f"candidate ROC-AUC {_fmt(auc)} vs floor {rules.min_roc_auc:.3f}",
            candidate=auc,
            limit=rules.min_roc_auc,
        )
    )
    if production is None:
        results.append(
            RuleResult(
                "no regression vs production",
                True,
                "no model in production yet: nothing to compare against",
            )
        )
    else:
        for metric, label, allowed in (
            ("roc_auc", "ROC-AUC", rules.max_roc_auc_drop),
            ("pr_auc", "PR-AUC", rules.max_pr_auc_drop),
        ):
            cand, prod = candidate.get(metric), production.get(metric)
            if cand is None or prod is None:
                results.append(
                    RuleResult(
                        f"{label} no worse than production",
                        False,
                        f"{label} undefined (candidate {_fmt(cand)}, production {_fmt(prod)})",
                        cand,
                        prod,
                        allowed,
                    )
                )
                continue
            check = by_metric.get(metric)
            if check is not None:
                results.append(_interval_rule(label, cand, prod, check))
                continue
            drop = prod - cand
            results.append(
                RuleResult(
                    f"{label} no worse than production",
                    drop <= allowed + 1e-12,
                    f"candidate {cand:.4f} vs production {prod:.4f} (Δ {cand - prod:+.4f}, "
                    f"allowed drop {allowed:.3f})",
                    candidate=cand,
                    production=prod,
                    limit=allowed,
                )
            )
    return GateDecision(all(r.passed for r in results), tuple(results))


def _interval_rule(label: str, cand: float, prod: float, check: RegressionCheck) -> RuleResult:
    interval = check.delta
    shown = (
        f"[{interval.low:+.4f}, {interval.high:+.4f}]"
        if interval is not None and interval.low is not None and interval.high is not None
        else "n/a"
    )
    return RuleResult(
        f"{label} no worse than production",
        not check.fails,
        f"candidate {cand:.4f} vs production {prod:.4f} (Δ {cand - prod:+.4f}, "
        f"{check.level * 100:g} % interval {shown}): {check.verdict.value} "
        f"(fails only below −{check.allowed_drop:.3f})",
        candidate=cand,
        production=prod,
        limit=check.allowed_drop,
    )


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"
