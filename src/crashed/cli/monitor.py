"""`crashed monitor run`: drift and live quality of the production model's logged traffic."""

from __future__ import annotations

import datetime as dt
import secrets

import click

from crashed.cli.context import AppContext

pass_app = click.make_pass_decorator(AppContext)


@click.group()
def monitor() -> None:
    """Watch the served model: prediction log → drift, live quality → retrain or rollback."""


@monitor.command("run")
@click.option("--since", default="", help="First day (YYYY-MM-DD) [default: the window's].")
@click.option("--until", default="", help="Last day (YYYY-MM-DD) [default: today, UTC].")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
@click.option(
    "--trigger",
    is_flag=True,
    help="Act on the decision: start one retraining run (cooldown, none while one is in "
    "flight) and open a rollback proposal when live quality fell below the gate.",
)
@pass_app
def run(app: AppContext, since: str, until: str, as_json: bool, trigger: bool) -> None:
    """Assess the production model over the window; write the report to the lake.

    Exit 0 whatever the verdict (the verdict is data); errors exit as in the README's table.
    """
    from crashed.pipeline.ops.registry import execute, op_input

    now = dt.datetime.now(dt.UTC)
    run_id = f"monitor-{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
    inp = op_input(
        "monitor",
        {
            "run_id": run_id,
            "run_date": now.isoformat(timespec="seconds"),
            "since": since,
            "until": until,
            "trigger": trigger,
        },
    )
    orchestrator = app.adapters.orchestrator() if trigger else None
    out = execute(app.settings, app.adapters, "monitor", inp, orchestrator)
    if as_json:
        click.echo(out.model_dump_json(indent=2))
        return
    click.echo(
        f"{out.model or 'no model'} {out.since} .. {out.until}: {out.rows} predictions, "
        f"drift {'YES' if out.drift else 'no'}, score PSI "
        f"{'n/a' if out.score_psi is None else f'{out.score_psi:.3f}'}"
    )
    drifted = [name for name, f in out.features.items() if f.drifted]
    if drifted:
        click.echo(f"  drifted: {', '.join(drifted)}")
    if out.quality is not None:
        click.echo(f"  live quality: {out.quality.detail}")
    click.echo(f"  retrain: {'decided' if out.trigger.decided else 'no'} ({out.trigger.reason})")
    if out.trigger.started_run:
        click.echo(f"  started run {out.trigger.started_run}")
    elif out.trigger.skipped:
        click.echo(f"  not started: {out.trigger.skipped}")
    if out.rollback.proposal:
        click.echo(f"  rollback proposal {out.rollback.proposal}")
    elif out.rollback.skipped:
        click.echo(f"  rollback not proposed: {out.rollback.skipped}")
    click.echo(f"  report: {out.report_uri}")
