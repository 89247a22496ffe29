"""One row through the compiled forest (what serves) vs XGBoost's direct call, on the same rows.

``crashed.serving.forest.Forest`` evaluates the served trees with a few numpy calls; the
``Predictor`` uses it when it agrees with XGBoost at load. Here both score real Oct–Dec 2018
crashes, encoded once: the largest |Δp| between them and the time per row of each.

    python bench/bench_forest.py [--csv PATH] [--rows 2000]
"""

from __future__ import annotations

import argparse
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path

from _serving import DEFAULT_CSV, load_split, machine, request_params, train_ours, write_result
from crashed.core.model_bundle import ModelBundle
from crashed.serving.predictor import Predictor
from crashed.serving.requests import parse_query


def timed(call: Callable[[], object], repeat: int = 20_000) -> float:
    for _ in range(300):
        call()
    started = time.perf_counter()
    for _ in range(repeat):
        call()
    return (time.perf_counter() - started) / repeat * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--rows", type=int, default=2000)
    args = parser.parse_args()
    train_frame, request_frame = load_split(args.csv)
    bundle = ModelBundle.from_bytes(train_ours(train_frame).bundle.to_bytes(), nthread=1)
    forest = Predictor(bundle).forest
    xgb_predictor = Predictor(bundle, forest=False)
    if forest is None or not xgb_predictor.direct:
        raise SystemExit("the compiled forest or the direct XGBoost call is unavailable here")
    row = xgb_predictor._new_buffers()
    xgboost_call = xgb_predictor._local.call
    assert xgboost_call is not None
    worst = 0.0
    for params in request_params(request_frame, args.rows):
        xgb_predictor.predict_one(parse_query(urllib.parse.urlencode(params)))  # encodes row
        worst = max(worst, abs(xgboost_call() - forest.predict(row)))
    xgboost_us, forest_us = timed(xgboost_call), timed(lambda: forest.predict(row))
    print(f"max |Δp| over {args.rows} real rows: {worst:.2e}")
    print(f"XGBoost direct call {xgboost_us:.1f} µs, compiled forest {forest_us:.1f} µs per row")
    write_result(
        "forest",
        {
            "benchmark": "one row: XGBoost's direct call vs crashed.serving.forest",
            "machine": machine(),
            "trees": forest.trees,
            "rows_checked": args.rows,
            "max_abs_probability_difference": worst,
            "xgboost_direct_us": round(xgboost_us, 2),
            "compiled_forest_us": round(forest_us, 2),
        },
    )


if __name__ == "__main__":
    main()
