"""`crashed models`: show and verify the promoted model, its promotion history and rollback;
review local proposals. The Git host always comes from the composition root (``app.adapters``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from crashed.adapters.local_proposals import STATUSES
from crashed.cli.context import AppContext

if TYPE_CHECKING:
    from crashed.adapters.local_githost import LocalGitHost
    from crashed.adapters.local_proposals import ProposalRecord
    from crashed.core.reference import PromotedReference, Window

pass_app = click.make_pass_decorator(AppContext)


def _reference_option(func):  # type: ignore[no-untyped-def]
    return click.option(
        "--reference",
        "reference_path",
        type=click.Path(path_type=Path, dir_okay=False),
        default=None,
        help="Reference file [default: CRASHED_MODEL_REFERENCE, i.e. ./model-reference.json].",
    )(func)


@click.group()
def models() -> None:
    """The promoted model (model-reference.json) and the proposals that change it."""


@models.command()
@_reference_option
@click.option("--json", "as_json", is_flag=True, help="Print the reference as JSON.")
@pass_app
def show(app: AppContext, reference_path: Path | None, as_json: bool) -> None:
    """Summarise the promoted model: name, run, metrics, artifacts and lineage."""
    from crashed.core.reference import EmptyReference, as_dict, read_reference

    path = reference_path or app.settings.crashed_model_reference
    reference = read_reference(path)
    if as_json:
        click.echo(json.dumps(as_dict(reference), indent=2))
        return
    if isinstance(reference, EmptyReference):
        click.echo(f"{path}: no model promoted yet.")
        click.echo(reference.message)
        return
    _print_summary(path, reference)


def _print_summary(path: Path, ref: PromotedReference) -> None:
    from crashed.core.reference import artifact_items

    m = ref.metrics

    def num(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.4f}"

    click.echo(f"reference   {path}")
    info = ref.model
    click.echo(f"model       {info.name}  run {info.run_id}  created {info.created_at}")
    click.echo("metrics")
    click.echo(
        f"  roc_auc {num(m.roc_auc)}  pr_auc {num(m.pr_auc)}  "
        f"log_loss {num(m.log_loss)}  brier {num(m.brier)}"
    )
    click.echo(f"  precision {m.precision:.4f}  recall {m.recall:.4f}  threshold {m.threshold:.4f}")
    click.echo(f"  validation rows {m.validation_rows}  positives {m.validation_positives}")
    click.echo("artifacts")
    items = artifact_items(ref)
    width = max(len(name) for name, _ in items)
    for name, artifact in items:
        click.echo(
            f"  {name:<{width}}  {artifact.bytes:>12,} B  sha256 {artifact.sha256[:12]}  "
            f"{artifact.uri}"
        )
    lin = ref.lineage
    click.echo("lineage")
    click.echo(f"  pipeline    {lin.pipeline} (version {lin.pipeline_version}), run {lin.run_id}")
    click.echo(f"  image       {lin.image}")
    click.echo(f"  git commit  {lin.git_commit}")
    click.echo(f"  platform    {lin.platform}")
    click.echo(f"  train       {_window(lin.train_window)}")
    click.echo(f"  validation  {_window(lin.validation_window)}")


def _window(window: Window) -> str:
    return f"{window.start} .. {window.end}  rows {window.rows}  positives {window.positives}"


@models.command()
@_reference_option
@pass_app
@click.pass_context
def verify(ctx: click.Context, app: AppContext, reference_path: Path | None) -> None:
    """Check every artifact of the reference: where it is, its size and sha256, and what it is.

    Each artifact must lie directly under gs://LAKE_BUCKET/LAKE_PATH/models/CRASHED_MODEL_NAME/
    <run_id>/; the model must load as a crashed XGBoost bundle and predict on a probe row,
    distributions.json must fit the model's encoder, metrics.json must be this model's
    evaluation with the numbers the reference records, report.md UTF-8 text.

    Exit codes: 0 all verified; 2 a malformed reference or an artifact that is not what it
    claims; 3 the lake is unreachable; 4 the reference file or an artifact is missing.
    """
    from crashed.core.reference import read_reference, require_promoted
    from crashed.verification import exit_code, verify_contents

    path = reference_path or app.settings.crashed_model_reference
    reference = require_promoted(read_reference(path), str(path))
    checks = verify_contents(reference, app.adapters.lake, app.settings)
    width = max(len(check.name) for check in checks)
    for check in checks:
        if check.ok:
            click.echo(f"ok      {check.name:<{width}}  {check.uri}")
        else:
            click.echo(f"FAILED  {check.name:<{width}}  {check.uri}: {check.problem}")
    bad = [check for check in checks if not check.ok]
    if bad:
        names = ", ".join(f"{check.name} ({check.problem})" for check in bad)
        click.secho(
            f"error: {len(bad)} of {len(checks)} artifacts failed verification: {names}",
            fg="red",
            err=True,
        )
        ctx.exit(exit_code(checks))
    click.echo(
        f"all {len(checks)} artifacts of {reference.model.name} run "
        f"{reference.model.run_id} verified (location, sha256 and size, content)"
    )


@models.command()
@click.option(
    "--status", type=click.Choice(STATUSES), default=None, help="Only proposals with this status."
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print a JSON list (every field but the description)."
)
@pass_app
def proposals(app: AppContext, status: str | None, as_json: bool) -> None:
    """List local model-update proposals, oldest first."""
    records = _local_host(app).list_proposals(status)  # type: ignore[arg-type]
    if as_json:
        rows = [{k: v for k, v in r.as_dict().items() if k != "description"} for r in records]
        click.echo(json.dumps(rows, indent=2))
        return
    if not records:
        click.echo("no proposals" + (f" with status {status}" if status else ""))
        return
    click.echo(f"{'id':>4}  {'status':<10}  {'created':<25}  {'branch → target':<36}  title")
    for r in records:
        route = f"{r.branch} → {r.target_branch}"
        click.echo(f"{r.id:>4}  {r.status:<10}  {r.created_at:<25}  {route:<36}  {r.title}")


@models.command()
@click.argument("proposal_id", metavar="ID")
@pass_app
def review(app: AppContext, proposal_id: str) -> None:
    """Print proposal ID's report and its diff."""
    host = _local_host(app)
    record = host.get(proposal_id)
    _print_header(record)
    click.echo("")
    click.echo(record.description.rstrip())
    click.echo("")
    click.echo("─" * 72)
    click.echo(host.diff(record.id).rstrip())
    if record.status == "open":
        click.echo("")
        click.echo(
            f"approve: crashed models approve {record.id}    "
            f"reject: crashed models reject {record.id}"
        )


