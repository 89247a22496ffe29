"""Model switch under load: `crashed inference reload` (in-worker verified swap) vs SIGHUP.

A real `crashed inference start-prod` (2 gthread workers × 4 threads) serves a model trained on
the real Jan–Sep 2018 rows; a closed-loop load (``--clients`` threads, each sending its next
``GET /predict`` of a real Oct–Dec crash when the last one answered) runs throughout. Rounds
alternate between the two switch paths, each switching to the other of two models; per round:
failed requests, max and p99 latency of the requests that started in the switch window
(trigger − 0.5 s … all workers on the new model + 1 s), and the time until every worker served
the new model. Results: ``bench/results/switch.json``.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import requests

from _serving import DEFAULT_CSV, load_split, machine, publish, request_params, write_result
from bench_http import Server, free_port
from crashed.core.distributions import analyse
from crashed.core.encoder import Encoder
from crashed.core.training import TrainParams, train
from crashed.serving.reload import file_sha256, reload_server, worker_pids

WORKERS = 2


class Load:
    """Closed-loop clients recording (start, latency, ok) for every request."""

    def __init__(self, url: str, queries: list[dict[str, str]], clients: int) -> None:
        self.url, self.queries = url, queries
        self.samples: list[tuple[float, float, bool]] = []
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self.client, args=(i,), daemon=True) for i in range(clients)
        ]

    def client(self, seed: int) -> None:
        session, rng = requests.Session(), random.Random(seed)
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                ok = (
                    session.get(
                        f"{self.url}/predict", params=rng.choice(self.queries), timeout=30
                    ).status_code
                    == 200
                )
            except requests.RequestException:
                ok = False
            self.samples.append((started, time.monotonic() - started, ok))

    def window(self, start: float, end: float) -> dict[str, Any]:
        inside = [(lat, ok) for t, lat, ok in list(self.samples) if start <= t <= end]
        latencies = np.asarray([lat for lat, _ in inside]) * 1e3
        return {
            "requests": len(inside),
            "failed": sum(not ok for _, ok in inside),
            "max_ms": round(float(latencies.max()), 1) if len(inside) else None,
            "p99_ms": round(float(np.percentile(latencies, 99)), 1) if len(inside) else None,
            "p50_ms": round(float(np.median(latencies)), 1) if len(inside) else None,
        }


def wait_hup(server: Server, url: str, expected: str, timeout: float = 120.0) -> None:
    """After SIGHUP: until every (new) worker answers /readyz with reference ``expected``."""
    deadline = time.monotonic() + timeout
    ready: set[int] = set()
    while time.monotonic() < deadline:
        workers = worker_pids(server.proc.pid)
        try:
            body = requests.get(f"{url}/readyz", headers={"Connection": "close"}, timeout=10)
            data = body.json()
            if data.get("reference_sha256") == expected:
                ready.add(data["pid"])
        except (requests.RequestException, ValueError):
            pass
        if len(workers) == WORKERS and workers <= ready:
            return
        time.sleep(0.05)
    raise SystemExit("SIGHUP: the new workers did not all become ready")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--rounds", type=int, default=3, help="switches per path")
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()

    train_frame, request_frame = load_split(args.csv)
    distributions = analyse(train_frame)
    encoder = Encoder.fit(distributions)
    print(f"training two models on {len(train_frame)} rows …", flush=True)
    models = [
        train(train_frame, encoder, TrainParams(seed=seed)).bundle.to_bytes() for seed in (0, 1)
    ]
    queries = request_params(request_frame, 400)
    work = Path(tempfile.mkdtemp(prefix="crashed-bench-switch-"))
    try:
        texts = []
        for index, model in enumerate(models):
            path = publish(work, model, distributions, f"run-{'ab'[index]}")
            texts.append(path.read_text())
        reference = work / "model-reference.json"
        reference.write_text(texts[0])
        rounds = run(args, work, reference, texts, queries)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary = {
        path: {
            "rounds": len(rs),
            "failed": sum(r["failed"] for r in rs),
            "requests": sum(r["requests"] for r in rs),
            "max_ms": max(r["max_ms"] for r in rs),
            "worst_p99_ms": max(r["p99_ms"] for r in rs),
            "median_switch_s": round(float(np.median([r["switch_s"] for r in rs])), 2),
        }
        for path in ("reload", "sighup")
        if (rs := [r for r in rounds if r["path"] == path])
    }
    result = {
        "machine": machine(),
        "workers": WORKERS,
        "threads": 4,
        "clients": args.clients,
        "summary": summary,
        "rounds": rounds,
    }
    print(f"wrote {write_result('switch', result)}")
    for path, s in summary.items():
        print(
            f"{path:7s} {s['rounds']} switches: {s['failed']} failed of {s['requests']}, "
            f"max {s['max_ms']} ms, worst p99 {s['worst_p99_ms']} ms, "
            f"median switch {s['median_switch_s']} s"
        )


def run(
    args: argparse.Namespace,
    work: Path,
    reference: Path,
    texts: list[str],
    queries: list[dict[str, str]],
) -> list[dict[str, Any]]:
    port = free_port()
    env = {
        "CRASHED_HOME": str(work),
        "CRASHED_PLATFORM": "local",
        "CRASHED_MODEL_REFERENCE": str(reference),
        "WEB_CONCURRENCY": str(WORKERS),
        "GUNICORN_THREADS": "4",
        "CRASHED_PREDICTION_LOG": "0",
    }
    argv = [sys.executable, "-m", "crashed", "inference", "start-prod"]
    server = Server("crashed", [*argv, "--bind", f"127.0.0.1:{port}"], port, env, work / "log")
    url = f"http://127.0.0.1:{port}"
    rounds: list[dict[str, Any]] = []
    try:
        server.wait_ready("/readyz")
        load = Load(url, queries, args.clients)
        for thread in load.threads:
            thread.start()
        time.sleep(2.0)
        current = 0
        for index in range(2 * args.rounds):
            path = ("reload", "sighup")[index % 2]
            current = 1 - current
            reference.write_text(texts[current])
            expected = file_sha256(reference)
            triggered = time.monotonic()
            if path == "reload":
                outcomes = reload_server(server.proc.pid, url, reference, timeout=120)
                if not all(o.switched for o in outcomes):
                    raise SystemExit(f"reload failed: {outcomes}")
            else:
                os.kill(server.proc.pid, signal.SIGHUP)
                wait_hup(server, url, expected)
            switched = time.monotonic()
            time.sleep(1.0)
            stats = load.window(triggered - 0.5, switched + 1.0)
            rounds.append({"path": path, "switch_s": round(switched - triggered, 2)} | stats)
            print(rounds[-1], flush=True)
            time.sleep(1.0)
        load.stop.set()
        for thread in load.threads:
            thread.join(timeout=60)
    finally:
        server.stop()
    return rounds


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
