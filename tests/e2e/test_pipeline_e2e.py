"""The pipeline end to end through the real CLI: compiled YAML run locally, real data targets,
validation failures, the gate, and proposals on both Git hosts (GitLab through the fake)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from crashed.adapters.duckdb_warehouse import DuckDBWarehouse
from crashed.adapters.local_lake import LocalLake
from crashed.core.reference import PromotedReference, parse_reference
from crashed.synthetic import generate_crashes, write_csv

REPO = Path(__file__).resolve().parents[2]
WINDOWS = {
    "train_start": "2018-01-01",
    "train_end": "2018-09-30",
    "validation_start": "2018-10-01",
    "validation_end": "2018-12-31",
}


def crashed(
    *args: str, env: dict[str, str], cwd: Path, check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "crashed", *args],
        env=env,
        cwd=cwd,
        text=True,
        capture_output=True,
        timeout=600,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"crashed {' '.join(args)} exited {result.returncode}:\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result


def scratch_repo(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "model-reference.json").write_text((REPO / "model-reference.json").read_text())
    git = ["git", "-C", str(path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "init"], check=True)
    return path


def base_env(home: Path, repo: Path, fast: bool = True) -> dict[str, str]:
    """The environment of a local run; ``fast`` caps boosting rounds and bootstrap resamples
    (the flows under test don't depend on them; the real-data test uses the defaults)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CRASHED_", "GITLAB_", "GATE_", "TRAIN_", "LAKE_"))
    }
    return {
        **env,
        "CRASHED_HOME": str(home),
        "CRASHED_REPO": str(repo),
        "PYTHONPATH": str(REPO / "src"),
        **({"TRAIN_MAX_ROUNDS": "120", "GATE_BOOTSTRAP_RESAMPLES": "200"} if fast else {}),
    }


def params(values: dict[str, str]) -> list[str]:
    return [a for k, v in values.items() for a in ("--param", f"{k}={v}")]


def run_local(
    summary: Path, env: dict[str, str], cwd: Path, values: dict[str, str] = WINDOWS
) -> subprocess.CompletedProcess[str]:
    """``crashed pipelines crashed_pipeline run-local`` with the window params; must succeed."""
    return crashed(
        "pipelines",
        "crashed_pipeline",
        "run-local",
        "--summary",
        str(summary),
        *params(values),
        env=env,
        cwd=cwd,
    )


@pytest.mark.real_data
def test_run_local_on_real_2018_data_meets_targets(tmp_path: Path, real_crashes_csv: Path) -> None:
    repo = scratch_repo(tmp_path / "repo")
    home = tmp_path / "home"
    env = base_env(home, repo, fast=False)
    crashed("data", "load", "--csv", str(real_crashes_csv), env=env, cwd=tmp_path)
    summary_file = tmp_path / "summary.json"
    run_local(summary_file, env, tmp_path)
    summary = json.loads(summary_file.read_text())
    assert summary["status"] == "succeeded"
    assert {n: s["status"] for n, s in summary["steps"].items()} == dict.fromkeys(
        ("extract", "validate", "analyse", "train", "evaluate", "publish"), "succeeded"
    )
    assert all(s["seconds"] > 0 for s in summary["steps"].values())
    lake = LocalLake(home / "lake")
    names = {a["name"] for a in summary["artifacts"]}
    assert names == {"model", "distributions", "metrics", "report"}
    for artifact in summary["artifacts"]:
        data = lake.get_bytes(artifact["uri"])
        assert hashlib.sha256(data).hexdigest() == artifact["sha256"]
        assert f"/models/crashed/{summary['run_id']}/" in artifact["uri"]
    assert summary["metrics"]["roc_auc"] >= 0.85
    assert summary["metrics"]["pr_auc"] >= 0.19
    assert summary["proposal"]["action"] == "created"


@pytest.fixture(scope="module")
def synthetic_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "crashes.csv"
    write_csv(
        generate_crashes(12_000, seed=5, start=date(2018, 1, 1), end=date(2018, 12, 31)), path
    )
    return path


