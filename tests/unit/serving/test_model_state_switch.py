"""ModelState.switch: the new model is verified beside the served one and swapped only when good."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from typing import TYPE_CHECKING

import pytest

from crashed.serving.app import create_app
from crashed.serving.model_state import ModelState

if TYPE_CHECKING:
    from tests.serving_fixtures import Served, TrainedModel


def loaded(served: Served) -> ModelState:
    state = ModelState.from_settings(served.settings, served.lake)
    assert state.load()
    return state


def reference_sha(served: Served) -> str:
    return hashlib.sha256(served.reference_path.read_bytes()).hexdigest()


def test_switch_swaps_to_the_verified_new_model(
    served: Served, small_model_b: TrainedModel
) -> None:
    state = loaded(served)
    run_b = served.publish(small_model_b, "run-b")
    served.set_reference(run_b)
    assert state.switch() is True
    assert state.model is not None and state.model.info["run_id"] == "run-b"
    assert state.model.info["sha256"] == run_b.artifacts.model.sha256
    assert state.served_reference_sha256 == reference_sha(served)
    assert state.last_load is not None and state.last_load["ok"] is True
    assert state.describe()["reference_sha256"] == reference_sha(served)


def test_an_unchanged_reference_is_not_reloaded(served: Served) -> None:
    state = loaded(served)
    model = state.model
    attempts = state.attempts
    assert state.switch() is True
    assert state.model is model and state.attempts == attempts


@pytest.mark.parametrize("breakage", ["checksum", "not-json", "no-model-promoted", "missing"])
def test_a_bad_reference_keeps_the_old_model(
    served: Served, breakage: str, caplog: pytest.LogCaptureFixture
) -> None:
    state = loaded(served)
    model = state.model
    if breakage == "checksum":
        data = json.loads(served.reference_path.read_text())
        data["artifacts"]["model"]["sha256"] = "0" * 64
        served.reference_path.write_text(json.dumps(data))
    elif breakage == "not-json":
        served.reference_path.write_text("{")
    elif breakage == "no-model-promoted":
        served.set_reference(None)
    else:
        served.reference_path.unlink()
    with caplog.at_level(logging.ERROR, logger="crashed.serving.model_state"):
        assert state.switch() is False
    assert state.model is model and state.ready
    body = state.describe()
    assert body["ready"] is True and body["model"]["run_id"] == "run-a"
    assert body["last_load"]["ok"] is False and body["last_load"]["reason"]
    assert str(served.home) not in json.dumps(body)  # no server path for clients
    assert any("model switch failed, still serving run-a" in r.getMessage() for r in caplog.records)
    client = create_app(state=state).test_client()
    assert client.get("/predict").get_json()["model"]["run_id"] == "run-a"


def test_requests_never_wait_for_a_switch(served: Served, small_model_b: TrainedModel) -> None:
    """The watcher thread loads; predictions meanwhile come from the old model, then the new."""
    state = loaded(served)
    state.start_watcher()
    client = create_app(state=state).test_client()
    served.set_reference(served.publish(small_model_b, "run-b"))
    state.request_switch()
    runs: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not runs or runs[-1] != "run-b"):
        response = client.get("/predict")
        assert response.status_code == 200
        runs.append(response.get_json()["model"]["run_id"])
    assert runs[-1] == "run-b"
    assert set(runs) <= {"run-a", "run-b"}
    assert any(t.name == "crashed-model-switch" for t in threading.enumerate())


def test_public_reason_hides_paths(served: Served) -> None:
    served.reference_path.unlink()
    state = ModelState.from_settings(served.settings, served.lake)
    assert state.load() is False
    assert str(served.reference_path) in state.reason  # the log keeps the path
    assert str(served.home) not in state.public_reason
    assert "model-reference.json" in state.public_reason
    assert state.public("at /srv/x/lake/a.json and gs://b/models/a.json") == (
        "at <server path>/a.json and gs://b/models/a.json"
    )
