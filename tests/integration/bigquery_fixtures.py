"""BigQuery emulator fixtures (wired in through ``pytest_plugins``).

``bigquery_emulator`` (session) makes sure ``.venv-bigquery`` is installed
(``tests/servers/bigquery/setup.sh``, a no-op when it is), runs local-bigquery on a free port
through ``tests/servers/bigquery/launch.py`` and yields its URL for
``ClientOptions(api_endpoint=…)``. It skips only when no Python 3.13 exists on the machine.

When ``BIGQUERY_EMULATOR_URL`` names an emulator that already runs (GitLab's ``test`` job runs
``deploy/bigquery-emulator.Dockerfile`` as a service), that one is used instead, and
``BIGQUERY_EMULATOR_LAKE_ROOT`` must name the folder its ``GCS_LOCAL_ROOT`` points at (a folder
both containers see).

The emulator writes extract jobs' ``gs://bucket/path`` objects to
``<bigquery_lake_root>/bucket/path``, the layout of
:class:`~crashed.adapters.local_lake.LocalLake`, so ``LocalLake(bigquery_lake_root)`` is the
lake a :class:`~crashed.adapters.bigquery_warehouse.BigQueryWarehouse` on the emulator exports to.
"""

from __future__ import annotations

import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.servers.procs import free_port, start_server

BIGQUERY_DIR = Path(__file__).resolve().parents[1] / "servers" / "bigquery"
REPO = BIGQUERY_DIR.parents[2]
VENV = Path(os.environ.get("BIGQUERY_EMULATOR_VENV") or REPO / ".venv-bigquery")  # as setup.sh
NO_PYTHON_313 = 78  # setup.sh's exit code when the machine has no Python 3.13
RUNNING_URL = os.environ.get("BIGQUERY_EMULATOR_URL", "").rstrip("/")
RUNNING_LAKE_ROOT = os.environ.get("BIGQUERY_EMULATOR_LAKE_ROOT", "")


def ensure_bigquery_venv() -> Path:
    """Run ``setup.sh`` (idempotent); skip when the machine has no Python 3.13, fail otherwise."""
    result = subprocess.run(
        ["bash", str(BIGQUERY_DIR / "setup.sh")],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode == NO_PYTHON_313:
        pytest.skip(
            "local-bigquery needs Python 3.13 and none was found (BIGQUERY_EMULATOR_PYTHON)"
        )
    if result.returncode != 0:
        pytest.fail(f"tests/servers/bigquery/setup.sh failed:\n{result.stderr[-3000:]}")
    return VENV / "bin" / "python"


@pytest.fixture(scope="session")
def bigquery_lake_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder the emulator writes ``gs://`` objects into (``LocalLake`` layout)."""
    if RUNNING_URL:
        if not RUNNING_LAKE_ROOT:
            pytest.fail(
                "BIGQUERY_EMULATOR_URL is set but BIGQUERY_EMULATOR_LAKE_ROOT is not: name the "
                "folder the running emulator's GCS_LOCAL_ROOT points at"
            )
        root = Path(RUNNING_LAKE_ROOT)
        root.mkdir(parents=True, exist_ok=True)
        return root
    return tmp_path_factory.mktemp("bigquery-lake")


def wait_until_answering(url: str, timeout: float = 120.0) -> None:
    """Wait for a running emulator; the first request opens DuckDB and attaches the catalog."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{url}/bigquery/v2/projects/local/datasets", timeout=60):
                return
        except OSError as error:
            if time.monotonic() > deadline:
                pytest.fail(f"BIGQUERY_EMULATOR_URL={url} does not answer: {error}")
            time.sleep(0.5)


@pytest.fixture(scope="session")
def bigquery_emulator(
    tmp_path_factory: pytest.TempPathFactory, bigquery_lake_root: Path
) -> Iterator[str]:
    """URL (``http://127.0.0.1:P``) of a local-bigquery emulator for the session."""
    if RUNNING_URL:
        wait_until_answering(RUNNING_URL)
        yield RUNNING_URL
        return
    python = ensure_bigquery_venv()
    work = tmp_path_factory.mktemp("bigquery-emulator")
    port = free_port()
    server = start_server(
        [
            str(python),
            str(BIGQUERY_DIR / "launch.py"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--grpc-port",
            "0",
            "--data-dir",
            str(work / "data"),
        ],
        port=port,
        log=work / "emulator.log",
        env={"GCS_LOCAL_ROOT": str(bigquery_lake_root), "STORAGE_EMULATOR_HOST": ""},
        timeout=60.0,
    )
    try:
        # The first request opens DuckDB and attaches the catalog; do it before any test times.
        with urllib.request.urlopen(
            f"{server.url}/bigquery/v2/projects/local/datasets", timeout=60
        ):
            pass
        yield server.url
    finally:
        server.stop()
