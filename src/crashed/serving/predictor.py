"""The serving fast path: raw request values → one ``float32`` row → one score.

Per request: :meth:`Encoder.resolve` (defaults for what the request leaves out), the row
encoded into a per-thread preallocated ``float32`` buffer, and the row scored by the compiled
forest (:mod:`crashed.serving.forest`) when it covers the model and agreed with XGBoost at load,
else by XGBoost's lock-free in-place prediction with ``nthread=1``. No pandas, no DMatrix.
Batches are always scored by XGBoost (one call for all rows).

Encoding is :meth:`Encoder.resolve` + :meth:`Encoder.encode_one` (the one parser), remembered
per raw feature value: each feature resolves and writes its own columns independently, so what
a value resolves to and the columns it writes are found once, by the encoder on that value
alone (compared with the all-unknown row), and replayed afterwards (a bounded dict per feature;
values that fail to encode are never remembered). Clients send few distinct values, so nearly
every request is replayed: several times cheaper than resolving and encoding from scratch. A
remembered value also keeps its JSON member (``"feature":"value"``), so the response's
``features`` object is one ``join`` rather than a ``json.dumps`` per request.

Without the forest: most of the time of ``Booster.inplace_predict`` on a single row is fixed
overhead: in Python around the C call (type dispatch, a JSON array interface, a JSON config,
the output copy) and in C++ (a proxy DMatrix per call). Because each thread's row buffer
never moves, both JSON strings and a proxy DMatrix are made once per thread, and the row path
calls
``XGBoosterPredictFromDense`` (the call ``inplace_predict`` makes itself) directly with them:
about 2.5x less time per row. The direct call is checked against ``inplace_predict`` when the
predictor is built; if XGBoost's internals ever change, the predictor falls back to the public
method (logged once). What remains is XGBoost's: per call it still re-initialises the proxy's
context, compiling ``std::regex`` objects to parse ``device="cpu"`` (about half the call's
instructions, ``bench/bench_instructions.py``; fixed upstream in dmlc/xgboost#12306, not in a
release as of 3.2.0), and parses the JSON config and array interface.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import json
import logging
import math
import operator
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from crashed.core.encoder import FeatureError
from crashed.core.model_bundle import ModelBundle
from crashed.serving.forest import TOLERANCE, Forest

log = logging.getLogger(__name__)


class BatchFeatureError(ValueError):
    """A :class:`~crashed.core.encoder.FeatureError` in instance ``index`` of a batch."""

    def __init__(self, index: int, field: str, message: str) -> None:
        super().__init__(f"instances[{index}].{field}: {message}")
        self.index = index
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class Prediction:
    """One scored crash: the probability, the 0/1 decision at the threshold, and the values
    used (``values[i]`` is feature ``names[i]``; ``features_json`` is them as a JSON object)."""

    probability: float
    prediction: int
    values: tuple[str | None, ...]
    names: tuple[str, ...]
    features_json: str

    @property
    def features(self) -> dict[str, str | None]:
        """The values used, by feature name."""
        return dict(zip(self.names, self.values, strict=True))


RowPredict = Callable[[], float]
_Entry = tuple[str | None, tuple[tuple[int, float], ...], str]
"""A raw value's resolved value, the (column, number) pairs it writes, its JSON member."""
_VALUE = operator.itemgetter(0)
_MEMBER = operator.itemgetter(2)
_ABSENT = object()
"""Key for a feature the request leaves out (it takes the default)."""
MAX_REMEMBERED = 4096
"""Distinct values remembered per feature (the rest are encoded afresh each time)."""


def as_text(value: str | float | None) -> str:
    """A request value as the encoder reads it: text as is, null → ``""`` (unknown), a JSON
    number as its shortest text (``2.0`` → ``"2"``)."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class _ThreadBuffers(threading.local):
    """Each thread's preallocated row and its (optional) direct C-call closure."""

    row: np.ndarray | None = None
    call: RowPredict | None = None


