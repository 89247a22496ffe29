"""HTTP ``/predict`` under gunicorn vs a trivial Flask endpoint, and vs MLServer, in one run.

Starts ``crashed inference start-prod`` on 127.0.0.1 (a model trained here on Jan–Sep 2018,
published into a temporary local lake), the same app with ``/predict`` as an ordinary Flask
view (the README's measured reason for the WSGI endpoint), and ``bench/trivial_app.py`` with
the identical gunicorn command (same config module: workers, threads, timeouts, JSON access
log), plus MLServer with its XGBoost runtime serving the same booster with the same worker
count (``bench_mlserver.py``; skipped with the reason if it cannot be installed). After a
warm-up the servers are driven in alternating rounds with the same bounded closed-loop load:
``wrk`` (if installed) or a threaded Python client, N connections, fixed duration, loopback.
Single rows are real Oct–Dec 2018 crashes (query strings for us, the same rows encoded as V2
tensors for MLServer); then 1,000-row batches (``POST /predict`` vs V2 infer) in rows/s.

    python bench/bench_http.py [--csv PATH] [--duration 1] [--connections 8] [--rounds 24]
                               [--log-case]

``crashed`` serves with the prediction log on (the default), ``crashed_log_off`` is the same
server with ``CRASHED_PREDICTION_LOG=0``: the log's cost is 1 - their per-round ratio (target
<= 5 %). ``--log-case`` runs only those two and the trivial endpoint (results/http_log.json).

Short runs in many alternating rounds, because the machine is shared: each round's ratio
compares servers measured seconds apart, and the headline is the median of those ratios with
a distribution-free 95 % interval (order statistics). The servers' own CPU time per request
(from /proc) is reported too; on a shared VM it moves with the host's load as well, only less.
For a load-independent count of the app's own work see ``bench_instructions.py``.
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

import numpy as np

import bench_mlserver
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

Call = tuple[str, str, str | None]
"""(method, path, body) of one request."""

WRK_SCRIPT = """
local calls = {%s}
local i = 0
request = function()
  i = i %% #calls + 1
  local c = calls[i]
  if c[3] then
    return wrk.format(c[1], c[2], {["Content-Type"] = "application/json"}, c[3])
  end
  return wrk.format(c[1], c[2])
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


