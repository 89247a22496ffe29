"""Which jobs of ``.gitlab-ci.yml`` run, evaluated by ``gitlab-ci-local`` in throw-away repos.

Each scenario builds a git repository whose ``origin/main`` is the state before the push, then
asks ``gitlab-ci-local --list-json`` which jobs' ``rules`` (``if`` and ``changes``, the latter
as ``git diff origin/main``) select. gitlab-ci-local does not evaluate ``workflow: rules``, so
the tested file gets one extra job, ``workflow-probe``, whose rules *are* the workflow rules:
the pipeline exists exactly when the probe would run.

gitlab-ci-local is installed (once) by ``tests/servers/install_gitlab_ci_local.sh`` into
``.tools/``; the tests skip only when Node.js is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
INSTALL = ROOT / "tests" / "servers" / "install_gitlab_ci_local.sh"
TOOLS = Path(os.environ.get("CRASHED_TOOLS_DIR", ROOT / ".tools"))
GITLAB_CI_LOCAL = TOOLS / "node_modules" / ".bin" / "gitlab-ci-local"
PROBE = "workflow-probe"
ALWAYS = {"build", "test"}

pytestmark = [
    pytest.mark.skipif(
        shutil.which("node") is None,
        reason="Node.js is not installed (gitlab-ci-local needs node >= 18)",
    ),
    pytest.mark.timeout(900),  # a first run installs gitlab-ci-local from npm
]


@pytest.fixture(scope="module")
def gitlab_ci_local() -> Path:
    """The gitlab-ci-local executable, installed by the idempotent script if needed."""
    done = subprocess.run(
        ["bash", str(INSTALL)], capture_output=True, text=True, timeout=840, check=False
    )
    assert done.returncode == 0, f"{INSTALL.name} failed:\n{done.stdout}\n{done.stderr}"
    assert GITLAB_CI_LOCAL.exists()
    return GITLAB_CI_LOCAL


@pytest.fixture(scope="module")
def ci_file() -> str:
    """``.gitlab-ci.yml`` plus the ``workflow-probe`` job carrying the workflow rules."""
    config = yaml.safe_load((ROOT / ".gitlab-ci.yml").read_text(encoding="utf-8"))
    rules = config["workflow"]["rules"]
    assert config.get(PROBE) is None
    config[PROBE] = {"stage": "build", "image": "busybox", "script": ["true"], "rules": rules}
    return yaml.safe_dump(config, sort_keys=False)


@dataclass
class Repo:
    """A scratch repository with ``origin/main`` (and ``origin/HEAD``) at its first commit."""

    path: Path
    home: Path

    def git(self, *args: str) -> str:
        env = {
            **os.environ,
            "HOME": str(self.home),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_AUTHOR_NAME": "ci",
            "GIT_AUTHOR_EMAIL": "ci@example.com",
            "GIT_COMMITTER_NAME": "ci",
            "GIT_COMMITTER_EMAIL": "ci@example.com",
        }
        done = subprocess.run(
            ["git", *args],
            cwd=self.path,
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
        return done.stdout

    def commit(self, files: dict[str, str], message: str) -> None:
        for name, content in files.items():
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content, encoding="utf-8")
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)


@pytest.fixture
def repo(tmp_path: Path, ci_file: str) -> Repo:
    path, home = tmp_path / "repo", tmp_path / "home"
    path.mkdir()
    home.mkdir()
    repo = Repo(path, home)
    repo.git("init", "-q", "-b", "main")
    repo.commit(
        {
            ".gitlab-ci.yml": ci_file,
            "model-reference.json": (ROOT / "model-reference.json").read_text(encoding="utf-8"),
            "src/crashed/__init__.py": '"""crashed."""\n',
            "README.md": "crashed\n",
        },
        "base",
    )
    repo.git("remote", "add", "origin", "git@gitlab.example.com:crashed/crashed.git")
    repo.git("update-ref", "refs/remotes/origin/main", "HEAD")
    repo.git("remote", "set-head", "origin", "main")
    return repo


def jobs_that_run(gitlab_ci_local: Path, repo: Repo, *options: str) -> set[str]:
    """The jobs the pipeline would run (none when the workflow rules create no pipeline)."""
    done = subprocess.run(
        [
            str(gitlab_ci_local),
            "--list-json",
            "--home",
            str(repo.home / ".gitlab-ci-local"),
            *options,
        ],
        cwd=repo.path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "HOME": str(repo.home)},
    )
    assert done.returncode == 0, f"gitlab-ci-local failed:\n{done.stdout}\n{done.stderr}"
    jobs = {job["name"]: job["when"] for job in json.loads(done.stdout)}
    if jobs.pop(PROBE) == "never":
        return set()
    return {name for name, when in jobs.items() if when != "never"}


def merge_request(target: str = "main") -> list[str]:
    """Options that make gitlab-ci-local evaluate a merge request pipeline."""
    variables = {
        "CI_PIPELINE_SOURCE": "merge_request_event",
        "CI_MERGE_REQUEST_IID": "7",
        "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": "model-update",
        "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": target,
        "CI_MERGE_REQUEST_EVENT_TYPE": "merged_result",
    }
    options = [f"--variable={k}={v}" for k, v in variables.items()]
    return [*options, "--unset-variable=CI_COMMIT_BRANCH"]  # absent in MR pipelines


# -- the three scenarios of the loop ------------------------------------------------------------


def test_a_push_to_the_default_branch_changing_code_deploys_the_pipeline_only(
    gitlab_ci_local: Path,
    repo: Repo,
) -> None:
    repo.commit({"src/crashed/__init__.py": '"""crashed, changed."""\n'}, "code change")

    # This run also validates the file against GitLab's JSON schema (on by default).
    assert jobs_that_run(gitlab_ci_local, repo) == ALWAYS | {"deploy-pipeline"}


def test_a_merge_to_the_default_branch_changing_the_reference_deploys_the_model(
    gitlab_ci_local: Path,
    repo: Repo,
) -> None:
    repo.git("checkout", "-q", "-b", "model-update")
    repo.commit(
        {"model-reference.json": '{"schema_version": 1, "status": "promoted"}\n'}, "model update"
    )
    repo.git("checkout", "-q", "main")
    repo.git("merge", "-q", "--no-ff", "-m", "Merge branch 'model-update'", "model-update")

    assert jobs_that_run(gitlab_ci_local, repo, "--no-json-schema-validation") == ALWAYS | {
        "deploy-pipeline",
        "deploy-model",
    }


def test_a_merge_request_changing_the_reference_verifies_the_model(
    gitlab_ci_local: Path,
    repo: Repo,
) -> None:
    repo.git("checkout", "-q", "-b", "model-update")
    repo.commit(
        {"model-reference.json": '{"schema_version": 1, "status": "promoted"}\n'}, "model update"
    )

    assert jobs_that_run(
        gitlab_ci_local, repo, "--no-json-schema-validation", *merge_request()
    ) == ALWAYS | {"verify-model"}


# -- what must not happen ----------------------------------------------------------------------


def test_a_merge_request_changing_only_code_neither_verifies_nor_deploys(
    gitlab_ci_local: Path,
    repo: Repo,
) -> None:
    repo.git("checkout", "-q", "-b", "feature")
    repo.commit({"src/crashed/__init__.py": '"""crashed, feature."""\n'}, "feature")

    assert (
        jobs_that_run(gitlab_ci_local, repo, "--no-json-schema-validation", *merge_request())
        == ALWAYS
    )


def test_a_branch_push_changing_the_reference_deploys_nothing(
    gitlab_ci_local: Path,
    repo: Repo,
) -> None:
    repo.git("checkout", "-q", "-b", "model-update")
    repo.commit(
        {"model-reference.json": '{"schema_version": 1, "status": "promoted"}\n'}, "model update"
    )

    assert jobs_that_run(gitlab_ci_local, repo, "--no-json-schema-validation") == ALWAYS


def test_a_branch_push_with_an_open_merge_request_makes_no_duplicate_pipeline(
    gitlab_ci_local: Path,
    repo: Repo,
) -> None:
    repo.git("checkout", "-q", "-b", "model-update")
    repo.commit(
        {"model-reference.json": '{"schema_version": 1, "status": "promoted"}\n'}, "model update"
    )

    assert (
        jobs_that_run(
            gitlab_ci_local,
            repo,
            "--no-json-schema-validation",
            "--variable=CI_OPEN_MERGE_REQUESTS=crashed/crashed!7",
        )
        == set()
    )


def test_a_scheduled_pipeline_on_the_default_branch_does_not_deploy_the_model(
    gitlab_ci_local: Path,
    repo: Repo,
) -> None:
    repo.commit(
        {"model-reference.json": '{"schema_version": 1, "status": "promoted"}\n'}, "model update"
    )

    assert "deploy-model" not in jobs_that_run(
        gitlab_ci_local,
        repo,
        "--no-json-schema-validation",
        "--variable=CI_PIPELINE_SOURCE=schedule",
    )


# -- the file itself -----------------------------------------------------------------------------


def test_jobs_use_rules_not_only_and_later_jobs_run_the_built_image() -> None:
    config = yaml.safe_load((ROOT / ".gitlab-ci.yml").read_text(encoding="utf-8"))
    jobs = {name: job for name, job in config.items() if isinstance(job, dict) and "script" in job}
    assert set(jobs) == {"build", "test", "verify-model", "deploy-pipeline", "deploy-model"}
    for name, job in jobs.items():
        assert "only" not in job and "except" not in job, name
        assert "rules" in job, name
    assert '--dockerfile "$CI_PROJECT_DIR/deploy/crashed.Dockerfile"' in " ".join(
        jobs["build"]["script"]
    )
    assert '--destination "$CRASHED_IMAGE"' in " ".join(jobs["build"]["script"])
    assert config["variables"]["CRASHED_IMAGE"] == "$CI_REGISTRY_IMAGE:$CI_COMMIT_SHA"
    assert config[".crashed-image"]["image"]["name"] == "$CI_REGISTRY_IMAGE:$CI_COMMIT_SHA"
    assert jobs["test"]["image"].startswith("$CI_REGISTRY_IMAGE/ci:$CI_COMMIT_SHA")
    for name in ("verify-model", "deploy-pipeline", "deploy-model"):
        assert ".crashed-image" in jobs[name]["extends"], name
        assert ".gcp-auth" in jobs[name]["extends"], name
    assert jobs["deploy-model"]["script"] == [
        'crashed inference deploy --image "$CI_REGISTRY_IMAGE:$CI_COMMIT_SHA"'
    ]
    text = (ROOT / ".gitlab-ci.yml").read_text(encoding="utf-8")
    assert "GITLAB_TOKEN:" not in text  # a secret is never defined here, only referenced
