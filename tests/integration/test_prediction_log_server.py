"""The prediction log through a real gunicorn server, read back by ``crashed monitor run``.

A promoted model (a real published run, committed as ``model-reference.json`` on the local Git
host's target branch), ``crashed inference start-prod`` with a 1-second flush interval, traffic
drawn from ``crashed.synthetic.generate_crashes`` sent as real requests (GET with ids and
1,000-row batches): the rows land in the lake's log within the interval, and the monitor reads
them — no drift for traffic like training, drift and a decided trigger for traffic skewed to one
day and hour. The e2e trigger test (``tests/e2e/test_monitor_trigger.py``) reuses these helpers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import requests
from tests.published_run import published_run
from tests.servers.procs import Server, free_port, start_server

from crashed.adapters.local_lake import LocalLake
from crashed.core.crash_schema import normalise, read_crash_csv
from crashed.core.encoder import FeatureError
from crashed.core.features import COUNT_FEATURES, RAW_FEATURES
from crashed.core.model_bundle import ModelBundle
from crashed.core.reference import PromotedReference, render_reference
from crashed.monitoring.log_reader import read_log
from crashed.settings import Settings
from crashed.synthetic import generate_crashes, write_csv

pytestmark = pytest.mark.slow  # gunicorn, git and the CLI in subprocesses

REPO = Path(__file__).resolve().parents[2]
REFERENCE = "model-reference.json"
FLUSH_SECONDS = 1.0


@dataclass
class Home:
    """A CRASHED_HOME with a promoted model, its Git repo and the environment to run in."""

    path: Path
    repo: Path
    reference: PromotedReference
    env: dict[str, str]

    @property
    def lake(self) -> LocalLake:
        return LocalLake(self.path / "lake")

    def settings(self) -> Settings:
        return Settings(_env_file=None, crashed_home=self.path)  # type: ignore[call-arg]

    def logged(self) -> pd.DataFrame:
        today = datetime.now(UTC).date()
        return read_log(
            self.lake,
            self.settings().lake_uri(),
            self.reference.model.name,
            self.reference.artifacts.model.sha256,
            date(today.year, 1, 1),
            today,
        )

    def crashed(self, *args: str, env: dict[str, str] | None = None) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "crashed", *args],
            env=self.env | (env or {}),
            cwd=self.path.parent,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, f"crashed {args}: {done.stdout[-2000:]}{done.stderr[-3000:]}"
        return done.stdout


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
        check=True,
        capture_output=True,
    )


def promoted_home(root: Path) -> Home:
    """A home whose lake holds a real published run, promoted on the repo's ``main``."""
    home, repo = root / "home", root / "repo"
    repo.mkdir(parents=True)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CRASHED_", "GITLAB_", "GATE_", "TRAIN_", "LAKE_", "MONITOR_"))
    }
    env |= {
        "CRASHED_HOME": str(home),
        "CRASHED_REPO": str(repo),
        "CRASHED_PLATFORM": "local",
        "CRASHED_MODEL_REFERENCE": str(repo / REFERENCE),
        "PREDICTION_LOG_FLUSH_SECONDS": str(FLUSH_SECONDS),
        "PYTHONPATH": str(REPO / "src"),
    }
    bucket = Settings(_env_file=None, crashed_home=home).lake_bucket  # type: ignore[call-arg]
    reference = published_run().publish_as(LocalLake(home / "lake"), "run-served", bucket=bucket)
    (repo / REFERENCE).write_text(render_reference(reference))
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", REFERENCE)
    git(repo, "commit", "-qm", "promote run-served")
    return Home(home, repo, reference, env)


