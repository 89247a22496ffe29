"""Promotion history and rollback on GitLab: the real python-gitlab against the fake GitLab."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gitlab
import pytest
from click.testing import CliRunner, Result
from tests.factories import store_reference
from tests.integration.gitlab_fixtures import OTHER_PROJECT, FakeGitLabControl

from crashed.adapters.gitlab_githost import GitLabHost
from crashed.adapters.local_lake import LocalLake
from crashed.cli import cli
from crashed.core.reference import render_reference
from crashed.errors import NotFoundError
from crashed.ports import FileChange, Proposal
from crashed.promotion.rollback import promotion_history, propose_rollback
from crashed.settings import Settings

pytestmark = pytest.mark.slow  # a fake GitLab server process

REF = "model-reference.json"


def reference_text(lake: LocalLake, run_id: str, roc_auc: float) -> str:
    files = {"model": run_id.encode() * 8, "distributions": b"{}\n", "metrics": b"{}\n"}
    reference = store_reference(lake, run_id, files)
    metrics = reference.metrics.model_copy(update={"roc_auc": roc_auc})
    return render_reference(reference.model_copy(update={"metrics": metrics}))


def project(fake: FakeGitLabControl) -> Any:
    return gitlab.Gitlab(fake.url, private_token=fake.token).projects.get(fake.project)


def promote(host: GitLabHost, fake: FakeGitLabControl, text: str, run_id: str) -> str:
    """Propose ``text`` as a model update and merge its MR as a reviewer would; the MR iid."""
    result = host.propose(
        Proposal(
            "model-update/crashed", f"Model update: {run_id}", "report", [FileChange(REF, text)]
        )
    )
    project(fake).mergerequests.get(int(result.id)).merge()
    return result.id


@pytest.fixture
def promoted(
    gitlab_host: GitLabHost, gitlab_fake: FakeGitLabControl, tmp_path: Path
) -> tuple[str, str]:
    """Two promotions merged through MRs !1 and !2, an unrelated merged MR between them."""
    lake = LocalLake(tmp_path / "lake")
    first, second = reference_text(lake, "run-1", 0.88), reference_text(lake, "run-2", 0.84)
    assert promote(gitlab_host, gitlab_fake, first, "run-1") == "1"
    docs = gitlab_host.propose(
        Proposal("docs", "Docs", "d", [FileChange("README.md", "# docs\n")], labels=())
    )
    project(gitlab_fake).mergerequests.get(int(docs.id)).merge()
    assert promote(gitlab_host, gitlab_fake, second, "run-2") == "3"
    return first, second


def test_history_lists_each_change_with_the_mr_that_merged_it(
    gitlab_host: GitLabHost, gitlab_fake: FakeGitLabControl, promoted: tuple[str, str]
) -> None:
    first, second = promoted

    revisions = gitlab_host.history(REF)

    assert [(r.content, r.proposal_id) for r in revisions][1:] == [(first, "1"), (second, "3")]
    assert json.loads(revisions[0].content or "")["status"] == "no-model-promoted"  # the seed
    assert revisions[0].proposal_id == ""
    merged = {mr["iid"]: mr for mr in gitlab_fake.project_state()["merge_requests"]}
    assert revisions[2].merged_at == merged[3]["merged_at"]
    assert revisions[2].proposal_url == merged[3]["web_url"]
    main = gitlab_fake.branch("main")
    assert main is not None and revisions[2].commit in main["parent_ids"]  # the bot commit

    rows = promotion_history(gitlab_host)
    assert [(p.run_id, p.proposal_id, p.kind) for p in rows] == [
        ("run-1", "1", "promotion"),
        ("run-2", "3", "promotion"),
    ]


def test_rollback_opens_an_mr_restoring_the_first_reference(
    gitlab_host: GitLabHost, gitlab_fake: FakeGitLabControl, promoted: tuple[str, str]
) -> None:
    first, second = promoted

    result = propose_rollback(gitlab_host, Settings(), reason="live ROC-AUC fell to 0.61")

    assert (result.action, result.branch) == ("created", "model-rollback/crashed")
    assert (result.extra["restored_run_id"], result.extra["current_run_id"]) == ("run-1", "run-2")
    [mr] = gitlab_fake.open_mrs()
    assert (mr["iid"], mr["labels"], mr["target_branch"]) == (int(result.id), ["rollback"], "main")
    assert mr["title"] == "Rollback: crashed to run-1 (from run-2)"
    assert "live ROC-AUC fell to 0.61" in mr["description"]
    assert gitlab_host.read_file(REF, ref="model-rollback/crashed") == first
    assert gitlab_host.read_file(REF) == second  # never merged by us

    again = propose_rollback(gitlab_host, Settings(), reason="live ROC-AUC fell to 0.61")
    assert (again.action, again.id) == ("unchanged", result.id)  # one open rollback MR

    project(gitlab_fake).mergerequests.get(int(result.id)).merge()
    rows = promotion_history(gitlab_host)
    assert [(p.run_id, p.proposal_id, p.kind) for p in rows][-1] == ("run-1", result.id, "rollback")


def test_history_is_retried_through_transient_failures(
    gitlab_host: GitLabHost, gitlab_fake: FakeGitLabControl, promoted: tuple[str, str]
) -> None:
    gitlab_fake.fail("/merge_requests", status=502, times=2, method="GET")
    gitlab_fake.fail("/repository/commits", status=503, times=1, method="GET")

    assert [p.run_id for p in promotion_history(gitlab_host)] == ["run-1", "run-2"]

    failures = [r["status"] for r in gitlab_fake.requests_log() if r["status"] >= 500]
    assert sorted(failures) == [502, 502, 503]


def test_history_of_a_missing_target_branch(gitlab_fake: FakeGitLabControl) -> None:
    host = GitLabHost(gitlab_fake.url, OTHER_PROJECT, gitlab_fake.token, target_branch="trunk")
    with pytest.raises(NotFoundError, match="GITLAB_TARGET_BRANCH"):
        host.history(REF)


def test_cli_history_and_rollback_on_gitlab(
    gitlab_fake: FakeGitLabControl,
    promoted: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name, value in {
        "CRASHED_GIT_HOST": "gitlab",
        "GITLAB_URL": gitlab_fake.url,
        "GITLAB_PROJECT": gitlab_fake.project,
        "GITLAB_TOKEN": gitlab_fake.token,
        "GITLAB_TARGET_BRANCH": "main",
        "CRASHED_MODEL_NAME": "crashed",
    }.items():
        monkeypatch.setenv(name, value)

    def run(*args: str) -> Result:
        return CliRunner().invoke(cli, ["models", *args], catch_exceptions=False)

    listed = run("history", "--json")
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout)
    assert [(r["run_id"], r["proposal_id"], r["roc_auc"]) for r in rows] == [
        ("run-1", "1", 0.88),
        ("run-2", "3", 0.84),
    ]

    rolled = run("rollback", "--to", "run-1", "--reason", "manual")
    assert rolled.exit_code == 0, rolled.output
    [mr] = gitlab_fake.open_mrs("model-rollback/crashed")
    assert mr["web_url"] in rolled.stdout
    assert gitlab_fake.token not in rolled.output
