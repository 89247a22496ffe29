"""train: fit the XGBoost model with the shared encoder; save it as UBJSON (never pickle)."""

from __future__ import annotations

import json
import math

from crashed.core.encoder import Encoder
from crashed.core.training import TrainParams
from crashed.core.training import train as fit
from crashed.pipeline.contracts import TrainInput, TrainOutput
from crashed.pipeline.ops.context import OpContext
from crashed.settings import Settings


def train_params(settings: Settings) -> TrainParams:
    """Hyper-parameters from settings (``TRAIN_*``)."""
    return TrainParams(
        max_depth=settings.train_max_depth,
        learning_rate=settings.train_learning_rate,
        max_rounds=settings.train_max_rounds,
        min_child_weight=settings.train_min_child_weight,
        scale_pos_weight=settings.train_scale_pos_weight,
        min_category_count=settings.train_min_category_count,
        seed=settings.train_seed,
    )


def train(ctx: OpContext, inp: TrainInput) -> TrainOutput:
    """Fit on the training window; the validation window is never seen here."""
    distributions = json.loads(ctx.ports.lake.get_bytes(inp.analyse.distributions_uri))
    params = train_params(ctx.settings)
    encoder = Encoder.fit(distributions, min_count=params.min_category_count)
    frame = ctx.get_frame(inp.extract.train.uri)
    with ctx.step(f"fit XGBoost on {len(frame)} rows × {encoder.width} columns"):
        result = fit(frame, encoder, params, name=ctx.settings.crashed_model_name)
    uri = ctx.run_uri("model.ubj")
    info = ctx.ports.lake.put_bytes(uri, result.bundle.to_bytes(), "application/ubjson")
    print(
        f"  {result.best_rounds} boosting rounds, threshold {result.bundle.threshold:.4f}, "
        f"holdout ROC-AUC {result.holdout['roc_auc']:.4f}"
    )
    return TrainOutput(
        model_uri=uri,
        model_sha256=info.sha256,
        best_rounds=result.best_rounds,
        threshold=result.bundle.threshold,
        holdout={key: _finite(value) for key, value in result.holdout.items()},
        importance=[(name, round(share, 5)) for name, share in result.importance[:15]],
        params=result.params,
        fit_seconds=round(result.seconds, 3),
        columns=encoder.width,
    )


def _finite(value: float | None) -> float | None:
    """JSON has no NaN: an undefined metric is ``None``."""
    return None if value is None or math.isnan(value) else float(value)
