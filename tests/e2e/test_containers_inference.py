"""The inference image run the way ``k8s/deployment.yaml`` runs it.

``crashed:local`` (``make image``) with the Deployment's settings: read-only root filesystem,
uid/gid 10001, no capabilities, tmpfs on ``/tmp`` and ``HOME``, the model reference mounted
read-only where the Deployment mounts its ConfigMap, the local lake mounted read-only at
``$CRASHED_HOME/lake``, host network on a free port. The model comes from the real pipeline
(``crashed pipelines crashed_pipeline run-local`` on synthetic crashes, then ``crashed models
approve``). Skips, with the reason, when no Docker daemon answers or the image is not built.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from urllib.parse import urlencode

import pytest
import yaml
from tests.servers.procs import free_port

from crashed.adapters.local_lake import LocalLake
from crashed.core.reference import PromotedReference, parse_reference
from crashed.synthetic import generate_crashes, write_csv

REPO = Path(__file__).resolve().parents[2]
IMAGE = os.environ.get("CRASHED_TEST_IMAGE", "crashed:local")
WINDOWS = {
    "train_start": "2018-01-01",
    "train_end": "2018-09-30",
    "validation_start": "2018-10-01",
    "validation_end": "2018-12-31",
}

pytestmark = [pytest.mark.containers, pytest.mark.slow]


def docker_problem() -> str | None:
    """Why the container tests cannot run here, or None."""
    if shutil.which("docker") is None:
        return "no docker client on PATH (make test-containers needs Docker)"
    info = subprocess.run(["docker", "info"], capture_output=True, text=True, check=False)
    if info.returncode != 0:
        return "no Docker daemon answers (bash deploy/docker-daemon.sh start)"
    image = subprocess.run(
        ["docker", "image", "inspect", IMAGE], capture_output=True, text=True, check=False
    )
    if image.returncode != 0:
        return f"image {IMAGE} is not built (make image)"
    return None


@pytest.fixture(scope="module", autouse=True)
def _needs_docker() -> None:
    problem = docker_problem()
    if problem:
        pytest.skip(problem)


def crashed(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "crashed", *args],
        env=env,
        cwd=cwd,
        text=True,
        capture_output=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, (
        f"crashed {' '.join(args)} exited {result.returncode}:\n"
        f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result


@dataclass(frozen=True)
class Promoted:
    """A model the real pipeline trained and ``models approve`` promoted."""

    home: Path
    reference_file: Path
    reference: PromotedReference


@pytest.fixture(scope="module")
def promoted(tmp_path_factory: pytest.TempPathFactory) -> Promoted:
    work = tmp_path_factory.mktemp("containers-inference")
    repo = work / "repo"
    repo.mkdir()
    shutil.copy(REPO / "model-reference.json", repo / "model-reference.json")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "init"], check=True)
    home = work / "home"
    env = {
        **{
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("CRASHED_", "GITLAB_", "GATE_", "TRAIN_", "LAKE_"))
        },
        "CRASHED_HOME": str(home),
        "CRASHED_REPO": str(repo),
        "PYTHONPATH": str(REPO / "src"),
    }
    csv = work / "crashes.csv"
    write_csv(generate_crashes(12_000, seed=5, start=date(2018, 1, 1), end=date(2018, 12, 31)), csv)
    crashed("data", "load", "--csv", str(csv), env=env, cwd=work)
    summary_file = work / "summary.json"
    params = [a for k, v in WINDOWS.items() for a in ("--param", f"{k}={v}")]
    crashed(
        "pipelines",
        "crashed_pipeline",
        "run-local",
        "--summary",
        str(summary_file),
        *params,
        env=env,
        cwd=work,
    )
    proposal = json.loads(summary_file.read_text())["proposal"]
    assert proposal is not None, "the pipeline proposed no model"
    crashed("models", "approve", str(proposal["id"]), env=env, cwd=repo)
    reference = parse_reference((repo / "model-reference.json").read_text())
    assert isinstance(reference, PromotedReference)
    # What the ConfigMap volume looks like in the pod: one world-readable file in its folder.
    mounted = work / "configmap"
    mounted.mkdir(mode=0o755)
    shutil.copy(repo / "model-reference.json", mounted / "model-reference.json")
    (mounted / "model-reference.json").chmod(0o644)
    return Promoted(home, mounted / "model-reference.json", reference)


def deployment_container() -> dict:
    deployment = yaml.safe_load((REPO / "k8s" / "deployment.yaml").read_text())
    pod = deployment["spec"]["template"]["spec"]
    return {"pod": pod, "container": pod["containers"][0]}


@dataclass
class Running:
    id: str
    url: str

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"{self.url}{path}", timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def logs(self) -> str:
        done = subprocess.run(
            ["docker", "logs", "--tail", "60", self.id], capture_output=True, text=True, check=False
        )
        return done.stdout + done.stderr


@contextmanager
def run_as_kubernetes(reference_file: Path, lake: Path) -> Iterator[Running]:
    """``crashed:local`` with the Deployment's container settings; removed afterwards."""
    spec = deployment_container()
    pod, container = spec["pod"], spec["container"]
    security = {**pod["securityContext"], **container["securityContext"]}
    env = {e["name"]: e["value"] for e in container["env"]}
    for line in (REPO / "k8s" / "inference.env").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            env.setdefault(name, value)
    env["CRASHED_PLATFORM"] = "local"  # the lake is the mounted folder, not GCS
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    reference_mount = mounts["model-reference"]["mountPath"]
    assert env["CRASHED_MODEL_REFERENCE"] == f"{reference_mount}/model-reference.json"
    port = free_port()
    args = [a.replace("0.0.0.0:8000", f"127.0.0.1:{port}") for a in container["args"]]
    command = ["docker", "run", "-d", "--network", "host"]
    command += ["--user", f"{security['runAsUser']}:{security['runAsGroup']}"]
    if security["readOnlyRootFilesystem"]:
        command.append("--read-only")
    command += [f"--cap-drop={c}" for c in security["capabilities"]["drop"]]
    if not security["allowPrivilegeEscalation"]:
        command += ["--security-opt", "no-new-privileges"]
    uid, gid = security["runAsUser"], security["runAsGroup"]
    # The emptyDirs, writable by the pod's user. CRASHED_HOME gets its own tmpfs only because
    # the lake is bind-mounted below it here (in the cluster the lake is a bucket): Docker would
    # otherwise create CRASHED_HOME as root for the mount point, and the artifact cache below
    # it could not be written.
    writable = [mounts["home"]["mountPath"], mounts["tmp"]["mountPath"], env["CRASHED_HOME"]]
    for path in writable:
        command += ["--tmpfs", f"{path}:rw,uid={uid},gid={gid},mode=0770"]
    command += ["-v", f"{reference_file.parent}:{reference_mount}:ro"]
    command += ["-v", f"{lake}:{env['CRASHED_HOME']}/lake:ro"]
    command += [a for k, v in env.items() for a in ("-e", f"{k}={v}")]
    started = subprocess.run(
        [*command, IMAGE, *args], capture_output=True, text=True, timeout=120, check=False
    )
    assert started.returncode == 0, started.stderr
    running = Running(started.stdout.strip(), f"http://127.0.0.1:{port}")
    try:
        yield running
    finally:
        subprocess.run(["docker", "rm", "-f", running.id], capture_output=True, check=False)


