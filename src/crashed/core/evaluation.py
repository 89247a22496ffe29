"""Typed records of what evaluation produces: the ``metrics.json`` artifact and its parts.

The same models validate the artifact when it is written (evaluate), read (publish, the report)
and verified (``crashed models verify``, the serving model state).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from crashed.core.bootstrap import BootstrapResult, RegressionCheck
from crashed.core.calibration import Calibration, ThresholdAnalysis
from crashed.core.charts import Chart
from crashed.core.gate import GateDecision


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClassificationMetrics(_Record):
    """Headline metrics of one model on one window (see ``core.metrics``)."""

    rows: int
    positives: int
    roc_auc: float | None
    pr_auc: float | None
    log_loss: float | None
    brier: float | None
    threshold: float
    precision: float
    recall: float
    f1: float
    true_positives: int
    false_positives: int
    false_negatives: int


class SegmentMetrics(_Record):
    """Metrics of one value of a segment feature (small values pooled as ``(other)``)."""

    segment: str
    rows: int
    positives: int
    roc_auc: float | None
    pr_auc: float | None
    precision: float
    recall: float


class ModelScores(_Record):
    """One model's overall and per-segment metrics on the validation window."""

    overall: ClassificationMetrics
    segments: dict[str, list[SegmentMetrics]]
    calibration: Calibration | None = None
    thresholds: ThresholdAnalysis | None = None


class WindowCounts(_Record):
    """A data window and what it holds."""

    start: str
    end: str
    rows: int
    positives: int


class DriftFinding(_Record):
    """Population stability of one feature against a reference distribution."""

    feature: str
    psi: float
    level: str
    new_values: list[str] = []


class ScoreDistribution(_Record):
    """A model's validation scores binned at their deciles: what live scores are compared with."""

    edges: list[float]
    counts: list[int]


class Evaluation(_Record):
    """The ``metrics.json`` artifact: both models on the same window, and the gate decision."""

    candidate: ModelScores
    production: ModelScores | None = None
    production_run_id: str | None = None
    production_error: str | None = None
    gate: GateDecision
    window: WindowCounts
    candidate_scores: ScoreDistribution | None = None
    bootstrap: BootstrapResult | None = None
    """Paired-bootstrap intervals of ROC-AUC / PR-AUC and their deltas."""
    regression_checks: list[RegressionCheck] = []
    charts: list[Chart] = []
    """ROC, precision–recall and calibration curves of both models (Mermaid in the report)."""
