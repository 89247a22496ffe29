"""Fake GitLab fixtures (wired in through ``pytest_plugins``).

``gitlab_server`` (session) runs ``python -m tests.servers.fake_gitlab`` on a free port.
``gitlab_fake`` (function) resets its state and yields a :class:`FakeGitLabControl` (URL, token,
project, fault injection, state inspection). ``gitlab_host`` (function) is a
:class:`~crashed.adapters.gitlab_githost.GitLabHost` on it with a tiny backoff, so retry tests
stay fast. Tests that do not ask for them never start the server.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from tests.servers.procs import Server, free_port, start_server

from crashed.adapters.gitlab_githost import GitLabHost

REPO_ROOT = Path(__file__).resolve().parents[2]
GITLAB_TOKEN = "glpat-fake-Sup3rSecret-token-0123456789"
GITLAB_PROJECT = "crashed-group/ml/crashed"  # a subgroup, so the id is URL-encoded twice
OTHER_PROJECT = "other/project"


@dataclass
class FakeGitLabControl:
    """Drive the fake: reset, inject faults, inspect state."""

    url: str
    token: str = GITLAB_TOKEN
    project: str = GITLAB_PROJECT

    def reset(self) -> None:
        requests.post(f"{self.url}/__control__/reset", timeout=5).raise_for_status()

    def fail(
        self,
        path_contains: str,
        status: int | None = 502,
        times: int = 1,
        method: str | None = None,
        **options: Any,
    ) -> None:
        """The next ``times`` requests whose raw path contains ``path_contains`` fail."""
        spec = {"path_contains": path_contains, "status": status, "times": times, "method": method}
        response = requests.post(
            f"{self.url}/__control__/fail", json={**spec, **options}, timeout=5
        )
        response.raise_for_status()

    def inject_mr(self, source_branch: str, title: str, **fields: Any) -> dict[str, Any]:
        """Open an MR bypassing GitLab's one-open-MR-per-branch rule (a leftover)."""
        body = {"source_branch": source_branch, "title": title, "project": self.project, **fields}
        response = requests.post(f"{self.url}/__control__/merge_requests", json=body, timeout=5)
        response.raise_for_status()
        return response.json()

    def state(self) -> dict[str, Any]:
        response = requests.get(f"{self.url}/__control__/state", timeout=5)
        response.raise_for_status()
        return response.json()

    def project_state(self) -> dict[str, Any]:
        return self.state()["projects"][self.project]

    def open_mrs(self, source_branch: str | None = None) -> list[dict[str, Any]]:
        return [
            mr
            for mr in self.project_state()["merge_requests"]
            if mr["state"] == "opened"
            and (source_branch is None or mr["source_branch"] == source_branch)
        ]

    def branch(self, name: str) -> dict[str, Any] | None:
        return self.project_state()["branches"].get(name)

    def requests_log(self) -> list[dict[str, Any]]:
        return self.state()["requests"]


@pytest.fixture(scope="session")
def gitlab_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The fake GitLab for the whole session (two projects; the first is the test project)."""
    port = free_port()
    log = tmp_path_factory.mktemp("fake-gitlab") / "fake_gitlab.log"
    command = [
        sys.executable,
        "-m",
        "tests.servers.fake_gitlab",
        "--port",
        str(port),
        "--token",
        GITLAB_TOKEN,
        "--project",
        GITLAB_PROJECT,
        "--project",
        OTHER_PROJECT,
    ]
    server = start_server(command, port=port, log=log, cwd=REPO_ROOT, env={"PYTHONUNBUFFERED": "1"})
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def gitlab_fake(gitlab_server: Server) -> FakeGitLabControl:
    """The fake GitLab, reset to its seeded state for this test."""
    control = FakeGitLabControl(url=gitlab_server.url)
    control.reset()
    return control


@pytest.fixture
def gitlab_host(gitlab_fake: FakeGitLabControl) -> GitLabHost:
    """A GitLabHost on the fake: 4 retries with a 10 ms backoff, 5 s timeout."""
    return GitLabHost(
        gitlab_fake.url,
        gitlab_fake.project,
        gitlab_fake.token,
        target_branch="main",
        timeout=5,
        retries=4,
        backoff=0.01,
        max_backoff=0.05,
    )