def test_missing_columns_fail_validate_naming_them(tmp_path: Path) -> None:
    repo = scratch_repo(tmp_path / "repo")
    home = tmp_path / "home"
    frame = generate_crashes(2_000, seed=2)
    frame = frame.drop(columns=["alcohol_related", "speed_zone", "males"])
    frame["accident_date"] = pd.to_datetime(frame["accident_date"]).dt.date
    DuckDBWarehouse(home / "warehouse.duckdb", LocalLake(home / "lake")).load_frame(
        "crashes_raw", frame
    )
    result = crashed(
        "pipelines",
        "crashed_pipeline",
        "run-local",
        *params(WINDOWS),
        env=base_env(home, repo),
        cwd=tmp_path,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "validate" in output and "failed" in output
    for column in ("alcohol_related", "speed_zone", "males"):
        assert column in output
    assert "Traceback" not in output


def test_gate_failure_proposes_nothing_and_fails_only_when_asked(
    tmp_path: Path, synthetic_csv: Path
) -> None:
    repo = scratch_repo(tmp_path / "repo")
    home = tmp_path / "home"
    env = {**base_env(home, repo), "GATE_MIN_ROC_AUC": "0.99"}
    crashed("data", "load", "--csv", str(synthetic_csv), env=env, cwd=tmp_path)
    summary_file = tmp_path / "summary.json"
    result = run_local(summary_file, env, tmp_path)
    summary = json.loads(summary_file.read_text())
    assert summary["gate"]["passed"] is False
    assert summary["proposal"] is None
    assert summary["status"] == "succeeded"  # a refused candidate is not a failed run: exit 0
    failed = [rule["name"] for rule in summary["gate"]["rules"] if not rule["passed"]]
    assert failed == ["ROC-AUC floor"]
    verdict = result.stdout.strip().splitlines()[-1]  # the last line says what happened
    assert verdict.startswith("gate failed: ROC-AUC floor (candidate ROC-AUC")
    assert "Nothing was proposed; production keeps serving" in verdict
    assert verdict.endswith("--param force_promotion=true")
    assert not (home / "proposals").exists() or not list((home / "proposals").glob("*.json"))
    strict = crashed(
        "pipelines",
        "crashed_pipeline",
        "run-local",
        "--fail-on-gate",
        *params(WINDOWS),
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert strict.returncode == 6, strict.stderr[-2000:]  # README: 6 = the gate refused
    assert strict.stderr.strip().splitlines()[-1] == f"error: {verdict}"
    # Forcing is the publish op's decision, tested in process
    # (tests/unit/pipeline/test_ops_in_process.py::test_failing_gate_proposes_only_when_forced).


def test_local_flow_propose_approve_verify_and_tamper(tmp_path: Path, synthetic_csv: Path) -> None:
    repo = scratch_repo(tmp_path / "repo")
    home = tmp_path / "home"
    env = base_env(home, repo)
    crashed("data", "load", "--csv", str(synthetic_csv), env=env, cwd=tmp_path)
    summary_file = tmp_path / "summary.json"
    run_local(summary_file, env, tmp_path)
    proposal = json.loads(summary_file.read_text())["proposal"]
    review = crashed("models", "review", str(proposal["id"]), env=env, cwd=repo)
    assert "| ROC-AUC |" in review.stdout and "Gate rules" in review.stdout
    crashed("models", "approve", str(proposal["id"]), env=env, cwd=repo)
    reference = parse_reference((repo / "model-reference.json").read_text())
    assert isinstance(reference, PromotedReference)
    verify = crashed(
        "models", "verify", "--reference", str(repo / "model-reference.json"), env=env, cwd=repo
    )
    assert verify.returncode == 0
    # A second identical run: the model bytes equal production's, so nothing is proposed.
    run_local(summary_file, env, tmp_path)
    again = json.loads(summary_file.read_text())
    assert again["proposal"] is None
    assert "identical" in (again.get("decision") or "")
    # Flip one byte of the promoted model in the lake.
    model = LocalLake(home / "lake").path_for(reference.artifacts.model.uri)
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01
    model.write_bytes(bytes(data))
    tampered = crashed(
        "models",
        "verify",
        "--reference",
        str(repo / "model-reference.json"),
        env=env,
        cwd=repo,
        check=False,
    )
    assert tampered.returncode != 0
    assert "model" in tampered.stderr and "sha256" in tampered.stderr


def test_gitlab_flow_one_open_mr_and_no_token_anywhere(
    tmp_path: Path, synthetic_csv: Path, gitlab_fake
) -> None:
    repo = scratch_repo(tmp_path / "repo")
    home = tmp_path / "home"
    env = {
        **base_env(home, repo),
        "CRASHED_GIT_HOST": "gitlab",
        "GITLAB_URL": gitlab_fake.url,
        "GITLAB_PROJECT": gitlab_fake.project,
        "GITLAB_TOKEN": gitlab_fake.token,
    }
    crashed("data", "load", "--csv", str(synthetic_csv), env=env, cwd=tmp_path)
    outputs = []
    for _ in range(2):
        summary_file = tmp_path / "summary.json"
        result = run_local(summary_file, env, tmp_path)
        outputs.append(result.stdout + result.stderr + summary_file.read_text())
        open_mrs = gitlab_fake.open_mrs("model-update/crashed")
        assert len(open_mrs) == 1
    mr = open_mrs[0]
    assert "| ROC-AUC |" in mr["description"] and "Gate rules" in mr["description"]
    assert "model-update" in mr["labels"]
    branch = gitlab_fake.branch("model-update/crashed")
    reference = parse_reference(branch["files"]["model-reference.json"])
    assert isinstance(reference, PromotedReference)
    compiled = tmp_path / "pipeline.yaml"
    crashed(
        "pipelines", "crashed_pipeline", "compile", "--output", str(compiled), env=env, cwd=tmp_path
    )
    haystacks = [*outputs, compiled.read_text(), mr["description"]]
    haystacks += [
        p.read_text(errors="replace")
        for p in (home / "lake").rglob("*")
        if p.is_file() and p.suffix in (".json", ".md")
    ]
    assert not [h for h in haystacks if gitlab_fake.token in h]
