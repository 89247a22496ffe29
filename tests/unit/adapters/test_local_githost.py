"""LocalGitHost on a temporary git repository: proposals, records, approve and reject."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from crashed.adapters import local_proposals
from crashed.adapters.local_githost import LocalGitHost, RefusedError
from crashed.core.reference import empty_reference, render_reference
from crashed.errors import ConfigError, InputError, NotFoundError
from crashed.ports import FileChange, GitHost, Proposal
from crashed.settings import load_settings

REF = "model-reference.json"
BRANCH = "crashed/model-update"
EMPTY = render_reference(empty_reference())

pytestmark = pytest.mark.slow  # git in subprocesses


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True)
    return done.stdout


def content(run: str) -> str:
    return json.dumps({"schema_version": 1, "status": "promoted", "run": run}, indent=2) + "\n"


def proposal(text: str, description: str = "report", branch: str = BRANCH) -> Proposal:
    return Proposal(
        branch=branch,
        title="Model update",
        description=description,
        changes=[FileChange(REF, text)],
    )


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository on ``main`` with one commit holding the empty-state reference."""
    config = tmp_path / "gitconfig"
    config.write_text("[user]\n\tname = Tester\n\temail = tester@example.com\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    (path / REF).write_text(EMPTY)
    (path / "README.md").write_text("hello\n")
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "initial")
    return path


@pytest.fixture
def host(repo: Path, tmp_path: Path) -> LocalGitHost:
    return LocalGitHost(repo, tmp_path / "home", "main")


def tip(repo: Path, ref: str = "main") -> str:
    return git(repo, "rev-parse", ref).strip()


def branch_exists(repo: Path, branch: str = BRANCH) -> bool:
    return bool(git(repo, "branch", "--list", branch).strip())


def test_is_a_githost(host: LocalGitHost) -> None:
    assert isinstance(host, GitHost)


def test_propose_creates_record_branch_and_one_commit(host: LocalGitHost, repo: Path) -> None:
    main_before = tip(repo)
    result = host.propose(proposal(content("r1"), "## Report\n"))

    assert result.action == "created"
    assert result.id == "1"
    assert result.branch == BRANCH
    assert tip(repo) == main_before  # the target is untouched
    commit = tip(repo, BRANCH)
    assert git(repo, "rev-list", "--parents", "-n", "1", commit).split() == [commit, main_before]
    assert git(repo, "diff", "--name-only", "main", BRANCH).split() == [REF]
    assert git(repo, "log", "-1", "--format=%an|%cn", BRANCH).strip() == "crashed-bot|crashed-bot"
    assert host.read_file(REF, BRANCH) == content("r1")
    assert host.read_file(REF) == EMPTY
    assert host.read_file("missing.txt") is None

    record = json.loads((host.proposals_dir / "1.json").read_text())
    assert record["id"] == 1
    assert record["status"] == "open"
    assert record["branch"] == BRANCH
    assert record["target_branch"] == "main"
    assert record["title"] == "Model update"
    assert record["description"] == "## Report\n"
    assert record["commit"] == commit
    assert record["base"] == main_before
    assert record["created_at"] == record["updated_at"]
    assert record["files"] == [REF]
    assert result.extra["commit"] == commit


def test_propose_leaves_working_tree_and_index_untouched(host: LocalGitHost, repo: Path) -> None:
    (repo / "README.md").write_text("local edit\n")
    (repo / "staged.txt").write_text("staged\n")
    git(repo, "add", "staged.txt")
    (repo / "untracked.txt").write_text("scratch\n")
    (repo / REF).write_text(EMPTY + "\n")  # even the proposed file may be dirty
    status = git(repo, "status", "--porcelain")
    staged = git(repo, "diff", "--cached")
    index = (repo / ".git" / "index").read_bytes()
    head = git(repo, "symbolic-ref", "HEAD")

    host.propose(proposal(content("r1")))

    assert git(repo, "status", "--porcelain") == status
    assert git(repo, "diff", "--cached") == staged
    assert (repo / ".git" / "index").read_bytes() == index
    assert git(repo, "symbolic-ref", "HEAD") == head
    assert (repo / REF).read_text() == EMPTY + "\n"
    assert (repo / "README.md").read_text() == "local edit\n"


