"""gunicorn settings of ``crashed inference start-prod``.

Used as ``gunicorn -c python:crashed.serving.gunicorn_conf``.

- Workers: ``WEB_CONCURRENCY`` (default: the CPUs this process may use), ``gthread`` workers
  with ``GUNICORN_THREADS`` threads each (default 4), XGBoost ``nthread=1`` per worker.
- **No preload**: the app (and XGBoost) is imported and the model loaded in each worker after
  the fork; XGBoost's OpenMP state does not survive a fork (xgboost#8040). This module imports
  nothing heavy, so the master stays small.
- **Model switch** (``crashed inference reload``): ``SIGUSR1`` to the master, which gunicorn
  forwards to every worker (and reopens its log files, a no-op for our stdout/stderr logs);
  :func:`post_worker_init` chains the worker's handler with
  :meth:`~crashed.serving.model_state.ModelState.request_switch`, so each worker loads and
  verifies the new reference beside the served model and swaps only when it verified.
  ``SIGHUP`` (gunicorn's own reload: new workers, then the old ones stop) still works but makes
  requests wait in the socket queue while the new workers boot (measured in bench/).
- Errors gunicorn answers itself (request line or header over the limit, malformed request)
  are JSON ``{"error", "field"}`` like the app's: :func:`json_write_error` replaces gunicorn's
  HTML ``util.write_error`` (the client value shown is clipped to 200 characters).
- Access, error and app logs are JSON lines (python-json-logger through ``logconfig_dict``,
  see :mod:`crashed.serving.logs`): access on stdout, the rest on stderr.
- Prometheus multiprocess mode: ``PROMETHEUS_MULTIPROC_DIR`` is set here, before any worker
  imports prometheus_client (a private temporary folder unless the environment names one).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from gunicorn import util as _gunicorn_util

from crashed.serving.logs import ACCESS_FORMAT, gunicorn_logconfig

_MULTIPROC = "PROMETHEUS_MULTIPROC_DIR"
_OWNED = "CRASHED_PROMETHEUS_DIR_OWNED"

if not os.environ.get(_MULTIPROC):
    os.environ[_MULTIPROC] = tempfile.mkdtemp(prefix="crashed-prometheus-")
    os.environ[_OWNED] = os.environ[_MULTIPROC]
# One OpenMP thread per worker process (XGBoost also gets nthread=1 explicitly).
os.environ.setdefault("OMP_NUM_THREADS", "1")


def _positive_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SystemExit(f"error: {name} must be a positive whole number, got {raw!r}") from None
    if value < 1:
        raise SystemExit(f"error: {name} must be a positive whole number, got {raw!r}")
    return value


def cpu_count() -> int:
    """CPUs this process may run on (respects affinity/cpusets)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


# ---- settings ------------------------------------------------------------------------------
wsgi_app = "crashed.cli.inference:serving_app()"
bind = ["0.0.0.0:8000"]
workers = _positive_int("WEB_CONCURRENCY", cpu_count())
worker_class = "crashed.serving.worker.DeadlineThreadWorker"  # gthread + read deadline
threads = _positive_int("GUNICORN_THREADS", 4)
preload_app = False
timeout = 30
graceful_timeout = 20
keepalive = 5
max_requests = 0
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
logconfig_dict = gunicorn_logconfig(loglevel.upper())
access_log_format = ACCESS_FORMAT
proc_name = "crashed-inference"
control_socket_disable = True  # gunicorn >= 24: one shared ~/.gunicorn socket would collide
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None


# ---- JSON for gunicorn's own errors ---------------------------------------------------------
_FIELDS = {414: "request_line", 431: "headers"}
SHOWN = 200
"""At most this many characters of a client value appear in an error body."""


def json_write_error(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's error answer (400/414/431/…, before the app runs), as our JSON error body."""
    import json

    message = reason if not mesg else f"{reason}: {mesg}"
    if len(message) > SHOWN:
        message = message[:SHOWN] + "…"
    body = json.dumps({"error": message, "field": _FIELDS.get(status_int)}).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    _gunicorn_util.write_nonblock(sock, head.encode("latin1") + body)


_gunicorn_util.write_error = json_write_error


# ---- hooks -----------------------------------------------------------------------------------
def on_starting(server: Any) -> None:
    """Fresh metrics for a fresh master: clear leftovers of a previous run in the folder."""
    folder = Path(os.environ[_MULTIPROC])
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        with contextlib.suppress(OSError):
            stale.unlink()
    server.log.info(
        "crashed inference: %d %s worker(s) x %d thread(s), metrics in %s",
        server.cfg.workers,
        server.cfg.worker_class_str,
        server.cfg.threads,
        folder,
    )


def post_worker_init(worker: Any) -> None:
    """Chain the worker's ``SIGUSR1`` (log reopen) with a model switch in a watcher thread."""
    import signal

    state = getattr(worker.wsgi, "extensions", {}).get("crashed", {}).get("state")
    if state is None:
        return
    state.start_watcher()
    previous = signal.getsignal(signal.SIGUSR1)

    def _usr1(signum: int, frame: Any) -> None:
        if callable(previous):
            previous(signum, frame)
        state.request_switch()

    signal.signal(signal.SIGUSR1, _usr1)
    signal.siginterrupt(signal.SIGUSR1, False)


def on_reload(server: Any) -> None:
    server.log.info("SIGHUP: starting new workers (they reload the model reference)")


def child_exit(server: Any, worker: Any) -> None:
    """Drop a dead worker's live gauges (its counters stay in the sums)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid, os.environ[_MULTIPROC])


def worker_exit(server: Any, worker: Any) -> None:
    """Final flush of the worker's prediction log (in the worker, on graceful exit)."""
    import sys

    prediction_log = sys.modules.get("crashed.serving.prediction_log")
    if prediction_log is not None:
        prediction_log.close_all()


def worker_abort(worker: Any) -> None:
    worker.log.error("worker %s aborted (timeout): a request took over %ss", worker.pid, timeout)


def on_exit(server: Any) -> None:
    owned = os.environ.get(_OWNED)
    if owned and owned == os.environ.get(_MULTIPROC):
        shutil.rmtree(owned, ignore_errors=True)
