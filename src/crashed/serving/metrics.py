"""Prometheus metrics of the inference service (``GET /metrics``).

Under gunicorn every worker is a separate process, so the counters use prometheus_client's
multiprocess mode: ``gunicorn_conf`` sets ``PROMETHEUS_MULTIPROC_DIR`` in the master *before*
prometheus_client is imported anywhere, workers write their values to files there, and
``/metrics`` (whichever worker answers) sums them. Counts therefore aggregate across workers,
survive a worker restart and a SIGHUP reload. Without that variable (tests, the Flask dev server)
each app keeps its own registry.

Per request, an observation is one ``deque.append``: writing a multiprocess value takes a lock,
a ``getpid`` and a ``struct`` write into the mmap, five of them per ``/predict`` (request count,
latency and probability histograms: ~4 µs, a tenth of the endpoint's own work). Queued
observations are written in bulk, one increment per counter or bucket, when
:data:`FLUSH_EVERY` are queued, by a timer every :data:`FLUSH_SECONDS`, before ``/metrics``
renders and when the worker exits: another worker's counts reach ``/metrics`` at most
:data:`FLUSH_SECONDS` late, its own at once.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from collections import Counter as Tally
from collections import deque
from collections.abc import Sequence

import numpy as np
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    values,
)

log = logging.getLogger(__name__)
disable_created_metrics()  # no ``*_created`` series: noise for a service's own metrics

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
PROBABILITY_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
METHODS = frozenset({"GET", "POST", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"})
FLUSH_EVERY = 256
"""Queued observations that make the request queuing the last one write them all."""
FLUSH_SECONDS = 0.5
"""The longest a queued observation waits for the timer."""

_OPEN: weakref.WeakSet[ServingMetrics] = weakref.WeakSet()


def multiprocess_dir() -> str | None:
    """The multiprocess directory when prometheus_client really runs in that mode."""
    path = os.environ.get(MULTIPROC_ENV) or os.environ.get(MULTIPROC_ENV.lower())
    if not path:
        return None
    if "Mmaped" not in getattr(values.ValueClass, "__name__", ""):
        log.warning(
            "%s is set but prometheus_client was imported before it: per-process metrics only",
            MULTIPROC_ENV,
        )
        return None
    return path


class ServingMetrics:
    """Request counts by route/method/status, latency and prediction-probability histograms,
    and the prediction log's written / dropped / lost rows and flush errors."""

    def __init__(self, multiprocess: str | None = None) -> None:
        self.multiprocess = multiprocess
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "crashed_http_requests",
            "HTTP requests answered, by route, method and status code.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "crashed_http_request_duration_seconds",
            "Time spent in the app per request, by route.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.probability = Histogram(
            "crashed_prediction_probability",
            "Predicted probability of an alcohol-related crash, per scored instance.",
            buckets=PROBABILITY_BUCKETS,
            registry=self.registry,
        )
        self.ready = Gauge(
            "crashed_model_ready",
            "1 when a verified model is loaded (minimum over live workers).",
            registry=self.registry,
            multiprocess_mode="livemin",
        )
        self.log_written = Counter(
            "crashed_prediction_log_written",
            "Predictions written to the prediction log in the lake.",
            registry=self.registry,
        )
        self.log_dropped = Counter(
            "crashed_prediction_log_dropped",
            "Predictions not logged because the worker's log queue was full.",
            registry=self.registry,
        )
        self.log_lost = Counter(
            "crashed_prediction_log_lost",
            "Predictions not logged because writing them to the lake failed.",
            registry=self.registry,
        )
        self.log_flush_errors = Counter(
            "crashed_prediction_log_flush_errors",
            "Prediction-log files that could not be written to the lake.",
            registry=self.registry,
        )
        self._children: dict[tuple[str, str, int], Counter] = {}
        self._requests: deque[tuple[str, str, int, float]] = deque()
        self._probabilities: deque[float] = deque()
        self._flush_lock = threading.Lock()
        self._timer: threading.Thread | None = None
        _OPEN.add(self)

    # ---- request path: queue -------------------------------------------------------------
    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Queue one answered request (count by route/method/status, latency by route)."""
        queue = self._requests
        queue.append((route, method, status, seconds))
        if len(queue) >= FLUSH_EVERY:
            self.flush()
        elif self._timer is None:
            self._start_timer()

    def observe_prediction(self, probability: float) -> None:
        """Queue one predicted probability."""
        self._probabilities.append(probability)

    def observe_predictions(self, probabilities: Sequence[float]) -> None:
        """A batch's probabilities, written at once (one increment per bucket)."""
        _observe_many(self.probability, probabilities)

    # ---- bulk writes ---------------------------------------------------------------------
    def flush(self) -> None:
        """Write every queued observation into the metrics (thread-safe, never loses one)."""
        with self._flush_lock:
            requests = _drain(self._requests)
            probabilities = _drain(self._probabilities)
            if requests:
                latencies: dict[str, list[float]] = {}
                for route, _, _, seconds in requests:
                    latencies.setdefault(route, []).append(seconds)
                for (route, method, status), count in Tally(r[:3] for r in requests).items():
                    self._counter(route, method, status).inc(count)
                for route, seconds in latencies.items():
                    _observe_many(self.latency.labels(route), seconds)
            if probabilities:
                _observe_many(self.probability, probabilities)

    def _counter(self, route: str, method: str, status: int) -> Counter:
        if method not in METHODS:
            method = "other"
        key = (route, method, status)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self.requests.labels(route, method, str(status))
        return child

    def _start_timer(self) -> None:
        with self._flush_lock:
            if self._timer is not None:
                return
            self._timer = threading.Thread(
                target=_flush_periodically,
                args=(weakref.ref(self),),
                name="crashed-metrics",
                daemon=True,
            )
            self._timer.start()

    def set_ready(self, ready: bool) -> None:
        self.ready.set(1 if ready else 0)

    def render(self) -> bytes:
        """The Prometheus text exposition (summed over workers in multiprocess mode)."""
        self.flush()
        if self.multiprocess:
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=self.multiprocess)
            return generate_latest(registry)
        return generate_latest(self.registry)


