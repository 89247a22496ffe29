"""The prediction log's writer: every served prediction, queued per worker, flushed to the lake.

Per request the hot path only appends one tuple to a bounded in-memory deque (no locks, no
allocation beyond the tuple); a full queue *drops* the record and counts it, so logging never
blocks or fails a request. A daemon thread drains the queue every ``flush_rows`` rows or
``flush_seconds`` seconds (and on :meth:`PredictionLog.close`: gunicorn's ``worker_exit`` hook
and ``atexit``), builds the columns of :data:`crashed.core.prediction_log.SCHEMA` and writes one
Parquet file per model and day per flush through the Lake port it was handed:
``predictions/<model>/date=YYYY-MM-DD/<host>-<pid>-<token>-<first-ts-us>-<seq>.parquet``
(host, pid, a random token per log, first timestamp, sequence: no two workers or pods pick one
name). A failing write is logged and counted (its rows are lost), never raised into a request.

Batch rows are queued with their raw values and resolved (defaults filled in, as the model saw
them) by the flusher, so a 1,000-row batch costs the request one ``deque.extend``.
"""

from __future__ import annotations

import atexit
import io
import logging
import os
import secrets
import socket
import threading
import time
import weakref
from collections import deque
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from crashed.core.features import COUNT_FEATURES, RAW_FEATURES
from crashed.core.prediction_log import COLUMNS, SCHEMA, day_prefix
from crashed.ports import Lake

if TYPE_CHECKING:
    from crashed.serving.metrics import ServingMetrics
    from crashed.serving.model_state import LoadedModel
    from crashed.settings import Settings

log = logging.getLogger(__name__)

SOURCE_GET = "get"
SOURCE_BATCH = "batch"
MAX_CLIENT_ID = 128
Record = tuple[float, Any, Any, str, Any, float, int, float]
"""(unix seconds, LoadedModel, client id, source, values, probability, decision, latency µs);
``values`` are, for ``get``, the resolved values in the model's feature order (a tuple: cheap to
keep and to turn into columns) and, for ``batch``, the instance as the request sent it."""

_OPEN: weakref.WeakSet[PredictionLog] = weakref.WeakSet()
_COUNTS = frozenset(COUNT_FEATURES)


