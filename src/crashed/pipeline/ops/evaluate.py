"""evaluate: candidate and production model on the same validation window; the gate decision."""

from __future__ import annotations

from typing import Any

import numpy as np

from crashed.core.features import LABEL, SEGMENT_FEATURES
from crashed.core.gate import GateRules, decide
from crashed.core.metrics import classification_metrics, segment_metrics
from crashed.core.model_bundle import ModelBundle, ModelFormatError
from crashed.errors import CrashedError
from crashed.pipeline.ops.context import OpContext
from crashed.settings import Settings
from crashed.verification import fetch_verified


def gate_rules(settings: Settings) -> GateRules:
    """Gate thresholds from settings (``GATE_*``)."""
    return GateRules(
        min_roc_auc=settings.gate_min_roc_auc,
        max_roc_auc_drop=settings.gate_max_roc_auc_drop,
        max_pr_auc_drop=settings.gate_max_pr_auc_drop,
        min_validation_positives=settings.gate_min_validation_positives,
    )


def evaluate(ctx: OpContext, extract: str, train: str) -> dict[str, Any]:
    """Score both models, compute headline and per-segment metrics, apply the gate rules."""
    manifest = ctx.get_json(extract)
    trained = ctx.get_json(train)
    frame = ctx.get_frame(manifest["validation"]["uri"])
    y = frame[LABEL].astype(int).to_numpy()
    candidate = ModelBundle.from_bytes(ctx.adapters.lake.get_bytes(trained["model_uri"]))
    with ctx.step(f"score candidate on {len(frame)} validation rows"):
        p_candidate = candidate.predict_matrix(candidate.encoder.encode_frame(frame))
    result: dict[str, Any] = {
        "candidate": _report(frame, y, p_candidate, candidate.threshold),
        "production": None,
        "production_run_id": None,
        "production_error": None,
    }
    production_overall: dict[str, Any] | None = None
    production_ref = ctx.production_reference()
    if production_ref is not None:
        result["production_run_id"] = production_ref.model.run_id
        try:
            data = fetch_verified(
                production_ref.artifacts.model,
                "model",
                ctx.adapters.lake,
                ctx.settings.home / "cache",
            )
            production = ModelBundle.from_bytes(data)
        except (CrashedError, ModelFormatError) as error:
            # Production cannot be scored: the regression rules then fail (never a silent pass).
            result["production_error"] = str(error)
            production_overall = {"roc_auc": None, "pr_auc": None}
        else:
            with ctx.step(f"score production model {production_ref.model.run_id}"):
                p_production = production.predict_matrix(production.encoder.encode_frame(frame))
            result["production"] = _report(frame, y, p_production, production.threshold)
            production_overall = result["production"]["overall"]
    decision = decide(result["candidate"]["overall"], production_overall, gate_rules(ctx.settings))
    result["gate"] = decision.as_dict()
    result["window"] = {k: manifest["validation"][k] for k in ("start", "end", "rows", "positives")}
    uri = ctx.put_json(ctx.run_uri("metrics.json"), result)
    overall = result["candidate"]["overall"]
    print(
        f"  candidate ROC-AUC {_f(overall['roc_auc'])}  PR-AUC {_f(overall['pr_auc'])}  "
        f"precision {overall['precision']:.3f} recall {overall['recall']:.3f} "
        f"@ {overall['threshold']:.3f}"
    )
    for rule in decision.rules:
        print(f"  gate {'PASS' if rule.passed else 'FAIL'}: {rule.name}: {rule.detail}")
    return {
        "metrics_uri": uri,
        "gate": result["gate"],
        "candidate": overall,
        "production": production_overall,
        "production_run_id": result["production_run_id"],
    }


def _report(frame: Any, y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, Any]:
    return {
        "overall": classification_metrics(y, p, threshold),
        "segments": {f: segment_metrics(frame, y, p, threshold, f) for f in SEGMENT_FEATURES},
    }


def _f(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"