def _print_header(record: ProposalRecord) -> None:
    click.echo(f"proposal #{record.id}: {record.title}")
    click.echo(f"status    {record.status}" + (f" ({record.note})" if record.note else ""))
    click.echo(f"branch    {record.branch} → {record.target_branch}")
    click.echo(f"commit    {record.commit[:12]} on {record.base[:12]}")
    click.echo(f"created   {record.created_at}   updated {record.updated_at}")


@models.command()
@click.argument("proposal_id", metavar="ID")
@pass_app
def approve(app: AppContext, proposal_id: str) -> None:
    """Merge proposal ID into its target branch (refused if the file has local edits)."""
    done = _local_host(app).approve(proposal_id)
    record = done.record
    how = "re-applied on the moved target" if done.rebased else "fast-forward"
    click.echo(
        f"merged proposal #{record.id} into {record.target_branch} at "
        f"{done.merge_commit[:12]} ({how})"
    )
    if done.worktree is not None:
        files = ", ".join(record.files)
        click.echo(f"updated {files} in {done.worktree}")
    if done.branch_deleted:
        click.echo(f"deleted branch {record.branch}")
    click.echo("roll back with: crashed models rollback (a reviewed proposal, like this one)")


@models.command()
@click.argument("proposal_id", metavar="ID")
@pass_app
def reject(app: AppContext, proposal_id: str) -> None:
    """Reject proposal ID and delete its bot branch."""
    host = _local_host(app)
    record = host.reject(proposal_id)
    click.echo(f"rejected proposal #{record.id}; {record.target_branch} is unchanged")
    if not host.has_branch(record.branch):
        click.echo(f"deleted branch {record.branch}")


