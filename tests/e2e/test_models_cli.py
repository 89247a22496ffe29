"""`crashed models …` end to end: propose a real reference, review, approve, verify, tamper;
promotion history and rollback through the local Git host."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from tests.published_run import published_run

from crashed.adapters.local_githost import LocalGitHost
from crashed.adapters.local_lake import LocalLake
from crashed.cli import cli
from crashed.core.reference import (
    PromotedReference,
    empty_reference,
    render_reference,
)
from crashed.ports import FileChange, Proposal
from crashed.settings import load_settings

REF = "model-reference.json"
RUN = "run-20240101-000000"

pytestmark = pytest.mark.slow  # git in subprocesses


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True)
    return done.stdout


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """A git repo (main, empty-state reference) and CRASHED_HOME, both in tmp dirs."""
    config = tmp_path / "gitconfig"
    config.write_text("[user]\n\tname = Tester\n\temail = tester@example.com\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    repo, home = tmp_path / "repo", tmp_path / "home"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / REF).write_text(render_reference(empty_reference()))
    git(repo, "add", REF)
    git(repo, "commit", "-q", "-m", "initial")
    for name in (
        "CRASHED_PLATFORM",
        "CRASHED_GIT_HOST",
        "CRASHED_LAKE",
        "LAKE_PATH",
        "LAKE_BUCKET",
        "CRASHED_MODEL_REFERENCE",
        "GITLAB_TARGET_BRANCH",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CRASHED_HOME", str(home))
    monkeypatch.setenv("CRASHED_REPO", str(repo))
    monkeypatch.chdir(tmp_path)  # no stray .env
    return {"repo": repo, "home": home}


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def publish(lake: LocalLake, run_id: str = RUN, roc_auc: float | None = None) -> PromotedReference:
    """Put a real run's artifacts (the pipeline, in process) in the lake as ``run_id`` and
    return its promoted reference (``roc_auc`` changes the evaluation and reference alike)."""
    return published_run().publish_as(lake, run_id, roc_auc, bucket=load_settings().lake_bucket)


def test_propose_review_approve_verify_and_tamper(env: dict[str, Path]) -> None:
    repo, home = env["repo"], env["home"]
    lake = LocalLake(home / "lake")
    reference = publish(lake)
    host = LocalGitHost.from_settings(load_settings())
    result = host.propose(
        Proposal(
            branch="crashed/model-update",
            title=f"Model update: {RUN}",
            description="## Gate\n\n| rule | result |\n|---|---|\n| roc_auc | pass |\n",
            changes=[FileChange(REF, render_reference(reference))],
        )
    )
    assert result.action == "created"

    listed = run("models", "proposals", "--json")
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout)
    assert len(rows) == 1
    assert {"id", "status", "title", "branch", "created_at"} <= rows[0].keys()
    assert (rows[0]["id"], rows[0]["status"]) == (1, "open")
    assert rows[0]["title"] == f"Model update: {RUN}"

    table = run("models", "proposals")
    assert table.exit_code == 0 and "crashed/model-update" in table.output

    review = run("models", "review", "1")
    assert review.exit_code == 0, review.output
    assert "| roc_auc | pass |" in review.output  # the report
    assert f"+++ b/{REF}" in review.output  # the diff
    assert f'+    "run_id": "{RUN}"' in review.output

    approved = run("models", "approve", "1")
    assert approved.exit_code == 0, approved.output
    assert "merged proposal #1 into main" in approved.output
    assert json.loads((repo / REF).read_text())["model"]["run_id"] == RUN
    assert git(repo, "status", "--porcelain") == ""

    listed = json.loads(run("models", "proposals", "--json").stdout)
    assert listed[0]["status"] == "merged"

    shown = run("models", "show", "--reference", str(repo / REF))
    assert shown.exit_code == 0, shown.output
    for text in (
        RUN,
        f"roc_auc {reference.metrics.roc_auc:.4f}",
        reference.artifacts.model.sha256[:12],
        "2018-10-01 .. 2018-12-31",
        "crashed_pipeline",
    ):
        assert text in shown.output
    as_json = json.loads(run("models", "show", "--reference", str(repo / REF), "--json").stdout)
    assert as_json["model"]["run_id"] == RUN

    verified = run("models", "verify", "--reference", str(repo / REF))
    assert verified.exit_code == 0, verified.output
    assert "all 4 artifacts" in verified.output

    model_file = lake.path_for(reference.artifacts.model.uri)
    data = bytearray(model_file.read_bytes())
    data[0] ^= 0x01
    model_file.write_bytes(bytes(data))

    tampered = run("models", "verify", "--reference", str(repo / REF))
    assert tampered.exit_code == 2
    assert "FAILED  model" in tampered.stdout
    assert "model (sha256" in tampered.stderr
    assert "distributions" not in tampered.stderr

    lake.path_for(reference.artifacts.metrics.uri).unlink()
    missing = run("models", "verify", "--reference", str(repo / REF))
    assert missing.exit_code == 4
    assert "2 of 4 artifacts failed" in missing.stderr
    assert "metrics (no object at" in missing.stderr


def test_reject_leaves_main_alone(env: dict[str, Path]) -> None:
    repo = env["repo"]
    before = (repo / REF).read_text()
    reference = publish(LocalLake(env["home"] / "lake"))
    host = LocalGitHost.from_settings(load_settings())
    host.propose(
        Proposal(
            "crashed/model-update",
            "Model update",
            "report",
            [FileChange(REF, render_reference(reference))],
        )
    )

    rejected = run("models", "reject", "1")

    assert rejected.exit_code == 0, rejected.output
    assert "rejected proposal #1" in rejected.output
    assert "deleted branch crashed/model-update" in rejected.output
    assert (repo / REF).read_text() == before
    assert json.loads(run("models", "proposals", "--json").stdout)[0]["status"] == "rejected"
    again = run("models", "approve", "1")
    assert again.exit_code == 2
    assert "rejected, not open" in again.stderr


def test_approve_refuses_local_edits(env: dict[str, Path]) -> None:
    repo = env["repo"]
    reference = publish(LocalLake(env["home"] / "lake"))
    LocalGitHost.from_settings(load_settings()).propose(
        Proposal(
            "crashed/model-update",
            "Model update",
            "report",
            [FileChange(REF, render_reference(reference))],
        )
    )
    (repo / REF).write_text("{}\n")

    refused = run("models", "approve", "1")

    assert refused.exit_code != 0
    assert "local modifications" in refused.stderr
    assert (repo / REF).read_text() == "{}\n"


def test_no_model_state(env: dict[str, Path]) -> None:
    path = str(env["repo"] / REF)

    shown = run("models", "show", "--reference", path)
    assert shown.exit_code == 0, shown.output
    assert "no model promoted yet" in shown.output

    as_json = json.loads(run("models", "show", "--reference", path, "--json").stdout)
    assert as_json["status"] == "no-model-promoted"

    verified = run("models", "verify", "--reference", path)
    assert verified.exit_code != 0
    assert "no model has been promoted yet" in verified.stderr

    empty = run("models", "proposals")
    assert empty.exit_code == 0 and "no proposals" in empty.output
    assert json.loads(run("models", "proposals", "--json").stdout) == []


def test_default_reference_is_the_setting(
    env: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRASHED_MODEL_REFERENCE", str(env["repo"] / REF))
    shown = run("models", "show")
    assert shown.exit_code == 0 and "no model promoted yet" in shown.output
    monkeypatch.setenv("CRASHED_MODEL_REFERENCE", str(env["repo"] / "absent.json"))
    missing = run("models", "show")
    assert missing.exit_code == 4
    assert "no such model reference file" in missing.stderr


def test_invalid_reference_names_the_field(env: dict[str, Path], tmp_path: Path) -> None:
    reference = publish(LocalLake(env["home"] / "lake"))
    data = json.loads(render_reference(reference))
    data["artifacts"]["model"]["sha256"] = "not-a-digest"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))

    for command in ("show", "verify"):
        result = run("models", command, "--reference", str(bad))
        assert result.exit_code == 2, result.output
        assert "artifacts.model.sha256" in result.stderr

    bad.write_text("{not json")
    result = run("models", "verify", "--reference", str(bad))
    assert result.exit_code == 2
    assert "not valid JSON" in result.stderr


def failed_names(result: Result) -> list[str]:
    return [line.split()[1] for line in result.stdout.splitlines() if line.startswith("FAILED")]


def test_verify_fails_a_reference_whose_model_and_metrics_are_swapped(
    env: dict[str, Path], tmp_path: Path
) -> None:
    reference = publish(LocalLake(env["home"] / "lake"))
    artifacts = reference.artifacts.model_copy(
        update={"model": reference.artifacts.metrics, "metrics": reference.artifacts.model}
    )
    path = tmp_path / "swapped.json"
    path.write_text(render_reference(reference.model_copy(update={"artifacts": artifacts})))

    result = run("models", "verify", "--reference", str(path))

    assert result.exit_code == 2
    assert failed_names(result) == ["model", "metrics"]
    (line,) = result.stderr.splitlines()
    assert line.startswith(
        "error: 2 of 4 artifacts failed verification: "
        "model (expected an XGBoost UBJSON model bundle: "
    )
    assert ", metrics (expected metrics.json (an evaluation): " in line


def test_verify_fails_artifacts_outside_the_configured_bucket(
    env: dict[str, Path], tmp_path: Path
) -> None:
    lake = LocalLake(env["home"] / "lake")
    reference = published_run().publish_as(lake, RUN, bucket="someone-elses-bucket")
    path = tmp_path / "foreign.json"
    path.write_text(render_reference(reference))

    result = run("models", "verify", "--reference", str(path))

    assert result.exit_code == 2
    assert failed_names(result) == ["model", "distributions", "metrics", "report"]
    expected = (
        f"expected a file directly under gs://crashed-lake/models/crashed/{RUN}/ "
        "(the configured bucket, model and run)"
    )
    assert (
        f"FAILED  model          gs://someone-elses-bucket/models/crashed/{RUN}/model.ubj: "
        f"{expected}"
    ) in result.stdout.splitlines()


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("schema_version", "1", 'schema_version: expected the integer 1, got the string "1"'),
        ("schema_version", 1.0, "schema_version: expected the integer 1, got the number 1.0"),
        (
            "status",
            "promotd",
            "status: expected 'promoted' or 'no-model-promoted', got the string \"promotd\"",
        ),
    ],
)
def test_verify_names_a_malformed_header_in_one_line(
    env: dict[str, Path], tmp_path: Path, field: str, value: object, expected: str
) -> None:
    data = json.loads(render_reference(publish(LocalLake(env["home"] / "lake"))))
    data[field] = value
    path = tmp_path / "malformed.json"
    path.write_text(json.dumps(data))

    result = run("models", "verify", "--reference", str(path))

    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [f"error: {path}: {expected}"]


def test_review_commands_point_to_gitlab(
    env: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRASHED_GIT_HOST", "gitlab")
    monkeypatch.setenv("GITLAB_PROJECT", "group/crashed")
    for args in (("proposals",), ("review", "1"), ("approve", "1"), ("reject", "1")):
        result = run("models", *args)
        assert result.exit_code == 2, result.output
        assert "GitLab UI" in result.stderr
        assert "https://gitlab.com/group/crashed/-/merge_requests" in result.stderr


def test_unknown_proposal(env: dict[str, Path]) -> None:
    result = run("models", "review", "42")
    assert result.exit_code == 4
    assert "no proposal #42" in result.stderr


def test_runs_as_a_module(env: dict[str, Path]) -> None:
    """The real entry point (``python -m crashed``) with the same environment."""
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "crashed", "models", "proposals", "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


def promote(host: LocalGitHost, lake: LocalLake, run_id: str, roc_auc: float) -> str:
    """Propose ``run_id`` as a model update and approve it with the CLI; the reference text."""
    text = render_reference(publish(lake, run_id, roc_auc))
    result = host.propose(
        Proposal(
            "model-update/crashed", f"Model update: {run_id}", "report", [FileChange(REF, text)]
        )
    )
    approved = run("models", "approve", result.id)
    assert approved.exit_code == 0, approved.output
    return text


def test_history_and_rollback(env: dict[str, Path]) -> None:
    repo, lake = env["repo"], LocalLake(env["home"] / "lake")
    host = LocalGitHost.from_settings(load_settings())
    first = promote(host, lake, "run-1", 0.88)
    second = promote(host, lake, "run-2", 0.84)

    listed = run("models", "history", "--json")
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout)
    assert [(r["run_id"], r["proposal_id"], r["kind"], r["roc_auc"]) for r in rows] == [
        ("run-1", "1", "promotion", 0.88),
        ("run-2", "2", "promotion", 0.84),
    ]
    assert rows[0]["model_sha256"] == json.loads(first)["artifacts"]["model"]["sha256"]
    assert rows[1]["commit"] == git(repo, "rev-parse", "main").strip()
    assert rows[0]["when"] <= rows[1]["when"]
    table = run("models", "history")
    assert table.exit_code == 0 and "run-1" in table.output and "run-2" in table.output

    rolled = run("models", "rollback", "--reason", "live PR-AUC fell below the gate")
    assert rolled.exit_code == 0, rolled.output
    record = host.get(3)
    assert (record.status, record.branch, record.labels) == (
        "open",
        "model-rollback/crashed",
        ["rollback"],
    )
    assert git(repo, "show", f"model-rollback/crashed:{REF}") == first  # byte for byte
    assert (repo / REF).read_text() == second  # nothing merged
    assert "live PR-AUC fell below the gate" in record.description
    assert "| ROC-AUC | 0.8400 | 0.8800 | +0.0400 |" in record.description

    assert run("models", "approve", "3").exit_code == 0
    assert (repo / REF).read_text() == first
    assert run("models", "verify", "--reference", str(repo / REF)).exit_code == 0
    rows = json.loads(run("models", "history", "--json").stdout)
    assert [(r["run_id"], r["proposal_id"], r["kind"]) for r in rows][-1] == (
        "run-1",
        "3",
        "rollback",
    )

    again = run("models", "rollback", "--to", "run-2", "--reason", "back again")
    assert again.exit_code == 0, again.output
    assert git(repo, "show", f"model-rollback/crashed:{REF}") == second


def test_rollback_errors(env: dict[str, Path]) -> None:
    host = LocalGitHost.from_settings(load_settings())
    nothing = run("models", "rollback")
    assert nothing.exit_code == 4
    assert "no model is promoted" in nothing.stderr
    assert json.loads(run("models", "history", "--json").stdout) == []

    promote(host, LocalLake(env["home"] / "lake"), "run-1", 0.88)
    alone = run("models", "rollback")
    assert alone.exit_code == 4 and "only model ever promoted" in alone.stderr
    unknown = run("models", "rollback", "--to", "run-9")
    assert unknown.exit_code == 4 and "run-1" in unknown.stderr
    assert host.list_proposals("open") == []
