"""``run-local --runner docker``: every step of the compiled pipeline a container of the image.

Needs a Docker daemon and the image (``make image`` builds ``crashed:local``; another image can
be named with ``CRASHED_TEST_IMAGE``); skips with the reason otherwise. The runtime image has no
``git``, so the proposal goes to the fake GitLab (reachable through ``--network host``), which
is also how the cluster runs it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from crashed.adapters.local_lake import LocalLake
from crashed.synthetic import generate_crashes, write_csv

pytestmark = [pytest.mark.containers, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
IMAGE = os.environ.get("CRASHED_TEST_IMAGE", "crashed:local")
WINDOWS = {
    "train_start": "2018-01-01",
    "train_end": "2018-09-30",
    "validation_start": "2018-10-01",
    "validation_end": "2018-12-31",
}


def _docker_ready() -> str | None:
    """Why the container tests cannot run here, or None."""
    docker = shutil.which("docker")
    if docker is None:
        return "no docker CLI on PATH"
    try:
        info = subprocess.run([docker, "version"], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return "the Docker daemon did not answer within 30 s"
    if info.returncode != 0:
        return f"no Docker daemon: {(info.stderr or info.stdout).strip().splitlines()[-1:]}"
    image = subprocess.run(
        [docker, "image", "inspect", IMAGE], capture_output=True, text=True, timeout=30
    )
    if image.returncode != 0:
        return f"image {IMAGE} is not built (make image)"
    return None


@pytest.fixture(scope="module", autouse=True)
def _needs_docker() -> None:
    reason = _docker_ready()
    if reason:
        pytest.skip(f"container tests need Docker and {IMAGE}: {reason}")


def _user() -> str:
    return "10001:10001" if os.geteuid() == 0 else f"{os.getuid()}:{os.getgid()}"


def _home(tmp_path: Path, rows: int = 0, csv: Path | None = None) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    if rows:
        frame = generate_crashes(rows, seed=5, start=date(2018, 1, 1), end=date(2018, 12, 31))
        csv = tmp_path / "crashes.csv"
        write_csv(frame, csv)
    if csv is not None:
        _crashed(["data", "load", "--csv", str(csv)], _env(home), tmp_path)
    if os.geteuid() == 0:  # the steps run as the image's user, uid 10001, as in the cluster
        for path in [home, *home.rglob("*")]:
            os.chown(path, 10001, 10001)
    return home


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CRASHED_", "GITLAB_", "GATE_", "TRAIN_", "LAKE_"))
    }
    return {**env, "CRASHED_HOME": str(home), "PYTHONPATH": str(REPO / "src"), **extra}


def _crashed(
    args: list[str], env: dict[str, str], cwd: Path, check: bool = True
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "crashed", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    if check:
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def _run_docker(env: dict[str, str], cwd: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    params = [a for k, v in WINDOWS.items() for a in ("--param", f"{k}={v}")]
    args = ["pipelines", "crashed_pipeline", "run-local", "--runner", "docker"]
    return _crashed(
        [*args, "--image", IMAGE, "--user", _user(), *params, *extra], env, cwd, check=False
    )


def _gitlab_env(home: Path, gitlab_fake) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return _env(
        home,
        CRASHED_GIT_HOST="gitlab",
        GITLAB_URL=gitlab_fake.url,
        GITLAB_PROJECT=gitlab_fake.project,
        GITLAB_TOKEN=gitlab_fake.token,
    )


def _succeeded(done: subprocess.CompletedProcess[str], summary_file: Path) -> dict:  # type: ignore[type-arg]
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    return json.loads(summary_file.read_text())


def test_every_step_runs_in_a_container_and_proposes(tmp_path: Path, gitlab_fake) -> None:
    home = _home(tmp_path, rows=12_000)
    summary_file = tmp_path / "summary.json"

    done = _run_docker(_gitlab_env(home, gitlab_fake), tmp_path, "--summary", str(summary_file))

    output = done.stdout + done.stderr
    summary = _succeeded(done, summary_file)
    assert summary["runner"] == "docker"
    assert {n: s["status"] for n, s in summary["steps"].items()} == dict.fromkeys(
        ("extract", "validate", "analyse", "train", "evaluate", "publish"), "succeeded"
    )
    lake = LocalLake(home / "lake")
    assert {a["name"] for a in summary["artifacts"]} == {
        "model",
        "distributions",
        "metrics",
        "report",
    }
    for artifact in summary["artifacts"]:
        path = lake.path_for(artifact["uri"])
        assert path.stat().st_size == artifact["bytes"]
        if os.geteuid() == 0:
            assert path.stat().st_uid == 10001  # written by the container's user
    (mr,) = gitlab_fake.open_mrs("model-update/crashed")
    assert "| ROC-AUC |" in mr["description"]
    reference = json.loads(
        gitlab_fake.branch("model-update/crashed")["files"]["model-reference.json"]
    )
    assert reference["lineage"]["image"] == IMAGE  # compiled for the image the steps ran in
    assert gitlab_fake.token not in output  # passed to docker by name, never on a command line


def test_a_failing_container_fails_its_step_with_its_exit_code(tmp_path: Path) -> None:
    home = _home(tmp_path)  # nothing loaded: extract fails (exit 4, crashes_raw missing)

    done = _run_docker(_env(home), tmp_path)

    assert done.returncode in (2, 4), done.stdout[-3000:] + done.stderr[-3000:]
    assert "failed at step 'extract'" in done.stderr
    assert "skipped: " in done.stderr and "publish" in done.stderr
    assert "Traceback" not in done.stdout + done.stderr


@pytest.mark.real_data
def test_real_2018_rows_in_containers_meet_the_targets(
    tmp_path: Path, gitlab_fake, real_crashes_csv: Path
) -> None:
    home = _home(tmp_path, csv=real_crashes_csv)
    summary_file = tmp_path / "summary.json"

    done = _run_docker(_gitlab_env(home, gitlab_fake), tmp_path, "--summary", str(summary_file))

    summary = _succeeded(done, summary_file)
    assert summary["runner"] == "docker" and summary["status"] == "succeeded"
    assert summary["metrics"]["roc_auc"] >= 0.85
    assert summary["metrics"]["pr_auc"] >= 0.19
    assert summary["proposal"]["action"] == "created"
