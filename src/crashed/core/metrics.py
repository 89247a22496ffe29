"""Classification metrics for the gate and the review report."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

HEADLINE = ("roc_auc", "pr_auc", "log_loss", "brier", "precision", "recall", "f1")
"""Metrics shown in the reference and the report, in order."""


def classification_metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, Any]:
    """ROC-AUC, PR-AUC, log loss, Brier, and precision/recall/F1 at ``threshold``."""
    # Imported here: steps that only need the light helpers below never load sklearn (~0.5 s).
    from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

    y = np.asarray(y, dtype=int)
    p = np.clip(np.asarray(p, dtype=float), 1e-7, 1 - 1e-7)
    positives = int(y.sum())
    both = 0 < positives < len(y)
    predicted = p >= threshold
    tp = int((predicted & (y == 1)).sum())
    fp = int((predicted & (y == 0)).sum())
    fn = int((~predicted & (y == 1)).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "rows": len(y),
        "positives": positives,
        "roc_auc": float(roc_auc_score(y, p)) if both else None,
        "pr_auc": float(average_precision_score(y, p)) if both else None,
        "log_loss": float(log_loss(y, p, labels=[0, 1])) if len(y) else None,
        "brier": float(brier_score_loss(y, p)) if len(y) else None,
        "threshold": float(threshold),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "true_positives": tp,
        "false_positives": fp,
        "false_negatives": fn,
    }


def best_f1_threshold(y: np.ndarray, p: np.ndarray) -> float:
    """The probability threshold maximising F1 on (y, p); 0.5 if there are no positives."""
    y = np.asarray(y, dtype=int)
    if y.sum() == 0:
        return 0.5
    order = np.argsort(-p)
    sorted_p, sorted_y = p[order], y[order]
    tp = np.cumsum(sorted_y)
    fp = np.cumsum(1 - sorted_y)
    precision = tp / (tp + fp)
    recall = tp / y.sum()
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(total), where=total > 0)
    # Only cut where the score changes, so the threshold reproduces the counted set.
    distinct = np.r_[sorted_p[1:] != sorted_p[:-1], True]
    best = int(np.argmax(np.where(distinct, f1, -1)))
    return float(sorted_p[best])


def segment_metrics(
    frame: pd.DataFrame,
    y: np.ndarray,
    p: np.ndarray,
    threshold: float,
    feature: str,
    min_rows: int = 30,
) -> list[dict[str, Any]]:
    """Metrics per value of ``feature`` (segments under ``min_rows`` rows are pooled)."""
    if feature not in frame:
        return []
    values = frame[feature].astype("string").fillna("(unknown)").to_numpy()
    counts = pd.Series(values).value_counts()
    small = set(counts[counts < min_rows].index)
    values = np.array([("(other)" if v in small else v) for v in values], dtype=object)
    out = []
    for value in sorted(set(values), key=lambda v: (-int((values == v).sum()), v)):
        mask = values == value
        m = classification_metrics(y[mask], p[mask], threshold)
        out.append(
            {
                "segment": value,
                **{
                    k: m[k]
                    for k in ("rows", "positives", "roc_auc", "pr_auc", "precision", "recall")
                },
            }
        )
    return out
