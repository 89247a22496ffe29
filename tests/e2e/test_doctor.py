"""``crashed doctor`` end to end: the local platform all green, then a GCP/GitLab/KFP/Kubernetes
configuration whose every endpoint is a closed port on 127.0.0.1 (clear ✗ lines, exit 3)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.servers.procs import free_port

from crashed.adapters.duckdb_warehouse import DuckDBWarehouse
from crashed.adapters.local_lake import LocalLake
from crashed.synthetic import generate_crashes

REPO = Path(__file__).resolve().parents[2]
TOKEN = "glpat-doctor-secret-0123456789"
K8S_TOKEN = "k8s-doctor-secret-token"

pytestmark = pytest.mark.slow


def doctor(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CRASHED_", "GITLAB_", "KFP_", "K8S_", "LAKE_", "WAREHOUSE_"))
        and k not in ("KUBECONFIG", "STORAGE_EMULATOR_HOST", "BIGQUERY_API_ENDPOINT")
    }
    return subprocess.run(
        [sys.executable, "-m", "crashed", "doctor", *args],
        env={**clean, "PYTHONPATH": str(REPO / "src"), **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def lines(output: str) -> dict[str, str]:
    """``{check name: line}`` of the report."""
    found = {}
    for line in output.splitlines():
        if line[:2] in ("✓ ", "✗ "):
            found[line[2:].split(":", 1)[0]] = line
    return found


@pytest.fixture
def local_platform(tmp_path: Path) -> dict[str, str]:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "model-reference.json").write_text((REPO / "model-reference.json").read_text())
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "init"], check=True)
    return {"CRASHED_HOME": str(tmp_path / "home"), "CRASHED_REPO": str(repo)}


def test_the_local_platform_passes_every_check(tmp_path: Path, local_platform: dict) -> None:
    home = Path(local_platform["CRASHED_HOME"])
    DuckDBWarehouse(home / "warehouse.duckdb", LocalLake(home / "lake")).load_frame(
        "crashes_raw", generate_crashes(200, seed=1)
    )
    result = doctor(local_platform, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    report = lines(result.stdout)
    assert list(report) == ["settings", "lake", "warehouse", "git host"]
    assert all(line.startswith("✓") for line in report.values()), result.stdout
    assert "platform local" in report["settings"]
    assert "crashes_raw" in report["warehouse"]
    # The probe object really went through the lake.
    assert (home / "lake" / "crashed-lake" / "doctor" / "probe.txt").is_file()


def test_a_missing_table_is_one_red_line_with_the_fix(tmp_path: Path, local_platform: dict) -> None:
    result = doctor(local_platform, tmp_path)
    assert result.returncode == 3
    report = lines(result.stdout)
    assert report["warehouse"].startswith("✗ warehouse:")
    assert "crashes_raw is missing — load data: crashed data load" in report["warehouse"]
    assert all(report[n].startswith("✓") for n in ("settings", "lake", "git host"))
    assert "Traceback" not in result.stdout + result.stderr


def test_bad_settings_are_one_red_line(tmp_path: Path) -> None:
    result = doctor({"CRASHED_HOME": str(tmp_path), "K8S_NAMESPACE": "Not_Valid"}, tmp_path)
    assert result.returncode == 3
    assert list(lines(result.stdout)) == ["settings"]
    assert "K8S_NAMESPACE" in lines(result.stdout)["settings"]


def test_an_unreachable_cloud_gives_a_red_line_per_check(tmp_path: Path) -> None:
    closed = f"127.0.0.1:{free_port()}"  # nothing listens there
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        f"clusters: [{{name: c, cluster: {{server: 'https://{closed}'}}}}]\n"
        f"users: [{{name: u, user: {{token: {K8S_TOKEN}}}}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\n"
    )
    env = {
        "CRASHED_PLATFORM": "gcp",
        "CRASHED_HOME": str(tmp_path / "home"),
        "GCP_PROJECT": "crashed-doctor",
        "STORAGE_EMULATOR_HOST": f"http://{closed}",
        "BIGQUERY_API_ENDPOINT": f"http://{closed}",
        "GITLAB_URL": f"http://{closed}",
        "GITLAB_PROJECT": "group/crashed",
        "GITLAB_TOKEN": TOKEN,
        "KFP_HOST": f"http://{closed}",
        "KUBECONFIG": str(kubeconfig),
    }
    result = doctor(env, tmp_path, "--timeout", "5")
    output = result.stdout + result.stderr
    assert result.returncode == 3, output
    report = lines(result.stdout)
    assert list(report) == ["settings", "lake", "warehouse", "git host", "kubeflow", "kubernetes"]
    assert report["settings"].startswith("✓ settings: platform gcp")
    for name in ("lake", "warehouse", "git host", "kubeflow", "kubernetes"):
        line = report[name]
        assert line.startswith(f"✗ {name}: "), line
        assert closed in line, line  # names the endpoint it could not reach
        assert " — " in line, line  # and says what to check
    assert TOKEN not in output and K8S_TOKEN not in output
    assert "Traceback" not in output
