"""evaluate: candidate and production model on the same validation window; the gate decision."""

from __future__ import annotations

import numpy as np
import pandas as pd

from crashed.core.bootstrap import paired_bootstrap, regression_checks
from crashed.core.calibration import calibration, threshold_analysis
from crashed.core.charts import calibration_chart, pr_chart, roc_chart
from crashed.core.evaluation import (
    ClassificationMetrics,
    Evaluation,
    ModelScores,
    ScoreDistribution,
    SegmentMetrics,
    WindowCounts,
)
from crashed.core.features import LABEL, SEGMENT_FEATURES
from crashed.core.gate import GateRules, decide
from crashed.core.metrics import classification_metrics, segment_metrics
from crashed.core.model_bundle import ModelBundle, ModelFormatError
from crashed.core.monitoring import score_edges, score_histogram
from crashed.errors import CrashedError
from crashed.pipeline.contracts import EvaluateInput, EvaluateOutput
from crashed.pipeline.ops.context import OpContext
from crashed.settings import Settings


def gate_rules(settings: Settings) -> GateRules:
    """Gate thresholds from settings (``GATE_*``)."""
    return GateRules(
        min_roc_auc=settings.gate_min_roc_auc,
        max_roc_auc_drop=settings.gate_max_roc_auc_drop,
        max_pr_auc_drop=settings.gate_max_pr_auc_drop,
        min_validation_positives=settings.gate_min_validation_positives,
    )


def evaluate(ctx: OpContext, inp: EvaluateInput) -> EvaluateOutput:
    """Score both models, compute headline and per-segment metrics, apply the gate rules."""
    window = inp.extract.validation
    frame = ctx.get_frame(window.uri)
    y = frame[LABEL].astype(int).to_numpy()
    candidate_model = ModelBundle.from_bytes(ctx.ports.lake.get_bytes(inp.train.model_uri))
    with ctx.step(f"score candidate on {len(frame)} validation rows"):
        p_candidate = candidate_model.predict_matrix(candidate_model.encoder.encode_frame(frame))
    candidate = scores(frame, y, p_candidate, candidate_model.threshold)
    p_production = None
    production: ModelScores | None = None
    production_error: str | None = None
    production_ref = ctx.production_reference()
    if production_ref is not None:
        try:
            production_model = ModelBundle.from_bytes(ctx.fetch_production(production_ref, "model"))
        except (CrashedError, ModelFormatError) as error:
            # Production cannot be scored: the regression rules then fail (never a silent pass).
            production_error = str(error)
        else:
            with ctx.step(f"score production model {production_ref.model.run_id}"):
                p_production = production_model.predict_matrix(
                    production_model.encoder.encode_frame(frame)
                )
            production = scores(frame, y, p_production, production_model.threshold)
    production_overall: dict[str, float | None] | None = None
    if production is not None:
        production_overall = production.overall.model_dump()
    elif production_error is not None:
        production_overall = {"roc_auc": None, "pr_auc": None}
    settings = ctx.settings
    rules = gate_rules(settings)
    with ctx.step(f"paired bootstrap, {settings.gate_bootstrap_resamples} resamples"):
        boot = paired_bootstrap(
            y,
            p_candidate,
            p_production,
            resamples=settings.gate_bootstrap_resamples,
            seed=settings.gate_bootstrap_seed,
            level=settings.gate_confidence_level,
        )
    checks = (
        regression_checks(
            boot, {"roc_auc": rules.max_roc_auc_drop, "pr_auc": rules.max_pr_auc_drop}
        )
        if p_production is not None
        else []
    )
    gate = decide(
        candidate.overall.model_dump(),
        production_overall,
        rules,
        checks if settings.gate_regression_rule == "significant" else (),
    )
    evaluation = Evaluation(
        candidate=candidate,
        production=production,
        production_run_id=production_ref.model.run_id if production_ref else None,
        production_error=production_error,
        gate=gate,
        window=WindowCounts(
            start=window.start, end=window.end, rows=window.rows, positives=window.positives
        ),
        candidate_scores=score_distribution(p_candidate),
        bootstrap=boot,
        regression_checks=checks,
        charts=[
            roc_chart(y, p_candidate, p_production),
            pr_chart(y, p_candidate, p_production),
            calibration_chart(
                candidate.calibration, production.calibration if production else None
            ),
        ],
    )
    uri = ctx.put_text(ctx.run_uri("metrics.json"), evaluation.model_dump_json(indent=2) + "\n")
    overall = candidate.overall
    print(
        f"  candidate ROC-AUC {_f(overall.roc_auc)}  PR-AUC {_f(overall.pr_auc)}  "
        f"precision {overall.precision:.3f} recall {overall.recall:.3f} "
        f"@ {overall.threshold:.3f}"
    )
    for rule in gate.rules:
        print(f"  gate {'PASS' if rule.passed else 'FAIL'}: {rule.name}: {rule.detail}")
    return EvaluateOutput(
        metrics_uri=uri,
        gate=gate,
        candidate=overall,
        production=production.overall if production else None,
        production_run_id=evaluation.production_run_id,
    )


def scores(frame: pd.DataFrame, y: np.ndarray, p: np.ndarray, threshold: float) -> ModelScores:
    """Overall and per-segment metrics of one model's probabilities ``p``."""
    return ModelScores(
        overall=ClassificationMetrics(**classification_metrics(y, p, threshold)),
        segments={
            feature: [
                SegmentMetrics(**row) for row in segment_metrics(frame, y, p, threshold, feature)
            ]
            for feature in SEGMENT_FEATURES
        },
        calibration=calibration(y, p),
        thresholds=threshold_analysis(y, p, threshold),
    )


def score_distribution(p: np.ndarray) -> ScoreDistribution:
    """Validation scores binned at their deciles (the monitor's reference for score PSI)."""
    edges = score_edges(p)
    return ScoreDistribution(edges=edges, counts=score_histogram(p, edges))


def _f(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"