def serve(home: Home, workers: int = 2) -> Server:
    port = free_port()
    env = home.env | {"WEB_CONCURRENCY": str(workers), "GUNICORN_THREADS": "4"}
    command = [sys.executable, "-m", "crashed", "inference", "start-prod", "--bind"]
    server = start_server(
        [*command, f"127.0.0.1:{port}"],
        port=port,
        log=home.path / f"server-{port}.log",
        env=env,
        timeout=90,
        cwd=home.path.parent,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{server.url}/readyz", timeout=10).status_code == 200:
                return server
        except requests.RequestException:
            pass
        time.sleep(0.1)
    server.stop()
    raise AssertionError(f"server not ready:\n{server.log.read_text()[-3000:]}")


def traffic(home: Home, rows: int, seed: int, skew: bool = False) -> list[dict[str, str]]:
    """Synthetic crashes of Jan–Sep 2018 (the training period) as request instances, each with
    a client id; ``skew``: all on Saturday at 02:30. Rows with a category the served model never
    saw (rare values) are left out: they are 400s, not predictions."""
    encoder = ModelBundle.from_bytes(
        home.lake.get_bytes(home.reference.artifacts.model.uri)
    ).encoder
    path = Path(f"/tmp/crashed-log-traffic-{os.getpid()}-{rows}-{seed}.csv")
    write_csv(
        generate_crashes(rows, seed=seed, start=date(2018, 1, 1), end=date(2018, 9, 30)), path
    )
    try:
        frame = normalise(read_crash_csv(path), source=str(path))
    finally:
        path.unlink(missing_ok=True)
    if skew:
        frame["day_of_week"] = "Saturday"
        frame["accident_time"] = "02:30:00"
    instances = []
    for index, row in enumerate(frame[list(RAW_FEATURES)].itertuples(index=False)):
        instance = {"id": f"S{seed}-{index:06d}"}
        for feature, value in zip(RAW_FEATURES, row, strict=True):
            if not pd.isna(value):
                instance[feature] = str(int(value)) if feature in COUNT_FEATURES else str(value)
        try:
            encoder.encode_one(encoder.resolve({k: v for k, v in instance.items() if k != "id"}))
        except FeatureError:
            continue
        instances.append(instance)
    return instances


def send(server: Server, instances: list[dict[str, str]], gets: int = 20) -> None:
    """The first ``gets`` instances as GET requests, the rest as batches of up to 1,000."""
    with requests.Session() as session:
        for instance in instances[:gets]:
            answer = session.get(f"{server.url}/predict", params=instance, timeout=30)
            assert answer.status_code == 200, answer.text
        rest = instances[gets:]
        for start in range(0, len(rest), 1000):
            body = {"instances": rest[start : start + 1000]}
            answer = session.post(f"{server.url}/predict", json=body, timeout=60)
            assert answer.status_code == 200, answer.text


def wait_logged(home: Home, rows: int, timeout: float = 60.0) -> pd.DataFrame:
    deadline = time.monotonic() + timeout
    while True:
        frame = home.logged()
        if len(frame) >= rows or time.monotonic() > deadline:
            return frame
        time.sleep(0.2)


def monitor_json(home: Home, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    out = home.crashed("monitor", "run", "--json", *args, env=env)
    return json.loads(out[out.index("\n{") + 1 :] if not out.startswith("{") else out)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    return promoted_home(tmp_path_factory.mktemp("prediction-log"))


@pytest.fixture(scope="module")
def server(home: Home) -> Iterator[Server]:
    server = serve(home)
    yield server
    server.stop()


def test_logged_within_the_interval_then_no_drift_then_drift(home: Home, server: Server) -> None:
    like_training = traffic(home, 1500, seed=21)
    sent_at = time.monotonic()
    send(server, like_training)
    frame = wait_logged(home, len(like_training))
    # every prediction is in the lake within the flush interval (plus a loaded machine's slack)
    assert len(frame) == len(like_training), (
        f"{len(frame)} rows after {time.monotonic() - sent_at}s"
    )
    assert set(frame["client_id"]) == {i["id"] for i in like_training}
    assert (frame["source"] == "get").sum() == 20 and (frame["source"] == "batch").sum() == len(
        frame
    ) - 20
    assert set(frame["run_id"]) == {"run-served"}
    first = frame[frame["client_id"] == like_training[0]["id"]].iloc[0]
    assert first["day_of_week"] == like_training[0]["day_of_week"]
    metrics = requests.get(f"{server.url}/metrics", timeout=10).text
    assert "crashed_prediction_log_written_total" in metrics
    assert "crashed_prediction_log_dropped_total 0.0" in metrics

    calm = monitor_json(home)
    assert calm["rows"] == len(like_training)
    assert calm["drift"] is False, calm["features"]
    assert calm["trigger"]["decided"] is False
    assert calm["quality"] is None  # no outcomes in the warehouse

    skewed = traffic(home, 3000, seed=22, skew=True)
    send(server, skewed)
    total = len(like_training) + len(skewed)
    assert len(wait_logged(home, total)) == total
    drifted = monitor_json(home)
    assert drifted["rows"] == total
    assert drifted["drift"] is True
    flagged = {name for name, f in drifted["features"].items() if f["drifted"]}
    assert {"day_of_week", "hour"} <= flagged, drifted["features"]
    assert drifted["trigger"]["decided"] is True
    assert drifted["trigger"]["started_run"] is None  # not asked to act: no --trigger


def test_graceful_shutdown_flushes_what_is_queued(tmp_path: Path) -> None:
    """A flush interval longer than the test: only the final flush on shutdown writes."""
    home = promoted_home(tmp_path)
    home.env["PREDICTION_LOG_FLUSH_SECONDS"] = "3600"
    server = serve(home)
    try:
        instances = traffic(home, 40, seed=23)
        sent = len(instances)
        send(server, instances, gets=sent)
        time.sleep(0.5)
        assert len(home.logged()) == 0
    finally:
        server.stop()  # SIGTERM: gunicorn stops its workers gracefully (worker_exit flushes)
    assert len(home.logged()) == sent
