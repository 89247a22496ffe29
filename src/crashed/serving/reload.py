"""``crashed inference reload``: switch a running gunicorn server to the current reference.

Mechanism: ``SIGUSR1`` to the gunicorn master, which forwards it to every worker; each worker's
watcher thread loads and verifies the reference beside the served model and swaps only when it
verified (:meth:`crashed.serving.model_state.ModelState.switch`). No worker restarts, the
socket never stops being served. Then :func:`reload_server` polls ``/readyz`` on fresh
connections (the kernel spreads them over the workers) until every current worker of the master
either serves the reference file's bytes (the file the server was started with, read from its
environment in /proc, unless given) (``reference_sha256``) or reports that its attempt at
exactly those bytes failed (``last_load``), and why. Linux only (workers are found in /proc).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from crashed.errors import InputError, NotFoundError, ServiceError


@dataclass(frozen=True)
class WorkerOutcome:
    """What one worker reported after the switch."""

    pid: int
    switched: bool
    model: dict[str, str] | None
    reason: str | None = None


def read_pidfile(path: Path) -> int:
    """The gunicorn master's PID from its pidfile (``start-prod --pidfile``)."""
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        raise NotFoundError(
            f"{path}: no pidfile (is `crashed inference start-prod` running?)"
        ) from None
    except OSError as error:
        raise InputError(f"{path}: cannot read the pidfile: {error.strerror}") from None
    if not text.isdigit():
        raise InputError(f"{path}: not a pidfile (expected a process id, got {text[:40]!r})")
    return int(text)


def worker_pids(master: int) -> set[int]:
    """PIDs of the processes whose parent is ``master`` (the gunicorn workers)."""
    pids = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == master:
            pids.add(int(entry.name))
    return pids


def server_reference(master: int) -> Path | None:
    """The ``CRASHED_MODEL_REFERENCE`` the running server was started with (its environment
    and working directory in /proc), or None when it has none there or /proc is unreadable."""
    try:
        environ = Path(f"/proc/{master}/environ").read_bytes().split(b"\0")
        cwd = Path(os.readlink(f"/proc/{master}/cwd"))
    except OSError:
        return None
    for entry in environ:
        name, _, value = entry.partition(b"=")
        if name == b"CRASHED_MODEL_REFERENCE" and value:
            return cwd / os.fsdecode(value)
    return None


def file_sha256(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        raise NotFoundError(f"{path}: no such model reference file") from None
    except OSError as error:
        raise InputError(f"{path}: cannot read the model reference: {error.strerror}") from None


def _readyz(url: str) -> dict | None:
    request = urllib.request.Request(f"{url}/readyz", headers={"Connection": "close"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:  # 503: not ready, still JSON
        try:
            return json.loads(error.read())
        except ValueError:
            return None
    except (OSError, ValueError):
        return None


def outcome(body: dict, expected: str) -> WorkerOutcome | None:
    """The worker's answer to a switch to reference bytes ``expected``, or None (not yet)."""
    pid = int(body.get("pid", 0))
    if body.get("ready") and body.get("reference_sha256") == expected:
        return WorkerOutcome(pid, True, body.get("model"))
    last = body.get("last_load") or {}
    if last.get("reference_sha256") == expected and last.get("ok") is False:
        return WorkerOutcome(pid, False, body.get("model"), str(last.get("reason", "")))
    return None


def reload_server(
    master: int, url: str, reference: Path, *, timeout: float = 60.0
) -> list[WorkerOutcome]:
    """Signal ``master`` to switch to ``reference`` and wait for every worker's outcome."""
    expected = file_sha256(reference)
    try:
        os.kill(master, signal.SIGUSR1)
    except ProcessLookupError:
        raise NotFoundError(f"no process {master} (is the server running?)") from None
    except PermissionError:
        raise InputError(f"process {master}: not allowed to signal it") from None
    deadline = time.monotonic() + timeout
    seen: dict[int, WorkerOutcome] = {}
    workers: set[int] = set()
    while time.monotonic() < deadline:
        workers = worker_pids(master)
        body = _readyz(url.rstrip("/"))
        if body is not None and (result := outcome(body, expected)) is not None:
            seen[result.pid] = result
        if workers and workers <= seen.keys():
            return [seen[pid] for pid in sorted(workers)]
        time.sleep(0.05)
    missing = sorted(workers - seen.keys())
    raise ServiceError(
        f"switch not confirmed within {timeout:.0f}s: worker(s) {missing} did not report "
        f"reference sha256 {expected[:12]} at {url}/readyz"
    )
