"""The demo's own pieces: next steps carry the served reference, no-proposal explanations."""

from __future__ import annotations

import shlex
from datetime import date
from pathlib import Path

from crashed.core.windows import resolve_windows
from crashed.demo.next_steps import next_steps
from crashed.demo.outcome import explain_no_proposal, failed_rules
from crashed.demo.steps import demo_env, synthetic_window


def _env_of(command: str) -> dict[str, str]:
    words = shlex.split(command)
    return dict(w.split("=", 1) for w in words if "=" in w and not w.startswith(("http", "'")))


def test_model_commands_name_the_reference_that_serves(tmp_path: Path) -> None:
    home, repo = tmp_path / "home dir", tmp_path / "home dir" / "demo" / "repo"
    steps = dict((what, command) for command, what in next_steps("http://h:1", home, repo, "c"))
    deployed = _env_of(steps["what is deployed"])
    assert deployed == {
        "CRASHED_HOME": str(home),
        "CRASHED_REPO": str(repo),
        "CRASHED_MODEL_REFERENCE": str(repo / "model-reference.json"),
    }
    assert shlex.split(steps["what is deployed"])[-3:] == ["c", "models", "show"]
    # the same reference the demo's own steps (and its server) use
    assert deployed["CRASHED_MODEL_REFERENCE"] == demo_env(home, repo)["CRASHED_MODEL_REFERENCE"]
    assert _env_of(steps["stop the inference server"]) == {"CRASHED_HOME": str(home)}


def test_synthetic_window_covers_the_default_pipeline_windows() -> None:
    today = date(2026, 12, 2)
    start, end = synthetic_window(today)
    windows = resolve_windows(today).as_dict()
    assert end == date(2026, 12, 1)
    assert start.isoformat() <= windows["train_start"]
    assert windows["validation_end"] <= end.isoformat()


GATE = {
    "passed": False,
    "rules": [
        {"name": "ROC-AUC floor", "passed": True, "detail": "candidate ROC-AUC 0.85 vs 0.70"},
        {
            "name": "ROC-AUC no worse than production",
            "passed": False,
            "detail": "candidate 0.8400 vs production 0.8700 (Δ -0.0300, allowed drop 0.010)",
        },
    ],
}
WINDOWS = {"validation_start": "2018-10-01", "validation_end": "2018-12-31"}


def test_a_failed_gate_is_explained_with_its_numbers() -> None:
    summary = {"gate": GATE, "decision": "Not proposed: failed rule(s): ROC-AUC no worse."}
    assert failed_rules(summary) == [GATE["rules"][1]["detail"]]
    lines = explain_no_proposal(summary, "run-7", WINDOWS)
    assert lines[0] == "nothing to review: Not proposed: failed rule(s): ROC-AUC no worse."
    assert lines[1] == "  failed: " + GATE["rules"][1]["detail"]
    assert "run run-7" in lines[2] and "2018-10-01 .. 2018-12-31" in lines[2]
    assert "force_promotion=true" in lines[3]


def test_identical_candidate_needs_no_force_and_no_model_says_so() -> None:
    summary = {"gate": {"passed": True, "rules": []}, "decision": "byte-identical"}
    assert explain_no_proposal(summary, "run-1", WINDOWS)[1:] == [
        "the model already approved (run run-1) keeps serving: the gate compared it with this "
        "run's candidate on the same validation window (2018-10-01 .. 2018-12-31)"
    ]
    assert explain_no_proposal({}, None, WINDOWS) == [
        "nothing to review: the candidate matches production",
        "no model has been approved yet, so there is nothing to serve",
    ]
