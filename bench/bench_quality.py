"""Model quality on the real 2018 rows, temporal split: the original demo's recipe vs ours.

Original recipe (hypermodel demo): one-hot of every raw value of the 20 features — including
the exact ``accident_time`` — and a default ``XGBClassifier``. Ours: the shared encoder (hour of
day, parsed speed, frequent-category one-hot), class weighting, early stopping on a
chronological holdout, modest depth.

    python bench/bench_quality.py [--csv PATH]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import pandas as pd
import xgboost as xgb
from sklearn.metrics import average_precision_score, roc_auc_score

import crashed  # noqa: F401  (sets OMP_WAIT_POLICY before xgboost loads)
from crashed.core.crash_schema import normalise, read_crash_csv
from crashed.core.distributions import analyse
from crashed.core.encoder import Encoder
from crashed.core.features import LABEL, RAW_FEATURES
from crashed.core.training import TrainParams, train

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CSV = ROOT.parent / "shared" / "data" / "victoria-crashes" / "vic_crashes_2018.csv"


def original_recipe(train_frame: pd.DataFrame, valid_frame: pd.DataFrame) -> pd.Series:
    """pd.get_dummies of every raw feature value + default XGBClassifier (the original demo)."""

    def dummies(frame: pd.DataFrame) -> pd.DataFrame:
        raw = frame[list(RAW_FEATURES)].astype("string").fillna("missing")
        return pd.get_dummies(raw, dtype=float)

    x_train = dummies(train_frame)
    x_valid = dummies(valid_frame).reindex(columns=x_train.columns, fill_value=0.0)
    model = xgb.XGBClassifier()
    model.fit(x_train, train_frame[LABEL].astype(int))
    return model.predict_proba(x_valid)[:, 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "quality.json")
    args = parser.parse_args()
    table = normalise(read_crash_csv(args.csv), str(args.csv))
    dates = pd.to_datetime(table["accident_date"])
    train_frame = table[(dates >= "2018-01-01") & (dates <= "2018-09-30")]
    valid_frame = table[(dates >= "2018-10-01") & (dates <= "2018-12-31")]
    y = valid_frame[LABEL].astype(int).to_numpy()

    started = time.perf_counter()
    p_base = original_recipe(train_frame, valid_frame)
    base_seconds = time.perf_counter() - started

    started = time.perf_counter()
    encoder = Encoder.fit(analyse(train_frame))
    result = train(train_frame, encoder, TrainParams())
    p_ours = result.bundle.predict_matrix(encoder.encode_frame(valid_frame))
    ours_seconds = time.perf_counter() - started

    rows = {
        "original recipe": {
            "roc_auc": roc_auc_score(y, p_base),
            "pr_auc": average_precision_score(y, p_base),
            "seconds": base_seconds,
        },
        "crashed": {
            "roc_auc": roc_auc_score(y, p_ours),
            "pr_auc": average_precision_score(y, p_ours),
            "seconds": ours_seconds,
            "rounds": result.best_rounds,
        },
    }
    print(
        f"train {len(train_frame)} rows (2018-01..09), validate {len(valid_frame)} rows "
        f"(2018-10..12, {int(y.sum())} positive)"
    )
    print(f"{'model':<18} {'ROC-AUC':>8} {'PR-AUC':>8} {'fit s':>7}")
    for name, row in rows.items():
        print(f"{name:<18} {row['roc_auc']:>8.4f} {row['pr_auc']:>8.4f} {row['seconds']:>7.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": platform.platform(), "results": rows}, indent=2))


if __name__ == "__main__":
    main()