class PredictionLog:
    """One worker's prediction log: :meth:`record` / :meth:`record_batch` on the request path,
    a background thread writing Parquet to ``lake`` under ``lake_root``."""

    def __init__(
        self,
        lake: Lake,
        lake_root: str,
        *,
        flush_rows: int = 1000,
        flush_seconds: float = 10.0,
        queue_size: int = 10_000,
        metrics: ServingMetrics | None = None,
        start: bool = True,
    ) -> None:
        self.lake = lake
        self.lake_root = lake_root
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self.queue_size = queue_size
        self.metrics = metrics
        # + a random token: two logs of one process (tests, a re-created app) never collide
        self.worker = f"{_safe(socket.gethostname())}-{os.getpid()}-{secrets.token_hex(3)}"
        self.dropped = 0
        self.written = 0
        self.flushes = 0
        self.errors = 0
        self._queue: deque[Record] = deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._write_lock = threading.Lock()  # one flush at a time (thread vs close)
        self._count_lock = threading.Lock()
        self._seq = 0
        self._thread: threading.Thread | None = None
        _OPEN.add(self)
        if start:
            self.start()

    @classmethod
    def from_settings(
        cls, settings: Settings, lake: Lake, metrics: ServingMetrics | None = None
    ) -> PredictionLog | None:
        """The log the settings ask for (None when ``CRASHED_PREDICTION_LOG=0``)."""
        if not settings.crashed_prediction_log:
            return None
        return cls(
            lake,
            settings.lake_uri(),
            flush_rows=settings.prediction_log_flush_rows,
            flush_seconds=settings.prediction_log_flush_seconds,
            queue_size=settings.prediction_log_queue_size,
            metrics=metrics,
        )

    # ---- request path (keep it tiny) --------------------------------------------------------
    def record(self, item: Record) -> None:
        """Queue one prediction; drops (and counts) it when the queue is full. Never blocks."""
        queue = self._queue
        if len(queue) >= self.queue_size:
            self._drop(1)
            return
        queue.append(item)
        if len(queue) >= self.flush_rows and not self._wake.is_set():
            self._wake.set()

    def record_batch(
        self,
        ts: float,
        model: LoadedModel,
        instances: Sequence[Mapping[str, Any]],
        scored: Sequence[tuple[float, int]],
        latency_us: float,
    ) -> None:
        """Queue a batch's rows (raw values, resolved by the flusher); what does not fit in the
        queue is dropped and counted."""
        room = self.queue_size - len(self._queue)
        count = len(instances)
        if room < count:
            self._drop(count - max(room, 0))
            count = max(room, 0)
        per_row = latency_us / max(len(instances), 1)
        self._queue.extend(
            (ts, model, instances[i].get("id"), SOURCE_BATCH, instances[i], p, d, per_row)
            for i, (p, d) in zip(range(count), scored, strict=False)
        )
        if len(self._queue) >= self.flush_rows and not self._wake.is_set():
            self._wake.set()

    def _drop(self, rows: int) -> None:
        with self._count_lock:
            self.dropped += rows
        if self.metrics is not None:
            self.metrics.log_dropped.inc(rows)

    # ---- background ---------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="crashed-prediction-log", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        next_due = time.monotonic() + self.flush_seconds
        while not self._stop.is_set():
            self._wake.wait(max(next_due - time.monotonic(), 0.0))
            self._wake.clear()
            if self._stop.is_set():
                break
            now = time.monotonic()
            if len(self._queue) >= self.flush_rows or now >= next_due:
                self.flush()
                next_due = time.monotonic() + self.flush_seconds

    def flush(self, wait: float | None = None) -> int:
        """Write everything queued now (several files when it spans models or days); returns
        the rows written. Never raises: a failed write is logged and counted. ``wait``: give
        up after that many seconds when another flush is still writing (a hung lake)."""
        if not self._write_lock.acquire(timeout=-1 if wait is None else wait):
            log.warning(
                "prediction log: a write is still hanging; %d rows not flushed", len(self._queue)
            )
            return 0
        try:
            return self._flush_locked()
        finally:
            self._write_lock.release()

    def _flush_locked(self) -> int:
        queue = self._queue
        items: list[Record] = []
        for _ in range(len(queue)):
            try:
                items.append(queue.popleft())
            except IndexError:
                break
        if not items:
            return 0
        # group by model and UTC day (a model switch or midnight splits a flush's files)
        groups: dict[tuple[int, int], list[Record]] = {}
        for item in items:
            key = (id(item[1]), int(item[0] // 86_400))
            group = groups.get(key)
            if group is None:
                groups[key] = [item]
            else:
                group.append(item)
        written = 0
        for (_, day), rows in groups.items():
            when = datetime.fromtimestamp(day * 86_400, UTC).date().isoformat()
            written += self._write(rows[0][1].info["name"], when, rows)
        return written

    def _write(self, model_name: str, day: str, rows: list[Record]) -> int:
        self._seq += 1
        first_us = int(rows[0][0] * 1_000_000)
        prefix = day_prefix(self.lake_root, model_name, datetime.fromisoformat(day).date())
        uri = f"{prefix}{self.worker}-{first_us}-{self._seq:06d}.parquet"
        try:
            sink = io.BytesIO()
            pq.write_table(to_table(rows), sink, compression="zstd")
            self.lake.put_bytes(uri, sink.getvalue(), "application/vnd.apache.parquet")
        except Exception as error:  # noqa: BLE001  (a lake outage must never reach a request)
            with self._count_lock:
                self.errors += 1
            if self.metrics is not None:
                self.metrics.log_flush_errors.inc()
                self.metrics.log_lost.inc(len(rows))
            log.warning(
                "prediction log: could not write %d rows to %s: %s: %s",
                len(rows),
                uri,
                type(error).__name__,
                str(error).splitlines()[0][:200] if str(error) else "",
            )
            return 0
        self.flushes += 1
        self.written += len(rows)
        if self.metrics is not None:
            self.metrics.log_written.inc(len(rows))
        return len(rows)

    def close(self, timeout: float = 10.0) -> None:
        """Stop the thread and flush what is queued (idempotent)."""
        self._stop.set()
        self._wake.set()
        deadline = time.monotonic() + timeout
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self.flush(wait=max(deadline - time.monotonic(), 0.1))
        _OPEN.discard(self)


def close_all() -> None:
    """Flush and stop every open log of this process (gunicorn ``worker_exit``, ``atexit``)."""
    for prediction_log in list(_OPEN):
        prediction_log.close()


atexit.register(close_all)


def to_table(rows: Sequence[Record]) -> pa.Table:
    """The queued records as a table of :data:`SCHEMA` (batch rows resolved here).

    Column-wise, in C where possible (``zip(*rows)`` twice, Arrow casts), off the request
    path."""
    n = len(rows)
    ts, models, client_ids, sources, values, probabilities, decisions, latencies = zip(
        *rows, strict=True
    )
    distinct = {id(m): m for m in models}
    if SOURCE_BATCH in sources or any(
        m.predictor.features != RAW_FEATURES for m in distinct.values()
    ):
        values = tuple(
            _in_log_order(m, source, v)
            for m, source, v in zip(models, sources, values, strict=True)
        )
    features = list(zip(*values, strict=True))
    infos = {key: m.info for key, m in distinct.items()}
    if len(infos) == 1:
        info = next(iter(infos.values()))
        names, runs, shas = [info["name"]] * n, [info["run_id"]] * n, [info["sha256"]] * n
    else:
        names = [infos[id(m)]["name"] for m in models]
        runs = [infos[id(m)]["run_id"] for m in models]
        shas = [infos[id(m)]["sha256"] for m in models]
    stamps = pa.array(ts, pa.float64())
    columns: dict[str, pa.Array] = {
        "ts": pc.multiply(stamps, 1e6).cast(pa.int64(), safe=False).cast(SCHEMA.field("ts").type),
        "model_name": pa.array(names, pa.string()),
        "run_id": pa.array(runs, pa.string()),
        "model_sha256": pa.array(shas, pa.string()),
        "client_id": pa.array([_client_id(c) for c in client_ids], pa.string()),
        "source": pa.array(sources, pa.string()),
        "probability": pa.array(probabilities, pa.float64()),
        "decision": pa.array(decisions, pa.int8()),
        "latency_us": pa.array(latencies, pa.float64()),
    }
    for feature, column in zip(RAW_FEATURES, features, strict=True):
        text = pa.array(column, pa.string())
        columns[feature] = _counts(text, column) if feature in _COUNTS else text
    return pa.Table.from_arrays([columns[name] for name in COLUMNS], schema=SCHEMA)


def _counts(text: pa.Array, column: Sequence[str | None]) -> pa.Array:
    """Count values (resolved text) as int64: an Arrow cast, or one by one if one is odd."""
    try:
        return text.cast(pa.int64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pa.array([_count(v) for v in column], pa.int64())


def _in_log_order(model: LoadedModel, source: str, values: Any) -> tuple[str | None, ...]:
    """A record's resolved values in :data:`RAW_FEATURES` order (None for a feature the
    model does not use); a batch row is resolved here, as the model saw it."""
    predictor = model.predictor
    if source != SOURCE_GET:
        values = predictor.resolve(values)
    if predictor.features == RAW_FEATURES:
        return values  # type: ignore[no-any-return]
    by_name = dict(zip(predictor.features, values, strict=True))
    return tuple(by_name.get(feature) for feature in RAW_FEATURES)


def _count(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(float(value))
    except ValueError:
        return None


def _client_id(value: object) -> str | None:
    if value is None or (type(value) is str and len(value) <= MAX_CLIENT_ID):
        return value  # type: ignore[return-value]
    return str(value)[:MAX_CLIENT_ID]


def _safe(text: str) -> str:
    """A host name as a file-name part."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[:64] or "host"
