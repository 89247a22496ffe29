"""GitLabHost with the real python-gitlab client against the fake GitLab (a subprocess)."""

from __future__ import annotations

import json
import logging
import traceback
from typing import Any

import gitlab
import pytest
from tests.integration.gitlab_fixtures import (
    GITLAB_TOKEN,
    OTHER_PROJECT,
    FakeGitLabControl,
)
from tests.servers.procs import free_port

from crashed.adapters.gitlab_githost import GitLabHost
from crashed.errors import ConfigError, CrashedError, NotFoundError, ServiceError
from crashed.ports import FileChange, GitHost, Proposal
from crashed.settings import Settings

BRANCH = "model-update/crashed"
REFERENCE = "model-reference.json"
SEED = json.dumps({"schema_version": 1, "status": "no-model-promoted"}, indent=2) + "\n"

pytestmark = pytest.mark.slow  # a fake GitLab server process


def reference(run: str) -> str:
    return json.dumps({"schema_version": 1, "model": "crashed", "run_id": run}, indent=2) + "\n"


def proposal(run: str, *, description: str | None = None, **fields: Any) -> Proposal:
    return Proposal(
        branch=BRANCH,
        title=f"Model update: crashed {run}",
        description=description if description is not None else f"## Report for {run}\n",
        changes=[FileChange(REFERENCE, reference(run))],
        **fields,
    )


def client(fake: FakeGitLabControl) -> Any:
    """The real python-gitlab client on the fake's test project (for assertions/reviewers)."""
    return gitlab.Gitlab(fake.url, private_token=fake.token).projects.get(fake.project)


def api_writes(fake: FakeGitLabControl) -> list[dict[str, Any]]:
    return [r for r in fake.requests_log() if r["method"] in ("POST", "PUT", "DELETE")]


def assert_no_token(*texts: str) -> None:
    for text in texts:
        assert GITLAB_TOKEN not in text


# -- construction -----------------------------------------------------------------------------


def test_is_a_githost(gitlab_host: GitLabHost) -> None:
    assert isinstance(gitlab_host, GitHost)
    assert GITLAB_TOKEN not in repr(gitlab_host)


def test_from_settings_names_missing_project_and_token() -> None:
    with pytest.raises(ConfigError, match="GITLAB_PROJECT"):
        GitLabHost.from_settings(Settings(gitlab_project=None, gitlab_token="x"))
    with pytest.raises(ConfigError, match="GITLAB_TOKEN"):
        GitLabHost.from_settings(Settings(gitlab_project="a/b", gitlab_token=None))

    host = GitLabHost.from_settings(
        Settings(
            gitlab_url="http://gitlab.example:8080",
            gitlab_project="a/b",
            gitlab_token="t0k",
            gitlab_target_branch="trunk",
        )
    )
    assert (host.url, host.project, host.target_branch) == (
        "http://gitlab.example:8080",
        "a/b",
        "trunk",
    )


# -- reading ----------------------------------------------------------------------------------


def test_read_file_on_target_branch_and_missing_file(gitlab_host: GitLabHost) -> None:
    assert gitlab_host.read_file(REFERENCE) == SEED
    assert gitlab_host.read_file("absent.json") is None
    assert gitlab_host.read_file("deep/absent.json", ref="main") is None


def test_read_file_on_missing_ref_is_not_found(gitlab_host: GitLabHost) -> None:
    with pytest.raises(NotFoundError, match="no-such-branch"):
        gitlab_host.read_file(REFERENCE, ref="no-such-branch")


# -- proposing --------------------------------------------------------------------------------


def test_first_proposal_creates_one_merge_request(
    gitlab_host: GitLabHost, gitlab_fake: FakeGitLabControl
) -> None:
    result = gitlab_host.propose(proposal("run-1"))

    assert result.action == "created"
    assert result.branch == BRANCH
    assert result.id == "1"
    assert result.url.endswith(f"/{gitlab_fake.project}/-/merge_requests/1")
    [mr] = gitlab_fake.open_mrs()
    assert mr["source_branch"] == BRANCH and mr["target_branch"] == "main"
    assert mr["title"] == "Model update: crashed run-1"
    assert mr["description"] == "## Report for run-1\n"
    assert mr["labels"] == ["model-update"]
    assert mr["force_remove_source_branch"] is True
    assert gitlab_host.read_file(REFERENCE, ref=BRANCH) == reference("run-1")


