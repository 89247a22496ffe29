"""Prototype, not used by serving: the served forest evaluated by numpy instead of XGBoost's call.

What single-row ``/predict`` would gain from its own evaluator of the trained trees (the
model is 336 trees of depth <= 3, numeric splits, ``binary:logistic``). Each tree is padded to
a complete depth-D tree; one vectorised comparison gives every internal node's direction, the
7 direction bits of a tree index a lookup table of its leaf, and the leaf values are summed in
float32 in tree order (``cumsum``), as XGBoost sums them. Checked against the direct XGBoost
call (``Predictor``'s) on real Oct–Dec 2018 crashes; both timed on the same encoded rows.

    python bench/bench_forest.py [--csv PATH] [--rows 2000]

XGBoost 3.2.0's call is mostly fixed per-call cost (``bench_instructions.py``); this is the
measured size of the alternative, for deciding whether to build it (issue 9's HTTP target).
"""

from __future__ import annotations

import argparse
import json
import math
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path

import numpy as np

from _serving import DEFAULT_CSV, load_split, machine, request_params, train_ours, write_result
from crashed.core.model_bundle import ModelBundle
from crashed.serving.predictor import Predictor
from crashed.serving.requests import parse_query

DEPTH = 3


def compile_forest(booster: object) -> Callable[[np.ndarray], float]:
    """A one-row predictor for a depth <= DEPTH, numeric-split, binary:logistic forest."""
    model = json.loads(booster.save_raw("json"))  # type: ignore[attr-defined]
    learner = model["learner"]
    if learner["objective"]["name"] != "binary:logistic":
        raise SystemExit("prototype: binary:logistic only")
    trees = learner["gradient_booster"]["model"]["trees"]
    base = float(learner["learner_model_param"]["base_score"].strip("[]"))
    internal, leaves = 2**DEPTH - 1, 2**DEPTH
    count = len(trees)
    feature = np.zeros((count, internal), np.int64)
    threshold = np.full((count, internal), np.inf, np.float32)  # padding: always left
    default_left = np.ones((count, internal), bool)
    leaf = np.zeros((count, leaves), np.float32)
    for t, tree in enumerate(trees):
        if any(tree.get("split_type", [0])):
            raise SystemExit("prototype: numeric splits only")
        left, right = tree["left_children"], tree["right_children"]
        stack = [(0, 0, 0)]  # (node, position in the complete tree, depth)
        while stack:
            node, position, depth = stack.pop()
            if left[node] == -1:  # a leaf: it fills every leaf slot below its position
                span = 2 ** (DEPTH - depth)
                first = (position - (2**depth - 1)) * span
                leaf[t, first : first + span] = tree["split_conditions"][node]
                continue
            if depth == DEPTH:
                raise SystemExit(f"prototype: trees of depth <= {DEPTH} only")
            feature[t, position] = tree["split_indices"][node]
            threshold[t, position] = tree["split_conditions"][node]
            default_left[t, position] = bool(tree["default_left"][node])
            stack.append((left[node], 2 * position + 1, depth + 1))
            stack.append((right[node], 2 * position + 2, depth + 1))
    lookup = np.zeros(2**internal, np.int64)  # direction bits -> leaf slot
    for bits in range(2**internal):
        position = 0
        for _ in range(DEPTH):
            position = 2 * position + 1 + ((bits >> position) & 1)
        lookup[bits] = position - internal
    weights = (1 << np.arange(internal)).astype(np.int64)
    features, thresholds, defaults = feature.ravel(), threshold.ravel(), default_left.ravel()
    leaf_values, offsets = leaf.ravel(), np.arange(count) * leaves
    margin = np.float32(math.log(base / (1 - base)))

    def predict(row: np.ndarray) -> float:
        x = row[features]
        go_right = ~((x < thresholds) | (np.isnan(x) & defaults))
        slots = lookup[go_right.reshape(count, internal) @ weights]
        total = np.cumsum(leaf_values[offsets + slots], dtype=np.float32)[-1] + margin
        return 1.0 / (1.0 + math.exp(-float(total)))

    return predict


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
    predictor = Predictor(bundle)
    forest = compile_forest(predictor.booster)
    row = predictor._new_buffers()
    xgboost_call = predictor._local.call
    if xgboost_call is None:
        raise SystemExit("the direct XGBoost call is unavailable here")
    worst = 0.0
    for params in request_params(request_frame, args.rows):
        predictor.predict_one(parse_query(urllib.parse.urlencode(params)))  # encodes into row
        worst = max(worst, abs(xgboost_call() - forest(row)))
    xgboost_us, forest_us = timed(xgboost_call), timed(lambda: forest(row))
    print(f"max |Δp| over {args.rows} real rows: {worst:.2e}")
    print(f"XGBoost direct call {xgboost_us:.1f} µs, numpy forest {forest_us:.1f} µs per row")
    write_result(
        "forest",
        {
            "benchmark": "one-row forest evaluation: XGBoost's direct call vs a numpy prototype",
            "machine": machine(),
            "trees": int(predictor.booster.num_boosted_rounds()),
            "rows_checked": args.rows,
            "max_abs_probability_difference": worst,
            "xgboost_direct_us": round(xgboost_us, 2),
            "numpy_forest_us": round(forest_us, 2),
        },
    )


if __name__ == "__main__":
    main()
