"""The served forest evaluated for one row by numpy, where XGBoost's own call is mostly overhead.

XGBoost 3.2's in-place prediction of one row spends most of its time before it reaches a tree:
every call re-initialises the proxy DMatrix's context, which compiles ``std::regex`` objects to
parse ``device="cpu"`` (fixed upstream in dmlc/xgboost#12306, not released as of 3.2.0), and
parses a JSON config and a JSON array interface. On the served model (336 trees of depth <= 3)
that call is 447k of a ``/predict``'s 728k instructions (``bench/bench_instructions.py``).

:class:`Forest` evaluates the same trees with a handful of numpy calls, ~3x faster
(``bench/bench_forest.py``): each tree is padded to a complete tree of depth :data:`MAX_DEPTH`
(a leaf above the bottom fills every slot below it; padding splits always go left), one
vectorised comparison gives every split's direction (a missing value takes the split's default
direction, as in XGBoost), a lookup table maps each tree's direction bits to its leaf, and the
leaf values are summed as XGBoost sums them (float32, from the base margin, in tree order), then
XGBoost's float32 sigmoid. It covers exactly what the
training recipe produces: ``gbtree``, ``binary:logistic``, one target, numeric splits, depth
<= :data:`MAX_DEPTH`. :meth:`Forest.compile` returns ``None`` for anything else, and the
:class:`~crashed.serving.predictor.Predictor` uses it only when it agrees with XGBoost's
``inplace_predict`` on probe rows (within :data:`TOLERANCE`); otherwise XGBoost serves.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

MAX_DEPTH = 3
"""Deepest tree compiled (the lookup table has 2**(2**MAX_DEPTH - 1) entries)."""
TOLERANCE = 1e-6
"""Largest |Δp| from XGBoost accepted on the probe rows (its float32 ``expf`` and numpy's may
differ in the last bit)."""
_ONE = np.float32(1.0)
_EXP_LIMIT = np.float32(88.7)


class Forest:
    """A compiled forest: :meth:`predict` scores one float32 row (thread-safe, read-only)."""

    def __init__(
        self,
        features: np.ndarray,
        thresholds: np.ndarray,
        default_left: np.ndarray,
        leaves: np.ndarray,
        margin: float,
        depth: int,
    ) -> None:
        self.trees, internal = features.shape
        self.depth = depth
        self._features = features.ravel()
        self._thresholds = thresholds.ravel()
        self._default_left = default_left.ravel()
        # XGBoost starts each row's sum at the base margin and adds the trees in order, in
        # float32: folding the margin into the first tree's leaves is that same first addition
        first = leaves.copy()
        first[0] = np.float32(margin) + first[0]
        self._leaves = first.ravel()
        self._offsets = np.arange(self.trees, dtype=np.int64) * leaves.shape[1]
        self._weights = (1 << np.arange(internal)).astype(np.int64)
        self._slot = _slot_table(depth)
        self._internal = internal

    @classmethod
    def compile(cls, booster: Any) -> Forest | None:
        """The forest of ``booster``, or ``None`` when it is not one this evaluator covers."""
        model = json.loads(booster.save_raw("json"))
        learner = model["learner"]
        gbm = learner["gradient_booster"]
        params = learner["learner_model_param"]
        if (
            learner["objective"]["name"] != "binary:logistic"
            or gbm.get("name") != "gbtree"
            or int(params.get("num_target", "1")) != 1
        ):
            return None
        trees = gbm["model"]["trees"]
        if not trees or any(any(tree.get("split_type") or [0]) for tree in trees):
            return None
        depth = max(_depth(tree) for tree in trees)
        if depth > MAX_DEPTH:
            return None
        depth = max(depth, 1)
        internal, slots = 2**depth - 1, 2**depth
        features = np.zeros((len(trees), internal), np.int64)
        thresholds = np.full((len(trees), internal), np.inf, np.float32)  # padding: left
        default_left = np.ones((len(trees), internal), bool)
        leaves = np.zeros((len(trees), slots), np.float32)
        for t, tree in enumerate(trees):
            _fill(tree, depth, features[t], thresholds[t], default_left[t], leaves[t])
        base_score = float(str(params["base_score"]).strip("[]"))
        if not 0.0 < base_score < 1.0:
            return None
        margin = math.log(base_score / (1.0 - base_score))
        return cls(features, thresholds, default_left, leaves, margin, depth)

    def predict(self, row: np.ndarray) -> float:
        """P(positive) of one encoded ``float32`` row (NaN = missing)."""
        x = row[self._features]
        right = ~((x < self._thresholds) | (np.isnan(x) & self._default_left))
        slots = self._slot[right.reshape(self.trees, self._internal) @ self._weights]
        total = np.cumsum(self._leaves[self._offsets + slots], dtype=np.float32)[-1]
        # XGBoost's float32 sigmoid: 1 / (1 + exp(min(-x, 88.7)))
        return float(_ONE / (np.exp(min(-total, _EXP_LIMIT)) + _ONE))


def _depth(tree: dict[str, Any]) -> int:
    left, right = tree["left_children"], tree["right_children"]
    deepest, stack = 0, [(0, 0)]
    while stack:
        node, depth = stack.pop()
        if left[node] == -1:
            deepest = max(deepest, depth)
        else:
            stack += [(left[node], depth + 1), (right[node], depth + 1)]
    return deepest


def _fill(
    tree: dict[str, Any],
    depth: int,
    features: np.ndarray,
    thresholds: np.ndarray,
    default_left: np.ndarray,
    leaves: np.ndarray,
) -> None:
    """One tree into its complete-tree rows (position p's children are 2p+1 and 2p+2)."""
    left, right = tree["left_children"], tree["right_children"]
    stack = [(0, 0, 0)]  # (node, position in the complete tree, level)
    while stack:
        node, position, level = stack.pop()
        if left[node] == -1:  # a leaf fills every bottom slot below its position
            span = 2 ** (depth - level)
            first = (position - (2**level - 1)) * span
            leaves[first : first + span] = tree["split_conditions"][node]
            continue
        features[position] = tree["split_indices"][node]
        thresholds[position] = tree["split_conditions"][node]
        default_left[position] = bool(tree["default_left"][node])
        stack.append((left[node], 2 * position + 1, level + 1))
        stack.append((right[node], 2 * position + 2, level + 1))


def _slot_table(depth: int) -> np.ndarray:
    """Direction bits of a tree's splits (bit p = split at position p goes right) → the bottom
    slot its walk from the root ends in."""
    internal = 2**depth - 1
    table = np.zeros(2**internal, np.int64)
    for bits in range(2**internal):
        position = 0
        for _ in range(depth):
            position = 2 * position + 1 + ((bits >> position) & 1)
        table[bits] = position - internal
    return table