def test_repropose_updates_the_same_open_record(host: LocalGitHost, repo: Path) -> None:
    first = host.propose(proposal(content("r1"), "report 1"))
    first_commit = tip(repo, BRANCH)

    second = host.propose(proposal(content("r2"), "report 2"))

    assert (second.action, second.id) == ("updated", first.id)
    second_commit = tip(repo, BRANCH)
    assert second_commit != first_commit
    assert git(repo, "rev-list", "--count", f"main..{BRANCH}").strip() == "1"
    assert host.read_file(REF, BRANCH) == content("r2")
    records = host.list_proposals()
    assert [(r.id, r.status) for r in records] == [(1, "open")]
    assert records[0].commit == second_commit
    assert records[0].description == "report 2"

    third = host.propose(proposal(content("r2"), "report 2, reworded"))
    assert (third.action, third.id) == ("updated", first.id)
    assert tip(repo, BRANCH) == second_commit  # same content: same commit
    assert host.get(1).description == "report 2, reworded"


def test_identical_repropose_is_unchanged(host: LocalGitHost, repo: Path) -> None:
    host.propose(proposal(content("r1")))
    before = host.get(1)

    again = host.propose(proposal(content("r1")))

    assert (again.action, again.id) == ("unchanged", "1")
    assert host.get(1) == before
    assert len(host.list_proposals()) == 1


def test_content_already_on_target_opens_nothing(host: LocalGitHost, repo: Path) -> None:
    result = host.propose(proposal(EMPTY))
    assert (result.action, result.id) == ("unchanged", "")
    assert host.list_proposals() == []
    assert not branch_exists(repo)


def test_content_reaching_target_supersedes_the_open_proposal(
    host: LocalGitHost, repo: Path
) -> None:
    host.propose(proposal(content("r1")))
    (repo / REF).write_text(content("r1"))
    git(repo, "commit", "-q", "-am", "promote by hand")

    result = host.propose(proposal(content("r1")))

    assert result.action == "unchanged"
    assert result.extra["superseded"] == [1]
    assert host.get(1).status == "superseded"
    assert not branch_exists(repo)


def test_propose_follows_a_moved_target(host: LocalGitHost, repo: Path) -> None:
    host.propose(proposal(content("r1")))
    (repo / "README.md").write_text("moved\n")
    git(repo, "commit", "-q", "-am", "unrelated")

    result = host.propose(proposal(content("r1")))

    assert result.action == "updated"
    assert git(repo, "rev-parse", f"{BRANCH}^").strip() == tip(repo)
    assert host.get(1).base == tip(repo)


def test_ids_increase(host: LocalGitHost, repo: Path) -> None:
    assert host.propose(proposal(content("r1"))).id == "1"
    host.reject(1)
    assert host.propose(proposal(content("r2"))).id == "2"
    assert host.propose(proposal(content("r3"), branch="crashed/other")).id == "3"
    (host.proposals_dir / "3.json").unlink()  # a lost record never frees its id
    assert host.propose(proposal(content("r4"), branch="crashed/third")).id == "4"
    assert [r.id for r in host.list_proposals()] == [1, 2, 4]
    assert [r.id for r in host.list_proposals("open")] == [2, 4]


def test_approve_fast_forwards_the_checked_out_target(host: LocalGitHost, repo: Path) -> None:
    host.propose(proposal(content("r1")))
    commit = tip(repo, BRANCH)
    (repo / "README.md").write_text("unrelated local edit\n")

    approval = host.approve(1)

    assert approval.merge_commit == commit
    assert not approval.rebased
    assert approval.worktree == repo
    assert approval.branch_deleted
    assert tip(repo) == commit
    assert (repo / REF).read_text() == content("r1")
    assert git(repo, "status", "--porcelain") == " M README.md\n"
    assert (repo / "README.md").read_text() == "unrelated local edit\n"
    record = host.get(1)
    assert (record.status, record.merge_commit) == ("merged", commit)
    assert not branch_exists(repo)
    # Rollback is a plain revert of the one-file commit.
    git(repo, "revert", "--no-edit", "HEAD")
    assert (repo / REF).read_text() == EMPTY