def wait_for(running: Running, path: str, status: int, timeout: float = 120.0) -> bytes:
    deadline = time.monotonic() + timeout
    last: tuple[int, bytes] | str = "no answer"
    while time.monotonic() < deadline:
        try:
            last = running.get(path)
            if last[0] == status:
                return last[1]
        except OSError as error:
            last = str(error)
        time.sleep(0.5)
    raise AssertionError(f"{path} never answered {status} (last: {last!r})\n{running.logs()}")


def test_the_image_serves_a_verified_model_as_kubernetes_runs_it(promoted: Promoted) -> None:
    lake = promoted.home / "lake"
    with run_as_kubernetes(promoted.reference_file, lake) as running:
        wait_for(running, "/healthz", 200)
        ready = json.loads(wait_for(running, "/readyz", 200))
        assert ready["ready"] is True
        status, body = running.get("/model")
        assert status == 200
        assert json.loads(body)["reference"]["model"]["run_id"] == promoted.reference.model.run_id
        status, body = running.get("/predict?" + urlencode({"speed_zone": "100 km/hr"}))
        assert status == 200, body
        probability = json.loads(body)["probability"]
        assert 0.0 <= probability <= 1.0


def test_a_tampered_model_never_becomes_ready(promoted: Promoted, tmp_path: Path) -> None:
    # A copy of the lake with one byte of the model flipped (the promoted lake stays intact).
    lake = tmp_path / "lake"
    shutil.copytree(promoted.home / "lake", lake)
    lake.chmod(0o755)
    model = LocalLake(lake).path_for(promoted.reference.artifacts.model.uri)
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01
    model.write_bytes(bytes(data))
    with run_as_kubernetes(promoted.reference_file, lake) as running:
        wait_for(running, "/healthz", 200)
        time.sleep(3)  # give the workers time to (fail to) verify
        body = wait_for(running, "/readyz", 503)
        assert running.get("/readyz")[0] == 503
        assert str(lake) not in body.decode() and "/home/crashed" not in body.decode(), body
        assert running.get("/predict?" + urlencode({"speed_zone": "100 km/hr"}))[0] == 503


def test_the_images_cli_runs_read_only_as_the_pod_user() -> None:
    done = subprocess.run(
        ["docker", "run", "--rm", "--read-only", "--user", "10001:10001", IMAGE, "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "inference" in done.stdout and "pipelines" in done.stdout
    whoami = subprocess.run(
        ["docker", "run", "--rm", "--entrypoint", "id", IMAGE, "-u"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert whoami.stdout.strip() == "10001"
