"""Instructions per ``GET /predict`` (callgrind), beside the trivial Flask endpoint.

Requests per second on a shared 2-core machine move by tens of percent from one minute to the
next; instruction counts do not (callgrind counts, it does not time). Each case runs the WSGI
app in process under ``valgrind --tool=callgrind`` with instrumentation off during start-up and
warm-up, then on for N requests (real Oct–Dec 2018 crashes as query strings), then off:

- ``trivial``: ``bench/trivial_app.py`` (the HTTP benchmark's baseline);
- ``crashed``: ``crashed.cli.inference:serving_app()`` with the prediction log on (its flusher
  writes inline at the end of the measured requests, so its per-row cost is counted);
- ``crashed_log_off``: the same with ``CRASHED_PREDICTION_LOG=0``;
- ``crashed_xgboost``: the log on, single rows scored by XGBoost's own call instead of the
  compiled forest (``CRASHED_SERVING_FOREST=0``).

For the crashed cases it also reports what XGBoost's ``XGBoosterPredictFromDense`` costs (the
request's one ctypes call, counted at ``ffi_call``; zero when the compiled forest serves), and
the part of it that is ``MakeDeviceOrd`` (XGBoost >= 2.0 compiles ``std::regex`` objects to parse
``device="cpu"`` on every in-place prediction; fixed upstream in dmlc/xgboost#12306, not in a
release as of 3.2.0). gunicorn's own work per request (HTTP parsing, access log, sockets) is not
in these counts: it is the same for every case.

    python bench/bench_instructions.py [--csv PATH] [--requests 2000]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

CASES = ("trivial", "crashed", "crashed_log_off", "crashed_xgboost")
ENV = {
    "crashed_log_off": {"CRASHED_PREDICTION_LOG": "0"},
    "crashed_xgboost": {"CRASHED_SERVING_FOREST": "0"},
}
XGBOOST_SYMBOLS = {
    "xgboost_call": "ffi_call",  # the request's one ctypes call: XGBoosterPredictFromDense
    "xgboost_device_string_regex": "MakeDeviceOrd",
}


def harness(case: str, requests: int, queries_file: str, signals: str) -> None:
    """In the valgrind'ed child: build the app, warm up, then run ``requests`` on 'go'."""
    queries = json.loads(Path(queries_file).read_text())
    folder = Path(signals)
    if case == "trivial":
        import trivial_app

        app: Any = trivial_app.create_app()
        log = None
    else:
        from crashed.cli.inference import serving_app

        app = serving_app()
        log = app.wsgi_app.log
        if log is not None:  # no background thread: flushed inline, inside the measurement
            log._stop.set()
            log._wake.set()

    def call(index: int) -> None:
        environ = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": "/predict",
            "QUERY_STRING": queries[index % len(queries)],
            "SERVER_NAME": "bench",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(b""),
            "wsgi.errors": sys.stderr,
        }
        b"".join(app(environ, lambda status, headers, exc_info=None: None))

    for index in range(300):
        call(index)
    if log is not None:
        log.flush()
    (folder / "ready").touch()
    while not (folder / "go").exists():
        time.sleep(0.05)
    for index in range(requests):
        call(index)
    if log is not None:
        log.flush()
    (folder / "done").touch()
    while not (folder / "exit").exists():
        time.sleep(0.05)


def measure(case: str, requests: int, queries: Path, env: dict[str, str], work: Path) -> dict:
    """Run one case under callgrind; instructions in total and per request."""
    signals = work / f"signals-{case}"
    signals.mkdir()
    out = work / f"callgrind-{case}.out"
    argv = [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        f"--callgrind-out-file={out}",
        sys.executable,
        __file__,
        "--harness",
        case,
        str(requests),
        str(queries),
        str(signals),
    ]
    with (work / f"{case}.log").open("wb") as log:
        child = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait(signals / "ready", child, work / f"{case}.log")
            subprocess.run(
                ["callgrind_control", "-i", "on", str(child.pid)], check=True, capture_output=True
            )
            (signals / "go").touch()
            _wait(signals / "done", child, work / f"{case}.log")
            subprocess.run(
                ["callgrind_control", "-i", "off", str(child.pid)], check=True, capture_output=True
            )
            (signals / "exit").touch()
            child.wait(timeout=600)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    total = int(re.search(r"^totals:\s+(\d+)", out.read_text(), re.M).group(1))  # type: ignore[union-attr]
    result: dict[str, Any] = {"instructions": total, "per_request": round(total / requests)}
    if case != "trivial":
        annotated = subprocess.run(
            ["callgrind_annotate", "--inclusive=yes", str(out)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for key, symbol in XGBOOST_SYMBOLS.items():
            result[f"{key}_per_request"] = round(_inclusive(annotated, symbol) / requests)
    return result


def _inclusive(annotated: str, symbol: str) -> int:
    """The largest inclusive count of a function whose name contains ``symbol``."""
    counts = [
        int(line.split()[0].replace(",", ""))
        for line in annotated.splitlines()
        if symbol in line and re.match(r"^\s*[\d,]+ ", line)
    ]
    return max(counts, default=0)


def _wait(path: Path, child: subprocess.Popen, log: Path, timeout: float = 1800.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if child.poll() is not None:
            raise SystemExit(f"callgrind child exited early:\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            raise SystemExit(f"callgrind child: no {path.name} in {timeout:.0f}s")
        time.sleep(0.2)


def main() -> None:
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

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    for tool in ("valgrind", "callgrind_control", "callgrind_annotate"):
        if shutil.which(tool) is None:
            raise SystemExit(f"error: {tool} not found (Debian package valgrind)")
    train_frame, request_frame = load_split(args.csv)
    model = train_ours(train_frame).bundle.to_bytes()
    work = Path(tempfile.mkdtemp(prefix="crashed-bench-instructions-"))
    try:
        home = work / "home"
        reference = publish(home, model, {"bench": True}, "bench-run")
        queries = work / "queries.json"
        queries.write_text(
            json.dumps([urllib.parse.urlencode(p) for p in request_params(request_frame, 1200)])
        )
        base = {
            **os.environ,
            "CRASHED_HOME": str(home),
            "CRASHED_PLATFORM": "local",
            "CRASHED_MODEL_REFERENCE": str(reference),
            "PROMETHEUS_MULTIPROC_DIR": str(work / "prometheus"),
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(ROOT / "bench"), os.environ.get("PYTHONPATH")])
            ),
        }
        (work / "prometheus").mkdir()
        results = {}
        for case in CASES:
            env = base | ENV.get(case, {})
            results[case] = measure(case, args.requests, queries, env, work)
            print(
                f"{case:<16} {results[case]['per_request']:>9,} instructions / request", flush=True
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    trivial = results["trivial"]["per_request"]
    for case in CASES[1:]:
        row = results[case]
        regex = row["xgboost_device_string_regex_per_request"]
        xgboost = row["xgboost_call_per_request"]
        total = row["per_request"]
        print(
            f"{case}: {total / trivial:.2f}x the trivial endpoint; XGBoost call "
            f"{xgboost:,} ({xgboost / total:.0%}), of which the device-string regex "
            f"{regex:,} ({regex / total:.0%})"
        )
    write_result(
        "instructions",
        {
            "benchmark": "bench_instructions",
            "machine": machine(),
            "requests": args.requests,
            "cases": results,
            "note": "in-process WSGI calls under callgrind; gunicorn's per-request work excluded",
        },
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--harness":
        harness(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5])
    else:
        main()
