"""The prediction log's writer: flush by rows, by time and on close; drop-not-block under load
with a stalled lake; a failing lake counted, never raised; the /predict hook end to end."""

from __future__ import annotations

import threading
import time
from datetime import UTC, date, datetime
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pandas as pd
import pytest

from crashed.adapters.local_lake import LocalLake
from crashed.core.features import COUNT_FEATURES, RAW_FEATURES
from crashed.monitoring.log_reader import read_log
from crashed.serving.app import create_app
from crashed.serving.metrics import ServingMetrics
from crashed.serving.model_state import LoadedModel, ModelState
from crashed.serving.prediction_log import PredictionLog, to_table

if TYPE_CHECKING:
    from tests.serving_fixtures import Served

ROOT = "gs://crashed-test-lake"
TODAY = datetime.now(UTC).date()
NIGHT = {"day_of_week": "Saturday", "accident_time": "02:00", "males": "2"}


@pytest.fixture
def model(served: Served) -> LoadedModel:
    state = ModelState.from_settings(served.settings, served.lake)
    state.load()
    assert state.model is not None
    return state.model


def record(log: PredictionLog, model: LoadedModel, n: int, client: str = "c") -> None:
    for i in range(n):
        values = model.predictor.predict_one(NIGHT).values
        log.record((time.time(), model, f"{client}{i}", "get", values, 0.25, 0, 12.5))


def logged(lake: Any, model: LoadedModel, root: str = ROOT) -> pd.DataFrame:
    name = model.info["name"]
    return read_log(lake, root, name, None, date(2000, 1, 1), TODAY)


def wait_rows(lake: Any, model: LoadedModel, rows: int, timeout: float = 30.0) -> pd.DataFrame:
    deadline = time.monotonic() + timeout
    while True:
        frame = logged(lake, model)
        if len(frame) >= rows or time.monotonic() > deadline:
            return frame
        time.sleep(0.05)


def counter(metrics: ServingMetrics, name: str) -> float:
    return metrics.registry.get_sample_value(f"crashed_prediction_log_{name}_total") or 0.0


def test_flushes_every_n_rows(served: Served, model: LoadedModel) -> None:
    log = PredictionLog(served.lake, ROOT, flush_rows=5, flush_seconds=3600, queue_size=100)
    try:
        record(log, model, 5)
        frame = wait_rows(served.lake, model, 5)
        assert len(frame) == 5
        assert sorted(frame["client_id"]) == [f"c{i}" for i in range(5)]
        row = frame.iloc[0]
        assert (row["model_name"], row["run_id"]) == (model.info["name"], model.info["run_id"])
        assert row["model_sha256"] == model.info["sha256"]
        assert (row["day_of_week"], row["accident_time"], row["males"]) == ("Saturday", "02:00", 2)
        assert (row["probability"], row["decision"], row["latency_us"]) == (0.25, 0, 12.5)
        assert row["source"] == "get"
        # the partition is the prediction's UTC day, the name the worker's
        [uri] = served.lake.list(f"{ROOT}/predictions/{model.info['name']}/")
        assert f"/date={TODAY.isoformat()}/" in uri and uri.endswith("-000001.parquet")
    finally:
        log.close()


def test_flushes_after_the_interval(served: Served, model: LoadedModel) -> None:
    log = PredictionLog(served.lake, ROOT, flush_rows=1000, flush_seconds=0.2, queue_size=100)
    try:
        record(log, model, 3)
        assert len(wait_rows(served.lake, model, 3)) == 3
        assert log.written == 3 and log.flushes == 1
    finally:
        log.close()


def test_close_flushes_what_is_queued(served: Served, model: LoadedModel) -> None:
    log = PredictionLog(served.lake, ROOT, flush_rows=1000, flush_seconds=3600, queue_size=100)
    record(log, model, 4)
    assert len(logged(served.lake, model)) == 0
    log.close()
    assert len(logged(served.lake, model)) == 4
    log.close()  # idempotent: nothing written twice
    assert len(logged(served.lake, model)) == 4


class StalledLake(LocalLake):
    """A lake whose writes hang until ``release`` is set (a lake outage that times out slowly)."""

    def __init__(self, root: Any) -> None:
        super().__init__(root)
        self.release = threading.Event()
        self.entered = threading.Event()

    def put_bytes(self, uri: str, data: bytes, content_type: str | None = None) -> Any:
        self.entered.set()
        self.release.wait(120)
        return super().put_bytes(uri, data, content_type)


