"""`crashed demo` twice in a fresh CRASHED_HOME: the whole loop, then a hot reload; the
printed next steps run as printed."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from tests.servers.procs import free_port

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_demo_runs_twice_and_serves_the_approved_model(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRASHED_", "GITLAB_"))}
    env |= {"CRASHED_HOME": str(tmp_path / "home"), "WEB_CONCURRENCY": "2"}
    # The loop, not the model's quality, is under test here: fewer rounds and resamples.
    env |= {"TRAIN_MAX_ROUNDS": "150", "GATE_BOOTSTRAP_RESAMPLES": "200"}
    command = [sys.executable, "-m", "crashed", "demo", "--rows", "15000", "--port", str(port)]
    try:
        outputs = []
        for _ in range(2):
            result = subprocess.run(
                command, env=env, cwd=tmp_path, text=True, capture_output=True, timeout=900
            )
            assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
            outputs.append(result.stdout)
        first, second = outputs
        assert "Approve proposal #1" in first
        assert '"probability"' in first and "Next steps" in first
        assert "Approve proposal #2" in second
        # the monitor step: requests with ids reached the prediction log, the monitor read them
        for output in outputs:
            assert "7. Monitor" in output
            flushed = re.search(r"  (\d+) of (\d+) predictions \(steps 6 and 7\) flushed", output)
            assert flushed is not None and int(flushed[1]) >= int(flushed[2]), output[-3000:]
            summary = re.search(r": (\d+) predictions, drift (YES|no)", output)
            # the served model's rows: step 6's prediction and step 7's
            assert summary is not None and int(summary[1]) >= int(flushed[2]), output[-3000:]
            assert "monitor run --trigger" in output and "models history" in output
        reload = re.search(r"during the reload: (\d+) requests answered, (\d+) failed", second)
        assert "crashed inference reload" in second and reload is not None
        repo = tmp_path / "home" / "demo" / "repo"
        reference = json.loads((repo / "model-reference.json").read_text())
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/model", timeout=10) as response:
            served = json.loads(response.read())
        assert served["model"]["run_id"] == reference["model"]["run_id"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/predict", timeout=10) as response:
            body = json.loads(response.read())
        assert 0.0 <= body["probability"] <= 1.0
        # the printed "what is deployed" step, run as printed, names the model that serves
        lines = second.splitlines()
        shown = lines[lines.index("      what is deployed") - 1].strip()
        deployed = subprocess.run(
            ["bash", "-c", shown], env=env, cwd=tmp_path, text=True, capture_output=True,
            timeout=120,
        )  # fmt: skip
        assert deployed.returncode == 0, deployed.stderr
        assert f"run {served['model']['run_id']}" in deployed.stdout
        # last: a switch drops nothing (issue 10 item 1, the serving side's reload)
        assert int(reload[1]) > 0 and int(reload[2]) == 0, reload[0]
    finally:
        subprocess.run(
            [*command[:4], "--stop"], env=env, cwd=tmp_path, timeout=60, capture_output=True
        )
    pid_file = tmp_path / "home" / "demo" / "gunicorn.pid"
    assert not pid_file.exists()
