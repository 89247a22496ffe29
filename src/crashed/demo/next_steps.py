"""The runnable commands printed at the end of the demo."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path


def program() -> str:
    """How to call ``crashed`` from here: the venv's script (relative) or the bare name."""
    exe = Path(sys.executable).with_name("crashed")
    return os.path.relpath(exe) if exe.is_file() else "crashed"


def next_steps(base: str, home: Path, repo: Path, prog: str) -> list[tuple[str, str]]:
    """(command, what it shows) pairs; the model commands carry the demo's environment
    (home, sandbox repository *and* its model reference, which is what serves)."""
    home_only = f"CRASHED_HOME={shlex.quote(str(home))}"
    env = " ".join(
        f"{name}={shlex.quote(str(value))}"
        for name, value in (
            ("CRASHED_HOME", home),
            ("CRASHED_REPO", repo),
            ("CRASHED_MODEL_REFERENCE", repo / "model-reference.json"),
        )
    )
    return [
        (f"curl '{base}/predict?accident_time=14:00&day_of_week=Tuesday'", "try other crashes"),
        (f"curl {base}/openapi.json", "every feature, its allowed values, every endpoint"),
        (f"curl {base}/metrics", "Prometheus metrics"),
        ("make demo", "another run: new data, a new proposal, approve, hot reload"),
        (f"{env} {prog} models proposals", "the review queue"),
        (f"{env} {prog} models show", "what is deployed"),
        (
            f"{env} {prog} monitor run --trigger",
            "drift and live quality of the logged traffic; a decided retrain starts one run",
        ),
        (f"{env} {prog} models history", "every promotion, from the repository's history"),
        (f"{home_only} {prog} demo --stop", "stop the inference server"),
    ]
