"""Cloud Storage emulator fixtures (wired in through ``pytest_plugins``).

``gcs_emulator`` (session) runs ``gcp-storage-emulator`` in memory on a free port and yields
its URL. ``gcs_bucket`` / ``gcs_lake`` (function) point ``STORAGE_EMULATOR_HOST`` at it for the
one test only (via ``monkeypatch``), create a fresh bucket and yield its name / a
:class:`~crashed.adapters.gcs_lake.GCSLake`. Tests that do not ask for them never see the
variable, nor start the emulator.
"""

from __future__ import annotations

import shutil
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.servers.procs import free_port, start_server

from crashed.adapters.gcs_lake import EMULATOR_ENV, GCSLake

GCS_PROJECT = "crashed-test"


def _emulator_command() -> str | None:
    beside_python = Path(sys.executable).parent / "gcp-storage-emulator"
    if beside_python.exists():
        return str(beside_python)
    return shutil.which("gcp-storage-emulator")


@pytest.fixture(scope="session")
def gcs_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL (``http://127.0.0.1:P``) of an in-memory Cloud Storage emulator for the session."""
    command = _emulator_command()
    if command is None:
        pytest.skip("gcp-storage-emulator is not installed (pip install gcp-storage-emulator)")
    port = free_port()
    log = tmp_path_factory.mktemp("gcs-emulator") / "emulator.log"
    server = start_server(
        [command, "start", "--host", "127.0.0.1", "--port", str(port), "--in-memory"],
        port=port,
        log=log,
        env={"PYTHONUNBUFFERED": "1"},  # keep the request log readable after a kill
    )
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def gcs_env(gcs_emulator: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Set ``STORAGE_EMULATOR_HOST`` to the emulator for this test; return the URL."""
    monkeypatch.setenv(EMULATOR_ENV, gcs_emulator)
    return gcs_emulator


@pytest.fixture
def gcs_bucket(gcs_env: str) -> str:
    """A bucket created fresh (empty) on the emulator for this test."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    name = f"crashed-test-{uuid.uuid4().hex[:12]}"
    storage.Client(project=GCS_PROJECT, credentials=AnonymousCredentials()).create_bucket(name)
    return name


@pytest.fixture
def gcs_lake(gcs_env: str, gcs_bucket: str) -> GCSLake:
    """A :class:`GCSLake` on the emulator (retries off, so failures surface at once).

    Its bucket is ``gcs_bucket``; it does not create buckets on its own.
    """
    return GCSLake(GCS_PROJECT, create_buckets=False, retry=None, timeout=10.0)
