"""The Orchestrator port on this machine: deploy a version, start detached runs, see them in flight.

The runs are the real ``crashed pipelines crashed_pipeline run-local`` processes, on an empty
home (so they fail fast at ``extract``: no crashes loaded), which is enough to follow one from
start to its recorded end.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from crashed.adapters.local_orchestrator import LocalOrchestrator
from crashed.pipeline.compiler import CompiledPipeline, compile_pipeline
from crashed.pipeline.spec import CRASHED_PIPELINE
from crashed.ports import Orchestrator
from crashed.processes import process_start
from crashed.settings import Settings

REPO = Path(__file__).resolve().parents[2]


def _compiled(tmp_path: Path, image: str = "registry.example.com/crashed:1") -> CompiledPipeline:
    settings = Settings(_env_file=None, crashed_image=image, crashed_home=tmp_path / "home")
    return compile_pipeline(CRASHED_PIPELINE, settings, tmp_path / image[-1] / "p.yaml")


def _orchestrator(tmp_path: Path) -> LocalOrchestrator:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRASHED_", "GITLAB_"))}
    env["PYTHONPATH"] = str(REPO / "src")
    return LocalOrchestrator(tmp_path / "home", env=env, cwd=tmp_path)


def _wait_finished(orchestrator: LocalOrchestrator, run_id: str, timeout: float = 180) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = orchestrator.run(run_id).status
        if status not in ("pending", "running"):
            return status
        time.sleep(0.5)
    raise AssertionError(f"run {run_id} still in flight after {timeout}s")


def test_deploy_installs_a_version_once_and_dry_runs(tmp_path: Path) -> None:
    orchestrator = _orchestrator(tmp_path)
    first = _compiled(tmp_path, "registry.example.com/crashed:1")

    done = orchestrator.deploy(first)
    again = orchestrator.deploy(first)
    second = _compiled(tmp_path, "registry.example.com/crashed:2")
    plan = orchestrator.deploy(second, dry_run=True)

    assert isinstance(orchestrator, Orchestrator)
    assert [a.verb for a in done.actions] == ["install-version", "switch-version"]
    assert again.actions == [] and not again.changed
    assert [a.verb for a in plan.actions] == ["install-version", "switch-version"]
    deployed = orchestrator.deployed("crashed_pipeline")
    assert (
        deployed is not None and deployed["version"] == first.version
    )  # the dry run changed nothing
    assert Path(deployed["path"]).read_bytes() == first.path.read_bytes()
    assert not (
        tmp_path / "home" / "pipelines" / "crashed_pipeline-prod" / f"{second.version}.yaml"
    ).exists()


@pytest.mark.slow
def test_a_started_run_is_in_flight_until_its_process_ends(tmp_path: Path) -> None:
    orchestrator = _orchestrator(tmp_path)
    compiled = _compiled(tmp_path)
    orchestrator.deploy(compiled)

    info = orchestrator.start_run(
        "crashed_pipeline", {"train_start": "2018-01-01"}, reason="drift: day_of_week PSI 0.4"
    )

    assert info.status == "running" and info.pid is not None and info.version == compiled.version
    assert [r.run_id for r in orchestrator.runs_in_flight("crashed_pipeline")] == [info.run_id]
    assert orchestrator.runs_in_flight("crashed_pipeline", environment="dev") == []
    assert _wait_finished(orchestrator, info.run_id) == "failed"  # nothing loaded: extract fails
    assert orchestrator.runs_in_flight("crashed_pipeline") == []
    record = json.loads((tmp_path / "home" / "runs" / f"{info.run_id}.json").read_text())
    assert record["parameters"] == {"train_start": "2018-01-01"}
    assert record["reason"] == "drift: day_of_week PSI 0.4"
    assert record["status"] == "failed" and record["pid"] == info.pid
    summary = json.loads((tmp_path / "home" / "runs" / f"{info.run_id}.summary.json").read_text())
    assert summary["run_id"] == info.run_id and summary["version"] == compiled.version
    assert summary["failed_step"] == "extract"
    assert f"run {info.run_id}" in Path(info.url).read_text()  # the log


def test_a_recycled_pid_is_not_a_run_in_flight(tmp_path: Path) -> None:
    orchestrator = _orchestrator(tmp_path)
    runs = tmp_path / "home" / "runs"
    runs.mkdir(parents=True)
    base = {
        "pipeline": "crashed_pipeline",
        "environment": "prod",
        "status": "running",
        "pid": os.getpid(),  # alive: this test process
        "started_at": "2026-01-01T00:00:00.000000Z",
        "parameters": {},
        "reason": "",
        "log": "",
    }
    mine = {**base, "run_id": "local-a", "pid_started": process_start(os.getpid())}
    recycled = {**base, "run_id": "local-b", "pid_started": "1"}  # started long before
    for record in (mine, recycled):
        (runs / f"{record['run_id']}.json").write_text(json.dumps(record))

    in_flight = orchestrator.runs_in_flight("crashed_pipeline")

    assert [r.run_id for r in in_flight] == ["local-a"]
    assert orchestrator.run("local-b").status == "failed"  # ended without a summary
    assert sys.platform != "linux" or process_start(os.getpid()) is not None
