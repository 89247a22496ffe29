"""Report sections: each parses back into the values it was rendered from."""

from __future__ import annotations

import re

import numpy as np
import pytest

from crashed.core.bootstrap import paired_bootstrap, regression_checks
from crashed.core.calibration import calibration, threshold_analysis
from crashed.core.charts import calibration_chart, parse_mermaid, pr_chart, roc_chart
from crashed.core.report_sections import (
    NO_SHADOW,
    format_interval,
    mark_small_segments,
    render_calibration,
    render_charts,
    render_intervals,
    render_operating_points,
    render_run_reason,
    render_segments,
    render_shadow,
)
from crashed.core.shadow import latency_summary, shadow_compare


def tables(lines: list[str]) -> list[list[dict[str, str]]]:
    """Every Markdown table in ``lines`` as a list of {header: cell} rows."""
    found, current = [], []
    for line in [*lines, ""]:
        if line.startswith("|"):
            cells = re.split(r"(?<!\\)\|", line.strip())[1:-1]
            current.append([c.strip().replace("\\|", "|") for c in cells])
        elif current:
            header, _, *rows = current
            found.append([dict(zip(header, row, strict=True)) for row in rows])
            current = []
    return found


def interval_cells(text: str) -> tuple[float, float, float]:
    m = re.fullmatch(r"([+-]?[\d.]+) \[([+-]?[\d.]+), ([+-]?[\d.]+)\]", text)
    assert m, text
    return float(m.group(1)), float(m.group(2)), float(m.group(3))


@pytest.fixture(scope="module")
def scored() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    y = (rng.random(2700) < 0.033).astype(int)
    signal = 1.6 * y + rng.normal(0, 1, len(y))
    prod = 1 / (1 + np.exp(-(signal + rng.normal(0, 0.25, len(y)) - 3)))
    worse = 1 / (1 + np.exp(-(signal + rng.normal(0, 1.5, len(y)) - 3)))
    return y, worse, prod


def test_intervals_table_carries_numbers_and_verdicts(scored) -> None:
    y, worse, prod = scored
    result = paired_bootstrap(y, worse, prod, resamples=500, seed=1)
    checks = regression_checks(result, {"roc_auc": 0.01, "pr_auc": 0.5})
    lines = render_intervals(result, checks, production_name="production (`run-a`)")
    assert lines[0] == "### Validation metrics with 95 % intervals"
    [rows] = tables(lines)
    roc, pr = rows
    assert roc["metric"] == "ROC-AUC" and pr["metric"] == "PR-AUC"
    expected = result.metrics["roc_auc"]
    assert interval_cells(roc["candidate"]) == pytest.approx(
        (expected.candidate.estimate, expected.candidate.low, expected.candidate.high), abs=5e-4
    )
    assert interval_cells(roc["Δ (candidate − production)"]) == pytest.approx(
        (expected.delta.estimate, expected.delta.low, expected.delta.high), abs=5e-4
    )
    assert "production (`run-a`)" in roc
    assert roc["verdict"] == "▼ significantly worse (allowed drop 0.010)"
    assert pr["verdict"] == "≈ not distinguishable (allowed drop 0.500)"
    assert roc["candidate worse in"] == f"{expected.share_candidate_worse * 100:.0f} % of resamples"


def test_intervals_without_production_have_no_delta_columns(scored) -> None:
    y, worse, _ = scored
    [rows] = tables(render_intervals(paired_bootstrap(y, worse, resamples=100)))
    assert list(rows[0]) == ["metric", "candidate"]


def test_format_interval() -> None:
    from crashed.core.bootstrap import Interval

    assert format_interval(Interval(estimate=0.8671, low=0.83, high=0.9)) == "0.867 [0.830, 0.900]"
    assert format_interval(Interval(estimate=-0.01, low=-0.02, high=0.004), sign=True) == (
        "-0.010 [-0.020, +0.004]"
    )
    assert format_interval(Interval(estimate=0.5, low=None, high=None)) == "0.500"
    assert format_interval(None) == "n/a"


def test_small_segments_are_marked() -> None:
    segments = [
        {
            "segment": "60 km/h",
            "rows": 900,
            "positives": 40,
            "roc_auc": 0.86,
            "pr_auc": 0.2,
            "recall": 0.5,
        },
        {
            "segment": "80 km/h",
            "rows": 300,
            "positives": 5,
            "roc_auc": 0.95,
            "pr_auc": 0.6,
            "recall": 0.8,
        },
        {
            "segment": "(other)",
            "rows": 40,
            "positives": 0,
            "roc_auc": None,
            "pr_auc": None,
            "recall": 0.0,
        },
    ]
    marked = mark_small_segments(segments, min_positives=10)
    assert [s["too_few_positives"] for s in marked] == [False, True, True]
    assert "too_few_positives" not in segments[0]  # inputs untouched
    lines = render_segments("speed_zone", segments, min_positives=10)
    [rows] = tables(lines)
    assert [r["note"] for r in rows] == [
        "",
        "⚠ too few positives (< 10)",
        "⚠ too few positives (< 10)",
    ]
    assert rows[0]["ROC-AUC"] == "0.860" and rows[1]["ROC-AUC"] == "(0.950)"
    assert rows[2]["ROC-AUC"] == "n/a"
    assert any("fewer than 10" in line for line in lines)


