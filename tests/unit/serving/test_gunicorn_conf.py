"""gunicorn settings read from the environment: the socket-per-worker flag and its errors."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

READ = "import crashed.serving.gunicorn_conf as c; print(c.reuse_port)"


def settings(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", READ],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(("raw", "expected"), [("", "True"), ("0", "False"), (" yes ", "True")])
def test_reuse_port_flag(raw: str, expected: str) -> None:
    done = settings(GUNICORN_REUSE_PORT=raw)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == expected


def test_a_bad_flag_is_one_line_naming_it() -> None:
    done = settings(GUNICORN_REUSE_PORT="maybe")
    assert done.returncode == 1
    assert done.stderr.startswith("error: GUNICORN_REUSE_PORT: expected true or false")
    assert "Traceback" not in done.stderr