class Predictor:
    """Scores raw feature values with a loaded :class:`ModelBundle` (thread-safe)."""

    def __init__(self, bundle: ModelBundle, *, direct: bool = True, forest: bool = True) -> None:
        self.bundle = bundle
        self.encoder = bundle.encoder
        self.booster = bundle.booster
        self.threshold = float(bundle.threshold)
        self.booster.set_param({"nthread": 1})
        self.width = self.encoder.width
        self.features: tuple[str, ...] = tuple(self.encoder.features)
        self._local = _ThreadBuffers()
        self._unknown = self.encoder.encode_one(dict.fromkeys(self.features))
        self._known: dict[str, dict[object, _Entry]] = {f: {} for f in self.features}
        self.forest = Forest.compile(self.booster) if forest else None
        if self.forest is not None and not _forest_agrees(self, self.forest):
            log.warning("predictor: the compiled forest disagrees with XGBoost; not used")
            self.forest = None
        self.direct = direct and self.forest is None and _direct_call_works(self)
        if direct and self.forest is None and not self.direct:
            log.warning("predictor: direct XGBoost call unavailable; using inplace_predict")

    # ---- single row ---------------------------------------------------------------------
    def predict_one(self, params: Mapping[str, str]) -> Prediction:
        """Score one request's raw values (missing ones take the encoder's defaults).

        Raises :class:`~crashed.core.encoder.FeatureError` naming the bad field.
        """
        local = self._local
        row = local.row
        if row is None:
            row = self._new_buffers()
        entries = self.encode(params, row)
        call = local.call
        if call is not None:
            probability = call()
        else:
            probability = float(
                self.booster.inplace_predict(row[None, :], validate_features=False)[0]
            )
        return Prediction(
            probability,
            int(probability >= self.threshold),
            tuple(map(_VALUE, entries)),
            self.features,
            "{" + ",".join(map(_MEMBER, entries)) + "}",
        )

    def encode(self, params: Mapping[str, str], row: np.ndarray) -> list[_Entry]:
        """``Encoder.encode_one(Encoder.resolve(params))`` into ``row``, replayed from what
        each raw value was learned to write; returns each feature's entry (resolved value
        first), in :attr:`features` order."""
        row[:] = self._unknown
        known = self._known
        entries: list[_Entry] = []
        for feature in self.features:
            raw = params.get(feature, _ABSENT)
            entry = known[feature].get(raw) or self._learn(feature, raw)
            entries.append(entry)
            for column, number in entry[1]:
                row[column] = number
        return entries

    def resolve(self, instance: Mapping[str, object]) -> tuple[str | None, ...]:
        """What :meth:`encode` resolves ``instance`` to, in :attr:`features` order, from the
        remembered entries (the prediction log's flusher, for batch rows)."""
        known = self._known
        values = []
        for feature in self.features:
            raw = instance.get(feature, _ABSENT)
            values.append((known[feature].get(raw) or self._learn(feature, raw))[0])
        return tuple(values)

    def _learn(self, feature: str, raw: object) -> _Entry:
        """What ``feature=raw`` resolves to and the columns it writes, found by the encoder
        itself (FeatureError when it does not encode: then nothing is remembered)."""
        given = {} if raw is _ABSENT else {feature: as_text(raw)}  # type: ignore[arg-type]
        value = self.encoder.resolve(given)[feature]
        alone = dict.fromkeys(self.features)
        alone[feature] = value
        encoded = self.encoder.encode_one(alone)
        unknown = self._unknown
        changed = np.flatnonzero((encoded != unknown) & ~(np.isnan(encoded) & np.isnan(unknown)))
        member = json.dumps(feature) + ":" + json.dumps(value, ensure_ascii=False)
        entry = (value, tuple((int(c), float(encoded[c])) for c in changed), member)
        cache = self._known[feature]
        if len(cache) < MAX_REMEMBERED:
            cache[raw] = entry
        return entry

    def _new_buffers(self) -> np.ndarray:
        local = self._local
        local.row = np.zeros(self.width, dtype=np.float32)
        if self.forest is not None:
            local.call = functools.partial(self.forest.predict, local.row)
        else:
            local.call = _make_direct_call(self.booster, local.row) if self.direct else None
        return local.row

    # ---- batch ---------------------------------------------------------------------------
    def predict_many(
        self, instances: Sequence[Mapping[str, str | float | None]]
    ) -> list[tuple[float, int]]:
        """Score a batch with one booster call: ``[(probability, prediction), …]``.

        Values are text, or JSON numbers and null as a batch body gives them (read with
        :func:`as_text`). Rows are encoded feature by feature, grouped by raw value (one
        remembered entry per distinct value). Raises :class:`BatchFeatureError` (instance
        index + field) for the first bad value in row order.
        """
        if not instances:
            return []
        matrix = np.tile(self._unknown, (len(instances), 1))
        errors: list[tuple[int, int, FeatureError]] = []
        for order, feature in enumerate(self.features):
            groups: dict[object, list[int]] = {}  # raw value -> the rows that send it
            for index, params in enumerate(instances):
                raw = params.get(feature, _ABSENT)
                rows = groups.get(raw)
                if rows is None:
                    groups[raw] = [index]
                else:
                    rows.append(index)
            known = self._known[feature]
            targets: dict[tuple[int, float], list[int]] = {}  # (column, number) -> rows
            for raw, rows in groups.items():
                entry = known.get(raw)
                if entry is None:
                    try:
                        entry = self._learn(feature, raw)
                    except FeatureError as error:
                        errors.append((rows[0], order, error))
                        continue
                for write in entry[1]:
                    targets.setdefault(write, []).extend(rows)
            for (column, number), rows in targets.items():
                matrix[rows, column] = number
        if errors:
            index, _, error = min(errors, key=lambda e: e[:2])
            raise BatchFeatureError(index, error.field, error.message)
        probabilities = self.booster.inplace_predict(matrix, validate_features=False)
        threshold = self.threshold
        return [(float(p), int(p >= threshold)) for p in probabilities.tolist()]

    def predict_matrix(self, matrix: np.ndarray) -> np.ndarray:
        """Probabilities for an already encoded ``float32`` matrix (tests, benchmarks)."""
        return self.booster.inplace_predict(matrix, validate_features=False)


