"""Paired bootstrap of ROC-AUC / PR-AUC: vectorised (crashed) vs a Python loop of sklearn calls.

Scores: the real 2018 split (train Jan–Sep with seeds 0 and 1, validate Oct–Dec) when the
VicRoads file is present, else 3,000 synthetic rows at the same base rate. Both paths use the
very same resampled rows, so their intervals must agree to float precision.

    python bench/bench_bootstrap.py [--csv PATH] [--synthetic] [--resamples 1000]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

import crashed  # noqa: F401  (sets OMP_WAIT_POLICY before xgboost loads)
from crashed.core.bootstrap import paired_bootstrap, resample_counts

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CSV = ROOT.parent / "shared" / "data" / "victoria-crashes" / "vic_crashes_2018.csv"


def real_scores(csv: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validation labels and the scores of two models trained with seeds 0 and 1."""
    import pandas as pd

    from crashed.core.crash_schema import normalise, read_crash_csv
    from crashed.core.distributions import analyse
    from crashed.core.encoder import Encoder
    from crashed.core.features import LABEL
    from crashed.core.training import TrainParams, train

    table = normalise(read_crash_csv(csv), str(csv))
    dates = pd.to_datetime(table["accident_date"])
    train_frame = table[(dates >= "2018-01-01") & (dates <= "2018-09-30")]
    valid_frame = table[(dates >= "2018-10-01") & (dates <= "2018-12-31")]
    encoder = Encoder.fit(analyse(train_frame))
    x = encoder.encode_frame(valid_frame)
    p0, p1 = (
        train(train_frame, encoder, TrainParams(seed=s)).bundle.predict_matrix(x) for s in (0, 1)
    )
    return valid_frame[LABEL].astype(int).to_numpy(), p1, p0


def synthetic_scores(rows: int = 3000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y = (rng.random(rows) < 0.033).astype(int)
    signal = 1.6 * y + rng.normal(0, 1, rows)
    p0 = 1 / (1 + np.exp(-(signal + rng.normal(0, 0.25, rows) - 3)))
    p1 = 1 / (1 + np.exp(-(signal + rng.normal(0, 0.25, rows) - 3)))
    return y, p1, p0


def naive(y: np.ndarray, cand: np.ndarray, prod: np.ndarray, counts: np.ndarray) -> dict:
    """The obvious version: per resample, four sklearn calls on the resampled rows."""
    deltas: dict[str, list[float]] = {"roc_auc": [], "pr_auc": []}
    rows = np.arange(len(y))
    for weights in counts:
        idx = np.repeat(rows, weights.astype(int))
        yy = y[idx]
        if not 0 < yy.sum() < len(yy):
            continue
        for metric, fn in (("roc_auc", roc_auc_score), ("pr_auc", average_precision_score)):
            deltas[metric].append(fn(yy, cand[idx]) - fn(yy, prod[idx]))
    return {k: np.quantile(v, [0.025, 0.975]).tolist() for k, v in deltas.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--synthetic", action="store_true")
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "bootstrap.json")
    args = parser.parse_args()
    use_real = not args.synthetic and args.csv.is_file()
    y, cand, prod = real_scores(args.csv) if use_real else synthetic_scores()
    source = "real 2018 split, seeds 1 vs 0" if use_real else f"synthetic, {len(y)} rows"
    # Same clipping as the metrics everywhere else, so both paths see identical scores.
    cand, prod = (np.clip(p, 1e-7, 1 - 1e-7) for p in (cand, prod))

    timings = []
    for _ in range(3):
        started = time.perf_counter()
        result = paired_bootstrap(y, cand, prod, resamples=args.resamples, seed=0)
        timings.append(time.perf_counter() - started)
    started = time.perf_counter()
    naive_intervals = naive(y, cand, prod, resample_counts(len(y), args.resamples, 0))
    naive_seconds = time.perf_counter() - started

    ours = {m: [c.delta.low, c.delta.high] for m, c in result.metrics.items()}
    max_diff = max(
        abs(a - b) for m in ours for a, b in zip(ours[m], naive_intervals[m], strict=True)
    )
    report = {
        "machine": platform.platform(),
        "source": source,
        "rows": len(y),
        "positives": int(y.sum()),
        "resamples": args.resamples,
        "vectorised_seconds_median_of_3": statistics.median(timings),
        "naive_sklearn_loop_seconds": naive_seconds,
        "speed_up": naive_seconds / statistics.median(timings),
        "delta_interval_max_abs_difference": max_diff,
        "result": result.model_dump(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"{source}: {len(y)} rows, {int(y.sum())} positives, {args.resamples} resamples\n"
        f"  vectorised   {statistics.median(timings):7.3f} s (median of 3)\n"
        f"  sklearn loop {naive_seconds:7.3f} s  ({report['speed_up']:.0f}×)\n"
        f"  delta intervals agree to {max_diff:.1e}"
    )
    for metric, c in result.metrics.items():
        print(
            f"  {metric}: candidate {c.candidate.estimate:.4f} [{c.candidate.low:.4f}, "
            f"{c.candidate.high:.4f}], Δ {c.delta.estimate:+.4f} [{c.delta.low:+.4f}, "
            f"{c.delta.high:+.4f}], candidate worse in {c.share_candidate_worse:.0%}"
        )


if __name__ == "__main__":
    main()
