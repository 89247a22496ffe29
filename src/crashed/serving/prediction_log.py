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
import pyarrow.parquet as pq

from crashed.core.features import COUNT_FEATURES, RAW_FEATURES
from crashed.core.prediction_log import COLUMNS, SCHEMA, day_prefix
from crashed.ports import Lake
from crashed.serving.predictor import as_text

if TYPE_CHECKING:
    from crashed.serving.metrics import ServingMetrics
    from crashed.serving.model_state import LoadedModel
    from crashed.settings import Settings

log = logging.getLogger(__name__)

SOURCE_GET = "get"
SOURCE_BATCH = "batch"
MAX_CLIENT_ID = 128
Record = tuple[float, Any, Any, str, Mapping[str, Any], float, int, float]
"""(unix seconds, LoadedModel, client id, source, values, probability, decision, latency µs);
``values`` are resolved for ``get`` and raw (as the request sent them) for ``batch``."""

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

    def flush(self) -> int:
        """Write everything queued now (several files when it spans models or days); returns
        the rows written. Never raises: a failed write is logged and counted."""
        with self._write_lock:
            queue = self._queue
            items: list[Record] = []
            for _ in range(len(queue)):
                try:
                    items.append(queue.popleft())
                except IndexError:
                    break
            if not items:
                return 0
            groups: dict[tuple[str, str], list[Record]] = {}
            for item in items:
                day = datetime.fromtimestamp(item[0], UTC).date().isoformat()
                groups.setdefault((item[1].info["name"], day), []).append(item)
            written = 0
            for (model_name, day), rows in groups.items():
                written += self._write(model_name, day, rows)
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
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self.flush()
        _OPEN.discard(self)


def close_all() -> None:
    """Flush and stop every open log of this process (gunicorn ``worker_exit``, ``atexit``)."""
    for prediction_log in list(_OPEN):
        prediction_log.close()


atexit.register(close_all)


def to_table(rows: Sequence[Record]) -> pa.Table:
    """The queued records as a table of :data:`SCHEMA` (batch rows resolved here)."""
    resolved: list[Mapping[str, Any]] = []
    memo: dict[tuple[int, str, object], str | None] = {}
    for row in rows:
        values = row[4]
        resolved.append(values if row[3] == SOURCE_GET else _resolve(row[1], values, memo))
    columns: dict[str, list[Any]] = {
        "ts": [int(r[0] * 1_000_000) for r in rows],
        "model_name": [r[1].info["name"] for r in rows],
        "run_id": [r[1].info["run_id"] for r in rows],
        "model_sha256": [r[1].info["sha256"] for r in rows],
        "client_id": [_client_id(r[2]) for r in rows],
        "source": [r[3] for r in rows],
        "probability": [float(r[5]) for r in rows],
        "decision": [int(r[6]) for r in rows],
        "latency_us": [float(r[7]) for r in rows],
    }
    for feature in RAW_FEATURES:
        if feature in _COUNTS:
            columns[feature] = [_count(v.get(feature)) for v in resolved]
        else:
            columns[feature] = [v.get(feature) for v in resolved]
    arrays = [pa.array(columns[name], type=SCHEMA.field(name).type) for name in COLUMNS]
    return pa.Table.from_arrays(arrays, schema=SCHEMA)


def _resolve(
    model: LoadedModel, raw: Mapping[str, Any], memo: dict[tuple[int, str, object], str | None]
) -> dict[str, str | None]:
    """A batch row's values as the model saw them (``Encoder.resolve``, one feature at a time,
    remembered per distinct raw value within a flush)."""
    encoder = model.predictor.encoder
    out: dict[str, str | None] = {}
    for feature in encoder.features:
        present = feature in raw
        key = (id(model), feature, raw[feature] if present else _ABSENT)
        if key not in memo:
            given = {feature: as_text(raw[feature])} if present else {}
            memo[key] = encoder.resolve(given)[feature]
        out[feature] = memo[key]
    return out


_ABSENT = object()


def _count(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(float(value))
    except ValueError:
        return None


def _client_id(value: object) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    return text[:MAX_CLIENT_ID]


def _safe(text: str) -> str:
    """A host name as a file-name part."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[:64] or "host"
