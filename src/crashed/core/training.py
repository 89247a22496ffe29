"""Fit the XGBoost classifier: chronological early-stopping holdout, class weighting, threshold."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb

from crashed.core.encoder import Encoder
from crashed.core.features import DATE, LABEL
from crashed.core.metrics import best_f1_threshold
from crashed.core.model_bundle import ModelBundle

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainParams:
    """Hyper-parameters (settings ``TRAIN_*``). Defaults tuned on the 2018 temporal split."""

    max_depth: int = 3
    learning_rate: float = 0.03
    max_rounds: int = 600
    early_stopping_rounds: int = 60
    min_child_weight: float = 5.0
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    reg_lambda: float = 5.0
    scale_pos_weight: float | None = None
    """None = sqrt(negatives / positives): handles the 3 % base rate, keeps calibration sane."""
    holdout_fraction: float = 0.2
    min_category_count: int = 5
    seed: int = 0
    nthread: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainResult:
    """The fitted bundle plus what the report needs."""

    bundle: ModelBundle
    best_rounds: int
    holdout: dict[str, float]
    importance: list[tuple[str, float]]
    seconds: float
    params: dict[str, Any]


def chronological_split(frame: pd.DataFrame, fraction: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Earliest ``1 - fraction`` of rows (by date) for fitting, the rest for early stopping."""
    ordered = frame.sort_values(DATE, kind="stable")
    cut = round(len(ordered) * (1 - fraction))
    return ordered.iloc[:cut], ordered.iloc[cut:]


def train(frame: pd.DataFrame, encoder: Encoder, params: TrainParams, name: str = "crashed"
          ) -> TrainResult:
    """Fit on ``frame`` (normalised crashes with label); returns the bundle and diagnostics."""
    started = time.perf_counter()
    fit_part, holdout_part = chronological_split(frame, params.holdout_fraction)
    y_fit = fit_part[LABEL].astype(int).to_numpy()
    y_hold = holdout_part[LABEL].astype(int).to_numpy()
    if y_fit.sum() == 0:
        raise ValueError("the training window has no positive (alcohol-related) crashes")
    booster_params = _booster_params(params, y_fit)
    d_fit = xgb.DMatrix(encoder.encode_frame(fit_part), label=y_fit,
                        feature_names=list(encoder.columns))
    d_hold = xgb.DMatrix(encoder.encode_frame(holdout_part), label=y_hold,
                         feature_names=list(encoder.columns))
    evals_log: dict[str, Any] = {}
    has_holdout = len(y_hold) > 0 and 0 < y_hold.sum() < len(y_hold)
    first = xgb.train(
        booster_params,
        d_fit,
        num_boost_round=params.max_rounds,
        evals=[(d_hold, "holdout")] if has_holdout else [],
        early_stopping_rounds=params.early_stopping_rounds if has_holdout else None,
        evals_result=evals_log,
        verbose_eval=False,
    )
    best_rounds = (first.best_iteration + 1) if has_holdout else params.max_rounds
    holdout_p = first.predict(d_hold, iteration_range=(0, best_rounds)) if len(y_hold) else None
    threshold = best_f1_threshold(y_hold, holdout_p) if has_holdout else 0.5
    log.info("train: %d rounds chosen on the holdout; threshold %.4f", best_rounds, threshold)
    # Refit on the whole window with the chosen number of rounds.
    y_all = frame[LABEL].astype(int).to_numpy()
    d_all = xgb.DMatrix(encoder.encode_frame(frame), label=y_all,
                        feature_names=list(encoder.columns))
    booster = xgb.train(_booster_params(params, y_all), d_all, num_boost_round=best_rounds,
                        verbose_eval=False)
    gains = booster.get_score(importance_type="total_gain")
    total = sum(gains.values()) or 1.0
    importance = sorted(((k, v / total) for k, v in gains.items()), key=lambda kv: -kv[1])
    holdout_auc = evals_log.get("holdout", {}).get("auc", [])
    return TrainResult(
        bundle=ModelBundle(booster, encoder, threshold, name),
        best_rounds=best_rounds,
        holdout={"roc_auc": float(holdout_auc[best_rounds - 1]) if holdout_auc else float("nan"),
                 "rows": len(y_hold), "positives": int(y_hold.sum())},
        importance=importance,
        seconds=time.perf_counter() - started,
        params=params.as_dict() | {"scale_pos_weight_used": booster_params["scale_pos_weight"]},
    )


def _booster_params(params: TrainParams, y: np.ndarray) -> dict[str, Any]:
    positives = max(int(y.sum()), 1)
    negatives = max(len(y) - positives, 1)
    weight = params.scale_pos_weight or float(np.sqrt(negatives / positives))
    out: dict[str, Any] = {
        "objective": "binary:logistic",
        "eval_metric": "auc",
        "tree_method": "hist",
        "max_depth": params.max_depth,
        "eta": params.learning_rate,
        "min_child_weight": params.min_child_weight,
        "subsample": params.subsample,
        "colsample_bytree": params.colsample_bytree,
        "lambda": params.reg_lambda,
        "scale_pos_weight": round(weight, 4),
        "seed": params.seed,
    }
    if params.nthread:
        out["nthread"] = params.nthread
    return out
