"""The monitor in-process over port fakes: no drift on traffic like training, drift and one
triggered run on skewed traffic (cooldown, in flight), live quality → a rollback proposal."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tests.factories import log_predictions
from tests.fakes import FakeOrchestrator, FakePorts

from crashed.core.crash_schema import normalise, read_crash_csv
from crashed.core.reference import PromotedReference, parse_reference
from crashed.errors import InputError
from crashed.monitoring.contracts import MonitorOutput
from crashed.pipeline.ops import run_in_process
from crashed.pipeline.ops.registry import execute, op_input
from crashed.pipeline.spec import CRASHED_PIPELINE
from crashed.settings import Settings
from crashed.synthetic import generate_crashes, write_csv

WINDOWS = {
    "train_start": "2018-01-01",
    "train_end": "2018-09-30",
    "validation_start": "2018-10-01",
    "validation_end": "2018-12-31",
}
DAY = date(2026, 11, 30)


def crashes(rows: int, seed: int, start: date = date(2018, 1, 1), end: date = date(2018, 12, 31)):  # type: ignore[no-untyped-def]
    path = Path(f"/tmp/crashed-monitor-test-{rows}-{seed}-{start}.csv")
    write_csv(generate_crashes(rows, seed=seed, start=start, end=end), path)
    try:
        return normalise(read_crash_csv(path), source=str(path))
    finally:
        path.unlink(missing_ok=True)


def settings_for(home: Path, **overrides: object) -> Settings:
    values = {"crashed_home": home, "train_max_rounds": 60, "monitor_min_rows": 200, **overrides}
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def promote(settings: Settings, ports: FakePorts, run_id: str, **params: str) -> PromotedReference:
    run_in_process(CRASHED_PIPELINE, settings, ports, run_id, "2019-01-01", {**WINDOWS, **params})
    ports.git_host.merge("model-update/crashed")
    reference = parse_reference(ports.git_host.files["model-reference.json"], "test")
    assert isinstance(reference, PromotedReference) and reference.model.run_id == run_id
    return reference


def log_traffic(
    settings: Settings,
    ports: FakePorts,
    reference: PromotedReference,
    traffic: pd.DataFrame,
    client_ids: list[str] | None = None,
) -> np.ndarray:
    return log_predictions(ports.lake, settings, reference, traffic, DAY, client_ids)


def monitor(
    settings: Settings, ports: FakePorts, orchestrator=None, trigger: bool = False
) -> MonitorOutput:  # type: ignore[no-untyped-def]
    values = {"run_id": "monitor-1", "run_date": DAY.isoformat(), "trigger": trigger}
    out = execute(settings, ports, "monitor", op_input("monitor", values), orchestrator)
    assert isinstance(out, MonitorOutput)
    return out


@pytest.fixture
def production(tmp_path: Path):  # type: ignore[no-untyped-def]
    settings = settings_for(tmp_path)
    ports = FakePorts()
    ports.warehouse.load_frame("crashes_raw", crashes(12_000, seed=3))
    return settings, ports, promote(settings, ports, "run-1")


def test_traffic_like_training_shows_no_drift(production) -> None:  # type: ignore[no-untyped-def]
    settings, ports, reference = production
    log_traffic(settings, ports, reference, crashes(1500, seed=11, end=date(2018, 9, 30)))

    out = monitor(settings, ports)

    assert (out.rows, out.model_run_id, out.drift) == (1500, "run-1", False)
    assert out.since == "2026-11-24" and out.until == "2026-11-30"
    assert set(out.features) >= {"day_of_week", "light_condition", "hour", "males"}
    assert max(f.psi for f in out.features.values()) < 0.1
    assert out.score_psi is not None and out.score_psi < 0.1
    assert not out.trigger.decided and out.trigger.started_run is None
    assert out.quality is None  # the warehouse holds no outcome for these ids
    assert out.report_uri and b"## Monitoring" in ports.lake.get_bytes(out.report_uri)


def test_skewed_traffic_triggers_exactly_one_run_whose_report_names_it(production) -> None:  # type: ignore[no-untyped-def]
    settings, ports, reference = production
    traffic = crashes(1500, seed=12, end=date(2018, 9, 30))
    traffic["day_of_week"] = "Saturday"
    traffic["accident_time"] = "02:30:00"
    log_traffic(settings, ports, reference, traffic)
    orchestrator = FakeOrchestrator()

    observed = monitor(settings, ports)  # without --trigger: decided, nothing started
    assert observed.drift and observed.trigger.decided
    assert {"day_of_week", "hour"} <= {n for n, f in observed.features.items() if f.drifted}
    assert observed.trigger.skipped and orchestrator.runs == []

    first = monitor(settings, ports, orchestrator, trigger=True)
    assert first.trigger.started_run == "fake-run-1"
    (run,) = orchestrator.runs
    assert run.pipeline == "crashed_pipeline"
    assert run.parameters["trigger_reason"].startswith("monitor: drift on 1500")

    again = monitor(settings, ports, orchestrator, trigger=True)
    assert again.trigger.started_run is None and "cooldown" in (again.trigger.skipped or "")
    assert len(orchestrator.runs) == 1

    no_cooldown = settings_for(settings.home, monitor_cooldown_hours=0)
    in_flight = monitor(no_cooldown, ports, orchestrator, trigger=True)
    assert "in flight" in (in_flight.trigger.skipped or "") and len(orchestrator.runs) == 1

    # The triggered run (on the data that arrived since) proposes a model and says why it ran.
    ports.warehouse.load_frame("crashes_raw", crashes(12_000, seed=5))
    forced = {**run.parameters, "force_promotion": "true"}
    run_in_process(CRASHED_PIPELINE, settings, ports, "run-2", "2019-01-01", {**WINDOWS, **forced})
    proposal = ports.git_host.proposals["model-update/crashed"]
    assert "**Why this retrain:** monitor: drift on 1500 logged predictions" in proposal.description


def test_live_quality_below_the_gate_opens_a_rollback_proposal(production) -> None:  # type: ignore[no-untyped-def]
    settings, ports, first = production
    # A second promotion (other data, forced), then traffic whose outcomes contradict it.
    ports.warehouse.load_frame("crashes_raw", crashes(12_000, seed=4))
    second = promote(settings, ports, "run-2", force_promotion="true")
    assert second.artifacts.model.sha256 != first.artifacts.model.sha256
    traffic = crashes(1500, seed=13, end=date(2018, 9, 30))
    traffic["accident_no"] = [f"T{i:06d}" for i in range(len(traffic))]
    p = log_traffic(settings, ports, second, traffic, traffic["accident_no"].tolist())
    outcomes = traffic.assign(alcohol_related=p < np.quantile(p, 0.05))  # the least likely crash
    table = ports.warehouse.tables["crashes_raw"]
    ports.warehouse.load_frame("crashes_raw", pd.concat([table, outcomes], ignore_index=True))

    out = monitor(settings, ports, FakeOrchestrator(), trigger=True)

    assert out.quality is not None and out.quality.breach
    assert out.quality.positives == int((p < np.quantile(p, 0.05)).sum())
    assert out.quality.roc_auc is not None and out.quality.roc_auc < 0.5
    assert out.rollback.decided and out.rollback.proposal
    proposal = ports.git_host.proposals["model-rollback/crashed"]
    assert (
        proposal.changes[0].content == ports.git_host.revisions["model-reference.json"][0].content
    )
    assert "live quality below the gate" in proposal.description
    # Never merged: production is still the second model.
    assert (
        ports.git_host.files["model-reference.json"]
        == ports.git_host.revisions["model-reference.json"][1].content
    )


def test_without_a_promoted_model_nothing_is_decided(tmp_path: Path) -> None:
    out = monitor(settings_for(tmp_path), FakePorts(), FakeOrchestrator(), trigger=True)
    assert (out.rows, out.model, out.drift) == (0, None, False)
    assert out.trigger.reason == "no model has been promoted yet"


def test_a_bad_window_is_an_input_error(tmp_path: Path) -> None:
    values = {"run_id": "m-1", "run_date": "2026-11-30", "since": "2026-12-05"}
    with pytest.raises(InputError, match="since 2026-12-05 is after until 2026-11-30"):
        execute(settings_for(tmp_path), FakePorts(), "monitor", op_input("monitor", values))
    with pytest.raises(InputError, match="trigger"):
        op_input("monitor", {"run_id": "m-1", "run_date": "2026-11-30", "trigger": "perhaps"})
