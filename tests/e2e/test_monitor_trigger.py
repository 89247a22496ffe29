"""The closed loop on this machine: served traffic → prediction log → ``crashed monitor run
--trigger`` → one detached ``run-local`` training run → its proposal says why it was retrained.

A promoted model served by real gunicorn, crashes in the DuckDB warehouse, traffic skewed to one
day and hour sent as real requests; the first ``--trigger`` starts exactly one run through the
local orchestrator, a second one within the cooldown starts none; the run is followed through
its record in ``$CRASHED_HOME/runs/`` to its end, and its local proposal's report names the
trigger.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tests.integration.test_prediction_log_server import (
    monitor_json,
    promoted_home,
    send,
    serve,
    traffic,
    wait_logged,
)

from crashed.adapters.local_orchestrator import LocalOrchestrator
from crashed.synthetic import generate_crashes, write_csv

pytestmark = pytest.mark.slow

# The triggered run trains on the warehouse's crashes; these keep it short and let its candidate
# through the gate (the test is about the trigger reaching the report, not about the gate).
RUN_ENV = {
    "TRAIN_MAX_ROUNDS": "60",
    "GATE_MIN_ROC_AUC": "0.5",
    "GATE_MAX_ROC_AUC_DROP": "1",
    "GATE_MAX_PR_AUC_DROP": "1",
}


def test_drift_triggers_one_run_whose_proposal_names_the_trigger(tmp_path: Path) -> None:
    home = promoted_home(tmp_path)
    csv = tmp_path / "crashes.csv"
    today = datetime.now(UTC).date()  # the triggered run uses the default, relative windows
    crashes = generate_crashes(8_000, seed=31, start=today - timedelta(days=500), end=today)
    write_csv(crashes, csv)
    home.crashed("data", "load", "--csv", str(csv))

    server = serve(home)
    try:
        skewed = traffic(home, 1500, seed=32, skew=True)
        send(server, skewed)
        assert len(wait_logged(home, len(skewed))) == len(skewed)
    finally:
        server.stop()

    first = monitor_json(home, "--trigger", env=RUN_ENV)
    assert first["drift"] is True and first["trigger"]["decided"] is True
    run_id = first["trigger"]["started_run"]
    assert run_id, first["trigger"]
    second = monitor_json(home, "--trigger", env=RUN_ENV)
    assert second["trigger"]["decided"] is True
    assert second["trigger"]["started_run"] is None
    assert second["trigger"]["skipped"].startswith("cooldown: run " + run_id)
    records = [p for p in (home.path / "runs").glob("*.json") if ".summary." not in p.name]
    assert [json.loads(p.read_text())["run_id"] for p in records] == [run_id]

    orchestrator = LocalOrchestrator(home.path)
    deadline = time.monotonic() + 600
    while (status := orchestrator.run(run_id).status) in ("pending", "running"):
        assert time.monotonic() < deadline, f"run {run_id} still {status}"
        time.sleep(1)
    log = (home.path / "runs" / f"{run_id}.log").read_text(errors="replace")
    assert status == "succeeded", log[-3000:]

    summary = json.loads((home.path / "runs" / f"{run_id}.summary.json").read_text())
    assert summary["proposal"] is not None, log[-3000:]
    proposal = json.loads(
        (home.path / "proposals" / f"{summary['proposal']['id']}.json").read_text()
    )
    reason = first["trigger"]["reason"]
    assert f"**Why this retrain:** monitor: {reason}" in proposal["description"]
    assert reason.startswith("drift")
