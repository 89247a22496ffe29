"""``run-local`` killed mid-step (SIGINT / SIGTERM) cleans up after itself.

A real ``crashed pipelines crashed_pipeline run-local`` process runs the compiled pipeline on
synthetic rows; when its output says the ``train`` step started, it gets the signal. Then: no
process of the run is left (each is found by a marker in its environment), the run's temp
folder is gone (``TMPDIR`` points at a folder of the test's own), a stale folder of an earlier
killed run was swept, and the summary records the run as interrupted. With ``--runner docker``
(when Docker and the image are here) the step's container is gone too.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import date
from pathlib import Path

import pytest

from crashed.pipeline.local_runner import OWNER_FILE
from crashed.synthetic import generate_crashes, write_csv

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
WINDOWS = {
    "train_start": "2018-01-01",
    "train_end": "2018-09-30",
    "validation_start": "2018-10-01",
    "validation_end": "2018-12-31",
}
IMAGE = os.environ.get("CRASHED_TEST_IMAGE", "crashed:local")
WAIT = 420.0  # seconds: generous, the machine is shared


@pytest.fixture(scope="module")
def csv_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "crashes.csv"
    frame = generate_crashes(8_000, seed=11, start=date(2018, 1, 1), end=date(2018, 12, 31))
    write_csv(frame, path)
    return path


def _repo(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "model-reference.json").write_text((REPO / "model-reference.json").read_text())
    git = ["git", "-C", str(path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "init"], check=True)
    return path


def _env(tmp_path: Path, marker: str, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CRASHED_", "GITLAB_", "GATE_", "TRAIN_", "LAKE_"))
    }
    (tmp_path / "tmp").mkdir(exist_ok=True)
    return {
        **env,
        "CRASHED_HOME": str(tmp_path / "home"),
        "CRASHED_REPO": str(_repo(tmp_path / "repo")),
        "PYTHONPATH": str(REPO / "src"),
        "TMPDIR": str(tmp_path / "tmp"),
        "CRASHED_TEST_MARKER": marker,
        **extra,
    }


def _load(csv: Path, env: dict[str, str], cwd: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "crashed", "data", "load", "--csv", str(csv)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=WAIT,
    )
    assert done.returncode == 0, done.stderr[-2000:]


def _stale_folder(tmp: Path) -> Path:
    """A work folder left by a run that was killed outright: dead owner, two hours old."""
    dead = subprocess.Popen(["true"])
    dead.wait()
    folder = tmp / "crashed-run-local-old-abc123"
    (folder / "run" / "steps").mkdir(parents=True)
    (folder / OWNER_FILE).write_text(json.dumps({"pid": dead.pid, "start": "1", "run_id": "x"}))
    old = time.time() - 7200
    os.utime(folder, (old, old))
    return folder


def _run_until_train_starts(
    argv: list[str], env: dict[str, str], cwd: Path
) -> tuple[subprocess.Popen[str], list[str], threading.Thread]:
    """Start run-local; return once its output says the train step started."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "crashed", "pipelines", "crashed_pipeline", "run-local", *argv],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    seen: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip())
            seen.put(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        try:
            line = seen.get(timeout=1)
        except queue.Empty:
            if proc.poll() is not None and not reader.is_alive():
                break
            continue
        if line.startswith("[train") and line.rstrip().endswith("started"):
            return proc, lines, reader
    proc.kill()
    raise AssertionError("train never started:\n" + "\n".join(lines[-40:]))


def _marked_processes(marker: str) -> list[int]:
    """Live (not zombie) processes whose environment carries ``marker``."""
    found = []
    needle = f"CRASHED_TEST_MARKER={marker}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if needle in environ.split(b"\0") and state not in ("Z", "X"):
            found.append(int(entry.name))
    return found


def _interrupt(
    tmp_path: Path, csv: Path, signum: int, extra: list[str], **env_extra: str
) -> tuple[int, list[str], dict, str]:
    marker = uuid.uuid4().hex
    env = _env(tmp_path, marker, **env_extra)
    _load(csv, env, tmp_path)
    if "docker" in extra and os.geteuid() == 0:  # steps run as the image's user, uid 10001
        home = tmp_path / "home"
        for path in [home, *home.rglob("*")]:
            os.chown(path, 10001, 10001)
    stale = _stale_folder(tmp_path / "tmp")
    summary_file = tmp_path / "summary.json"
    params = [a for k, v in WINDOWS.items() for a in ("--param", f"{k}={v}")]
    argv = ["--summary", str(summary_file), "--run-id", f"local-sig-{marker[:8]}", *params]
    proc, lines, reader = _run_until_train_starts([*argv, *extra], env, tmp_path)
    assert not stale.exists()  # swept at the start of the run
    proc.send_signal(signum)
    code = proc.wait(timeout=WAIT)
    reader.join(timeout=60)
    assert _marked_processes(marker) == [], "a process of the run outlived it"
    assert list((tmp_path / "tmp").iterdir()) == []  # the run's temp folder is gone
    return code, lines, json.loads(summary_file.read_text()), f"local-sig-{marker[:8]}"


def test_sigint_during_train_stops_the_step_and_cleans_up(tmp_path: Path, csv_file: Path) -> None:
    code, lines, summary, _ = _interrupt(tmp_path, csv_file, signal.SIGINT, [])

    assert code == 130, "\n".join(lines[-30:])
    assert summary["status"] == "failed" and summary["interrupted"] == "SIGINT"
    assert summary["failed_step"] == "train"
    steps = summary["steps"]
    assert steps["train"]["status"] == "interrupted"
    assert [steps[n]["status"] for n in ("extract", "validate", "analyse")] == ["succeeded"] * 3
    assert steps["evaluate"] == {"status": "skipped", "seconds": 0.0, "reason": "interrupted"}
    assert steps["publish"]["reason"] == "interrupted"
    assert summary["proposal"] is None
    assert not any("Traceback" in line for line in lines)
    last = lines[-1]  # one line: the signal, what was stopped, the temp folder, the record
    assert last.startswith("error: interrupted by SIGINT: stopped step 'train' (process group ")
    assert "; removed the run's temp folder " in last


def test_sigterm_exits_143(tmp_path: Path, csv_file: Path) -> None:
    code, lines, summary, _ = _interrupt(tmp_path, csv_file, signal.SIGTERM, [])

    assert code == 143, "\n".join(lines[-30:])
    assert summary["interrupted"] == "SIGTERM"
    assert summary["steps"]["train"]["status"] == "interrupted"


def _docker_missing() -> str | None:
    docker = shutil.which("docker")
    if docker is None:
        return "no docker CLI"
    try:
        image = subprocess.run(
            [docker, "image", "inspect", IMAGE], capture_output=True, text=True, timeout=60
        )
    except subprocess.TimeoutExpired:
        return "the Docker daemon did not answer"
    return None if image.returncode == 0 else f"no Docker daemon or image {IMAGE}"


@pytest.mark.containers
def test_sigterm_stops_the_step_container(
    tmp_path: Path,
    csv_file: Path,
    gitlab_fake,  # type: ignore[no-untyped-def]  # the image has no git: the fake GitLab
) -> None:
    reason = _docker_missing()
    if reason:
        pytest.skip(reason)
    user = "10001:10001" if os.geteuid() == 0 else f"{os.getuid()}:{os.getgid()}"
    extra = ["--runner", "docker", "--image", IMAGE, "--user", user]

    gitlab = {
        "CRASHED_GIT_HOST": "gitlab",
        "GITLAB_URL": gitlab_fake.url,
        "GITLAB_PROJECT": gitlab_fake.project,
        "GITLAB_TOKEN": gitlab_fake.token,
    }

    code, lines, summary, run_id = _interrupt(tmp_path, csv_file, signal.SIGTERM, extra, **gitlab)

    assert code == 143, "\n".join(lines[-30:])
    assert summary["steps"]["train"]["status"] == "interrupted"
    assert f"stopped step 'train' (container crashed-{run_id}-train)" in lines[-1]
    left = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"name=crashed-{run_id}-"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert left.stdout.split() == [], "the step's container outlived the run"