@models.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list, oldest first.")
@pass_app
def history(app: AppContext, as_json: bool) -> None:
    """Every promotion on the target branch, oldest first, read from Git history.

    One row per commit that changed model-reference.json to a promoted model: when, run,
    promotion or rollback, the proposal/merge request that merged it, ROC-AUC, PR-AUC and the
    model's sha256.
    """
    from crashed.promotion.rollback import promotion_history

    rows = promotion_history(app.adapters.git_host)
    if as_json:
        click.echo(json.dumps([row.as_dict() for row in rows], indent=2))
        return
    if not rows:
        click.echo(f"no model has been promoted on {app.settings.gitlab_target_branch} yet")
        return
    click.echo(
        f"{'when':<25}  {'run':<28}  {'kind':<9}  {'proposal':>8}  {'roc_auc':>7}  "
        f"{'pr_auc':>7}  {'model sha256':<12}  commit"
    )
    for row in rows:
        m = row.reference.metrics
        click.echo(
            f"{row.when:<25}  {row.run_id:<28}  {row.kind:<9}  {row.proposal_id or '-':>8}  "
            f"{_metric(m.roc_auc):>7}  {_metric(m.pr_auc):>7}  {row.model_sha256[:12]}  "
            f"{row.commit[:12]}"
        )


def _metric(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


@models.command()
@click.option(
    "--to",
    "to_run_id",
    metavar="RUN_ID",
    default=None,
    help="Run to restore [default: the model promoted before the current one].",
)
@click.option(
    "--reason",
    default="Manual rollback (crashed models rollback).",
    show_default=True,
    help="Why: goes into the proposal's description.",
)
@pass_app
def rollback(app: AppContext, to_run_id: str | None, reason: str) -> None:
    """Propose restoring an earlier model-reference.json; reviewed like any update, never merged."""
    from crashed.promotion.rollback import propose_rollback

    result = propose_rollback(
        app.adapters.git_host, app.settings, reason=reason, to_run_id=to_run_id
    )
    extra = result.extra
    click.echo(f"rollback proposal {result.action}: {result.id} {result.url}")
    click.echo(
        f"restores run {extra['restored_run_id']} (commit {extra['restored_commit'][:12]}) "
        f"in place of {extra['current_run_id']}, on branch {result.branch}"
    )
    if app.settings.git_host_kind == "local" and result.id:
        click.echo(
            f"review: crashed models review {result.id}    "
            f"approve: crashed models approve {result.id}"
        )


def _local_host(app: AppContext) -> LocalGitHost:
    """The local Git host; with GitLab, reviews happen in its UI."""
    from crashed.adapters.local_githost import LocalGitHost
    from crashed.errors import ConfigError

    settings = app.settings
    if settings.git_host_kind == "gitlab":
        where = (
            f"{settings.gitlab_url}/{settings.gitlab_project}/-/merge_requests"
            if settings.gitlab_project
            else "the project's merge requests"
        )
        raise ConfigError(
            "CRASHED_GIT_HOST=gitlab: list, review, approve and reject model updates in the "
            f"GitLab UI ({where})"
        )
    host = app.adapters.git_host
    if not isinstance(host, LocalGitHost):
        raise ConfigError(f"these commands need the local Git host, not {type(host).__name__}")
    return host
