"""Prometheus metrics: a batch of probabilities counts exactly like one observe per value, and
queued observations are all written, by the timer too."""

from __future__ import annotations

import threading
import time

from prometheus_client.parser import text_string_to_metric_families

from crashed.serving.metrics import FLUSH_EVERY, FLUSH_SECONDS, PROBABILITY_BUCKETS, ServingMetrics


def probability_samples(metrics: ServingMetrics) -> dict[tuple[str, str], float]:
    out = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            if sample.name.startswith("crashed_prediction_probability"):
                out[(sample.name, sample.labels.get("le", ""))] = sample.value
    return out


def test_observe_predictions_equals_observing_one_by_one() -> None:
    values = [0.0, 0.005, 0.01, 0.0100001, 0.3, 0.5, 0.999, 1.0, *PROBABILITY_BUCKETS]
    one_by_one, at_once = ServingMetrics(), ServingMetrics()
    for value in values:
        one_by_one.observe_prediction(value)
    at_once.observe_predictions(values)
    expected = probability_samples(one_by_one)
    got = probability_samples(at_once)
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert abs(got[key] - value) < 1e-9, key
    assert got[("crashed_prediction_probability_count", "")] == len(values)
    assert got[("crashed_prediction_probability_bucket", "0.01")] == 4  # 0, .005, .01 twice


def _predict_count(metrics: ServingMetrics) -> float:
    value = metrics.registry.get_sample_value(
        "crashed_http_requests_total", {"route": "/predict", "method": "GET", "status": "200"}
    )
    return value or 0.0


def test_queued_observations_are_written_by_the_timer_without_a_render() -> None:
    """Another worker's /metrics reads the files: the timer must write an idle worker's queue."""
    metrics = ServingMetrics()
    for _ in range(3):
        metrics.observe_request("/predict", "GET", 200, 0.001)
        metrics.observe_prediction(0.25)
    assert _predict_count(metrics) == 0  # queued, not yet written
    deadline = time.monotonic() + 10 * FLUSH_SECONDS + 5
    while _predict_count(metrics) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _predict_count(metrics) == 3
    assert metrics.registry.get_sample_value("crashed_prediction_probability_count") == 3


def test_no_observation_is_lost_while_threads_queue_and_flush() -> None:
    metrics = ServingMetrics()
    per_thread = 3 * FLUSH_EVERY + 17  # crosses the flush threshold several times

    def hammer(worker: int) -> None:
        for i in range(per_thread):
            metrics.observe_request("/predict", "GET", 200, 0.0001 * (i % 50))
            metrics.observe_prediction((worker + i) % 100 / 100)

    threads = [threading.Thread(target=hammer, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for _ in range(20):
        metrics.flush()  # the /metrics and timer path, racing the request threads
    for thread in threads:
        thread.join()
    metrics.flush()
    assert _predict_count(metrics) == 4 * per_thread
    latency_count = metrics.registry.get_sample_value(
        "crashed_http_request_duration_seconds_count", {"route": "/predict"}
    )
    assert latency_count == 4 * per_thread
    assert metrics.registry.get_sample_value("crashed_prediction_probability_count") == (
        4 * per_thread
    )