def test_branch_is_main_plus_one_commit_touching_only_the_file(
    gitlab_host: GitLabHost, gitlab_fake: FakeGitLabControl
) -> None:
    gitlab_host.propose(proposal("run-1"))

    main, branch = gitlab_fake.branch("main"), gitlab_fake.branch(BRANCH)
    assert main is not None and branch is not None
    assert branch["parent_ids"] == [main["commit"]]
    assert branch["files"] == {**main["files"], REFERENCE: reference("run-1")}
    compare = client(gitlab_fake).repository_compare("main", BRANCH)
    assert len(compare["commits"]) == 1
    assert [(d["old_path"], d["new_path"]) for d in compare["diffs"]] == [(REFERENCE, REFERENCE)]
    mr = client(gitlab_fake).mergerequests.get(1)
    assert [c["new_path"] for c in mr.changes()["changes"]] == [REFERENCE]


def test_new_model_updates_the_same_merge_request(
    gitlab_host: GitLabHost, gitlab_fake: FakeGitLabControl
) -> None:
    first = gitlab_host.propose(proposal("run-1"))
    second = gitlab_host.propose(proposal("run-2", labels=("model-update", "gate-passed")))

    assert second.action == "updated"
    assert (second.id, second.url) == (first.id, first.url)
    [mr] = gitlab_fake.open_mrs()
    assert mr["title"] == "Model update: crashed run-2"
    assert mr["description"] == "## Report for run-2\n"
    assert sorted(mr["labels"]) == ["gate-passed", "model-update"]
    main, branch = gitlab_fake.branch("main"), gitlab_fake.branch(BRANCH)
    assert main is not None and branch is not None
    assert branch["parent_ids"] == [main["commit"]]  # reset from main, not stacked on run-1
    assert branch["files"][REFERENCE] == reference("run-2")
    assert len(gitlab_fake.project_state()["merge_requests"]) == 1


def test_identical_proposal_changes_nothing(
    gitlab_host: GitLabHost, gitlab_fake: FakeGitLabControl
) -> None:
    first = gitlab_host.propose(proposal("run-1"))
    head = gitlab_fake.branch(BRANCH)
    writes = len(api_writes(gitlab_fake))

    again = gitlab_host.propose(proposal("run-1"))

    assert again.action == "unchanged"
    assert (again.id, again.url) == (first.id, first.url)
    assert gitlab_fake.branch(BRANCH) == head
    assert len(api_writes(gitlab_fake)) == writes  # not even a metadata PUT
    assert len(gitlab_fake.open_mrs()) == 1


def test_same_content_new_description_updates_only_the_description(
    gitlab_host: GitLabHost, gitlab_fake: FakeGitLabControl
) -> None:
    gitlab_host.propose(proposal("run-1"))
    head = gitlab_fake.branch(BRANCH)

    result = gitlab_host.propose(proposal("run-1", description="## Report, re-rendered\n"))

    assert result.action == "updated"
    assert result.extra["commit"] is None
    assert gitlab_fake.branch(BRANCH) == head
    assert gitlab_fake.open_mrs()[0]["description"] == "## Report, re-rendered\n"


def test_target_already_has_the_content_opens_nothing(
    gitlab_host: GitLabHost, gitlab_fake: FakeGitLabControl
) -> None:
    same_as_main = Proposal(BRANCH, "no-op", "nothing new", [FileChange(REFERENCE, SEED)])

    result = gitlab_host.propose(same_as_main)

    assert result.action == "unchanged"
    assert result.id == ""
    assert result.extra["reason"] == "target-has-content"
    assert gitlab_fake.project_state()["merge_requests"] == []
    assert gitlab_fake.branch(BRANCH) is None
    assert api_writes(gitlab_fake) == []


def test_open_mr_made_obsolete_by_target_is_closed(
    gitlab_host: GitLabHost, gitlab_fake: FakeGitLabControl
) -> None:
    gitlab_host.propose(proposal("run-1"))
    same_as_main = Proposal(BRANCH, "no-op", "nothing new", [FileChange(REFERENCE, SEED)])

    result = gitlab_host.propose(same_as_main)

    assert result.action == "unchanged"
    assert result.extra["closed"] == [1]
    assert gitlab_fake.open_mrs() == []
    [mr] = gitlab_fake.project_state()["merge_requests"]
    assert "already has exactly the proposed content" in mr["notes"][0]["body"]


def test_leftover_open_mrs_are_reduced_to_the_newest(
    gitlab_host: GitLabHost, gitlab_fake: FakeGitLabControl
) -> None:
    for n in (1, 2, 3):
        gitlab_fake.inject_mr(BRANCH, f"leftover {n}", description="old")

    result = gitlab_host.propose(proposal("run-1"))

    assert result.action == "updated"
    assert result.id == "3"
    assert sorted(result.extra["closed"]) == [1, 2]
    [kept] = gitlab_fake.open_mrs()
    assert kept["iid"] == 3 and kept["title"] == "Model update: crashed run-1"
    closed = [mr for mr in gitlab_fake.project_state()["merge_requests"] if mr["iid"] != 3]
    assert all(mr["state"] == "closed" for mr in closed)
    assert all("Superseded by !3" in mr["notes"][0]["body"] for mr in closed)


