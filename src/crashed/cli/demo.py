"""`crashed demo`: the whole two-phase loop on the embedded default, one visible step at a time.

Every step is the real CLI (printed, then run as a subprocess), so the demo doubles as a script
of what a user types. The Git host is a sandbox repository under ``CRASHED_HOME/demo/repo`` so
the demo never commits to the checkout you are working in. The pieces live in
:mod:`crashed.demo`; this module only orders them.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import click

from crashed.cli.context import AppContext
from crashed.demo import server, traffic
from crashed.demo.next_steps import next_steps, program
from crashed.demo.outcome import explain_no_proposal
from crashed.demo.query import dark_value, predict_url
from crashed.demo.steps import (
    demo_env,
    next_run_number,
    run_cli,
    sandbox_repo,
    synthetic_window,
    title,
)
from crashed.errors import NotFoundError, ServiceError

pass_app = click.make_pass_decorator(AppContext)
DEMO_PORT = 8765
MONITOR_REQUESTS = 600


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
    """Run the whole loop locally: data → pipeline → review → approve → serve → predict →
    monitor."""
    home = app.settings.home
    work = home / "demo"
    if stop:
        click.echo(server.stop(work / "gunicorn.pid"))
        return
    work.mkdir(parents=True, exist_ok=True)
    repo = work / "repo"
    project_reference = Path(__file__).resolve().parents[3] / "model-reference.json"
    if not project_reference.is_file():
        project_reference = app.settings.crashed_model_reference
    sandbox_repo(repo, project_reference)
    env = demo_env(home, repo)
    run_number = next_run_number(work)

    title(f"1. Data (demo run {run_number})")
    if csv_path is None:
        start, end = synthetic_window(date.today())
        csv_path = work / "crashes.csv"
        run_cli(["data", "synth", "--rows", str(rows), "--seed", str(run_number),
                 "--start", start.isoformat(), "--end", end.isoformat(),
                 "--out", str(csv_path)], env)  # fmt: skip
    run_cli(["data", "load", "--csv", str(csv_path)], env)
    described = json.loads(run_cli(["data", "describe", "--json"], env, capture=True))
    click.echo(
        f"  {described['rows']} crashes, {described['date_min']} .. "
        f"{described['date_max']}, positive rate {described['positive_rate']:.4f}"
    )

    title("2. Training pipeline (compiled with kfp, run locally from the compiled YAML)")
    from crashed.core.windows import resolve_windows

    windows = resolve_windows(date.fromisoformat(described["date_max"]) + timedelta(days=1))
    summary_file = work / "summary.json"
    params = [a for k, v in windows.as_dict().items() for a in ("--param", f"{k}={v}")]
    run_cli(["pipelines", "crashed_pipeline", "run-local", "--summary", str(summary_file),
             *params], env)  # fmt: skip
    summary = json.loads(summary_file.read_text())
    metrics = summary.get("metrics") or {}
    click.echo(
        f"  run {summary['run_id']}: ROC-AUC {metrics.get('roc_auc', 0):.4f}, "
        f"PR-AUC {metrics.get('pr_auc', 0):.4f}"
    )

    title("3. Review: the proposal and its report")
    served_before = _approved_run(repo)
    proposal = summary.get("proposal")
    if proposal and proposal.get("action") != "unchanged":
        run_cli(["models", "review", str(proposal["id"])], env)
        title(f"4. Approve proposal #{proposal['id']} (you are the reviewer)")
        run_cli(["models", "approve", str(proposal["id"])], env)
    else:
        for line in explain_no_proposal(summary, served_before, windows.as_dict()):
            click.echo(f"  {line}")
        title("4. Approve: skipped (no proposal)")
    run_id = _approved_run(repo)
    if run_id is None:
        raise NotFoundError(
            "no model has been approved yet, so the demo has nothing to serve "
            "(see step 3 for why nothing was proposed)"
        )
    run_cli(["models", "verify"], env)

    title("5. Deploy: local gunicorn on the approved model-reference.json")
    base = f"http://127.0.0.1:{port}"
    pid = server.running_pid(work / "gunicorn.pid")
    if pid:
        click.echo(
            f"  server {pid} is running: `crashed inference reload` switches its workers to the "
            "new model (each loads and verifies it beside the old one, then swaps)"
        )
        probe = server.reload_under_load(pid, base, run_id, predict_url(base, None))
        click.echo(f"  during the reload: {probe.ok} requests answered, {probe.failed} failed")
    else:
        pid = server.start(env, port, work)
        click.echo(f"  started gunicorn (pid {pid}), log {work / 'gunicorn.log'}")
        server.wait_ready(base, run_id, 90)

    title("6. Predict")
    before = traffic.written(base)  # predictions already in the log (an earlier demo's)
    url = predict_url(base, dark_value(base))
    click.secho(f"$ curl '{url}'", fg="green")
    status, body = server.get_json(url)
    click.echo(json.dumps(body, indent=2))
    if status != 200:
        raise ServiceError(f"/predict answered {status}")

    title("7. Monitor: the prediction log → drift and live quality")
    queries = traffic.recent_crashes(csv_path, MONITOR_REQUESTS)
    click.secho(
        f"$ # {len(queries)} of the latest crashes, each as "
        f"curl '{base}/predict?id=<accident_no>&…'",
        fg="green",
    )
    ok, refused = traffic.send(base, queries)
    click.echo(f"  {ok} predictions served ({refused} refused), each logged with its id")
    done = traffic.wait_written(base, before + ok + 1, timeout=45)
    click.echo(
        f"  {int(done - before)} of {ok + 1} predictions (steps 6 and 7) flushed to the lake's "
        "prediction log (predictions/<model>/date=…/; counted in /metrics)"
    )
    run_cli(["monitor", "run"], env)
    click.echo(
        "  `crashed monitor run --trigger` acts on a decided retrain: it starts one training "
        "run (cooldown, never two in flight) whose proposal says why"
    )
    click.echo()
    click.secho("Next steps", bold=True)
    for command, what in next_steps(base, home, repo, program()):
        click.echo(f"  {command}")
        click.secho(f"      {what}", dim=True)


def _approved_run(repo: Path) -> str | None:
    """The run id the sandbox repository's model-reference.json names (None: no model)."""
    reference = json.loads((repo / "model-reference.json").read_text())
    return (reference.get("model") or {}).get("run_id")
