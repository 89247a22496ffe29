"""``crashed inference start-prod`` as a real gunicorn server on a free loopback port.

Readiness, predictions, a bounded concurrent load mixing valid and invalid requests (no 5xx, no
worker lost), metrics aggregated across workers, and a SIGHUP reload to a new model reference
with no failed request.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests
from openapi_spec_validator import validate
from prometheus_client.parser import text_string_to_metric_families
from tests.servers.procs import Server, free_port, start_server

from crashed.serving.metrics import FLUSH_SECONDS
from crashed.serving.reload import worker_pids

if TYPE_CHECKING:
    from tests.serving_fixtures import Served, TrainedModel


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc"),
]
WORKERS = 2
NIGHT = "/predict?day_of_week=Saturday&accident_time=02:00&light_condition=Dark+Street+lights+on"


def start_prod(served: Served, log: Path, extra: dict[str, str] | None = None) -> Server:
    """Start ``crashed inference start-prod`` and wait until every worker is ready."""
    port = free_port()
    env = served.env() | {"WEB_CONCURRENCY": str(WORKERS), "GUNICORN_THREADS": "4"} | (extra or {})
    server = start_server(
        [sys.executable, "-m", "crashed", "inference", "start-prod", "--bind", f"127.0.0.1:{port}"],
        port=port,
        log=log,
        env=env,
        timeout=60,
        cwd=served.home,
    )
    try:
        wait_all_ready(server, expect_run=served.reference.model.run_id)
    except BaseException:
        server.stop()
        raise
    return server


def wait_all_ready(server: Server, expect_run: str, timeout: float = 90.0) -> set[int]:
    """Until every current worker has answered /readyz 200 with run ``expect_run``."""
    deadline = time.monotonic() + timeout
    ready: set[int] = set()
    while time.monotonic() < deadline:
        workers = worker_pids(server.pid)
        try:
            body = requests.get(f"{server.url}/readyz", timeout=10).json()
        except requests.RequestException:
            body = {}
        if body.get("ready") and body["model"]["run_id"] == expect_run:
            ready.add(body["pid"])
        if len(workers) == WORKERS and workers <= ready:
            return workers
        time.sleep(0.02)
    raise AssertionError(
        f"workers {worker_pids(server.pid)} not all ready with {expect_run} in {timeout}s\n"
        + server.log.read_text(errors="replace")[-3000:]
    )


def predict_counts(url: str) -> dict[tuple[str, str], float]:
    """``crashed_http_requests_total`` for /predict by (method, status), summed over workers."""
    text = requests.get(f"{url}/metrics", timeout=10).text
    counts: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if (
                sample.name == "crashed_http_requests_total"
                and sample.labels["route"] == "/predict"
            ):
                key = (sample.labels["method"], sample.labels["status"])
                counts[key] = counts.get(key, 0.0) + sample.value
    return counts


def settled_counts(url: str, timeout: float = 30.0) -> dict[tuple[str, str], float]:
    """:func:`predict_counts` once two reads a timer period apart agree (every worker has
    written what it queued)."""
    deadline = time.monotonic() + timeout
    counts = predict_counts(url)
    while time.monotonic() < deadline:
        time.sleep(2 * FLUSH_SECONDS)
        again = predict_counts(url)
        if again == counts:
            return counts
        counts = again
    raise AssertionError(f"/metrics counts still changing after {timeout}s")


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory,
    small_model: TrainedModel,
    serve_model: Callable[..., Served],
) -> Iterator[Server]:
    served = serve_model(tmp_path_factory.mktemp("gunicorn") / "home", small_model, "run-a")
    server = start_prod(served, served.home / "server.log")
    yield server
    server.stop()


def test_ready_and_predicts(server: Server) -> None:
    ready = requests.get(f"{server.url}/readyz", timeout=10)
    assert ready.status_code == 200 and ready.json()["model"]["run_id"] == "run-a"
    body = requests.get(f"{server.url}{NIGHT}", timeout=10).json()
    assert 0 <= body["probability"] <= 1 and body["model"]["run_id"] == "run-a"
    batch = requests.post(
        f"{server.url}/predict", json={"instances": [{}, {"males": 2}]}, timeout=10
    )
    assert batch.status_code == 200 and len(batch.json()["predictions"]) == 2
    assert requests.get(f"{server.url}/healthz", timeout=10).status_code == 200
    assert "crashed_http_requests_total" in requests.get(f"{server.url}/metrics", timeout=10).text
    document = requests.get(f"{server.url}/openapi.json", timeout=10).json()
    validate(document)  # a valid OpenAPI 3.1 document, generated from the request models


def test_logs_are_json_lines_without_secrets(server: Server) -> None:
    """App, gunicorn and access records are JSON (python-json-logger); no header is logged."""
    secret = "Bearer do-not-log-me-0451"
    response = requests.get(
        f"{server.url}/predict?males=2",
        headers={"Authorization": secret, "Cookie": "session=do-not-log-me-too"},
        timeout=10,
    )
    assert response.status_code == 200
    deadline = time.monotonic() + 30
    access: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not access:
        lines = server.log.read_text().splitlines()
        records = [json.loads(line) for line in lines if line.startswith("{")]
        access = [r for r in records if r.get("type") == "access" and r["query"] == "males=2"]
        time.sleep(0.1)
    assert access, "no access record for the request"
    assert (access[0]["method"], access[0]["path"], access[0]["status"]) == (
        "GET",
        "/predict",
        200,
    )
    assert access[0]["duration_ms"] >= 0
    loggers = {r["logger"] for r in records}
    assert {"gunicorn.error", "crashed.serving.model_state"} <= loggers
    text = server.log.read_text()
    assert "do-not-log-me" not in text


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    expected: int
    body: Any = None
    raw: bytes | None = None


MIX = [
    Call("GET", NIGHT, 200),
    Call("GET", "/predict?accident_type=Collision+with+a+fixed+object&males=2", 200),
    Call("GET", "/predict", 200),
    Call("POST", "/predict", 200, body={"instances": [{}, {"day_of_week": "Monday"}] * 20}),
    Call("GET", "/predict?day_of_week=Caturday", 400),
    Call("GET", "/predict?males=two", 400),
    Call("GET", "/predict?males=1&males=2", 400),
    Call("GET", "/predict?colour=red", 400),
    Call("POST", "/predict", 400, raw=b"{not json"),
    Call("POST", "/predict", 400, body={"instances": [1, 2]}),
    Call("POST", "/predict", 413, body={"instances": [{}] * 1001}),
    Call("GET", "/predict?males=1&pad=" + "x" * 5000, 413),
    Call("PUT", "/predict", 405),
    Call("GET", "/nowhere", 404),
    Call("GET", "/healthz", 200),
]


def test_mixed_concurrent_load_no_5xx_and_no_worker_lost(server: Server) -> None:
    total, clients, budget_s = 900, 8, 120.0
    before = worker_pids(server.pid)
    assert len(before) == WORKERS
    counts_before = settled_counts(server.url)  # earlier tests' requests all written
    deadline = time.monotonic() + budget_s
    local = threading.local()

    def send(index: int) -> tuple[Call, int | str]:
        call = MIX[index % len(MIX)]
        if time.monotonic() > deadline:
            return call, "skipped (time budget)"
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        try:
            response = session.request(
                call.method, server.url + call.path, json=call.body, data=call.raw, timeout=30
            )
        except requests.RequestException as error:
            return call, f"{type(error).__name__}: {error}"
        return call, response.status_code

    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(send, range(total)))
    problems = [(c.method, c.path[:60], got) for c, got in results if got != c.expected]
    assert not problems, problems[:10]
    assert worker_pids(server.pid) == before, "a worker died or was replaced under load"
    sent = Counter((c.method, str(c.expected)) for c, _ in results if c.path.startswith("/predict"))
    # each worker writes its queued counts within FLUSH_SECONDS: wait for the other one's
    deadline = time.monotonic() + 10 * FLUSH_SECONDS + 10
    while True:
        counts_after = predict_counts(server.url)
        got = {key: counts_after.get(key, 0) - counts_before.get(key, 0) for key in sent}
        if got == dict(sent) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert got == dict(sent)


def test_sighup_reloads_the_new_model_without_failures(
    tmp_path: Path,
    small_model: TrainedModel,
    small_model_b: TrainedModel,
    serve_model: Callable[..., Served],
) -> None:
    served = serve_model(tmp_path / "home", small_model, "run-a")
    run_b = served.publish(small_model_b, "run-b")
    # new workers, then the old ones stop: lossless with one shared socket (with a socket per
    # worker, an exiting worker resets what waits in its queue; the model switch is SIGUSR1)
    server = start_prod(served, tmp_path / "server.log", {"GUNICORN_REUSE_PORT": "0"})
    try:
        old_workers = worker_pids(server.pid)
        seen: Counter[str] = Counter()
        failures: list[str] = []
        stop = threading.Event()

        def client() -> None:
            session = requests.Session()
            while not stop.is_set():
                try:
                    response = session.get(server.url + NIGHT, timeout=30)
                except requests.RequestException as error:
                    failures.append(f"{type(error).__name__}: {error}")
                    continue
                if response.status_code != 200:
                    failures.append(f"{response.status_code}: {response.text[:200]}")
                else:
                    seen[response.json()["model"]["run_id"]] += 1

        threads = [threading.Thread(target=client) for _ in range(4)]
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        served.set_reference(run_b)
        os.kill(server.pid, signal.SIGHUP)
        new_workers = wait_all_ready(server, expect_run="run-b")
        time.sleep(1.0)  # keep the load on the new workers for a moment
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        assert not failures, failures[:5]
        assert seen["run-a"] > 0 and seen["run-b"] > 0, seen
        assert not new_workers & old_workers, "the old workers should have been replaced"
        assert set(seen) == {"run-a", "run-b"}
        last = requests.get(server.url + NIGHT, timeout=10).json()
        assert last["model"]["run_id"] == "run-b"
        assert last["model"]["sha256"] == run_b.artifacts.model.sha256
    finally:
        server.stop()


def test_a_port_already_listened_on_is_refused_with_a_message(
    tmp_path: Path, small_model: TrainedModel, serve_model: Callable[..., Served]
) -> None:
    """Workers bind their own SO_REUSEPORT sockets: a taken port must stop the master, not be
    shared silently or show only as failing workers."""
    served = serve_model(tmp_path / "home", small_model, "run-a")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "crashed",
                "inference",
                "start-prod",
                "--bind",
                f"127.0.0.1:{port}",
            ],
            env=os.environ | served.env(),
            cwd=served.home,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode != 0
    assert f"127.0.0.1:{port} is already in use" in done.stderr
    assert "Traceback" not in done.stderr
