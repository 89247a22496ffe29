"""gunicorn's ``gthread`` worker with a deadline for receiving each request (slow clients).

gunicorn's ``gthread`` worker waits at most 5 s for a new connection's *first* byte, but then
reads the request head and body with blocking ``recv`` calls: a client sending its headers one
byte per second holds a request thread for as long as it likes, and a dozen such clients hold
all of them (reproduced: ``tests/integration/test_http_errors.py``). This worker gives every
request :data:`READ_SECONDS` (``CRASHED_REQUEST_READ_SECONDS``, default 10) from the moment its
thread starts reading until the last byte of its head and body arrived; past it the client gets
a JSON 408 and the connection is closed, and the thread serves others. Reading is the only
thing bounded: the app's own work is bounded by gunicorn's ``timeout``.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import time
from typing import Any

from gunicorn import util
from gunicorn.workers.gthread import ThreadWorker

log = logging.getLogger("gunicorn.error")


def _read_seconds() -> float:
    raw = os.environ.get("CRASHED_REQUEST_READ_SECONDS", "").strip()
    try:
        value = float(raw) if raw else 10.0
    except ValueError:
        raise SystemExit(
            f"error: CRASHED_REQUEST_READ_SECONDS must be seconds, got {raw!r}"
        ) from None
    if not value > 0:
        raise SystemExit(f"error: CRASHED_REQUEST_READ_SECONDS must be positive, got {raw!r}")
    return value


READ_SECONDS = _read_seconds()


class DeadlineSocket:
    """A client socket whose ``recv`` fails once :attr:`deadline` has passed (None: no limit).

    Everything else is the wrapped socket's (``fileno`` for the poller, ``sendall``, ``close``)."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.deadline: float | None = None

    def recv(self, size: int, *flags: int) -> bytes:
        if self.deadline is None:
            return self._sock.recv(size, *flags)
        remaining = self.deadline - time.monotonic()
        if remaining > 0:
            self._sock.settimeout(remaining)
            try:
                return self._sock.recv(size, *flags)
            except TimeoutError:
                pass
            finally:
                self._sock.settimeout(None)
        self.deadline = None
        log.warning("request not received within %ss: closing the connection", READ_SECONDS)
        util.write_error(
            self._sock,
            408,
            "Request Timeout",
            f"the request was not received within {READ_SECONDS:g} s",
        )
        raise ConnectionResetError(errno.ECONNRESET, "request read deadline passed")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class DeadlineThreadWorker(ThreadWorker):
    """``gthread`` with :data:`READ_SECONDS` per request for receiving it."""

    def handle(self, conn: Any) -> Any:
        if not isinstance(conn.sock, DeadlineSocket):
            conn.sock = DeadlineSocket(conn.sock)
        conn.sock.deadline = time.monotonic() + READ_SECONDS
        try:
            return super().handle(conn)
        finally:
            conn.sock.deadline = None
