"""Fake Kubernetes API fixtures (wired in through ``pytest_plugins``).

``fake_k8s_server`` (session) runs ``tests/servers/fake_k8s.py`` on a free port. ``k8s``
(function) resets it, writes a kubeconfig for it and points ``KUBECONFIG`` at that file for
the one test. ``lake_home`` (function) points ``CRASHED_HOME`` at a temp dir (local platform)
and ``make_reference`` writes artifacts into its :class:`LocalLake` and a promoted
``model-reference.json`` whose checksums match them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.published_run import published_run
from tests.servers.fake_k8s import FakeK8s, write_kubeconfig
from tests.servers.procs import Server, free_port, start_server

from crashed.adapters.local_lake import LocalLake
from crashed.core.reference import PromotedReference, render_reference

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "crashed-test-lake"


@pytest.fixture(scope="session")
def fake_k8s_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The fake API server, for the whole session."""
    port = free_port()
    log = tmp_path_factory.mktemp("fake-k8s") / "server.log"
    server = start_server(
        [sys.executable, "-m", "tests.servers.fake_k8s", "--port", str(port)],
        port=port,
        log=log,
        cwd=ROOT,
        env={"PYTHONUNBUFFERED": "1"},
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def k8s(fake_k8s_server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeK8s:
    """An empty fake cluster that ``KUBECONFIG`` points at, for this test."""
    fake = FakeK8s(
        fake_k8s_server.url, write_kubeconfig(tmp_path / "kubeconfig", fake_k8s_server.url)
    )
    fake.control("reset", {})
    monkeypatch.setenv("KUBECONFIG", str(fake.kubeconfig))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv("KUBE_CONTEXT", raising=False)
    monkeypatch.delenv("CI_COMMIT_SHA", raising=False)
    return fake


@pytest.fixture
def lake_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LocalLake:
    """The local lake under a temp ``CRASHED_HOME`` (settings come from the environment)."""
    home = tmp_path / "home"
    monkeypatch.setenv("CRASHED_HOME", str(home))
    monkeypatch.setenv("CRASHED_PLATFORM", "local")
    monkeypatch.setenv("LAKE_BUCKET", BUCKET)
    for name in ("CRASHED_LAKE", "CRASHED_IMAGE", "K8S_NAMESPACE", "CRASHED_MODEL_REFERENCE"):
        monkeypatch.delenv(name, raising=False)
    return LocalLake(home / "lake")


def promoted_reference(lake: LocalLake, run_id: str) -> PromotedReference:
    """A real published run's artifacts stored as ``run_id`` (deploy verifies their content,
    as `crashed models verify` does), and the reference that names them."""
    return published_run().publish_as(lake, run_id, bucket=BUCKET)


@pytest.fixture
def make_reference(lake_home: LocalLake, tmp_path: Path) -> Callable[[str], Path]:
    """``make_reference(run_id)``: a verifiable ``model-reference.json`` for ``run_id``."""

    def make(run_id: str) -> Path:
        path = tmp_path / f"reference-{run_id}.json"
        path.write_text(render_reference(promoted_reference(lake_home, run_id)), encoding="utf-8")
        return path

    return make
