"""Fake Kubeflow Pipelines fixtures (wire in through ``pytest_plugins``, or import them).

``kfp_server`` (session) runs ``python -m tests.servers.fake_kfp`` (single-user, no auth) on a
free port; ``kfp_secured_server`` (session) runs one that is multi-user and wants
``Authorization: Bearer`` :data:`KFP_TOKEN`. ``kfp_fake`` / ``kfp_secured`` (function) reset
their state and yield a :class:`FakeKfpControl`. Tests that do not ask never start them.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from tests.servers.procs import Server, free_port, start_server

REPO_ROOT = Path(__file__).resolve().parents[2]
KFP_TOKEN = "kfp-fake-Sup3rSecret-bearer-0123456789"


@dataclass
class FakeKfpControl:
    """Drive the fake KFP: reset, inspect state, add/update runs."""

    url: str
    token: str | None = None

    def reset(self) -> None:
        requests.post(f"{self.url}/__control__/reset", timeout=5).raise_for_status()

    def state(self) -> dict[str, Any]:
        response = requests.get(f"{self.url}/__control__/state", timeout=5)
        response.raise_for_status()
        return response.json()

    def mutations(self) -> list[dict[str, Any]]:
        """The mutating API requests served so far (method, path, query, status)."""
        return self.state()["log"]

    def run(self, **fields: Any) -> dict[str, Any]:
        """Add a run (``recurring_run_id``, ``experiment_id``, ``state``) or update one
        (``run_id`` plus the fields to change)."""
        response = requests.post(f"{self.url}/__control__/runs", json=fields, timeout=5)
        response.raise_for_status()
        return response.json()


def _start(tmp_path_factory: pytest.TempPathFactory, name: str, *extra: str) -> Server:
    port = free_port()
    log = tmp_path_factory.mktemp(name) / "server.log"
    return start_server(
        [sys.executable, "-m", "tests.servers.fake_kfp", "--port", str(port), *extra],
        port=port,
        log=log,
        cwd=REPO_ROOT,
        env={"PYTHONUNBUFFERED": "1"},
    )


@pytest.fixture(scope="session")
def kfp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A single-user fake KFP without authentication, for the session."""
    server = _start(tmp_path_factory, "fake-kfp")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def kfp_secured_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A multi-user fake KFP that wants ``Bearer KFP_TOKEN``, for the session."""
    server = _start(tmp_path_factory, "fake-kfp-secured", "--multi-user", "--token", KFP_TOKEN)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def kfp_fake(kfp_server: Server) -> FakeKfpControl:
    """The single-user fake, reset for this test."""
    control = FakeKfpControl(kfp_server.url)
    control.reset()
    return control


@pytest.fixture
def kfp_secured(kfp_secured_server: Server) -> FakeKfpControl:
    """The multi-user, token-protected fake, reset for this test."""
    control = FakeKfpControl(kfp_secured_server.url, token=KFP_TOKEN)
    control.reset()
    return control
