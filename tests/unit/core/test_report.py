"""The review report: metrics with deltas, each gate rule, data, lineage, artifacts, rollback."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pytest

from crashed.core.evaluation import DriftFinding, Evaluation
from crashed.core.gate import GateRules, decide
from crashed.core.reference import PromotedReference
from crashed.core.report import DataFindings, render_report


def artifact(name: str) -> dict[str, Any]:
    data = f"{name} content".encode()
    return {
        "uri": f"gs://crashed-lake/models/crashed/run-42/{name}",
        "sha256": hashlib.sha256(data).hexdigest(),
        "md5": hashlib.md5(data).hexdigest(),
        "bytes": len(data),
    }


def reference(with_report: bool = False) -> PromotedReference:
    artifacts = {
        n: artifact(f)
        for n, f in (
            ("model", "model.ubj"),
            ("distributions", "distributions.json"),
            ("metrics", "metrics.json"),
        )
    }
    if with_report:
        artifacts["report"] = artifact("report.md")
    return PromotedReference.model_validate(
        {
            "schema_version": 1,
            "status": "promoted",
            "model": {"name": "crashed", "run_id": "run-42", "created_at": "2026-11-22T03:00:00Z"},
            "artifacts": artifacts,
            "metrics": {
                "roc_auc": 0.86,
                "pr_auc": 0.2,
                "log_loss": 0.12,
                "brier": 0.03,
                "precision": 0.25,
                "recall": 0.4,
                "threshold": 0.31,
                "validation_rows": 2683,
                "validation_positives": 88,
            },
            "lineage": {
                "pipeline": "crashed_pipeline",
                "pipeline_version": "v-9f8e7d",
                "run_id": "run-42",
                "image": "registry.example/crashed:sha-1",
                "git_commit": "deadbeefcafe",
                "train_window": {
                    "start": "2018-01-01",
                    "end": "2018-09-30",
                    "rows": 8480,
                    "positives": 269,
                },
                "validation_window": {
                    "start": "2018-10-01",
                    "end": "2018-12-31",
                    "rows": 2683,
                    "positives": 88,
                },
                "platform": "local",
            },
        }
    )


CANDIDATE = {
    "rows": 2683,
    "positives": 88,
    "roc_auc": 0.8612,
    "pr_auc": 0.2040,
    "log_loss": 0.1200,
    "brier": 0.0300,
    "precision": 0.25,
    "recall": 0.40,
    "f1": 0.3077,
    "threshold": 0.31,
    "true_positives": 35,
    "false_positives": 105,
    "false_negatives": 53,
}
PRODUCTION = {
    "rows": 2683,
    "positives": 88,
    "roc_auc": 0.8500,
    "pr_auc": 0.2100,
    "log_loss": 0.1300,
    "brier": 0.0300,
    "precision": 0.20,
    "recall": 0.45,
    "f1": 0.2769,
    "threshold": 0.28,
    "true_positives": 40,
    "false_positives": 160,
    "false_negatives": 48,
}
SEGMENTS = {
    "day_of_week": [
        {
            "segment": "Saturday",
            "rows": 400,
            "positives": 30,
            "roc_auc": 0.81,
            "pr_auc": 0.3,
            "precision": 0.3,
            "recall": 0.5,
        },
        {
            "segment": "(other)",
            "rows": 20,
            "positives": 0,
            "roc_auc": None,
            "pr_auc": None,
            "precision": 0.0,
            "recall": 0.0,
        },
    ]
}


def evaluation(production: dict[str, Any] | None, error: str | None = None) -> Evaluation:
    gate = decide(CANDIDATE, production, GateRules())
    return Evaluation.model_validate(
        {
            "candidate": {"overall": CANDIDATE, "segments": SEGMENTS},
            "production": {"overall": production, "segments": {}} if production else None,
            "production_run_id": "run-41" if production else None,
            "production_error": error,
            "gate": gate,
            "window": {"start": "2018-10-01", "end": "2018-12-31", "rows": 2683, "positives": 88},
        }
    )


FINDINGS = DataFindings(
    warnings=["light_condition is null on 6.7 % of rows"],
    drift=[
        DriftFinding(feature="day_of_week", psi=0.0123, level="ok", new_values=[]),
        DriftFinding(feature="speed_zone", psi=0.3, level="alert", new_values=["110 km/hr", "a|b"]),
    ],
    importance=[("hour", 0.41), ("males", 0.2)],
    best_rounds=321,
)


@pytest.fixture
def report() -> str:
    return render_report(
        reference(with_report=True),
        evaluation(PRODUCTION),
        FINDINGS,
        "Every gate rule passed.",
    )


def table_row(report: str, first_cell: str) -> list[str]:
    for line in report.splitlines():
        if line.startswith(f"| {first_cell} |"):
            return [c.strip() for c in line.strip("|").split(" | ")]
    raise AssertionError(f"no table row starting with {first_cell!r}")


def test_headline(report: str) -> None:
    assert report.startswith("## Model update: `crashed` from run `run-42`")
    assert "**Gate: PASSED.** Every gate rule passed." in report


def test_metrics_table_with_deltas(report: str) -> None:
    assert "| metric | candidate | production (`run-41`) | Δ |" in report
    assert table_row(report, "ROC-AUC") == ["ROC-AUC", "0.8612", "0.8500", "+0.0112 ▲"]
    assert table_row(report, "PR-AUC") == ["PR-AUC", "0.2040", "0.2100", "-0.0060 ▼"]
    # lower is better for losses: a drop is an improvement
    assert table_row(report, "log loss") == ["log loss", "0.1200", "0.1300", "-0.0100 ▲"]
    assert table_row(report, "Brier") == ["Brier", "0.0300", "0.0300", "+0.0000"]
    assert table_row(report, "recall @ threshold")[3] == "-0.0500 ▼"
    assert table_row(report, "threshold") == ["threshold", "0.3100", "0.2800", ""]


def test_each_gate_rule_with_pass_or_fail(report: str) -> None:
    section = report.split("### Gate rules")[1].split("###")[0]
    assert "| rule | result | numbers |" in section
    rows = [line for line in section.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == 1 + 4  # header + four rules with a production model
    assert table_row(section, "ROC-AUC floor")[1] == "✅ pass"
    assert table_row(section, "PR-AUC no worse than production")[1] == "✅ pass"
    assert "candidate 0.2040 vs production 0.2100" in section


def test_failing_rules_are_marked(report: str) -> None:
    worse = PRODUCTION | {"roc_auc": 0.95}
    text = render_report(reference(), evaluation(worse), FINDINGS, "Not proposed.")
    assert "**Gate: FAILED.** Not proposed." in text
    assert table_row(text, "ROC-AUC no worse than production")[1] == "❌ fail"
    assert table_row(text, "enough validation positives")[1] == "✅ pass"


def test_first_model_without_production() -> None:
    text = render_report(reference(), evaluation(None), FINDINGS, "First model.")
    assert table_row(text, "ROC-AUC") == ["ROC-AUC", "0.8612", "n/a", ""]
    assert "_Production: no model has been promoted yet._" in text
    assert table_row(text, "no regression vs production")[1] == "✅ pass"


def test_production_error_is_shown() -> None:
    data = evaluation(None, error="checksum mismatch for model")
    text = render_report(reference(), data, FINDINGS, "")
    assert "_Production: checksum mismatch for model._" in text


def test_data_windows(report: str) -> None:
    assert table_row(report, "training") == [
        "training",
        "2018-01-01",
        "2018-09-30",
        "8480",
        "269",
        "3.17%",
    ]
    assert table_row(report, "validation") == [
        "validation",
        "2018-10-01",
        "2018-12-31",
        "2683",
        "88",
        "3.28%",
    ]


def test_findings_and_drift(report: str) -> None:
    assert "- light_condition is null on 6.7 % of rows" in report
    assert table_row(report, "speed_zone") == [
        "speed_zone",
        "0.3000",
        "alert",
        "110 km/hr, a\\|b",
    ]  # pipe escaped
    assert table_row(report, "day_of_week")[3] == "—"
    no_findings = render_report(reference(), evaluation(None), DataFindings(), "")
    assert "- no data warnings" in no_findings
    assert "_No drift computed" in no_findings


def test_importance_segments_and_lineage(report: str) -> None:
    assert table_row(report, "hour") == ["hour", "41.0%"]
    assert "### Candidate by `day_of_week`" in report
    assert table_row(report, "Saturday") == [
        "Saturday",
        "400",
        "30",
        "0.810",
        "0.300",
        "0.500",
        "",
    ]
    # 0 positives: marked as too few to read anything into (metrics are n/a anyway)
    other = table_row(report, "(other)")
    assert other[3:5] == ["n/a", "n/a"] and other[6].startswith("⚠")
    assert "| pipeline | crashed_pipeline (v-9f8e7d) |" in report
    assert "| image | `registry.example/crashed:sha-1` |" in report
    assert "| code commit | `deadbeefcafe` |" in report
    assert "| boosting rounds | 321 |" in report


@pytest.mark.parametrize("with_report", [False, True])
def test_artifacts_with_sha256(with_report: bool) -> None:
    ref = reference(with_report)
    text = render_report(ref, evaluation(PRODUCTION), FINDINGS, "")
    section = text.split("### Artifacts")[1].split("###")[0]
    names = ["model", "distributions", "metrics"] + (["report"] if with_report else [])
    for name in names:
        item = getattr(ref.artifacts, name)
        assert table_row(section, name) == [
            name,
            f"`{item.uri}`",
            f"`{item.sha256}`",
            str(item.bytes),
        ]
    assert len(re.findall(r"`[0-9a-f]{64}`", section)) == len(names)


def test_rollback_instructions(report: str) -> None:
    section = report.split("### Review and roll back")[1]
    assert "model-reference.json" in section
    assert "git revert -m 1 <merge-commit>" in section
    assert "checksum" in section


def test_plain_markdown_without_images(report: str) -> None:
    assert "![" not in report
    assert "<img" not in report.lower()
    assert "](" not in report  # no links that can rot
    for line in report.splitlines():
        if line.startswith("|"):
            assert line.endswith("|"), line
