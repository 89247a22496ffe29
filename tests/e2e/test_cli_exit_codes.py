"""The README's exit codes from the real entry point (``python -m crashed``): a missing file is 4
wherever it is named, and a closed pipe (``| head``) ends the command quietly, not as a bug."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from crashed.cli import CLOSED_PIPE_EXIT
from crashed.core.reference import empty_reference, render_reference

pytestmark = pytest.mark.slow  # processes (and git)

TIMEOUT = 300  # generous: a busy 2-core machine, never a timing assertion


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A scratch git repository with the empty reference, CRASHED_HOME beside it."""
    environment = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CRASHED_", "LAKE_", "GITLAB_", "GOOGLE_", "KFP_"))
    }
    config = tmp_path / "gitconfig"
    config.write_text("[user]\n\tname = Tester\n\temail = tester@example.com\n")
    repo = tmp_path / "repo"
    repo.mkdir()
    environment |= {
        "GIT_CONFIG_GLOBAL": str(config),
        "GIT_CONFIG_NOSYSTEM": "1",
        "CRASHED_HOME": str(tmp_path / "home"),
        "CRASHED_REPO": str(repo),
        "CRASHED_PLATFORM": "local",
    }
    (repo / "model-reference.json").write_text(render_reference(empty_reference()))
    for args in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-q", "-m", "initial"]):
        subprocess.run(["git", *args], cwd=repo, env=environment, check=True, timeout=TIMEOUT)
    return environment


def crashed(
    args: list[str], env: dict[str, str], cwd: Path, **kwargs: object
) -> subprocess.CompletedProcess[str]:
    streams = kwargs or {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    return subprocess.run(
        [sys.executable, "-m", "crashed", *args],
        env=env,
        cwd=cwd,
        text=True,
        timeout=TIMEOUT,
        check=False,
        **streams,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["models", "verify", "--reference", "nope.json"], "error: nope.json: no such model "),
        (["models", "show", "--reference", "nope.json"], "error: nope.json: no such model "),
        (["data", "load", "--csv", "nope.csv"], "error: nope.csv: no such file"),
    ],
)
def test_a_missing_file_is_exit_4_in_one_line(
    env: dict[str, str], tmp_path: Path, args: list[str], line: str
) -> None:
    done = crashed(args, env, tmp_path)
    assert done.returncode == 4, done.stderr
    (only,) = done.stderr.splitlines()
    assert only.startswith(line)
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["demo", "--csv", "nope.csv"],
        ["pipelines", "crashed_pipeline", "run-local", "--package", "nope.yaml"],
    ],
)
def test_a_missing_file_option_is_exit_4_not_a_usage_error(
    env: dict[str, str], tmp_path: Path, args: list[str]
) -> None:
    """``click.Path(exists=True)`` options: click's message, the README's exit code."""
    done = crashed(args, env, tmp_path)
    assert done.returncode == 4, done.stderr
    assert done.stderr.splitlines()[-1].endswith(f"'{args[-1]}' does not exist.")


def test_a_usage_error_is_still_2(env: dict[str, str], tmp_path: Path) -> None:
    done = crashed(["demo", "--csv", str(tmp_path)], env, tmp_path)  # a directory, not a file
    assert done.returncode == 2, done.stderr


def closed_pipe(args: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str]:
    """Run with stdout a pipe whose reader has already gone (``| head`` after it exited)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = crashed(
            args, env, cwd, stdout=write_end, capture_output=False, stderr=subprocess.PIPE
        )
    finally:
        os.close(write_end)
    return done.returncode, done.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["models", "--help"],
        ["models", "history", "--json"],
        ["pipelines", "list"],
    ],
)
@pytest.mark.parametrize("buffered", [True, False], ids=["buffered", "unbuffered"])
def test_a_closed_pipe_ends_quietly(
    env: dict[str, str], tmp_path: Path, args: list[str], buffered: bool
) -> None:
    """Buffered: the write fails when the command's output is flushed; unbuffered: at once."""
    env.pop("PYTHONUNBUFFERED", None)
    if not buffered:
        env["PYTHONUNBUFFERED"] = "1"
    code, stderr = closed_pipe(args, env, tmp_path)
    assert stderr == ""  # no traceback, no "report a bug"
    assert code == CLOSED_PIPE_EXIT == 141  # as the shell reports `yes | head -1` under pipefail


def test_an_open_pipe_is_unaffected(env: dict[str, str], tmp_path: Path) -> None:
    done = crashed(["models", "history", "--json"], env, tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (0, "[]\n", "")