def test_a_full_queue_drops_and_counts_without_blocking(served: Served, model: LoadedModel) -> None:
    lake = StalledLake(served.home / "lake")
    metrics = ServingMetrics()
    log = PredictionLog(
        lake, ROOT, flush_rows=10, flush_seconds=3600, queue_size=50, metrics=metrics
    )
    values = model.predictor.predict_one(NIGHT).values
    threads, per_thread = 16, 500

    def hammer(worker: int) -> None:
        for i in range(per_thread):
            log.record((time.time(), model, f"{worker}-{i}", "get", values, 0.5, 1, 1.0))

    pool = [threading.Thread(target=hammer, args=(n,)) for n in range(threads)]
    try:
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join(60)
        # every request returned while the lake was still stalled: nothing blocked
        assert not any(thread.is_alive() for thread in pool)
        assert not lake.release.is_set()
        total = threads * per_thread
        # kept: at most one queue in the stalled flush plus one queue waiting behind it
        assert total - 2 * 50 <= log.dropped < total
        assert counter(metrics, "dropped") == log.dropped
        assert len(log._queue) <= 50
    finally:
        lake.release.set()
        log.close()
    assert log.written + log.dropped == total
    assert counter(metrics, "written") == log.written == len(logged(lake, model))


class FailingLake(LocalLake):
    def put_bytes(self, uri: str, data: bytes, content_type: str | None = None) -> Any:
        raise OSError("bucket unavailable")


def test_a_failing_lake_is_counted_never_raised(served: Served, model: LoadedModel) -> None:
    metrics = ServingMetrics()
    log = PredictionLog(
        FailingLake(served.home / "lake"),
        ROOT,
        flush_rows=1000,
        flush_seconds=3600,
        metrics=metrics,
        start=False,
    )
    record(log, model, 3)
    assert log.flush() == 0
    assert (log.errors, log.written) == (1, 0)
    assert counter(metrics, "flush_errors") == 1
    assert counter(metrics, "lost") == 3
    record(log, model, 2)  # the log keeps accepting predictions afterwards
    assert len(log._queue) == 2
    log.close()
    assert counter(metrics, "flush_errors") == 2


def test_batch_rows_are_logged_with_resolved_values(served: Served, model: LoadedModel) -> None:
    log = PredictionLog(served.lake, ROOT, flush_seconds=3600, start=False)
    instances = [{"males": 2.0, "day_of_week": "Sunday", "id": "b0"}, {"accident_time": None}]
    log.record_batch(time.time(), model, instances, [(0.9, 1), (0.1, 0)], 40.0)
    log.close()
    frame = logged(served.lake, model).sort_values("probability")
    defaults = model.predictor.encoder.resolve({})
    first, second = frame.iloc[1], frame.iloc[0]
    assert (first["client_id"], first["males"], first["day_of_week"]) == ("b0", 2, "Sunday")
    assert first["speed_zone"] == defaults["speed_zone"]  # left out: the model's default
    assert pd.isna(second["accident_time"])  # null = unknown, as the model saw it
    assert pd.isna(second["client_id"])
    assert list(frame["source"]) == ["batch", "batch"]
    assert list(frame["latency_us"]) == [20.0, 20.0]
    assert list(frame["decision"]) == [0, 1]


def test_batch_beyond_the_queue_is_dropped(served: Served, model: LoadedModel) -> None:
    log = PredictionLog(served.lake, ROOT, flush_seconds=3600, queue_size=3, start=False)
    log.record_batch(time.time(), model, [{}] * 5, [(0.1, 0)] * 5, 5.0)
    assert (len(log._queue), log.dropped) == (3, 2)
    log.close()


