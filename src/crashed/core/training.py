"""Fit the XGBoost classifier.

- the number of boosting rounds is chosen by early stopping on a chronological holdout (the
  latest 20 % of the window) when that holdout holds enough positives (≥ 150); otherwise by
  stratified k-fold cross-validation on the whole window (a holdout of a 3 % class with a few
  dozen positives made the chosen round count, and so validation ROC-AUC, swing by ±0.01 on
  the real 2018 data; CV costs k fits, which large windows don't need);
- the operating threshold maximises F1 on a chronological holdout (the latest 20 % of the
  training window), scored by a model fitted on the earlier 80 %;
- the final model is refitted on the whole window.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.metrics import roc_auc_score

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
    max_rounds: int = 1500
    early_stopping_rounds: int = 100
    cv_folds: int = 5
    holdout_min_positives: int = 150
    """Holdout early stopping needs this many positives; below it, rounds come from CV."""
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


class _Progress(xgb.callback.TrainingCallback):
    """Logs every ``every`` boosting rounds, so a long fit shows it is moving."""

    def __init__(self, what: str, every: int = 100) -> None:
        self.what, self.every, self.started = what, every, time.perf_counter()

    def after_iteration(self, model: Any, epoch: int, evals_log: dict[str, Any]) -> bool:
        if (epoch + 1) % self.every == 0:
            log.info(
                "train: %s: %d rounds, %.1fs",
                self.what,
                epoch + 1,
                time.perf_counter() - self.started,
            )
        return False


def chronological_split(frame: pd.DataFrame, fraction: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Earliest ``1 - fraction`` of rows (by date) for fitting, the rest for early stopping."""
    ordered = frame.sort_values(DATE, kind="stable")
    cut = round(len(ordered) * (1 - fraction))
    return ordered.iloc[:cut], ordered.iloc[cut:]


def train(
    frame: pd.DataFrame, encoder: Encoder, params: TrainParams, name: str = "crashed"
) -> TrainResult:
    """Fit on ``frame`` (normalised crashes with label); returns the bundle and diagnostics."""
    started = time.perf_counter()
    y_all = frame[LABEL].astype(int).to_numpy()
    if y_all.sum() == 0:
        raise ValueError("the training window has no positive (alcohol-related) crashes")
    columns = list(encoder.columns)
    booster_params = _booster_params(params, y_all)
    d_all = xgb.DMatrix(encoder.encode_frame(frame), label=y_all, feature_names=columns)
    fit_part, holdout_part = chronological_split(frame, params.holdout_fraction)
    y_fit = fit_part[LABEL].astype(int).to_numpy()
    y_hold = holdout_part[LABEL].astype(int).to_numpy()
    usable_holdout = y_fit.sum() > 0 and 0 < y_hold.sum() < len(y_hold)
    d_fit = xgb.DMatrix(encoder.encode_frame(fit_part), label=y_fit, feature_names=columns)
    x_hold = encoder.encode_frame(holdout_part)
    folds = min(params.cv_folds, int(y_all.sum()), len(y_all) - int(y_all.sum()))
    cv_auc = float("nan")
    early: xgb.Booster | None = None
    if usable_holdout and y_hold.sum() >= params.holdout_min_positives:
        d_hold = xgb.DMatrix(x_hold, label=y_hold, feature_names=columns)
        early = xgb.train(
            _booster_params(params, y_fit),
            d_fit,
            params.max_rounds,
            evals=[(d_hold, "holdout")],
            early_stopping_rounds=params.early_stopping_rounds,
            verbose_eval=False,
            callbacks=[_Progress("early stopping on the holdout")],
        )
        best_rounds = early.best_iteration + 1
        early = early[:best_rounds]
        log.info(
            "train: %d rounds chosen by early stopping on %d holdout positives",
            best_rounds,
            int(y_hold.sum()),
        )
    elif folds >= 2:
        history = xgb.cv(
            booster_params,
            d_all,
            num_boost_round=params.max_rounds,
            nfold=folds,
            stratified=True,
            early_stopping_rounds=params.early_stopping_rounds,
            seed=params.seed,
            callbacks=[_Progress(f"{folds}-fold CV")],
        )
        best_rounds = len(history)
        cv_auc = float(history["test-auc-mean"].iloc[-1])
        log.info("train: %d rounds chosen by %d-fold CV (AUC %.4f)", best_rounds, folds, cv_auc)
    else:
        best_rounds = min(params.max_rounds, 100)
    threshold, holdout_auc = 0.5, float("nan")
    if usable_holdout:
        if early is None:
            early = xgb.train(_booster_params(params, y_fit), d_fit, num_boost_round=best_rounds)
        holdout_p = early.inplace_predict(x_hold)
        threshold = best_f1_threshold(y_hold, holdout_p)
        holdout_auc = float(roc_auc_score(y_hold, holdout_p))
    log.info(
        "train: threshold %.4f (best F1 on the latest %.0f%% of the window)",
        threshold,
        100 * params.holdout_fraction,
    )
    booster = xgb.train(
        booster_params,
        d_all,
        num_boost_round=best_rounds,
        callbacks=[_Progress("final fit on the whole window")],
    )
    gains = booster.get_score(importance_type="total_gain")
    total = sum(gains.values()) or 1.0
    importance = sorted(((k, v / total) for k, v in gains.items()), key=lambda kv: -kv[1])
    return TrainResult(
        bundle=ModelBundle(booster, encoder, threshold, name),
        best_rounds=best_rounds,
        holdout={
            "roc_auc": holdout_auc,
            "cv_roc_auc": cv_auc,
            "rows": len(y_hold),
            "positives": int(y_hold.sum()),
        },
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
