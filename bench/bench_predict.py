"""Single-row prediction in process: the original demo's request path vs ours, in one run.

Original path (hypermodel demo, per request): fill defaults into the params dict, build a
one-row pandas DataFrame, one-hot it with ``pd.get_dummies`` (every raw value, including the
exact ``accident_time``), reindex to the training columns, ``XGBClassifier.predict`` on the
frame's values (as the demo's ``build_feature_matrix`` did).
Ours: ``Predictor.predict_one`` (encoder resolve + encode_one, remembered per raw value, into
a preallocated float32 row, scored by the compiled forest, ``crashed.serving.forest``);
``ours_public_api`` is the same predictor scoring through XGBoost's public ``inplace_predict``.

Both models are trained here on the same rows (Jan–Sep 2018) and both paths score the same
requests (real Oct–Dec 2018 crashes, as query-style text values), in alternating rounds so
machine load affects both alike. Both run single-threaded (``n_jobs=1`` for the original).

    python bench/bench_predict.py [--csv PATH] [--requests 500] [--rounds 5]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import xgboost as xgb

from _serving import (
    DEFAULT_CSV,
    load_split,
    machine,
    request_params,
    summary_us,
    train_ours,
    write_result,
)
from crashed.core.encoder import FeatureError
from crashed.core.features import LABEL, RAW_FEATURES
from crashed.core.model_bundle import ModelBundle
from crashed.serving.predictor import Predictor


class OriginalPath:
    """The original demo's per-request path, faithfully naive."""

    def __init__(self, train_frame: pd.DataFrame) -> None:
        raw = self._raw(train_frame)
        x_train = pd.get_dummies(raw, dtype=float)
        self.columns = x_train.columns
        self.model = xgb.XGBClassifier(n_jobs=1)
        self.model.fit(x_train, train_frame[LABEL].astype(int))
        # Defaults for what a request leaves out: the most frequent training value.
        self.defaults = {f: str(raw[f].mode().iloc[0]) for f in RAW_FEATURES}

    @staticmethod
    def _raw(frame: pd.DataFrame) -> pd.DataFrame:
        return frame[list(RAW_FEATURES)].astype("string").fillna("missing")

    def predict(self, params: Mapping[str, str]) -> int:
        values = dict(params)
        for feature, default in self.defaults.items():
            if feature not in values:
                values[feature] = default
        frame = pd.DataFrame([values])
        encoded = pd.get_dummies(frame[list(RAW_FEATURES)].astype("string"), dtype=float)
        matrix = encoded.reindex(columns=self.columns, fill_value=0.0)
        # The demo handed ``encoded_df.values`` to predict; passing the DataFrame itself is
        # about 3x slower still (XGBoost converts 1,000+ pandas columns one by one).
        return int(self.model.predict(matrix.to_numpy())[0])


def time_calls(
    fn: Callable[[Mapping[str, str]], Any], requests: list[dict[str, str]]
) -> list[float]:
    samples = []
    clock = time.perf_counter
    for params in requests:
        started = clock()
        fn(params)
        samples.append(clock() - started)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--requests", type=int, default=300, help="distinct requests per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--ours-repeat",
        type=int,
        default=10,
        help="our path is timed this many times per original-path call",
    )
    args = parser.parse_args()
    started_on = machine()

    train_frame, request_frame = load_split(args.csv)
    print(f"training both models on {len(train_frame)} rows …", flush=True)
    started = time.perf_counter()
    result = train_ours(train_frame)
    bundle = ModelBundle.from_bytes(result.bundle.to_bytes(), nthread=1)
    ours = Predictor(bundle)
    public = Predictor(
        ModelBundle.from_bytes(result.bundle.to_bytes(), nthread=1), direct=False, forest=False
    )
    original = OriginalPath(train_frame)
    print(
        f"  trained in {time.perf_counter() - started:.1f}s; ours {result.best_rounds} trees "
        f"x depth 3 ({bundle.encoder.width} columns), original 100 trees x depth 6 "
        f"({len(original.columns)} one-hot columns)"
    )

    requests = []
    for params in request_params(request_frame, args.requests * 3):
        try:
            ours.predict_one(params)
        except FeatureError:
            continue  # a value never seen in training: ours answers 400, not a prediction
        requests.append(params)
        if len(requests) == args.requests:
            break

    for fn in (original.predict, ours.predict_one, public.predict_one):  # warm up
        time_calls(fn, requests[:50])
    samples: dict[str, list[float]] = {"original": [], "ours": [], "ours_public_api": []}
    for round_no in range(args.rounds):
        samples["original"] += time_calls(original.predict, requests)
        for _ in range(args.ours_repeat):
            samples["ours"] += time_calls(ours.predict_one, requests)
            samples["ours_public_api"] += time_calls(public.predict_one, requests)
        print(f"  round {round_no + 1}/{args.rounds} done", flush=True)

    batch = requests[: min(len(requests), 1000)]
    batch_samples = []
    for _ in range(20):
        started = time.perf_counter()
        ours.predict_many(batch)
        batch_samples.append((time.perf_counter() - started) / len(batch))

    stats = {name: summary_us(values) for name, values in samples.items()}
    stats["ours_batch_per_row"] = summary_us(batch_samples) | {"batch": len(batch)}
    speedup = stats["original"]["median_us"] / stats["ours"]["median_us"]
    speedup_p99 = stats["original"]["p99_us"] / stats["ours"]["p99_us"]
    print(f"\n{'path':<22} {'calls':>7} {'median µs':>10} {'p99 µs':>9}")
    for name, row in stats.items():
        print(f"{name:<22} {row['calls']:>7} {row['median_us']:>10.1f} {row['p99_us']:>9.1f}")
    print(f"\nspeed-up (median): {speedup:.1f}x   (p99: {speedup_p99:.1f}x)   target >= 200x")
    path = write_result(
        "predict",
        {
            "benchmark": "single-row prediction in process",
            "machine": started_on,
            "requests": len(requests),
            "rounds": args.rounds,
            "direct_c_call": ours.direct,
            "models": {
                "ours": {
                    "trees": result.best_rounds,
                    "max_depth": 3,
                    "columns": bundle.encoder.width,
                },
                "original": {"trees": 100, "max_depth": 6, "columns": len(original.columns)},
            },
            "results": stats,
            "speedup_median": round(speedup, 1),
            "speedup_p99": round(speedup_p99, 1),
            "target": ">= 200x",
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
