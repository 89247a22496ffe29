"""HTTP ``/predict`` under gunicorn vs a trivial Flask JSON endpoint under the same settings.

Starts ``crashed inference start-prod`` on 127.0.0.1 (a model trained here on Jan–Sep 2018,
published into a temporary local lake), the same with ``CRASHED_SERVING_FAST_PATH=0`` (every
request through Flask, for comparison), and ``bench/trivial_app.py`` with the identical
gunicorn command (same config module: workers, threads, timeouts, JSON access log), then
drives them in alternating rounds with the same bounded closed-loop load: ``wrk`` (if
installed) or a threaded Python client, N connections, fixed duration, loopback only.
Requests are real Oct–Dec 2018 crashes as query strings. Reports requests/s, p50/p99 latency
and the throughput ratio.

    python bench/bench_http.py [--csv PATH] [--duration 10] [--connections 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

from _serving import (
    DEFAULT_CSV,
    ROOT,
    load_split,
    machine,
    publish,
    request_params,
    train_ours,
    write_result,
)
from crashed.cli.inference import gunicorn_argv
from crashed.core.encoder import FeatureError
from crashed.core.model_bundle import ModelBundle
from crashed.serving.predictor import Predictor

WRK_SCRIPT = """
local paths = {%s}
local i = 0
request = function()
  i = i %% #paths + 1
  return wrk.format("GET", paths[i])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\\nRESULT {"requests":%%d,"duration_us":%%d,"connect":%%d,"read":%%d,"write":%%d,' ..
    '"status":%%d,"timeout":%%d,"p50_us":%%d,"p90_us":%%d,"p99_us":%%d,"max_us":%%d}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """A server subprocess in its own session, stopped by PID (SIGTERM, then SIGKILL)."""

    def __init__(self, name: str, argv: list[str], port: int, env: dict[str, str], log: Path):
        self.name, self.port, self.log = name, port, log
        self.proc = subprocess.Popen(
            argv,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
            start_new_session=True,
        )

    def wait_ready(self, path: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        streak = 0
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.name} exited early:\n{self.log.read_text()[-2000:]}")
            status = _status(self.port, path)
            streak = streak + 1 if status == 200 else 0
            if streak >= 20:  # every worker answers, not just the first one up
                return
            time.sleep(0.05)
        raise SystemExit(f"{self.name} not ready in {timeout}s:\n{self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)


def _status(port: int, path: str) -> int | None:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", path)
        status = conn.getresponse().status
        conn.close()
        return status
    except OSError:
        return None


def run_wrk(
    port: int, paths: list[str], duration: float, connections: int, work: Path
) -> dict[str, Any]:
    script = work / "requests.lua"
    script.write_text(WRK_SCRIPT % ",".join(json.dumps(p) for p in paths))
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{duration:g}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}",
        ],
        capture_output=True,
        text=True,
        timeout=duration + 60,
        check=True,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    raw = json.loads(line[len("RESULT ") :])
    seconds = raw["duration_us"] / 1e6
    errors = raw["connect"] + raw["read"] + raw["write"] + raw["timeout"]
    return {
        "requests": raw["requests"],
        "seconds": round(seconds, 2),
        "rps": round(raw["requests"] / seconds, 1),
        "p50_ms": raw["p50_us"] / 1000,
        "p90_ms": raw["p90_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
        "non_2xx": raw["status"],
        "socket_errors": errors,
    }


def run_python(
    port: int, paths: list[str], duration: float, connections: int, max_requests: int = 200_000
) -> dict[str, Any]:
    """Closed loop: ``connections`` threads with a keep-alive connection each, bounded by
    ``duration`` and ``max_requests``."""
    latencies: list[float] = []
    counters = {"non_2xx": 0, "socket_errors": 0}
    lock = threading.Lock()
    deadline = time.monotonic() + duration
    budget = iter(range(max_requests))

    def worker(offset: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        mine: list[float] = []
        index = offset
        while time.monotonic() < deadline and next(budget, None) is not None:
            path = paths[index % len(paths)]
            index += 1
            started = time.perf_counter()
            try:
                conn.request("GET", path)
                response = conn.getresponse()
                response.read()
                if response.status >= 300:
                    with lock:
                        counters["non_2xx"] += 1
            except (OSError, http.client.HTTPException):
                with lock:
                    counters["socket_errors"] += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                continue
            mine.append(time.perf_counter() - started)
        conn.close()
        with lock:
            latencies.extend(mine)

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i * 97,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    ordered = sorted(latencies)

    def pct(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0

    return {
        "requests": len(ordered),
        "seconds": round(seconds, 2),
        "rps": round(len(ordered) / seconds, 1),
        "p50_ms": round(pct(0.5), 3),
        "p90_ms": round(pct(0.9), 3),
        "p99_ms": round(pct(0.99), 3),
        "max_ms": round(ordered[-1] * 1000, 3) if ordered else 0.0,
        **counters,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per run")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs per server")
    parser.add_argument("--client", choices=["auto", "wrk", "python"], default="auto")
    args = parser.parse_args()
    client = args.client
    if client == "auto":
        client = "wrk" if shutil.which("wrk") else "python"

    train_frame, request_frame = load_split(args.csv)
    print(f"training on {len(train_frame)} rows …", flush=True)
    result = train_ours(train_frame)
    model = result.bundle.to_bytes()
    predictor = Predictor(ModelBundle.from_bytes(model, nthread=1))
    paths = []
    for params in request_params(request_frame, 600):
        try:
            predictor.predict_one(params)
        except FeatureError:
            continue
        paths.append("/predict?" + urllib.parse.urlencode(params))
    paths = paths[:400]

    work = Path(tempfile.mkdtemp(prefix="crashed-bench-http-"))
    try:
        run(args, client, model, paths, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace, client: str, model: bytes, paths: list[str], work: Path) -> None:
    """Start both servers, drive them in alternating rounds, report and write the result."""
    home = work / "home"
    reference = publish(home, model, {"bench": True}, "bench-run")
    env = {
        "CRASHED_HOME": str(home),
        "CRASHED_PLATFORM": "local",
        "CRASHED_MODEL_REFERENCE": str(reference),
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(ROOT / "bench"), os.environ.get("PYTHONPATH")])
        ),
    }
    ours_port, flask_port, trivial_port = free_port(), free_port(), free_port()

    def crashed(port: int) -> list[str]:
        bind = f"127.0.0.1:{port}"
        return [sys.executable, "-m", "crashed", "inference", "start-prod", "--bind", bind]

    servers = {
        "crashed": Server("crashed", crashed(ours_port), ours_port, env, work / "crashed.log"),
        "crashed_flask_only": Server(
            "crashed_flask_only",
            crashed(flask_port),
            flask_port,
            env | {"CRASHED_SERVING_FAST_PATH": "0"},
            work / "crashed-flask.log",
        ),
        "trivial": Server(
            "trivial",
            gunicorn_argv(f"127.0.0.1:{trivial_port}", app="trivial_app:create_app()"),
            trivial_port,
            env,
            work / "trivial.log",
        ),
    }

    def drive(port: int, seconds: float) -> dict[str, Any]:
        if client == "wrk":
            return run_wrk(port, paths, seconds, args.connections, work)
        return run_python(port, paths, seconds, args.connections)

    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in servers}
    try:
        for server in servers.values():
            server.wait_ready("/readyz")
        for server in servers.values():
            drive(server.port, 2.0)  # warm-up
        for round_no in range(args.rounds):
            for name, server in servers.items():
                stats = drive(server.port, args.duration)
                runs[name].append(stats)
                print(
                    f"  round {round_no + 1} {name:<18} {stats['rps']:>8.1f} req/s  "
                    f"p50 {stats['p50_ms']:.2f} ms  p99 {stats['p99_ms']:.2f} ms  "
                    f"non-2xx {stats['non_2xx']}  errors {stats['socket_errors']}",
                    flush=True,
                )
    finally:
        for server in servers.values():
            server.stop()

    summary = {
        name: {
            "rps": round(statistics.median(r["rps"] for r in rs), 1),
            "p50_ms": round(statistics.median(r["p50_ms"] for r in rs), 3),
            "p99_ms": round(statistics.median(r["p99_ms"] for r in rs), 3),
            "requests": sum(r["requests"] for r in rs),
            "non_2xx": sum(r["non_2xx"] for r in rs),
            "socket_errors": sum(r["socket_errors"] for r in rs),
        }
        for name, rs in runs.items()
    }
    ratio = summary["crashed"]["rps"] / summary["trivial"]["rps"]
    flask_ratio = summary["crashed_flask_only"]["rps"] / summary["trivial"]["rps"]
    print(
        f"\n{'server':<18} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'requests':>9} {'non-2xx':>8}"
    )
    for name, row in summary.items():
        print(
            f"{name:<18} {row['rps']:>9.1f} {row['p50_ms']:>8.2f} {row['p99_ms']:>8.2f} "
            f"{row['requests']:>9} {row['non_2xx']:>8}"
        )
    print(
        f"\n/predict throughput = {ratio:.0%} of the trivial endpoint (target >= 70%); "
        f"without the WSGI fast path (every request through Flask): {flask_ratio:.0%}"
    )
    path = write_result(
        "http",
        {
            "benchmark": "HTTP /predict under gunicorn vs trivial Flask JSON endpoint",
            "machine": machine(),
            "client": client,
            "connections": args.connections,
            "duration_s": args.duration,
            "rounds": args.rounds,
            "gunicorn": {
                "workers": os.environ.get("WEB_CONCURRENCY", "cpu count"),
                "worker_class": "gthread",
                "threads": os.environ.get("GUNICORN_THREADS", "4"),
            },
            "distinct_requests": len(paths),
            "summary": summary,
            "runs": runs,
            "throughput_ratio": round(ratio, 3),
            "throughput_ratio_flask_only": round(flask_ratio, 3),
            "target": ">= 0.70",
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
