"""The review report (Markdown) that a merge request or local proposal carries.

Plain Markdown tables only: no images, no links that can rot (cml#1478).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from crashed.core.evaluation import DriftFinding, Evaluation
from crashed.core.reference import PromotedReference, artifact_items
from crashed.core.report_sections import (
    render_calibration,
    render_charts,
    render_intervals,
    render_operating_points,
    render_segments,
    render_shadow,
)
from crashed.core.shadow import LatencySummary, ShadowResult


@dataclass(frozen=True)
class ShadowSection:
    """The offline shadow on logged traffic, or why there is none."""

    result: ShadowResult | None
    latency: LatencySummary | None
    window: str
    missing: str | None = None


@dataclass(frozen=True)
class DataFindings:
    """What the report shows about the data and the fit besides the evaluation."""

    warnings: Sequence[str] = ()
    drift: Sequence[DriftFinding] = ()
    importance: Sequence[tuple[str, float]] = ()
    best_rounds: int | None = None


_ROWS = (
    ("roc_auc", "ROC-AUC", True),
    ("pr_auc", "PR-AUC", True),
    ("log_loss", "log loss", False),
    ("brier", "Brier", False),
    ("precision", "precision @ threshold", True),
    ("recall", "recall @ threshold", True),
    ("f1", "F1 @ threshold", True),
    ("threshold", "threshold", None),
)


def _num(value: Any, digits: int = 4) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _delta(candidate: Any, production: Any, higher_is_better: bool | None) -> str:
    if candidate is None or production is None or higher_is_better is None:
        return ""
    delta = candidate - production
    better = delta > 0 if higher_is_better else delta < 0
    mark = "" if abs(delta) < 5e-5 else (" ▲" if better else " ▼")
    return f"{delta:+.4f}{mark}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return lines


def render_report(
    reference: PromotedReference,
    evaluation: Evaluation,
    findings: DataFindings,
    decision_note: str,
    why: str = "",
    shadow: ShadowSection | None = None,
    min_segment_positives: int = 10,
) -> str:
    """Markdown for reviewers: metrics vs production, gate rules, data, findings, lineage."""
    candidate = evaluation.candidate.overall
    production = evaluation.production.overall if evaluation.production else None
    gate = evaluation.gate
    lineage = reference.lineage
    out: list[str] = [
        f"## Model update: `{reference.model.name}` from run `{reference.model.run_id}`",
        "",
        *([f"**Why this retrain:** {why}", ""] if why else []),
        f"**Gate: {'PASSED' if gate.passed else 'FAILED'}.** {decision_note}",
        "",
        "### Validation metrics",
        "",
        f"Both models scored on the same validation window "
        f"({lineage.validation_window.start} .. {lineage.validation_window.end}, "
        f"{lineage.validation_window.rows} crashes, "
        f"{lineage.validation_window.positives} alcohol-related).",
        "",
    ]
    prod_name = f"production (`{evaluation.production_run_id}`)" if production else "production"
    rows = []
    for key, label, higher in _ROWS:
        cand = getattr(candidate, key)
        prod = getattr(production, key) if production else None
        rows.append([label, _num(cand), _num(prod), _delta(cand, prod, higher)])
    out += _table(["metric", "candidate", prod_name, "Δ"], rows)
    if production:
        out += ["", "_Δ = candidate − production; ▲ the candidate is better, ▼ worse._"]
    else:
        note = evaluation.production_error or "no model has been promoted yet"
        out += ["", f"_Production: {note}._"]
    if evaluation.bootstrap is not None:
        out += [
            "",
            *render_intervals(evaluation.bootstrap, evaluation.regression_checks, prod_name),
        ]
    out += ["", "### Gate rules", ""]
    out += _table(
        ["rule", "result", "numbers"],
        [[r.name, "✅ pass" if r.passed else "❌ fail", r.detail] for r in gate.rules],
    )
    if shadow is not None:
        out += ["", *render_shadow(shadow.result, shadow.latency, shadow.window, shadow.missing)]
    cand_scores, prod_scores = evaluation.candidate, evaluation.production
    if cand_scores.calibration is not None:
        prod_cal = prod_scores.calibration if prod_scores else None
        out += ["", *render_calibration(cand_scores.calibration, prod_cal)]
    if cand_scores.thresholds is not None:
        prod_thr = prod_scores.thresholds if prod_scores else None
        out += ["", *render_operating_points(cand_scores.thresholds, prod_thr)]
    if evaluation.charts:
        out += ["", *render_charts(evaluation.charts)]
    out += ["", "### Data", ""]
    out += _table(
        ["window", "from", "to", "crashes", "alcohol-related", "rate"],
        [
            [
                name,
                w.start,
                w.end,
                str(w.rows),
                str(w.positives),
                f"{w.positives / w.rows:.2%}" if w.rows else "n/a",
            ]
            for name, w in (
                ("training", lineage.train_window),
                ("validation", lineage.validation_window),
            )
        ],
    )
    out += ["", "### Validation and drift findings", ""]
    out += [f"- {w}" for w in findings.warnings] or ["- no data warnings"]
    if findings.drift:
        out += [""]
        out += _table(
            ["feature", "PSI vs production data", "level", "new values"],
            [
                [d.feature, f"{d.psi:.4f}", d.level, ", ".join(d.new_values) or "—"]
                for d in findings.drift
            ],
        )
    else:
        out += ["", "_No drift computed (no production model to compare with)._"]
    out += ["", "### Most important features (share of total gain)", ""]
    out += _table(
        ["feature", "share"],
        [[name, f"{share:.1%}"] for name, share in findings.importance[:10]],
    )
    for feature, segments in evaluation.candidate.segments.items():
        rows = [segment.model_dump() for segment in segments]
        out += ["", *render_segments(feature, rows, min_segment_positives)]
    out += ["", "### Lineage", ""]
    out += _table(
        ["", ""],
        [
            ["pipeline", f"{lineage.pipeline} ({lineage.pipeline_version})"],
            ["run", lineage.run_id],
            ["image", f"`{lineage.image}`"],
            ["code commit", f"`{lineage.git_commit}`"],
            ["platform", lineage.platform],
            ["boosting rounds", _num(findings.best_rounds)],
            ["created", reference.model.created_at],
        ],
    )
    out += ["", "### Artifacts", ""]
    out += _table(
        ["artifact", "uri", "sha256", "bytes"],
        [
            [name, f"`{a.uri}`", f"`{a.sha256}`", str(a.bytes)]
            for name, a in artifact_items(reference)
        ],
    )
    out += [
        "",
        "### Review and roll back",
        "",
        "- Merging this changes only `model-reference.json`; the merge pipeline verifies every "
        "checksum and rolls the inference Deployment (no pod becomes ready unless its model "
        "verifies).",
        "- To roll back later, `crashed models rollback [--to RUN_ID]` opens a proposal restoring "
        "an earlier reference (or revert the merge commit, `git revert -m 1 <merge-commit>`); "
        "it is reviewed and deployed the same way.",
        "",
    ]
    return "\n".join(out)
