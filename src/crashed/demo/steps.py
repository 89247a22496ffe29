"""Show-and-run CLI steps, the demo's sandbox repository and environment."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import click

from crashed.errors import CrashedError


def title(text: str) -> None:
    """A step heading."""
    click.echo()
    click.secho(f"━━ {text}", fg="cyan", bold=True)


def run_cli(args: list[str], env: dict[str, str], capture: bool = False) -> str:
    """Print ``crashed ARGS`` and run it as a subprocess; its stdout when ``capture``."""
    shown = "crashed " + " ".join(shlex.quote(a) for a in args)
    click.secho(f"$ {shown}", fg="green")
    result = subprocess.run(
        [sys.executable, "-m", "crashed", *args],
        env=env,
        text=True,
        capture_output=capture,
        check=False,
    )
    if result.returncode != 0:
        if capture:
            click.echo(result.stdout + result.stderr, err=True)
        raise CrashedError(
            f"demo step failed: {shown} (exit {result.returncode})", exit_code=result.returncode
        )
    return result.stdout if capture else ""


def sandbox_repo(repo: Path, reference: Path) -> None:
    """A git repository holding only model-reference.json: the demo's 'GitLab project'."""
    if (repo / ".git").is_dir():
        return
    repo.mkdir(parents=True, exist_ok=True)
    (repo / "model-reference.json").write_text(reference.read_text())
    git = ["git", "-C", str(repo), "-c", "user.name=crashed-demo",
           "-c", "user.email=demo@crashed.invalid"]  # fmt: skip
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "model-reference.json"], check=True)
    subprocess.run(
        [*git, "commit", "-q", "-m", "Initial model reference (no model yet)"], check=True
    )


def demo_env(home: Path, repo: Path) -> dict[str, str]:
    """The environment of every step: the embedded default, the sandbox repo and reference."""
    return {
        **os.environ,
        "CRASHED_HOME": str(home),
        "CRASHED_PLATFORM": "local",
        "CRASHED_WAREHOUSE": "duckdb",
        "CRASHED_LAKE": "local",
        "CRASHED_GIT_HOST": "local",
        "CRASHED_REPO": str(repo),
        "CRASHED_MODEL_REFERENCE": str(repo / "model-reference.json"),
        # the demo waits for its requests to reach the prediction log: flush often
        "PREDICTION_LOG_FLUSH_SECONDS": os.environ.get("PREDICTION_LOG_FLUSH_SECONDS", "2"),
    }


def next_run_number(work: Path) -> int:
    """Count demo runs in ``work`` (the seed of each run's synthetic data)."""
    counter = work / "runs"
    number = int(counter.read_text()) + 1 if counter.is_file() else 1
    counter.write_text(str(number))
    return number


def synthetic_window(today: date) -> tuple[date, date]:
    """Dates of the demo's synthetic crashes: the pipeline's default windows before today
    (validation = the 3 months before the run, training = the 12 months before that)."""
    end = today - timedelta(days=1)
    return date(end.year - 1, end.month, 1) - timedelta(days=92), end
