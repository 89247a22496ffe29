"""The demo's local gunicorn: start it, reload it under load, wait for it, stop it.

Serving itself is :mod:`crashed.serving` (``crashed inference start-prod``); this module only
drives it from outside, over HTTP and signals, as an operator would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from crashed.errors import CrashedError


def get_json(url: str, timeout: float = 5.0) -> tuple[int, dict]:
    """HTTP status and JSON body of a GET (error statuses included)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def alive(pid: int) -> bool:
    """Whether a process with this id exists (and is ours to signal)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def running_pid(pid_file: Path) -> int | None:
    """The demo server's pid if its pid file names a live process."""
    pid = int(pid_file.read_text()) if pid_file.is_file() else 0
    return pid if pid and alive(pid) else None


def wait_ready(base: str, run_id: str | None, timeout: float) -> dict:
    """Wait until ``/readyz`` is 200 and ``/model`` serves ``run_id``; return ``/model``."""
    deadline = time.monotonic() + timeout
    last: dict = {}
    while time.monotonic() < deadline:
        try:
            status, body = get_json(f"{base}/readyz", 2)
            if status == 200:
                _, model = get_json(f"{base}/model", 2)
                served = (model.get("model") or {}).get("run_id")
                if run_id is None or served == run_id:
                    return model
            last = body
        except (OSError, ValueError):
            pass
        time.sleep(0.3)
    raise CrashedError(f"the local inference server did not become ready: {last}")


class Prober(threading.Thread):
    """Sends /predict requests during a reload and counts failures (zero-downtime check)."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.ok, self.failed, self.stop = url, 0, 0, threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                status, _ = get_json(self.url, 5)
                self.ok += status == 200
                self.failed += status != 200
            except (OSError, ValueError):
                self.failed += 1
            time.sleep(0.02)


def reload_under_load(pid: int, base: str, run_id: str | None, probe_url: str) -> Prober:
    """``crashed inference reload`` the running server (each worker verifies the new model
    beside the old one and swaps), wait for ``run_id`` to serve, with requests flowing."""
    prober = Prober(probe_url)
    prober.start()
    try:
        command = [sys.executable, "-m", "crashed", "inference", "reload", "--pid", str(pid)]
        subprocess.run([*command, "--url", base], check=False, timeout=120)
        wait_ready(base, run_id, 60)
        time.sleep(1.0)
    finally:
        prober.stop.set()
        prober.join()
    return prober


def start(env: dict[str, str], port: int, work: Path) -> int:
    """Start ``crashed inference start-prod`` in its own session; record and return its pid."""
    with (work / "gunicorn.log").open("ab") as log:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "crashed",
                "inference",
                "start-prod",
                "--bind",
                f"127.0.0.1:{port}",
            ],
            env={**env, "WEB_CONCURRENCY": env.get("WEB_CONCURRENCY", "2")},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    (work / "gunicorn.pid").write_text(str(server.pid))
    return server.pid


def stop(pid_file: Path) -> str:
    """Stop the demo server named by ``pid_file``; say what happened."""
    if not pid_file.is_file():
        return "no demo server is running"
    pid = int(pid_file.read_text())
    said = "the demo server had already stopped"
    if alive(pid):
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            if not alive(pid):
                break
            time.sleep(0.1)
        said = f"stopped the demo inference server (pid {pid})"
    pid_file.unlink(missing_ok=True)
    return said
