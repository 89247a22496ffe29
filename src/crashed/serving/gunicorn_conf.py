"""gunicorn settings of ``crashed inference start-prod``.

Used as ``gunicorn -c python:crashed.serving.gunicorn_conf``.

- Workers: ``WEB_CONCURRENCY`` (default: the CPUs this process may use), ``gthread`` workers
  with ``GUNICORN_THREADS`` threads each (default 4), XGBoost ``nthread=1`` per worker.
- **One listening socket per worker** (``reuse_port``, ``SO_REUSEPORT``): the kernel spreads new
  connections over the workers. With one shared socket, whichever worker wakes first accepts a
  burst of keep-alive connections, often all of them, and the other workers idle: measured with
  8 and 32 connections on 2 workers, about one run in three served 1,100–1,800 req/s instead of
  4,200–5,800 (``bench/bench_http.py``, README). The master binds nothing, so
  :func:`on_starting` first checks that no one else listens on the address. The price: a
  worker that exits takes the connections still waiting in its own queue with it (reset), so a
  ``SIGHUP`` reload is no longer free of failed requests; ``GUNICORN_REUSE_PORT=0`` brings
  back the shared socket. The model switch (``SIGUSR1``) keeps its workers and loses nothing.
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
import errno
import os
import shutil
import socket
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


def _flag(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    from crashed.core.values import parse_bool  # the one parser, only when the flag is set
    from crashed.errors import InputError

    try:
        return bool(parse_bool(raw, name))
    except InputError as error:
        raise SystemExit(f"error: {error}") from None


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
reuse_port = _flag("GUNICORN_REUSE_PORT", True)  # a socket per worker (see above)
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
    """Refuse an address someone already listens on; fresh metrics for a fresh master."""
    if server.cfg.reuse_port:
        for address in server.cfg.address:
            refuse_taken(address)
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


def refuse_taken(address: Any) -> None:
    """Exit with a message if ``address`` (host, port) is already listened on.

    With ``reuse_port`` the workers bind their own sockets: a second server on the same port
    (same user) would silently share its connections, and a port held by another program would
    only show as failing workers. A probe without ``SO_REUSEPORT`` fails on either; it sets
    ``SO_REUSEADDR`` so that connections of a previous run in TIME_WAIT do not count.
    """
    if not isinstance(address, tuple) or not address[1]:
        return  # a unix socket or an ephemeral port: nothing to collide with
    host, port = str(address[0]), int(address[1])
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno != errno.EADDRINUSE:
                raise
            raise SystemExit(
                f"error: {host}:{port} is already in use (another server listens there); "
                "stop it or choose another --bind"
            ) from None


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
    """Final flush of the worker's queued metrics and prediction log (on graceful exit)."""
    import sys

    metrics = sys.modules.get("crashed.serving.metrics")
    if metrics is not None:
        metrics.flush_all()
    prediction_log = sys.modules.get("crashed.serving.prediction_log")
    if prediction_log is not None:
        prediction_log.close_all()


def worker_abort(worker: Any) -> None:
    worker.log.error("worker %s aborted (timeout): a request took over %ss", worker.pid, timeout)


def on_exit(server: Any) -> None:
    owned = os.environ.get(_OWNED)
    if owned and owned == os.environ.get(_MULTIPROC):
        shutil.rmtree(owned, ignore_errors=True)