def test_approve_with_target_not_checked_out(host: LocalGitHost, repo: Path) -> None:
    git(repo, "switch", "-q", "-c", "feature")
    host.propose(proposal(content("r1")))

    approval = host.approve(1)

    assert approval.worktree is None
    assert tip(repo) == approval.merge_commit
    assert git(repo, "show", f"main:{REF}") == content("r1")
    assert git(repo, "symbolic-ref", "--short", "HEAD").strip() == "feature"
    assert (repo / REF).read_text() == EMPTY
    assert git(repo, "status", "--porcelain") == ""


def test_approve_updates_a_linked_worktree_keeping_staged_work(
    host: LocalGitHost, repo: Path, tmp_path: Path
) -> None:
    git(repo, "switch", "-q", "-c", "feature")
    linked = tmp_path / "linked"
    git(repo, "worktree", "add", "-q", str(linked), "main")
    (linked / "staged.txt").write_text("work in progress\n")
    git(linked, "add", "staged.txt")
    host.propose(proposal(content("r1")))

    approval = host.approve(1)

    assert approval.worktree == linked.resolve()
    assert (linked / REF).read_text() == content("r1")
    assert git(linked, "status", "--porcelain") == "A  staged.txt\n"
    assert (repo / REF).read_text() == EMPTY  # the other checkout is on "feature"


def test_approve_reapplies_on_a_moved_target(host: LocalGitHost, repo: Path) -> None:
    host.propose(proposal(content("r1")))
    (repo / "README.md").write_text("moved\n")
    git(repo, "commit", "-q", "-am", "unrelated")
    moved = tip(repo)

    approval = host.approve(1)

    assert approval.rebased
    assert git(repo, "rev-parse", "main^").strip() == moved
    assert git(repo, "diff", "--name-only", "main^", "main").split() == [REF]
    assert (repo / REF).read_text() == content("r1")
    assert (repo / "README.md").read_text() == "moved\n"
    assert git(repo, "status", "--porcelain") == ""


def test_approve_refuses_a_conflicting_target(host: LocalGitHost, repo: Path) -> None:
    host.propose(proposal(content("r1")))
    (repo / REF).write_text(content("by hand"))
    git(repo, "commit", "-q", "-am", "promote by hand")
    before = tip(repo)

    with pytest.raises(RefusedError, match="changed on main since"):
        host.approve(1)

    assert tip(repo) == before
    assert host.get(1).status == "open"
    assert branch_exists(repo)


def test_approve_refuses_a_modified_working_copy(host: LocalGitHost, repo: Path) -> None:
    host.propose(proposal(content("r1")))
    (repo / REF).write_text("my local edit\n")
    before = tip(repo)

    with pytest.raises(RefusedError, match="local modifications"):
        host.approve(1)

    assert tip(repo) == before
    assert (repo / REF).read_text() == "my local edit\n"
    assert host.get(1).status == "open"
    assert branch_exists(repo)

    git(repo, "checkout", "--", REF)
    host.approve(1)
    assert (repo / REF).read_text() == content("r1")


def test_approve_refuses_a_staged_working_copy(host: LocalGitHost, repo: Path) -> None:
    host.propose(proposal(content("r1")))
    (repo / REF).write_text("staged edit\n")
    git(repo, "add", REF)
    with pytest.raises(RefusedError, match="local modifications"):
        host.approve(1)
    assert host.get(1).status == "open"


