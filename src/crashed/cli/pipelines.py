"""`crashed pipelines …`: list, compile, run locally, deploy to Kubeflow, and run one op.

kfp is imported inside the commands only, so ``crashed --help`` stays fast.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import click

from crashed.cli.context import AppContext
from crashed.errors import CrashedError, InputError
from crashed.pipeline.spec import CRASHED_PIPELINE, PIPELINES, PipelineSpec

pass_app = click.make_pass_decorator(AppContext, ensure=True)

DEFAULT_PIPELINE = CRASHED_PIPELINE


@click.group()
def pipelines() -> None:
    """Training pipelines: list, compile, run-local, deploy-prod/dev and run-op.

    Each pipeline has its own group (crashed pipelines crashed_pipeline --help);
    crashed pipelines deploy-prod deploys the default pipeline.
    """


@pipelines.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def list_command(as_json: bool) -> None:
    """The pipelines: schedule, experiment, parameters and ops (with their inputs)."""
    from crashed.pipeline.compiler import kfp_cron

    listing = [
        {
            "name": spec.name,
            "description": spec.description,
            "schedule": spec.schedule,
            "kfp_cron": kfp_cron(spec.schedule),
            "experiment": spec.experiment,
            "parameters": dict(spec.parameters),
            "ops": [
                {
                    "name": op.name,
                    "params": list(op.params),
                    "upstream": list(op.upstream),
                    "description": op.description,
                }
                for op in spec.ops
            ],
        }
        for spec in PIPELINES.values()
    ]
    if as_json:
        click.echo(json.dumps(listing, indent=2))
        return
    for item in listing:
        click.echo(
            f"{item['name']}  schedule {item['schedule']!r} (KFP cron "
            f"{item['kfp_cron']!r})  experiment {item['experiment']!r}"
        )
        click.echo(f"  {item['description']}")
        params = ", ".join(f"{k}={v!r}" for k, v in item["parameters"].items())
        click.echo(f"  parameters: {params or '(none)'}")
        width = max(len(op["name"]) for op in item["ops"])
        for op in item["ops"]:
            inputs = [*op["params"], *op["upstream"]]
            after = f"  <- {', '.join(inputs)}" if inputs else ""
            click.echo(f"    {op['name'].ljust(width)}  {op['description']}{after}")


def _compile_command(spec: PipelineSpec) -> click.Command:
    @click.command("compile")
    @click.option(
        "--output",
        "-o",
        required=True,
        type=click.Path(dir_okay=False, writable=True, path_type=Path),
        help="Where to write the compiled KFP pipeline (YAML).",
    )
    @pass_app
    def command(app: AppContext, output: Path) -> None:
        """Compile the pipeline to KFP IR YAML (deterministic; prints the version hash).

        The image is CRASHED_IMAGE; step env vars come from the settings (no secret values:
        GITLAB_TOKEN and the GCP key come from Kubernetes Secrets in the cluster).
        """
        from crashed.pipeline.compiler import compile_pipeline

        compiled = compile_pipeline(spec, app.settings, output)
        click.echo(
            f"compiled {spec.name} to {output} (version {compiled.version}, image "
            f"{app.settings.crashed_image}, schedule {compiled.schedule!r}, "
            f"experiment {compiled.experiment!r})"
        )

    return command


def _parse_run_date(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise InputError(f"--run-date {value!r}: expected an ISO date or date-time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _run_local_command(spec: PipelineSpec) -> click.Command:
    @click.command("run-local")
    @click.option(
        "--param",
        "params",
        multiple=True,
        metavar="NAME=VALUE",
        help="Override a pipeline parameter (repeatable), e.g. "
        "--param train_start=2018-01-01. Window parameters take ISO dates or "
        "'' (relative to the run date); force_promotion takes true/false.",
    )
    @click.option(
        "--summary",
        "summary_path",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Also write the run summary (JSON) to this file.",
    )
    @click.option(
        "--run-date",
        help="Pretend the run was created at this ISO date/time "
        "(default: now). Relative windows follow it.",
    )
    @pass_app
    def command(
        app: AppContext, params: tuple[str, ...], summary_path: Path | None, run_date: str | None
    ) -> None:
        """Compile the pipeline, then run the compiled file here, one subprocess per step.

        Steps run in dependency order with the env their pods would get (secrets from the
        local environment when set); output is prefixed with the step name. Exits non-zero
        naming the failed step; dependants of a failed step are skipped.
        """
        from crashed.pipeline.compiler import compile_pipeline
        from crashed.pipeline.local_runner import parse_overrides, run_compiled

        settings = app.settings
        date = _parse_run_date(run_date)
        with tempfile.TemporaryDirectory(prefix="crashed-compile-") as tmp:
            compiled = compile_pipeline(spec, settings, Path(tmp) / f"{spec.name}.yaml")
            overrides = parse_overrides(params, compiled.parameters)
            summary = run_compiled(
                compiled.path,
                params=overrides,
                run_date=date,
                env_overrides={"CRASHED_HOME": str(settings.home)},
                read_manifest=lambda uri: app.adapters.lake.get_bytes(uri),
                echo=click.echo,
            )
        summary["version"] = compiled.version
        if summary_path is not None:
            _write_json(summary_path, summary)
        _print_summary(summary)
        if summary["status"] != "succeeded":
            failed = summary["failed_step"]
            step = summary["steps"][failed]
            skipped = [n for n, s in summary["steps"].items() if s["status"] == "skipped"]
            raise CrashedError(
                f"pipeline {spec.name} failed at step {failed!r} ({step.get('error', 'failed')})"
                + (f"; skipped: {', '.join(skipped)}" if skipped else "")
                + f" [run {summary['run_id']}]",
                exit_code=_step_exit_code(step),
            )

    return command


def _step_exit_code(step: dict[str, Any]) -> int:
    """The failed step's own exit code when it is a meaningful one (2 input, 3 service…)."""
    code = step.get("exit_code")
    return code if isinstance(code, int) and 1 < code < 126 else 1


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(
        json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8"
    )
    os.replace(tmp, path)