def test_merge_applies_the_change_to_main_and_next_run_is_unchanged(
    gitlab_host: GitLabHost, gitlab_fake: FakeGitLabControl
) -> None:
    result = gitlab_host.propose(proposal("run-1"))
    mr = client(gitlab_fake).mergerequests.get(int(result.id))
    mr.merge()

    assert gitlab_host.read_file(REFERENCE) == reference("run-1")
    assert gitlab_fake.branch(BRANCH) is None  # remove_source_branch
    main = gitlab_fake.branch("main")
    assert main is not None and len(main["parent_ids"]) == 2
    assert gitlab_host.propose(proposal("run-1")).action == "unchanged"

    following = gitlab_host.propose(proposal("run-2"))
    assert (following.action, following.id) == ("created", "2")


def test_closed_by_reviewer_is_not_reopened_with_the_same_report(
    gitlab_host: GitLabHost, gitlab_fake: FakeGitLabControl
) -> None:
    first = gitlab_host.propose(proposal("run-1"))
    mr = client(gitlab_fake).mergerequests.get(int(first.id))
    mr.state_event = "close"
    mr.save()

    again = gitlab_host.propose(proposal("run-1"))
    assert (again.action, again.id, again.extra["reason"]) == (
        "unchanged",
        "1",
        "closed-by-reviewer",
    )
    assert gitlab_fake.open_mrs() == []

    newer = gitlab_host.propose(proposal("run-2"))
    assert (newer.action, newer.id) == ("created", "2")


def test_moved_target_rebuilds_the_branch_on_it(
    gitlab_host: GitLabHost, gitlab_fake: FakeGitLabControl
) -> None:
    gitlab_host.propose(proposal("run-1"))
    client(gitlab_fake).files.update(
        "README.md",
        {"branch": "main", "content": "# moved on\n", "commit_message": "docs"},
    )

    result = gitlab_host.propose(proposal("run-1"))

    assert result.action == "updated"
    main, branch = gitlab_fake.branch("main"), gitlab_fake.branch(BRANCH)
    assert main is not None and branch is not None
    assert branch["parent_ids"] == [main["commit"]]
    assert branch["files"] == {**main["files"], REFERENCE: reference("run-1")}
    assert len(gitlab_fake.open_mrs()) == 1


def test_nested_new_file_and_non_default_target(
    gitlab_host: GitLabHost, gitlab_fake: FakeGitLabControl
) -> None:
    client(gitlab_fake).branches.create({"branch": "release/2018", "ref": "main"})
    change = FileChange("deploy/prod/model-reference.json", reference("run-9"))
    result = gitlab_host.propose(
        Proposal(
            "model-update/release", "Release model", "r", [change], target_branch="release/2018"
        )
    )

    assert result.action == "created"
    [mr] = gitlab_fake.open_mrs("model-update/release")
    assert mr["target_branch"] == "release/2018"
    assert gitlab_host.read_file(change.path, ref="model-update/release") == change.content
    assert gitlab_host.read_file(change.path) is None  # main untouched


# -- retries and failures ---------------------------------------------------------------------


def test_two_502s_are_retried_then_succeed(
    gitlab_host: GitLabHost, gitlab_fake: FakeGitLabControl, caplog: pytest.LogCaptureFixture
) -> None:
    gitlab_fake.fail("/merge_requests", status=502, times=2, method="POST")

    with caplog.at_level(logging.WARNING, logger="crashed"):
        result = gitlab_host.propose(proposal("run-1"))

    assert result.action == "created"
    posts = [
        r["status"]
        for r in gitlab_fake.requests_log()
        if r["method"] == "POST" and r["path"].endswith("/merge_requests")
    ]
    assert posts == [502, 502, 201]
    assert caplog.text.count("HTTP 502") == 2
    assert len(gitlab_fake.open_mrs()) == 1


def test_lost_answer_on_create_does_not_duplicate_the_mr(
    gitlab_host: GitLabHost, gitlab_fake: FakeGitLabControl
) -> None:
    # The MR is created, but the proxy answers 502; the retried POST gets GitLab's 409.
    gitlab_fake.fail("/merge_requests", status=502, times=1, method="POST", after=True)

    result = gitlab_host.propose(proposal("run-1"))

    assert (result.action, result.id) == ("created", "1")
    assert len(gitlab_fake.project_state()["merge_requests"]) == 1


