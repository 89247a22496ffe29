"""Prometheus metrics: a batch of probabilities counts exactly like one observe per value."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from crashed.serving.metrics import PROBABILITY_BUCKETS, ServingMetrics


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
