"""Calibration (reliability by deciles, Brier) and what the threshold costs at other points."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict

from crashed.core.metrics import best_f1_threshold

_CLIP = 1e-7  # as classification_metrics


class ReliabilityBin(BaseModel):
    """One bin of rows sorted by predicted probability."""

    model_config = ConfigDict(frozen=True)

    bin: int
    rows: int
    positives: int
    min_predicted: float
    max_predicted: float
    mean_predicted: float
    observed_rate: float


class Calibration(BaseModel):
    """Reliability table, Brier score and expected calibration error (row-weighted |gap|)."""

    model_config = ConfigDict(frozen=True)

    rows: int
    positives: int
    brier: float | None
    expected_calibration_error: float | None
    bins: tuple[ReliabilityBin, ...]


class OperatingPoint(BaseModel):
    """Precision/recall of flagging every row with probability ≥ ``threshold``."""

    model_config = ConfigDict(frozen=True)

    name: str
    threshold: float | None
    precision: float | None
    recall: float | None
    f1: float | None
    flagged_share: float | None
    """Share of rows flagged positive."""


class ThresholdAnalysis(BaseModel):
    """The chosen threshold and the alternatives a reviewer may prefer."""

    model_config = ConfigDict(frozen=True)

    chosen: OperatingPoint
    alternatives: tuple[OperatingPoint, ...]


def _prepare(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype=np.int64)
    p = np.clip(np.asarray(p, dtype=np.float64), _CLIP, 1 - _CLIP)
    if y.shape != p.shape:
        raise ValueError("labels and probabilities must have the same length")
    return y, p


def calibration(y: np.ndarray, p: np.ndarray, bins: int = 10) -> Calibration:
    """Reliability table over ``bins`` equal-count bins of rows sorted by probability (deciles).

    Rows are split by rank (``np.array_split`` of the sorted order), so every bin holds
    ⌊n/bins⌋ or ⌈n/bins⌉ rows even when scores tie; fewer bins when there are fewer rows.
    """
    y, p = _prepare(y, p)
    order = np.argsort(p, kind="stable")
    table = []
    for i, chunk in enumerate(np.array_split(order, min(bins, len(y))) if len(y) else []):
        py, pp = y[chunk], p[chunk]
        table.append(
            ReliabilityBin(
                bin=i + 1,
                rows=len(chunk),
                positives=int(py.sum()),
                min_predicted=float(pp.min()),
                max_predicted=float(pp.max()),
                mean_predicted=float(pp.mean()),
                observed_rate=float(py.mean()),
            )
        )
    n = len(y)
    ece = sum(b.rows / n * abs(b.mean_predicted - b.observed_rate) for b in table) if n else None
    return Calibration(
        rows=n,
        positives=int(y.sum()),
        brier=float(np.mean((p - y) ** 2)) if n else None,
        expected_calibration_error=float(ece) if ece is not None else None,
        bins=tuple(table),
    )


def _curve(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct thresholds (descending) and TP/FP counts when flagging p ≥ each of them."""
    order = np.argsort(-p, kind="stable")
    sorted_p, sorted_y = p[order], y[order]
    last = np.r_[sorted_p[1:] != sorted_p[:-1], True]  # last row of each distinct score
    tp = np.cumsum(sorted_y)[last]
    fp = np.cumsum(1 - sorted_y)[last]
    return sorted_p[last], tp, fp


def _point(name: str, threshold: float | None, tp: int, fp: int, y: np.ndarray) -> OperatingPoint:
    positives = int(y.sum())
    if threshold is None:
        return OperatingPoint(
            name=name, threshold=None, precision=None, recall=None, f1=None, flagged_share=None
        )
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / positives if positives else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return OperatingPoint(
        name=name,
        threshold=float(threshold),
        precision=precision,
        recall=recall,
        f1=f1,
        flagged_share=(tp + fp) / len(y) if len(y) else None,
    )


def operating_point(y: np.ndarray, p: np.ndarray, threshold: float, name: str) -> OperatingPoint:
    """Precision, recall, F1 and flagged share at ``threshold`` (p ≥ threshold is positive)."""
    y, p = _prepare(y, p)
    flagged = p >= threshold
    tp = int((flagged & (y == 1)).sum())
    return _point(name, threshold, tp, int(flagged.sum()) - tp, y)


def threshold_analysis(
    y: np.ndarray,
    p: np.ndarray,
    threshold: float,
    recalls: Sequence[float] = (0.5, 0.7),
) -> ThresholdAnalysis:
    """The chosen threshold's precision/recall, the operating points reaching each recall in
    ``recalls`` (the highest threshold that does, i.e. the best precision for that recall), and
    the threshold maximising F1, all read from the precision-recall curve of (y, p).
    """
    y, p = _prepare(y, p)
    chosen = operating_point(y, p, threshold, "chosen threshold")
    alternatives = []
    positives = int(y.sum())
    thresholds, tp, fp = _curve(y, p) if len(y) else (np.array([]), np.array([]), np.array([]))
    for target in recalls:
        name = f"recall ≥ {target:g}"
        reached = np.flatnonzero(tp >= target * positives) if positives else np.array([])
        if not len(reached):
            alternatives.append(_point(name, None, 0, 0, y))
            continue
        k = int(reached[0])
        alternatives.append(_point(name, float(thresholds[k]), int(tp[k]), int(fp[k]), y))
    if positives:
        alternatives.append(operating_point(y, p, best_f1_threshold(y, p), "best F1"))
    else:
        alternatives.append(_point("best F1", None, 0, 0, y))
    return ThresholdAnalysis(chosen=chosen, alternatives=tuple(alternatives))