def test_timeout_is_retried(
    gitlab_fake: FakeGitLabControl, caplog: pytest.LogCaptureFixture
) -> None:
    host = GitLabHost(
        gitlab_fake.url, gitlab_fake.project, gitlab_fake.token, timeout=0.5, backoff=0.01
    )
    gitlab_fake.fail("/repository/files/", status=None, times=1, delay=1.5)

    with caplog.at_level(logging.WARNING, logger="crashed"):
        assert host.read_file(REFERENCE) == SEED

    assert "ReadTimeout" in caplog.text


def test_persistent_503_gives_up_with_a_clear_message(gitlab_fake: FakeGitLabControl) -> None:
    host = GitLabHost(
        gitlab_fake.url, gitlab_fake.project, gitlab_fake.token, retries=2, backoff=0.01
    )
    gitlab_fake.fail("/api/v4/", status=503, times=100)

    with pytest.raises(ServiceError) as caught:
        host.read_file(REFERENCE)

    message = str(caught.value)
    assert "503" in message and "3 attempts" in message
    assert gitlab_fake.url in message and gitlab_fake.project in message
    assert len(gitlab_fake.requests_log()) == 3


def test_unreachable_gitlab_is_a_service_error() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    host = GitLabHost(url, "g/p", GITLAB_TOKEN, retries=1, backoff=0.01, timeout=2)

    with pytest.raises(ServiceError, match="unreachable") as caught:
        host.propose(proposal("run-1"))

    assert url in str(caught.value)
    assert_no_token(str(caught.value), "".join(traceback.format_exception(caught.value)))


def test_wrong_token_fails_at_once_without_showing_it(
    gitlab_fake: FakeGitLabControl,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    wrong = "glpat-WRONG-but-still-s3cret"
    host = GitLabHost(gitlab_fake.url, gitlab_fake.project, wrong, backoff=0.01)

    with caplog.at_level(logging.DEBUG), pytest.raises(ServiceError) as caught:
        host.propose(proposal("run-1"))

    message = str(caught.value)
    assert "401" in message and "GITLAB_TOKEN" in message
    assert gitlab_fake.project in message and gitlab_fake.url in message
    assert len(gitlab_fake.requests_log()) == 1  # not retried
    out, err = capsys.readouterr()
    for text in (message, repr(caught.value), "".join(traceback.format_exception(caught.value))):
        assert wrong not in text
    assert wrong not in caplog.text + out + err


def test_forbidden_fails_at_once(gitlab_host: GitLabHost, gitlab_fake: FakeGitLabControl) -> None:
    gitlab_fake.fail("/merge_requests", status=403, times=5, body={"message": "403 Forbidden"})

    with pytest.raises(ServiceError, match="403 Forbidden"):
        gitlab_host.propose(proposal("run-1"))

    assert sum(r["status"] == 403 for r in gitlab_fake.requests_log()) == 1


def test_missing_project_is_not_found(gitlab_fake: FakeGitLabControl) -> None:
    host = GitLabHost(gitlab_fake.url, "crashed-group/nope", gitlab_fake.token, backoff=0.01)

    with pytest.raises(NotFoundError) as caught:
        host.propose(proposal("run-1"))

    message = str(caught.value)
    assert "404" in message and "crashed-group/nope" in message and "GITLAB_PROJECT" in message
    assert gitlab_fake.url in message
    assert len(gitlab_fake.requests_log()) == 1


def test_missing_target_branch_is_not_found(gitlab_fake: FakeGitLabControl) -> None:
    host = GitLabHost(gitlab_fake.url, OTHER_PROJECT, gitlab_fake.token, target_branch="trunk")

    with pytest.raises(NotFoundError, match="GITLAB_TARGET_BRANCH"):
        host.propose(proposal("run-1"))


def test_token_never_appears_in_logs_output_or_errors(
    gitlab_fake: FakeGitLabControl,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    host = GitLabHost(gitlab_fake.url, gitlab_fake.project, GITLAB_TOKEN, retries=1, backoff=0.01)
    errors: list[CrashedError] = []
    with caplog.at_level(logging.DEBUG):
        gitlab_fake.fail("/merge_requests", status=502, times=1)
        host.propose(proposal("run-1"))
        host.propose(proposal("run-2"))
        gitlab_fake.fail("/api/v4/", status=500, times=10, body={"message": f"echo {GITLAB_TOKEN}"})
        with pytest.raises(ServiceError) as caught:
            host.propose(proposal("run-3"))
        errors.append(caught.value)

    out, err = capsys.readouterr()
    assert "retry 1/1" in caplog.text  # the retries were logged …
    assert "***" in str(errors[0])  # … and the echoed token was scrubbed from the error
    assert_no_token(
        caplog.text,
        out,
        err,
        *(str(e) for e in errors),
        *("".join(traceback.format_exception(e)) for e in errors),
    )