def test_the_predict_endpoint_logs_get_and_batch(served: Served) -> None:
    app = create_app(served.settings, served.lake)
    log = app.extensions["crashed"]["prediction_log"]
    client = app.test_client()
    answer = client.get("/predict?id=T2018001&day_of_week=Saturday&accident_time=02:00").json
    batch = client.post("/predict", json={"instances": [{"id": "T2018002"}, {"males": 1}]}).json
    assert client.get("/predict?day_of_week=Caturday").status_code == 400  # not logged
    log.close()
    model = app.extensions["crashed"]["state"].model
    frame = logged(served.lake, model, served.settings.lake_uri())
    assert list(frame["source"]) == ["get", "batch", "batch"]
    assert list(frame["client_id"].fillna("-")) == ["T2018001", "T2018002", "-"]
    get = frame.iloc[0]
    for feature, value in answer["features"].items():
        expected = int(value) if feature in COUNT_FEATURES and value is not None else value
        assert get[feature] == expected or (value is None and pd.isna(get[feature]))
    assert get["probability"] == pytest.approx(answer["probability"], abs=1e-6)
    probabilities = [p["probability"] for p in batch["predictions"]]
    assert list(frame["probability"].iloc[1:]) == pytest.approx(probabilities, abs=1e-6)


def test_a_long_client_id_is_a_400_naming_id(served: Served) -> None:
    client = create_app(served.settings, served.lake).test_client()
    response = client.get("/predict?id=" + "x" * 129)
    assert (response.status_code, response.json["field"]) == (400, "id")
    response = client.post("/predict", json={"instances": [{"id": 7}]})
    assert (response.status_code, response.json["field"], response.json["index"]) == (400, "id", 0)


def test_off_when_the_setting_says_so(served: Served) -> None:
    settings = served.settings.model_copy(update={"crashed_prediction_log": False})
    app = create_app(settings, served.lake)
    assert app.extensions["crashed"]["prediction_log"] is None
    assert app.test_client().get("/predict").status_code == 200


def test_a_flush_spanning_a_model_switch_writes_a_file_per_model(
    served: Served, model: LoadedModel, small_model_b: Any
) -> None:
    served.set_reference(served.publish(small_model_b, "run-b"))
    state = ModelState.from_settings(served.settings, served.lake)
    state.load()
    assert state.model is not None
    log = PredictionLog(served.lake, ROOT, flush_seconds=3600, start=False)
    record(log, model, 2)
    record(log, state.model, 3)
    log.close()
    frame = logged(served.lake, model)
    assert frame.groupby("run_id").size().to_dict() == {"run-a": 2, "run-b": 3}
    assert set(frame["model_sha256"]) == {model.info["sha256"], state.model.info["sha256"]}
    assert len(served.lake.list(f"{ROOT}/predictions/")) == 2


def test_close_gives_up_on_a_hung_lake(served: Served, model: LoadedModel) -> None:
    """A graceful stop must not hang on a lake that does not answer (gunicorn would kill it)."""
    lake = StalledLake(served.home / "lake")
    log = PredictionLog(lake, ROOT, flush_rows=1, flush_seconds=3600, queue_size=100)
    record(log, model, 1)
    assert lake.entered.wait(60)  # the flusher is stuck in put_bytes
    record(log, model, 3)
    closer = threading.Thread(target=log.close, kwargs={"timeout": 0.5})
    closer.start()
    closer.join(60)
    try:
        assert not closer.is_alive() and not lake.release.is_set()
        assert len(log._queue) == 3  # not written, not lost silently: still queued
    finally:
        lake.release.set()


def test_columns_follow_the_schema_whatever_the_models_feature_order(model: LoadedModel) -> None:
    """A model using fewer features, in another order: each value lands in its own column and
    the feature it lacks is null, for single and batch rows alike."""
    names = tuple(reversed(RAW_FEATURES[1:]))  # lacks RAW_FEATURES[0], reversed
    predictor = SimpleNamespace(
        features=names, resolve=lambda instance: tuple(instance.get(f) for f in names)
    )
    partial = SimpleNamespace(predictor=predictor, info=model.info)
    single = tuple("2" if f in COUNT_FEATURES else f"get-{f}" for f in names)
    batch = {f: "3" if f in COUNT_FEATURES else f"batch-{f}" for f in names}
    table = to_table(
        [
            (time.time(), partial, "a", "get", single, 0.5, 1, 1.0),
            (time.time(), partial, "b", "batch", batch, 0.25, 0, 1.0),
        ]
    ).to_pylist()
    assert [row[RAW_FEATURES[0]] for row in table] == [None, None]
    category = next(f for f in names if f not in COUNT_FEATURES)
    count = next(f for f in names if f in COUNT_FEATURES)
    assert [row[category] for row in table] == [f"get-{category}", f"batch-{category}"]
    assert [row[count] for row in table] == [2, 3]