def test_shadow_section_with_and_without_a_log() -> None:
    missing = render_shadow(None)
    assert missing == ["### Shadow on live traffic", "", f"_{NO_SHADOW}_"]
    reason = render_shadow(None, missing_reason="no rows in the last 7 days")
    assert reason[-1] == "_No prediction log: shadow not computed (no rows in the last 7 days)._"
    p = np.random.default_rng(0).beta(1, 12, 1000)
    shadow = shadow_compare(p, np.clip(p * 1.2, 0, 1), 0.15, production_threshold=0.15)
    latency = latency_summary(np.full(200, 48e-6))
    lines = render_shadow(shadow, latency, window="last 7 days")
    [rows] = tables(lines)
    values = {r["measure"]: r["value"] for r in rows}
    assert values["decision agreement"] == f"{shadow.agreement * 100:.2f} %"
    assert values["newly flagged / no longer flagged"] == f"{shadow.newly_flagged} / 0"
    assert values["score PSI (candidate vs production)"] == f"{shadow.score_psi:.4f}"
    assert values["mean |Δ probability| (max)"].startswith(f"{shadow.mean_abs_delta_p:.4f}")
    assert "1,000 requests production served (last 7 days)" in lines[2]
    assert lines[-1].startswith("Candidate single-row predict on this machine: p50 48 µs, p99 48")


def test_calibration_section(scored) -> None:
    y, worse, prod = scored
    cand_cal, prod_cal = calibration(y, worse), calibration(y, prod)
    deciles, scores = tables(render_calibration(cand_cal, prod_cal))
    assert [r["decile"] for r in deciles] == [str(i) for i in range(1, 11)]
    assert deciles[-1]["candidate observed"] == f"{cand_cal.bins[-1].observed_rate * 100:.2f} %"
    assert deciles[0]["production predicted"] == f"{prod_cal.bins[0].mean_predicted * 100:.2f} %"
    assert scores == [
        {
            "model": "candidate",
            "Brier": f"{cand_cal.brier:.4f}",
            "expected calibration error": f"{cand_cal.expected_calibration_error:.4f}",
        },
        {
            "model": "production",
            "Brier": f"{prod_cal.brier:.4f}",
            "expected calibration error": f"{prod_cal.expected_calibration_error:.4f}",
        },
    ]
    [alone, _] = tables(render_calibration(cand_cal))
    assert "production observed" not in alone[0]


def test_operating_points_section(scored) -> None:
    y, worse, prod = scored
    cand, production = threshold_analysis(y, worse, 0.2), threshold_analysis(y, prod, 0.25)
    lines = render_operating_points(cand, production)
    [rows] = tables(lines)
    assert [(r["model"], r["operating point"]) for r in rows] == [
        ("candidate", "chosen threshold"),
        ("candidate", "recall ≥ 0.5"),
        ("candidate", "recall ≥ 0.7"),
        ("candidate", "best F1"),
        ("production", "chosen threshold"),
    ]
    assert rows[1]["threshold"] == f"{cand.alternatives[0].threshold:.4f}"
    assert rows[2]["recall"] == f"{cand.alternatives[1].recall * 100:.1f} %"
    assert float(rows[2]["recall"].rstrip(" %")) >= 70.0


def test_charts_section_parses(scored) -> None:
    y, worse, prod = scored
    charts = [
        roc_chart(y, worse, prod),
        pr_chart(y, worse, prod),
        calibration_chart(calibration(y, worse), calibration(y, prod)),
    ]
    text = "\n".join(render_charts(charts))
    blocks = re.findall(r"```mermaid\n.*?\n```", text, flags=re.S)
    assert [parse_mermaid(b).title for b in blocks] == [c.title for c in charts]
    assert "_blue = candidate, orange = production, grey = chance._" in text


def test_run_reason() -> None:
    assert render_run_reason(None, None) == []
    assert render_run_reason("triggered", "score PSI 0.31 ≥ 0.25") == [
        "> **Triggered run:** score PSI 0.31 ≥ 0.25",
        "",
    ]
