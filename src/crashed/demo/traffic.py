"""The demo's monitor step: real requests with client ids, then wait for the prediction log.

The requests are the most recent crashes of the demo's data, each sent as ``GET /predict`` with
its ``accident_no`` as ``id`` (so the monitor can join the outcomes the warehouse holds). That
they reached the lake is read from the server's own ``/metrics``
(``crashed_prediction_log_written_total``, summed over workers).
"""

from __future__ import annotations

import http.client
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pandas as pd

from crashed.core.crash_schema import normalise, read_crash_csv
from crashed.core.features import COUNT_FEATURES, DATE, RAW_FEATURES

WRITTEN = "crashed_prediction_log_written_total"


def recent_crashes(csv_path: Path, count: int) -> list[dict[str, str]]:
    """The ``count`` latest crashes of the CSV as query parameters, ``id`` = ``accident_no``."""
    frame = normalise(read_crash_csv(csv_path), str(csv_path))
    frame = frame.sort_values(DATE, kind="stable").tail(count)
    ids = frame["accident_no"] if "accident_no" in frame else pd.Series(range(len(frame)))
    out = []
    for client_id, row in zip(ids, frame[list(RAW_FEATURES)].itertuples(index=False), strict=True):
        params = {"id": str(client_id)}
        for feature, value in zip(RAW_FEATURES, row, strict=True):
            if not pd.isna(value):
                params[feature] = str(int(value)) if feature in COUNT_FEATURES else str(value)
        out.append(params)
    return out


def send(base: str, queries: list[dict[str, str]]) -> tuple[int, int]:
    """GET /predict for each query over one keep-alive connection: (answered 200, refused)."""
    url = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=30)
    ok = refused = 0
    try:
        for params in queries:
            conn.request("GET", "/predict?" + urllib.parse.urlencode(params))
            response = conn.getresponse()
            response.read()
            if response.status == 200:
                ok += 1
            else:
                refused += 1  # e.g. a category the served model never saw: a 400, not logged
    finally:
        conn.close()
    return ok, refused


def written(base: str) -> float:
    """Predictions the server's workers have written to the log so far (0 when unknown)."""
    try:
        with urllib.request.urlopen(f"{base}/metrics", timeout=10) as response:
            text = response.read().decode()
    except OSError:
        return 0.0
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(WRITTEN)
    )


def wait_written(base: str, target: float, timeout: float) -> float:
    """Poll ``/metrics`` until ``target`` predictions are written (or the timeout passes)."""
    deadline = time.monotonic() + timeout
    while True:
        done = written(base)
        if done >= target or time.monotonic() > deadline:
            return done
        time.sleep(0.5)