def test_reject_marks_rejected_and_deletes_the_branch(host: LocalGitHost, repo: Path) -> None:
    host.propose(proposal(content("r1")))
    before = tip(repo)

    record = host.reject(1)

    assert record.status == "rejected"
    assert host.get(1).status == "rejected"
    assert not branch_exists(repo)
    assert tip(repo) == before
    with pytest.raises(InputError, match="rejected, not open"):
        host.approve(1)
    with pytest.raises(InputError, match="rejected, not open"):
        host.reject(1)


def test_diff_shows_the_proposed_change(host: LocalGitHost) -> None:
    host.propose(proposal(content("r1")))
    diff = host.diff(1)
    assert f"+++ b/{REF}" in diff
    assert '+  "run": "r1"' in diff
    assert '-  "status": "no-model-promoted",' in diff


def test_unknown_proposal(host: LocalGitHost) -> None:
    with pytest.raises(NotFoundError, match="no proposal #7"):
        host.get(7)
    with pytest.raises(InputError, match="positive integer"):
        host.get("abc")


def test_failed_record_write_leaves_no_proposal(
    host: LocalGitHost, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(path: Path, data: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(local_proposals, "atomic_write", broken)
    with pytest.raises(OSError, match="disk full"):
        host.propose(proposal(content("r1")))
    assert host.list_proposals() == []
    assert not branch_exists(repo)


def test_invalid_proposals_are_refused(host: LocalGitHost) -> None:
    with pytest.raises(InputError, match="differ from the target"):
        host.propose(proposal(content("r1"), branch="main"))
    with pytest.raises(InputError, match="not a valid branch name"):
        host.propose(proposal(content("r1"), branch="bad..name"))
    bad_path = Proposal(BRANCH, "t", "d", [FileChange("../escape.json", "x")])
    with pytest.raises(InputError, match="relative inside the repo"):
        host.propose(bad_path)


def test_missing_target_branch(repo: Path, tmp_path: Path) -> None:
    host = LocalGitHost(repo, tmp_path / "home", "trunk")
    with pytest.raises(NotFoundError, match="'trunk' not found"):
        host.propose(proposal(content("r1")))


def test_not_a_git_repository(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(ConfigError, match="not a git repository"):
        LocalGitHost(plain, tmp_path / "home")


def test_from_settings_defaults_to_the_enclosing_repository(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (repo / "sub").mkdir()
    monkeypatch.chdir(repo / "sub")
    monkeypatch.delenv("CRASHED_REPO", raising=False)
    monkeypatch.setenv("CRASHED_HOME", str(tmp_path / "home"))
    host = LocalGitHost.from_settings(load_settings())
    assert host.root == repo.resolve()
    assert host.proposals_dir == (tmp_path / "home" / "proposals").resolve()


def test_history_lists_every_change_on_the_target_with_its_proposal(
    host: LocalGitHost, repo: Path
) -> None:
    host.propose(proposal(content("r1")))
    host.approve(1)  # fast-forward: the proposal's own commit lands on main
    (repo / REF).write_text(content("by hand"))
    git(repo, "commit", "-q", "-am", "promote by hand")
    host.propose(proposal(content("r2")))
    (repo / "README.md").write_text("moved\n")
    git(repo, "commit", "-q", "-am", "unrelated")  # not in the reference's history
    host.approve(2)  # re-applied on the moved target: a new commit, same proposal id
    git(repo, "switch", "-q", "-c", "elsewhere")
    (repo / REF).write_text(content("other branch"))
    git(repo, "commit", "-q", "-am", "not on main")

    revisions = host.history(REF)

    assert [(r.content, r.proposal_id) for r in revisions] == [
        (EMPTY, ""),
        (content("r1"), "1"),
        (content("by hand"), ""),
        (content("r2"), "2"),
    ]
    assert revisions[-1].commit == tip(repo, "main")
    assert revisions[1].merged_at is not None
    assert revisions[1].merged_at == host.get(1).merged_at
    assert revisions[1].proposal_url == (host.proposals_dir / "1.json").as_uri()
    assert revisions[2].title == "promote by hand"
