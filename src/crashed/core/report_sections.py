"""Markdown sections of the review report for intervals, segments, shadow, calibration, threshold
and charts. Each is a pure function of typed results returning Markdown lines, so
``core/report.py`` can splice them in with ``out += render_…(…)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from crashed.core.bootstrap import BootstrapResult, Interval, RegressionCheck, Verdict
from crashed.core.calibration import Calibration, OperatingPoint, ThresholdAnalysis
from crashed.core.charts import Chart, to_mermaid
from crashed.core.shadow import LatencySummary, ShadowResult

LABELS = {"roc_auc": "ROC-AUC", "pr_auc": "PR-AUC"}
VERDICT_TEXT = {
    Verdict.BETTER: "▲ better",
    Verdict.NOT_DISTINGUISHABLE: "≈ not distinguishable",
    Verdict.SIGNIFICANTLY_WORSE: "▼ significantly worse",
    Verdict.UNDEFINED: "undefined",
}
NO_SHADOW = "No prediction log: shadow not computed."
TOO_FEW = "too few positives"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A Markdown table (pipes inside cells escaped)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]


def _num(value: float | None, digits: int = 3, sign: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def _pct(value: float | None, digits: int = 1, sign: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value * 100:+.{digits}f} %" if sign else f"{value * 100:.{digits}f} %"


def format_interval(interval: Interval | None, digits: int = 3, sign: bool = False) -> str:
    """'0.867 [0.829, 0.901]' (or 'n/a'; the estimate alone when no interval exists)."""
    if interval is None or interval.estimate is None:
        return "n/a"
    text = _num(interval.estimate, digits, sign)
    if interval.low is None or interval.high is None:
        return text
    return f"{text} [{_num(interval.low, digits, sign)}, {_num(interval.high, digits, sign)}]"


def render_run_reason(kind: str | None, reason: str | None) -> list[str]:
    """Top-of-report note for triggered or rollback runs (``kind`` e.g. 'triggered'); [] if none."""
    if not reason:
        return []
    return [f"> **{(kind or 'run').capitalize()} run:** {reason}", ""]


def render_intervals(
    result: BootstrapResult,
    checks: Sequence[RegressionCheck] = (),
    production_name: str = "production",
) -> list[str]:
    """Metrics with their intervals, the paired deltas and the regression verdict per metric."""
    level = f"{result.level * 100:g} %"
    by_metric = {c.metric: c for c in checks}
    has_production = any(m.production is not None for m in result.metrics.values())
    out = [
        f"### Validation metrics with {level} intervals",
        "",
        f"Paired bootstrap: {result.resamples:,} resamples of the {result.rows:,} validation rows "
        f"({result.positives:,} positives, seed {result.seed}); both models are scored on the "
        f"same resampled rows, so Δ's interval is the one that matters.",
    ]
    if result.skipped_degenerate:
        out.append(
            f"{result.skipped_degenerate:,} resamples without a positive or a negative were "
            f"skipped ({result.valid_resamples:,} used)."
        )
    out.append("")
    header = ["metric", "candidate"]
    if has_production:
        header += [production_name, "Δ (candidate − production)", "candidate worse in"]
    if by_metric:
        header.append("verdict")
    rows = []
    for metric, comparison in result.metrics.items():
        row = [LABELS.get(metric, metric), format_interval(comparison.candidate)]
        if has_production:
            row += [
                format_interval(comparison.production),
                format_interval(comparison.delta, sign=True),
                f"{_pct(comparison.share_candidate_worse, 0)} of resamples"
                if comparison.share_candidate_worse is not None
                else "n/a",
            ]
        if by_metric:
            check = by_metric.get(metric)
            row.append(
                f"{VERDICT_TEXT[check.verdict]} (allowed drop {check.allowed_drop:.3f})"
                if check
                else ""
            )
        rows.append(row)
    out += table(header, rows)
    if by_metric:
        out += [
            "",
            f"_A regression rule fails only when the whole {level} interval of Δ lies below "
            f"−(allowed drop); otherwise the candidate is not distinguishable from an allowed "
            f"drop (better: the interval lies above +(allowed drop))._",
        ]
    return out


def mark_small_segments(
    segments: Sequence[dict[str, Any]], min_positives: int
) -> list[dict[str, Any]]:
    """Copies of ``segments`` with ``too_few_positives`` set where positives < ``min_positives``."""
    return [
        {**s, "too_few_positives": int(s.get("positives") or 0) < min_positives} for s in segments
    ]


def render_segments(
    feature: str, segments: Sequence[dict[str, Any]], min_positives: int
) -> list[str]:
    """Per-segment metrics table; rows with too few positives are marked, metrics in parentheses."""
    rows = []
    for s in mark_small_segments(segments, min_positives):
        small = s["too_few_positives"]
        cells = [_num(s.get(k)) for k in ("roc_auc", "pr_auc", "recall")]
        if small:
            cells = [f"({c})" if c != "n/a" else c for c in cells]
        rows.append(
            [
                str(s["segment"]),
                str(s["rows"]),
                str(s["positives"]),
                *cells,
                f"⚠ {TOO_FEW} (< {min_positives})" if small else "",
            ]
        )
    out = [f"### Candidate by `{feature}`", ""]
    out += table(
        ["segment", "crashes", "alcohol-related", "ROC-AUC", "PR-AUC", "recall", "note"], rows
    )
    if any(r[-1] for r in rows):
        out += [
            "",
            f"_Segments with fewer than {min_positives} alcohol-related crashes are marked: "
            f"their metrics (in parentheses) are noise, not findings._",
        ]
    return out


def render_shadow(
    shadow: ShadowResult | None,
    latency: LatencySummary | None = None,
    window: str | None = None,
    missing_reason: str | None = None,
) -> list[str]:
    """Shadow section; without a result it says so (``missing_reason`` adds why)."""
    out = ["### Shadow on live traffic", ""]
    if shadow is None:
        note = NO_SHADOW if not missing_reason else f"{NO_SHADOW[:-1]} ({missing_reason})."
        out.append(f"_{note}_")
    else:
        scope = f" ({window})" if window else ""
        out += [
            f"The candidate scored on the {shadow.rows:,} requests production served{scope}, "
            f"beside production's logged decisions: what would have changed had it served them.",
            "",
        ]
        out += table(
            ["measure", "value"],
            [
                ["decision agreement", _pct(shadow.agreement, 2)],
                [
                    "newly flagged / no longer flagged",
                    f"{shadow.newly_flagged:,} / {shadow.no_longer_flagged:,}",
                ],
                [
                    "mean |Δ probability| (max)",
                    f"{shadow.mean_abs_delta_p:.4f} ({shadow.max_abs_delta_p:.4f})",
                ],
                [
                    "predicted positive rate",
                    f"{_pct(shadow.production_positive_rate)} → "
                    f"{_pct(shadow.candidate_positive_rate)} "
                    f"({shadow.positive_rate_change * 100:+.2f} percentage points)",
                ],
                ["score PSI (candidate vs production)", f"{shadow.score_psi:.4f}"],
                ["candidate threshold", f"{shadow.candidate_threshold:.4f}"],
            ],
        )
    if latency is not None:
        out += [
            "",
            f"Candidate single-row predict on this machine: p50 {latency.p50_us:.0f} µs, "
            f"p99 {latency.p99_us:.0f} µs ({latency.samples:,} calls).",
        ]
    return out


def render_calibration(candidate: Calibration, production: Calibration | None = None) -> list[str]:
    """Reliability table by decile (each model's own deciles) with Brier and ECE."""
    out = ["### Calibration", ""]
    header = ["decile", "rows", "candidate predicted", "candidate observed"]
    paired = production is not None and len(production.bins) == len(candidate.bins)
    if paired:
        header += ["production predicted", "production observed"]
    rows = []
    for i, b in enumerate(candidate.bins):
        row = [str(b.bin), str(b.rows), _pct(b.mean_predicted, 2), _pct(b.observed_rate, 2)]
        if paired:
            p = production.bins[i]
            row += [_pct(p.mean_predicted, 2), _pct(p.observed_rate, 2)]
        rows.append(row)
    out += table(header, rows)
    scores = [
        ["candidate", _num(candidate.brier, 4), _num(candidate.expected_calibration_error, 4)]
    ]
    if production is not None:
        scores.append(
            [
                "production",
                _num(production.brier, 4),
                _num(production.expected_calibration_error, 4),
            ]
        )
    out += ["", *table(["model", "Brier", "expected calibration error"], scores)]
    out += [
        "",
        "_Rows sorted by each model's predicted probability and cut into equal-count deciles; "
        "a calibrated model's observed rate follows its predicted one. The class weight "
        "(√(neg/pos)) inflates predicted probabilities by design._",
    ]
    return out


def _point_row(model: str, point: OperatingPoint) -> list[str]:
    return [
        model,
        point.name,
        _num(point.threshold, 4),
        _pct(point.precision),
        _pct(point.recall),
        _num(point.f1),
        _pct(point.flagged_share),
    ]


def render_operating_points(
    candidate: ThresholdAnalysis,
    production: ThresholdAnalysis | None = None,
    how_chosen: str = "the one maximising F1 on the latest 20 % of the training window",
) -> list[str]:
    """The chosen threshold and what precision/recall cost at the alternative operating points."""
    rows = [_point_row("candidate", candidate.chosen)]
    rows += [_point_row("candidate", p) for p in candidate.alternatives]
    if production is not None:
        rows.append(_point_row("production", production.chosen))
    out = ["### Threshold and operating points", "", f"Threshold chosen as {how_chosen}.", ""]
    out += table(
        ["model", "operating point", "threshold", "precision", "recall", "F1", "flagged"], rows
    )
    out += [
        "",
        "_Alternatives read from the validation precision-recall curve: the highest threshold "
        "reaching each recall (best precision for it), and the threshold maximising F1._",
    ]
    return out


def render_charts(charts: Sequence[Chart]) -> list[str]:
    """Each chart as a Mermaid block (GitLab renders it) with its colour legend as a caption."""
    out = ["### Charts", ""]
    for chart in charts:
        out += [f"#### {chart.title}", "", f"_{chart.legend()}._", "", to_mermaid(chart), ""]
    return out