def _observe_many(histogram: Histogram, values: Sequence[float]) -> None:
    """Observe many values: one increment per bucket instead of one ``observe`` per value
    (a 1,000-row batch in multiprocess mode: ~1 ms instead of ~3 ms). Uses the histogram's
    bucket counters; falls back to ``observe`` if their layout differs."""
    buckets = getattr(histogram, "_buckets", None)
    total = getattr(histogram, "_sum", None)
    bounds = getattr(histogram, "_upper_bounds", None)
    if buckets is None or total is None or bounds is None or len(buckets) != len(bounds):
        for value in values:
            histogram.observe(value)
        return
    array = np.asarray(values, dtype=float)
    # prometheus buckets are cumulative on output; each value counts in its first bucket
    counts = np.bincount(np.searchsorted(bounds, array, side="left"), minlength=len(bounds))
    for bucket, count in zip(buckets, counts.tolist(), strict=False):
        if count:
            bucket.inc(count)
    total.inc(float(array.sum()))


def _drain(queue: deque) -> list:
    """What is in ``queue`` now, removed (appends meanwhile stay for the next drain)."""
    return [queue.popleft() for _ in range(len(queue))]


def _flush_periodically(metrics_ref: weakref.ref[ServingMetrics]) -> None:
    """The timer: flush every FLUSH_SECONDS while the metrics object lives."""
    while True:
        time.sleep(FLUSH_SECONDS)
        metrics = metrics_ref()
        if metrics is None:
            return
        try:
            metrics.flush()
        except Exception:  # a metrics write must never kill the timer
            log.exception("metrics: flush failed")
        del metrics


def flush_all() -> None:
    """Write every queued observation of this process (gunicorn ``worker_exit``, ``atexit``)."""
    for metrics in list(_OPEN):
        metrics.flush()


atexit.register(flush_all)