def _make_direct_call(booster: Any, row: np.ndarray) -> RowPredict | None:
    """A closure making ``inplace_predict``'s own C call on ``row`` (None if unavailable)."""
    try:
        from xgboost._data_utils import array_interface
        from xgboost.core import _LIB, _check_call, _ProxyDMatrix, c_bst_ulong
    except ImportError:
        return None
    matrix = row[None, :]  # a view: the same memory as ``row``
    interface = array_interface(matrix)
    config = json.dumps(
        {
            "type": 0,
            "training": False,
            "iteration_begin": 0,
            "iteration_end": 0,
            "missing": math.nan,
            "strict_shape": False,
            "cache_id": 0,
        }
    ).encode()
    shape = ctypes.POINTER(c_bst_ulong)()
    dims = c_bst_ulong()
    preds = ctypes.POINTER(ctypes.c_float)()
    # Called with the GIL held (``PyDLL``): the call is a few µs of C, and releasing the GIL
    # around it made gunicorn's request threads hand the GIL over on every prediction (context
    # switches showed as ~13 % of a worker's CPU under load).
    function = ctypes.PyDLL(_LIB._name).XGBoosterPredictFromDense
    function.restype = ctypes.c_int
    handle = booster.handle
    # A proxy DMatrix of our own, reused: XGBoost otherwise builds one per call (~10 µs).
    proxy_matrix = _ProxyDMatrix()
    proxy = proxy_matrix.handle
    shape_ref, dims_ref, preds_ref = ctypes.byref(shape), ctypes.byref(dims), ctypes.byref(preds)

    def call() -> float:
        if function(handle, interface, config, proxy, shape_ref, dims_ref, preds_ref):
            _check_call(-1)  # raises XGBoostError with XGBoost's message
        return preds[0]

    call.keep_alive = (matrix, booster, proxy_matrix)  # type: ignore[attr-defined]
    return call


def _direct_call_works(predictor: Predictor) -> bool:
    """Whether the direct call gives exactly what ``inplace_predict`` gives on sample rows."""
    row = np.zeros(predictor.width, dtype=np.float32)
    try:
        call = _make_direct_call(predictor.booster, row)
    except Exception:
        log.debug("predictor: direct call setup failed", exc_info=True)
        return False
    if call is None:
        return False
    samples = _sample_rows(predictor)
    try:
        for sample in samples:
            row[:] = sample
            expected = float(
                predictor.booster.inplace_predict(sample[None, :], validate_features=False)[0]
            )
            if not math.isclose(call(), expected, rel_tol=1e-6, abs_tol=1e-7):
                return False
    except Exception:
        log.debug("predictor: direct call check failed", exc_info=True)
        return False
    return True


def _forest_agrees(predictor: Predictor, forest: Forest) -> bool:
    """Whether ``forest`` gives what ``inplace_predict`` gives (within the forest's tolerance)
    on the sample rows and on random rows with missing values."""
    rng = np.random.default_rng(1)
    probes = _sample_rows(predictor)
    for _ in range(64):
        row = rng.integers(0, 4, predictor.width).astype(np.float32)
        row[rng.random(predictor.width) < 0.3] = np.nan
        probes.append(row)
    matrix = np.stack(probes)
    expected = predictor.booster.inplace_predict(matrix, validate_features=False)
    return all(
        abs(forest.predict(row) - float(want)) <= TOLERANCE
        for row, want in zip(matrix, expected, strict=True)
    )


def _sample_rows(predictor: Predictor) -> list[np.ndarray]:
    """The defaults row, all-missing, all-zero and a few random rows for the self-check."""
    width = predictor.width
    rows = [np.full(width, np.nan, dtype=np.float32), np.zeros(width, dtype=np.float32)]
    with contextlib.suppress(FeatureError):
        rows.append(predictor.encoder.encode_one(predictor.encoder.resolve({})))
    rng = np.random.default_rng(0)
    for _ in range(4):
        rows.append(rng.integers(0, 3, width).astype(np.float32))
    return rows
