"""What the demo says when a run proposes nothing: the decision, each failed rule's numbers,
what keeps serving, and how to promote anyway."""

from __future__ import annotations

from typing import Any


def failed_rules(summary: dict[str, Any]) -> list[str]:
    """The detail line of every gate rule the candidate failed (empty when none, or no gate)."""
    gate = summary.get("gate")
    if not isinstance(gate, dict):
        return []
    return [str(r.get("detail") or r.get("name")) for r in gate.get("rules", [])
            if not r.get("passed")]  # fmt: skip


def explain_no_proposal(
    summary: dict[str, Any], served_run: str | None, windows: dict[str, str]
) -> list[str]:
    """Lines explaining why nothing was proposed and what serves instead."""
    decision = str(summary.get("decision") or "the candidate matches production")
    lines = [f"nothing to review: {decision}"]
    lines += [f"  failed: {detail}" for detail in failed_rules(summary)]
    if served_run:
        lines.append(
            f"the model already approved (run {served_run}) keeps serving: the gate compared "
            f"it with this run's candidate on the same validation window "
            f"({windows.get('validation_start')} .. {windows.get('validation_end')})"
        )
    else:
        lines.append("no model has been approved yet, so there is nothing to serve")
    if failed_rules(summary):
        lines.append(
            "to propose it anyway, rerun the pipeline with --param force_promotion=true "
            "(the proposal is labelled 'forced')"
        )
    return lines