def _print_summary(summary: dict[str, Any]) -> None:
    steps = summary["steps"]
    total = sum(step["seconds"] for step in steps.values())
    click.echo(f"\nrun {summary['run_id']} {summary['status']} in {total:.1f}s")
    width = max((len(name) for name in steps), default=0)
    for name, step in steps.items():
        click.echo(f"  {name.ljust(width)}  {step['status']:<9}  {step['seconds']:7.1f}s")
    if summary.get("manifest_error"):
        click.echo(f"manifest: {summary['manifest_error']}")
    if summary["artifacts"]:
        names = ", ".join(str(a.get("name", a.get("uri", "?"))) for a in summary["artifacts"])
        click.echo(f"artifacts: {names}")
    if summary["metrics"]:
        shown = ", ".join(
            f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
            for k, v in summary["metrics"].items()
            if isinstance(v, (int, float, str))
        )
        click.echo(f"metrics: {shown}")
    gate = summary.get("gate")
    if isinstance(gate, dict):
        verdict = gate.get("passed", gate.get("status", "?"))
        click.echo(f"gate: {verdict}")
    proposal = summary.get("proposal")
    if isinstance(proposal, dict):
        click.echo(
            "proposal: "
            + " ".join(str(proposal[k]) for k in ("action", "id", "url") if proposal.get(k))
        )


def _deploy_command(spec: PipelineSpec, environment: str, name: str | None = None) -> click.Command:
    @click.command(name or f"deploy-{environment}")
    @click.option("--host", help="KFP API endpoint URL [default: $KFP_HOST].")
    @click.option(
        "--client-id",
        help="OAuth client id of the IAP in front of KFP "
        "[default: $KFP_CLIENT_ID; none = call the host as is].",
    )
    @click.option(
        "--namespace",
        help="KFP profile namespace for experiments and runs [default: $K8S_NAMESPACE].",
    )
    @click.option(
        "--package",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="Deploy this already compiled file instead of compiling now.",
    )
    @click.option("--dry-run", is_flag=True, help="Print the plan; change nothing.")
    @pass_app
    def command(
        app: AppContext,
        host: str | None,
        client_id: str | None,
        namespace: str | None,
        package: Path | None,
        dry_run: bool,
    ) -> None:
        from crashed.adapters.kfp_orchestrator import KfpOrchestrator
        from crashed.pipeline.compiler import compile_pipeline, read_compiled

        settings = app.settings
        host = host or settings.kfp_host
        if not host:
            raise InputError("no Kubeflow Pipelines host: pass --host or set KFP_HOST")
        client_id = client_id or settings.kfp_client_id
        namespace = namespace or settings.k8s_namespace
        orchestrator = KfpOrchestrator(host, client_id, namespace)
        with tempfile.TemporaryDirectory(prefix="crashed-deploy-") as tmp:
            if package is not None:
                compiled = read_compiled(package)
                if compiled.name != spec.name:
                    raise InputError(f"{package} is pipeline {compiled.name!r}, not {spec.name!r}")
            else:
                compiled = compile_pipeline(spec, settings, Path(tmp) / f"{spec.name}.yaml")
            click.echo(
                f"{'planning' if dry_run else 'deploying'} {spec.name} version "
                f"{compiled.version} to {environment} "
                f"(schedule {compiled.schedule!r}, experiment {compiled.experiment!r})"
            )
            result = orchestrator.deploy(compiled, environment=environment, dry_run=dry_run)
        for action in result.actions:
            click.echo(f"  {action.describe(dry_run)}")
        if not result.changed:
            click.echo(
                f"up to date: {result.recurring_run!r} is scheduled ({result.cron!r}); "
                "nothing to do"
            )
        elif dry_run:
            click.echo("dry run: nothing was changed")
        else:
            click.echo(
                f"deployed: {result.recurring_run!r} runs on {result.cron!r} "
                f"in experiment {result.experiment!r}"
            )

    command.help = (
        f"Deploy {spec.name} to Kubeflow Pipelines as '{spec.name} - {environment}'.\n\n"
        "Uploads a pipeline version named by the compiled spec's hash (skipped when it "
        "exists), ensures the experiment, schedules a recurring run on it (cron, max "
        "concurrency 1) and then disables and deletes the superseded recurring runs (one "
        "with runs in flight is only disabled). The pipeline, its versions and runs are never "
        "deleted; an unchanged spec changes nothing."
    )
    return command


def _pipeline_group(spec: PipelineSpec) -> click.Group:
    group = click.Group(name=spec.name, help=f"{spec.description}")

    from crashed.cli.run_op import run_op_command

    group.add_command(run_op_command(spec))
    group.add_command(_compile_command(spec))
    group.add_command(_run_local_command(spec))
    group.add_command(_deploy_command(spec, "prod"))
    group.add_command(_deploy_command(spec, "dev"))
    return group


for _spec in PIPELINES.values():
    pipelines.add_command(_pipeline_group(_spec))

pipelines.add_command(_deploy_command(DEFAULT_PIPELINE, "prod"))
