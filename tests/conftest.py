"""Shared test wiring: the repo root on sys.path and the local-server fixtures."""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see src/crashed/__init__.py

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data" / "victoria-crashes"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

pytest_plugins = [
    "tests.integration.gcs_fixtures",
    "tests.integration.gitlab_fixtures",
    "tests.integration.bigquery_fixtures",
    "tests.integration.kfp_fixtures",
    "tests.integration.k8s_fixtures",
    "tests.serving_fixtures",
]


@pytest.fixture(scope="session")
def real_crashes_csv() -> Path:
    """The real VicRoads 2018 file from ../shared (skipped on a user's clone without it)."""
    path = SHARED_DATA / "vic_crashes_2018.csv"
    if not path.is_file():
        pytest.skip(f"real data not available: {path} is absent (../shared is not beside the repo)")
    return path
