"""`crashed demo`: the whole two-phase loop on the embedded default, one visible step at a time.

Every step is the real CLI (printed, then run as a subprocess), so the demo doubles as a script
of what a user types. The Git host is a sandbox repository under ``CRASHED_HOME/demo/repo`` so
the demo never commits to the checkout you are working in.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import date, timedelta
from pathlib import Path

import click

from crashed.cli.context import AppContext
from crashed.errors import CrashedError

pass_app = click.make_pass_decorator(AppContext)
DEMO_PORT = 8765


def _title(text: str) -> None:
    click.echo()
    click.secho(f"━━ {text}", fg="cyan", bold=True)


def _run(args: list[str], env: dict[str, str], capture: bool = False) -> str:
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
        raise CrashedError(f"demo step failed: {shown} (exit {result.returncode})")
    return result.stdout if capture else ""


def _sandbox_repo(repo: Path, reference: Path) -> None:
    """A git repository holding only model-reference.json: the demo's 'GitLab project'."""
    if (repo / ".git").is_dir():
        return
    repo.mkdir(parents=True, exist_ok=True)
    (repo / "model-reference.json").write_text(reference.read_text())
    git = [
        "git",
        "-C",
        str(repo),
        "-c",
        "user.name=crashed-demo",
        "-c",
        "user.email=demo@crashed.invalid",
    ]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "model-reference.json"], check=True)
    subprocess.run(
        [*git, "commit", "-q", "-m", "Initial model reference (no model yet)"], check=True
    )


