"""Prometheus metrics of the inference service (``GET /metrics``).

Under gunicorn every worker is a separate process, so the counters use prometheus_client's
multiprocess mode: ``gunicorn_conf`` sets ``PROMETHEUS_MULTIPROC_DIR`` in the master *before*
prometheus_client is imported anywhere, workers write their values to files there, and
``/metrics`` (whichever worker answers) sums them. Counts therefore aggregate across workers,
survive a worker restart and a SIGHUP reload. Without that variable (tests, the Flask dev server)
each app keeps its own registry.
"""

from __future__ import annotations

import logging
import os
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
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        if method not in METHODS:
            method = "other"
        key = (route, method, status)
        children = self._children.get(key)
        if children is None:
            children = (
                self.requests.labels(route, method, str(status)),
                self.latency.labels(route),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def observe_prediction(self, probability: float) -> None:
        self.probability.observe(probability)

    def observe_predictions(self, probabilities: Sequence[float]) -> None:
        """Many probabilities at once: one increment per bucket instead of one observe per
        value (a 1,000-row batch in multiprocess mode: ~1 ms instead of ~3 ms). Uses the
        histogram's bucket counters; falls back to ``observe`` if their layout differs."""
        buckets = getattr(self.probability, "_buckets", None)
        total = getattr(self.probability, "_sum", None)
        bounds = getattr(self.probability, "_upper_bounds", None)
        if buckets is None or total is None or bounds is None or len(buckets) != len(bounds):
            for probability in probabilities:
                self.probability.observe(probability)
            return
        values = np.asarray(probabilities, dtype=float)
        # prometheus buckets are cumulative on output; each value counts in its first bucket
        counts = np.bincount(np.searchsorted(bounds, values, side="left"), minlength=len(bounds))
        for bucket, count in zip(buckets, counts.tolist(), strict=False):
            if count:
                bucket.inc(count)
        total.inc(float(values.sum()))

    def set_ready(self, ready: bool) -> None:
        self.ready.set(1 if ready else 0)

    def render(self) -> bytes:
        """The Prometheus text exposition (summed over workers in multiprocess mode)."""
        if self.multiprocess:
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=self.multiprocess)
            return generate_latest(registry)
        return generate_latest(self.registry)