def _lua(value: str | None) -> str:
    return "nil" if value is None else json.dumps(value)


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


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` and its children (the server's workers), from /proc:
    what the server itself spent, whatever else the machine was doing meanwhile."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry.name) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


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
    port: int, calls: list[Call], duration: float, connections: int, work: Path
) -> dict[str, Any]:
    script = work / "requests.lua"
    entries = ",".join(f"{{{_lua(m)},{_lua(p)},{_lua(b)}}}" for m, p, b in calls)
    script.write_text(WRK_SCRIPT % entries)
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
    port: int, calls: list[Call], duration: float, connections: int, max_requests: int = 200_000
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
            method, path, body = calls[index % len(calls)]
            index += 1
            started = time.perf_counter()
            try:
                headers = {"Content-Type": "application/json"} if body else {}
                conn.request(method, path, body=body, headers=headers)
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
    parser.add_argument("--duration", type=float, default=1.0, help="seconds per run")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=24, help="alternating runs per server")
    parser.add_argument("--client", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--no-mlserver", action="store_true", help="skip the MLServer peer")
    parser.add_argument(
        "--log-case",
        action="store_true",
        help="only the prediction log's cost: /predict with the log on vs off (and the trivial "
        "endpoint), written to results/http_log.json",
    )
    args = parser.parse_args()
    client = args.client
    if client == "auto":
        client = "wrk" if shutil.which("wrk") else "python"

    train_frame, request_frame = load_split(args.csv)
    print(f"training on {len(train_frame)} rows …", flush=True)
    result = train_ours(train_frame)
    model = result.bundle.to_bytes()
    predictor = Predictor(ModelBundle.from_bytes(model, nthread=1))
    requests: list[tuple[dict[str, str], list[float]]] = []
    used = bench_mlserver.split_columns(predictor.booster)
    for params in request_params(request_frame, 1200):
        try:
            predictor.predict_one(params)
        except FeatureError:
            continue
        row = predictor.encoder.encode_one(predictor.encoder.resolve(params))
        sendable = bench_mlserver.sendable(row.tolist(), used)
        if sendable is not None:  # the same rows for every server, MLServer included
            requests.append((params, sendable))
    requests = requests[:400]
    print(f"{len(requests)} distinct requests", flush=True)

    work = Path(tempfile.mkdtemp(prefix="crashed-bench-http-"))
    try:
        run(args, client, model, predictor, requests, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(
    args: argparse.Namespace,
    client: str,
    model: bytes,
    predictor: Predictor,
    requests: list[tuple[dict[str, str], list[float]]],
    work: Path,
) -> None:
    """Start the servers, drive them in alternating rounds, report and write the result."""
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
    workers = int(os.environ.get("WEB_CONCURRENCY") or len(os.sched_getaffinity(0)))
    env["WEB_CONCURRENCY"] = str(workers)
    names = ("crashed", "crashed_log_off", "flask_view", "trivial", "mlserver")
    ports = {name: free_port() for name in names}
    start_prod = [sys.executable, "-m", "crashed", "inference", "start-prod", "--bind"]

    # its own home (start-prod keeps a pid file there), reading the same lake
    home_off = work / "home_off"
    home_off.mkdir()
    (home_off / "lake").symlink_to(home / "lake", target_is_directory=True)

    def gunicorn(name: str, app: str) -> Server:
        argv = gunicorn_argv(f"127.0.0.1:{ports[name]}", app=app)
        return Server(name, argv, ports[name], env, work / f"{name}.log")

    servers = {
        "crashed": Server(
            "crashed",
            [*start_prod, f"127.0.0.1:{ports['crashed']}"],
            ports["crashed"],
            env,
            work / "crashed.log",
        ),
        # the same server with the prediction log off: the log's cost (target <= 5 %)
        "crashed_log_off": Server(
            "crashed_log_off",
            [*start_prod, f"127.0.0.1:{ports['crashed_log_off']}"],
            ports["crashed_log_off"],
            env | {"CRASHED_PREDICTION_LOG": "0", "CRASHED_HOME": str(home_off)},
            work / "crashed_log_off.log",
        ),
        "trivial": gunicorn("trivial", "trivial_app:create_app()"),
    }
    if not args.log_case:  # only started when measured: a server never measured is never stopped
        servers["crashed_flask_view"] = gunicorn("flask_view", "_serving:flask_view_app()")
    single: dict[str, list[Call]] = {
        name: [("GET", "/predict?" + urllib.parse.urlencode(p), None) for p, _ in requests]
        for name in servers
    }
    ready_paths = dict.fromkeys(servers, "/readyz")
    mlserver_note = "skipped (--no-mlserver)"
    rows = [row for _, row in requests]
    if not args.no_mlserver and not args.log_case:
        executable, mlserver_note = bench_mlserver.ensure_venv()
        print(f"MLServer: {mlserver_note}", flush=True)
        if executable is not None:
            folder = bench_mlserver.prepare(
                work, predictor.booster, ports["mlserver"], free_port(), workers
            )
            servers["mlserver"] = Server(
                "mlserver",
                bench_mlserver.command(executable, folder),
                ports["mlserver"],
                bench_mlserver.environment(),
                work / "mlserver.log",
            )
            path = bench_mlserver.INFER_PATH
            single["mlserver"] = [("POST", path, bench_mlserver.infer_body([r])) for r in rows]
            ready_paths["mlserver"] = f"/v2/models/{bench_mlserver.MODEL}/ready"

    def drive(name: str, calls: list[Call], seconds: float, connections: int) -> dict[str, Any]:
        server = servers[name]
        cpu = cpu_seconds(server.proc.pid)
        if client == "wrk":
            stats = run_wrk(server.port, calls, seconds, connections, work)
        else:
            stats = run_python(server.port, calls, seconds, connections)
        used = cpu_seconds(server.proc.pid) - cpu
        stats["server_cpu_us_per_request"] = round(used / max(stats["requests"], 1) * 1e6, 1)
        return stats

    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in servers}
    batch_runs: dict[str, list[dict[str, Any]]] = {}
    agreement = None
    try:
        for name, server in servers.items():
            server.wait_ready(ready_paths[name], timeout=180.0)
        if "mlserver" in servers:
            agreement = check_agreement(servers, predictor, requests)
            print(f"MLServer vs /predict: max |Δp| = {agreement:.2e} on 20 rows", flush=True)
        for name in servers:
            drive(name, single[name], 2.0, args.connections)  # warm-up
        for round_no in range(args.rounds):
            order = list(servers) if round_no % 2 == 0 else list(reversed(servers))
            for name in order:
                stats = drive(name, single[name], args.duration, args.connections)
                runs[name].append(stats)
                print(
                    f"  round {round_no + 1} {name:<18} {stats['rps']:>8.1f} req/s  "
                    f"p50 {stats['p50_ms']:.2f} ms  p99 {stats['p99_ms']:.2f} ms  "
                    f"server CPU {stats['server_cpu_us_per_request']:.0f} µs/request  "
                    f"non-2xx {stats['non_2xx']}  errors {stats['socket_errors']}",
                    flush=True,
                )
        if not args.log_case:
            batch_runs = drive_batches(servers, requests, args, work)
        logged = count_logged(home)
    finally:
        for server in servers.values():
            server.stop()
    if args.log_case:
        report_log(
            args, client, workers, requests, runs, logged, hook_cost(home, reference, requests)
        )
    else:
        report(args, client, workers, requests, runs, batch_runs, mlserver_note, agreement)


def hook_cost(
    home: Path, reference: Path, requests: list[tuple[dict[str, str], list[float]]]
) -> dict[str, Any]:
    """In process, machine-load independent: µs per prediction on the request path (one
    ``record``) and in the flusher (columns + Parquet + lake write), next to ``predict_one``."""
    import io

    import pyarrow.parquet as pq

    from crashed.adapters.local_lake import LocalLake
    from crashed.serving.model_state import ModelState
    from crashed.serving.prediction_log import PredictionLog, to_table
    from crashed.settings import Settings

    values = {"crashed_home": home, "crashed_model_reference": reference}
    settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]
    lake = LocalLake(home / "lake")
    state = ModelState.from_settings(settings, lake)
    state.load()
    model = state.model
    assert model is not None
    n = 20_000
    queries = [params for params, _ in requests]
    results = [model.predictor.predict_one(queries[i % len(queries)]) for i in range(n)]
    started = time.perf_counter()
    for i in range(n):
        model.predictor.predict_one(queries[i % len(queries)])
    predict_us = (time.perf_counter() - started) / n * 1e6
    log = PredictionLog(lake, settings.lake_uri("bench"), queue_size=n, start=False)
    started = time.perf_counter()
    for result in results:
        log.record((time.time(), model, "T1", "get", result.values, result.probability, 0, 9.0))
    record_us = (time.perf_counter() - started) / n * 1e6
    records = list(log._queue)
    started = time.perf_counter()
    files = []
    rows = settings.prediction_log_flush_rows
    for start in range(0, n, rows):  # flushes of the default size, as the worker's thread
        sink = io.BytesIO()
        pq.write_table(to_table(records[start : start + rows]), sink, compression="zstd")
        files.append(sink.getvalue())
    build_us = (time.perf_counter() - started) / n * 1e6
    started = time.perf_counter()
    prefix = settings.lake_uri("bench", "predictions")
    for number, data in enumerate(files):
        lake.put_bytes(f"{prefix}/{number:04d}.parquet", data)
    write_us = (time.perf_counter() - started) / n * 1e6
    return {
        "predict_one_us": round(predict_us, 2),
        "record_us_per_prediction": round(record_us, 3),
        "flush_build_us_per_prediction": round(build_us, 2),
        "flush_lake_write_us_per_prediction": round(write_us, 2),
        "rows": n,
        "note": "build = columns + Parquet (CPU, under the GIL); lake write = the local lake's "
        "atomic write + checksum read-back (I/O, mostly outside the GIL)",
    }


def count_logged(home: Path) -> int:
    """Parquet files the log-on server has written so far (proof the log was on)."""
    return sum(1 for _ in (home / "lake").rglob("predictions/**/*.parquet"))


def log_cost(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """The prediction log's cost: 1 - (log on / log off) per round, median; CPU per request."""
    on, off = runs["crashed"], runs["crashed_log_off"]
    ratios = [a["rps"] / b["rps"] for a, b in zip(on, off, strict=True)]
    cpu_on = statistics.median(r["server_cpu_us_per_request"] for r in on)
    cpu_off = statistics.median(r["server_cpu_us_per_request"] for r in off)
    return {
        "throughput_cost": round(1 - statistics.median(ratios), 3),
        "throughput_ratio_on_over_off_per_round": [round(r, 3) for r in ratios],
        "server_cpu_us_per_request_on": round(cpu_on, 1),
        "server_cpu_us_per_request_off": round(cpu_off, 1),
        "target": "<= 0.05",
    }


def report_log(
    args: argparse.Namespace,
    client: str,
    workers: int,
    requests: list[Any],
    runs: dict[str, list[dict[str, Any]]],
    files: int,
    in_process: dict[str, Any],
) -> None:
    summary = {name: summarise(rs) for name, rs in runs.items()}
    cost = log_cost(runs) | {"in_process": in_process}
    for name, row in summary.items():
        print(
            f"{name:<20} {row['rps']:>9.1f} req/s  p50 {row['p50_ms']:.2f}  p99 {row['p99_ms']:.2f}"
        )
    print(
        f"\nprediction log cost = {cost['throughput_cost']:.1%} of /predict throughput "
        f"(median of per-round on/off ratios; target <= 5%); server CPU per request "
        f"{cost['server_cpu_us_per_request_on']:.0f} µs on vs "
        f"{cost['server_cpu_us_per_request_off']:.0f} µs off; {files} log files written"
    )
    path = write_result(
        "http_log",
        {
            "benchmark": "HTTP GET /predict with the prediction log on vs off (same gunicorn)",
            **run_setup(args, client, workers),
            "distinct_requests": len(requests),
            "log_files_written": files,
            "summary": summary,
            "runs": runs,
            "prediction_log": cost,
            "throughput_ratio_vs_trivial": round(paired_ratio(runs["crashed"], runs["trivial"]), 3),
        },
    )
    print(
        f"in process: predict_one {in_process['predict_one_us']:.1f} µs; the log adds "
        f"{in_process['record_us_per_prediction']:.2f} µs on the request path; the flusher "
        f"{in_process['flush_build_us_per_prediction']:.1f} µs to build and "
        f"{in_process['flush_lake_write_us_per_prediction']:.1f} µs to write per prediction"
    )
    print(f"wrote {path}")


def batch_calls(name: str, requests: list[tuple[dict[str, str], list[float]]]) -> list[Call]:
    """Two different 1,000-row batches (rows cycled from the real requests)."""
    calls: list[Call] = []
    for shift in (0, 7):
        chosen = [requests[(i * 13 + shift) % len(requests)] for i in range(1000)]
        if name == "mlserver":
            body = bench_mlserver.infer_body([row for _, row in chosen])
            calls.append(("POST", bench_mlserver.INFER_PATH, body))
        else:
            body = json.dumps({"instances": [params for params, _ in chosen]})
            calls.append(("POST", "/predict", body))
    return calls


def drive_batches(
    servers: dict[str, Server],
    requests: list[tuple[dict[str, str], list[float]]],
    args: argparse.Namespace,
    work: Path,
) -> dict[str, list[dict[str, Any]]]:
    """1,000-row batches, ours vs MLServer, alternating rounds, 2 connections (Python client)."""
    names = [n for n in ("crashed", "mlserver") if n in servers]
    calls = {name: batch_calls(name, requests) for name in names}
    out: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for name in names:
        run_python(servers[name].port, calls[name], 2.0, 2)  # warm-up
    for round_no in range(min(args.rounds, 4)):
        for name in names:
            stats = run_python(servers[name].port, calls[name], max(args.duration, 3.0), 2)
            stats["rows_per_s"] = round(stats["rps"] * 1000, 0)
            out[name].append(stats)
            print(
                f"  batch round {round_no + 1} {name:<10} {stats['rows_per_s']:>10,.0f} rows/s "
                f"p99 {stats['p99_ms']:.1f} ms  non-2xx {stats['non_2xx']}",
                flush=True,
            )
    return out


def check_agreement(
    servers: dict[str, Server],
    predictor: Predictor,
    requests: list[tuple[dict[str, str], list[float]]],
) -> float:
    """Max |Δp| between MLServer's and our answers on the same rows (same booster)."""
    chosen = requests[:20]
    conn = http.client.HTTPConnection("127.0.0.1", servers["mlserver"].port, timeout=30)
    body = bench_mlserver.infer_body([row for _, row in chosen])
    conn.request("POST", bench_mlserver.INFER_PATH, body, {"Content-Type": "application/json"})
    response = conn.getresponse()
    answer = json.loads(response.read())
    conn.close()
    if response.status != 200:
        raise SystemExit(f"MLServer answered {response.status}: {answer}")
    theirs = np.array(bench_mlserver.probabilities(answer))
    ours = np.array([predictor.predict_one(params).probability for params, _ in chosen])
    return float(np.max(np.abs(theirs - ours)))


def run_setup(args: argparse.Namespace, client: str, workers: int) -> dict[str, Any]:
    """How a run was made (machine, client, load shape, gunicorn), for every result file."""
    return {
        "machine": machine(),
        "client": client,
        "connections": args.connections,
        "duration_s": args.duration,
        "rounds": args.rounds,
        "gunicorn": {
            "workers": workers,
            "worker_class": "gthread",
            "threads": os.environ.get("GUNICORN_THREADS", "4"),
        },
    }


def paired_ratio(ours: list[dict[str, Any]], base: list[dict[str, Any]]) -> float:
    return statistics.median(round_ratios(ours, base))


def round_ratios(ours: list[dict[str, Any]], base: list[dict[str, Any]]) -> list[float]:
    return [a["rps"] / b["rps"] for a, b in zip(ours, base, strict=True)]


def median_interval(values: list[float], level: float = 0.95) -> tuple[float, float]:
    """A distribution-free interval for the median: order statistics k and n+1-k, with the
    largest k whose binomial(n, 1/2) tail leaves at least ``level`` covered."""
    from scipy.stats import binom

    ordered = sorted(values)
    n = len(ordered)
    k = 0
    while k + 1 <= n // 2 and 2 * binom.cdf(k, n, 0.5) <= 1 - level:
        k += 1
    if k == 0:  # too few rounds for any interval at this level
        return ordered[0], ordered[-1]
    return ordered[k - 1], ordered[n - k]


def summarise(rs: list[dict[str, Any]]) -> dict[str, Any]:
    cpu = [r["server_cpu_us_per_request"] for r in rs if "server_cpu_us_per_request" in r]
    return {
        "rps": round(statistics.median(r["rps"] for r in rs), 1),
        "server_cpu_us_per_request": round(statistics.median(cpu), 1) if cpu else None,
        "p50_ms": round(statistics.median(r["p50_ms"] for r in rs), 3),
        "p99_ms": round(statistics.median(r["p99_ms"] for r in rs), 3),
        "requests": sum(r["requests"] for r in rs),
        "non_2xx": sum(r["non_2xx"] for r in rs),
        "socket_errors": sum(r["socket_errors"] for r in rs),
    }


def report(
    args: argparse.Namespace,
    client: str,
    workers: int,
    requests: list[Any],
    runs: dict[str, list[dict[str, Any]]],
    batch_runs: dict[str, list[dict[str, Any]]],
    mlserver_note: str,
    agreement: float | None,
) -> None:
    summary = {name: summarise(rs) for name, rs in runs.items()}
    batch = {
        name: summarise(rs) | {"rows_per_s": round(statistics.median(r["rows_per_s"] for r in rs))}
        for name, rs in batch_runs.items()
    }
    # Each round runs the servers back to back, so a round's ratio compares like with like on a
    # machine whose load drifts; the headline is the median of the per-round ratios.
    ratio = paired_ratio(runs["crashed"], runs["trivial"])
    low, high = median_interval(round_ratios(runs["crashed"], runs["trivial"]))
    view_ratio = paired_ratio(runs["crashed_flask_view"], runs["trivial"])
    cpu = {name: row["server_cpu_us_per_request"] for name, row in summary.items()}
    cpu_ratio = cpu["trivial"] / cpu["crashed"]
    print(
        f"\n{'server':<20} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'requests':>9} {'non-2xx':>8}"
    )
    for name, row in summary.items():
        print(
            f"{name:<20} {row['rps']:>9.1f} {row['p50_ms']:>8.2f} {row['p99_ms']:>8.2f} "
            f"{row['requests']:>9} {row['non_2xx']:>8}"
        )
    for name, row in batch.items():
        print(f"batch {name:<14} {row['rows_per_s']:>9,} rows/s  p99 {row['p99_ms']:.1f} ms")
    print(
        f"\n/predict throughput = {ratio:.0%} [{low:.0%}, {high:.0%}] of the trivial endpoint "
        f"(median of {args.rounds} per-round ratios, 95% interval; target >= 90%); as a "
        f"Flask view: {view_ratio:.0%}\n"
        f"server CPU per request: crashed {cpu['crashed']:.0f} µs, Flask view "
        f"{cpu['crashed_flask_view']:.0f} µs, trivial {cpu['trivial']:.0f} µs "
        f"(trivial/crashed = {cpu_ratio:.0%})"
    )
    path = write_result(
        "http",
        {
            "benchmark": "HTTP /predict under gunicorn vs trivial Flask endpoint and MLServer",
            **run_setup(args, client, workers),
            "mlserver": {"note": mlserver_note, "parallel_workers": workers},
            "mlserver_max_abs_probability_difference": agreement,
            "distinct_requests": len(requests),
            "summary": summary,
            "batch_1000_rows": batch,
            "runs": runs,
            "batch_runs": batch_runs,
            "throughput_ratio": round(ratio, 3),
            "throughput_ratio_interval_95": [round(low, 3), round(high, 3)],
            "throughput_ratio_per_round": [
                round(a["rps"] / b["rps"], 3)
                for a, b in zip(runs["crashed"], runs["trivial"], strict=True)
            ],
            "throughput_ratio_flask_view": round(view_ratio, 3),
            "server_cpu_ratio_trivial_over_crashed": round(cpu_ratio, 3),
            "prediction_log": log_cost(runs),
            "target": ">= 0.90",
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