def _get(url: str, timeout: float = 5.0) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _wait_ready(base: str, run_id: str | None, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    last: dict = {}
    while time.monotonic() < deadline:
        try:
            status, body = _get(f"{base}/readyz", 2)
            if status == 200:
                _, model = _get(f"{base}/model", 2)
                served = (model.get("model") or {}).get("run_id")
                if run_id is None or served == run_id:
                    return model
            last = body
        except (OSError, ValueError):
            pass
        time.sleep(0.3)
    raise CrashedError(f"the local inference server did not become ready: {last}")


class _Prober(threading.Thread):
    """Sends /predict requests during a reload and counts failures (zero-downtime check)."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.ok, self.failed, self.stop = url, 0, 0, threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                status, _ = _get(self.url, 5)
                self.ok += status == 200
                self.failed += status != 200
            except (OSError, ValueError):
                self.failed += 1
            time.sleep(0.02)


@click.command()
@click.option(
    "--csv",
    "csv_path",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="Use a real VicRoads CSV instead of synthetic crashes.",
)
@click.option(
    "--rows",
    default=60_000,
    show_default=True,
    type=click.IntRange(1000, 2_000_000),
    help="Synthetic crashes to generate.",
)
@click.option(
    "--port",
    default=DEMO_PORT,
    show_default=True,
    type=int,
    help="Port of the local inference server.",
)
@click.option("--stop", is_flag=True, help="Stop the demo's inference server and exit.")
@pass_app
def demo(app: AppContext, csv_path: Path | None, rows: int, port: int, stop: bool) -> None:
    """Run the whole loop locally: data → pipeline → review → approve → serve → predict."""
    home = app.settings.home
    work = home / "demo"
    pid_file = work / "gunicorn.pid"
    if stop:
        _stop_server(pid_file)
        return
    work.mkdir(parents=True, exist_ok=True)
    repo = work / "repo"
    project_reference = Path(__file__).resolve().parents[3] / "model-reference.json"
    if not project_reference.is_file():
        project_reference = app.settings.crashed_model_reference
    _sandbox_repo(repo, project_reference)
    env = {
        **os.environ,
        "CRASHED_HOME": str(home),
        "CRASHED_PLATFORM": "local",
        "CRASHED_WAREHOUSE": "duckdb",
        "CRASHED_LAKE": "local",
        "CRASHED_GIT_HOST": "local",
        "CRASHED_REPO": str(repo),
        "CRASHED_MODEL_REFERENCE": str(repo / "model-reference.json"),
    }
    counter = work / "runs"
    run_number = int(counter.read_text()) + 1 if counter.is_file() else 1
    counter.write_text(str(run_number))

    _title(f"1. Data (demo run {run_number})")
    if csv_path is None:
        end = date.today() - timedelta(days=1)
        start = date(end.year - 1, end.month, 1) - timedelta(days=92)
        csv_path = work / "crashes.csv"
        _run(
            [
                "data",
                "synth",
                "--rows",
                str(rows),
                "--seed",
                str(run_number),
                "--start",
                start.isoformat(),
                "--end",
                end.isoformat(),
                "--out",
                str(csv_path),
            ],
            env,
        )
    _run(["data", "load", "--csv", str(csv_path)], env)
    described = json.loads(_run(["data", "describe", "--json"], env, capture=True))
    click.echo(
        f"  {described['rows']} crashes, {described['date_min']} .. "
        f"{described['date_max']}, positive rate {described['positive_rate']:.4f}"
    )

    _title("2. Training pipeline (compiled with kfp, run locally from the compiled YAML)")
    from crashed.core.windows import resolve_windows

    windows = resolve_windows(date.fromisoformat(described["date_max"]) + timedelta(days=1))
    summary_file = work / "summary.json"
    _run(
        [
            "pipelines",
            "crashed_pipeline",
            "run-local",
            "--summary",
            str(summary_file),
            *[a for k, v in windows.as_dict().items() for a in ("--param", f"{k}={v}")],
        ],
        env,
    )
    summary = json.loads(summary_file.read_text())
    metrics = summary.get("metrics") or {}
    click.echo(
        f"  run {summary['run_id']}: ROC-AUC {metrics.get('roc_auc', 0):.4f}, "
        f"PR-AUC {metrics.get('pr_auc', 0):.4f}"
    )

    _title("3. Review: the proposal and its report")
    proposal = summary.get("proposal")
    if proposal and proposal.get("action") != "unchanged":
        _run(["models", "review", str(proposal["id"])], env)
        _title(f"4. Approve proposal #{proposal['id']} (you are the reviewer)")
        _run(["models", "approve", str(proposal["id"])], env)
    else:
        click.echo(
            "  nothing to review: "
            + str(summary.get("decision") or "the candidate matches production")
        )
        _title("4. Approve: skipped (no proposal)")
    _run(["models", "verify"], env)

    _title("5. Deploy: local gunicorn on the approved model-reference.json")
    base = f"http://127.0.0.1:{port}"
    reference = json.loads((repo / "model-reference.json").read_text())
    run_id = (reference.get("model") or {}).get("run_id")
    pid = int(pid_file.read_text()) if pid_file.is_file() else 0
    query = (
        "accident_time=02:30&day_of_week=Saturday&males=1&females=0"
        "&accident_type=Collision%20with%20a%20fixed%20object&young_driver=1"
    )
    if pid and _alive(pid):
        prober = _Prober(f"{base}/predict?{query}")
        prober.start()
        click.echo(f"  server {pid} is running: SIGHUP reloads its workers on the new model")
        os.kill(pid, signal.SIGHUP)
        _wait_ready(base, run_id, 60)
        time.sleep(1.0)
        prober.stop.set()
        prober.join()
        click.echo(f"  during the reload: {prober.ok} requests answered, {prober.failed} failed")
    else:
        log = (work / "gunicorn.log").open("ab")
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "crashed",
                "inference",
                "start-prod",
                "--bind",
                f"127.0.0.1:{port}",
            ],
            env={**env, "WEB_CONCURRENCY": env.get("WEB_CONCURRENCY", "2")},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        pid_file.write_text(str(server.pid))
        click.echo(f"  started gunicorn (pid {server.pid}), log {work / 'gunicorn.log'}")
        _wait_ready(base, run_id, 90)

    _title("6. Predict")
    dark = _dark_value(base)
    if dark:
        query += "&light_condition=" + urllib.parse.quote(dark)
    url = f"{base}/predict?{query}"
    click.secho(f"$ curl '{url}'", fg="green")
    status, body = _get(url)
    click.echo(json.dumps(body, indent=2))
    if status != 200:
        raise CrashedError(f"/predict answered {status}")
    click.echo()
    click.secho("Next steps", bold=True)
    exe = Path(sys.executable).with_name("crashed")
    prog = os.path.relpath(exe) if exe.is_file() else "crashed"
    env_prefix = f"CRASHED_HOME={home} CRASHED_REPO={repo}"
    steps = [
        (f"curl '{base}/predict?accident_time=14:00&day_of_week=Tuesday'", "try other crashes"),
        (f"curl {base}/openapi.json", "every feature, its allowed values, every endpoint"),
        (f"curl {base}/metrics", "Prometheus metrics"),
        ("make demo", "another run: new data, a new proposal, approve, hot reload"),
        (f"{env_prefix} {prog} models proposals", "the review queue"),
        (f"{env_prefix} {prog} models show", "what is deployed"),
        (f"{prog} demo --stop", "stop the inference server"),
    ]
    for command, what in steps:
        click.echo(f"  {command}")
        click.secho(f"      {what}", dim=True)


def _dark_value(base: str) -> str | None:
    """A dark light condition the served model knows (real data says Dark, the full schema
    Dark No street lights …), read from the server's OpenAPI document."""
    try:
        _, spec = _get(f"{base}/openapi.json")
        parameters = spec["paths"]["/predict"]["get"]["parameters"]
        allowed = next(
            p["schema"].get("enum", []) for p in parameters if p["name"] == "light_condition"
        )
    except (OSError, ValueError, KeyError, StopIteration):
        return None
    return next((value for value in allowed if value.startswith("Dark")), None)


def _stop_server(pid_file: Path) -> None:
    if not pid_file.is_file():
        click.echo("no demo server is running")
        return
    pid = int(pid_file.read_text())
    if _alive(pid):
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            if not _alive(pid):
                break
            time.sleep(0.1)
        click.echo(f"stopped the demo inference server (pid {pid})")
    pid_file.unlink(missing_ok=True)
