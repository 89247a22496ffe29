"""`crashed pipelines …`: list, compile, run locally, deploy to Kubeflow, and run one op.

kfp is imported inside the commands only, so ``crashed --help`` stays fast.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import click

from crashed.cli.context import AppContext
from crashed.errors import CrashedError, InputError
from crashed.fsio import atomic_write
from crashed.pipeline.spec import CRASHED_PIPELINE, PIPELINES, PipelineSpec

if TYPE_CHECKING:
    from crashed.orchestration_records import DeployResult
    from crashed.pipeline.step_runners import StepRunner

pass_app = click.make_pass_decorator(AppContext, ensure=True)

DEFAULT_PIPELINE = CRASHED_PIPELINE
GATE_FAILED_EXIT = 6
"""run-local --fail-on-gate: the run worked but the gate refused the candidate."""


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
    @click.option("--run-id", help="Use this run id (default: local-<time>-<random>).")
    @click.option(
        "--package",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="Run this already compiled file instead of compiling now.",
    )
    @click.option(
        "--runner",
        type=click.Choice(["subprocess", "docker"]),
        default="subprocess",
        show_default=True,
        help="subprocess: each step a process here; docker: each step a container of --image.",
    )
    @click.option("--image", help="The image every step runs in (--runner docker).")
    @click.option(
        "--user",
        default="10001:10001",
        show_default=True,
        help="UID[:GID] of the step containers (--runner docker).",
    )
    @click.option(
        "--fail-on-gate",
        is_flag=True,
        help=f"Exit {GATE_FAILED_EXIT} when the gate refuses the candidate (default: exit 0 "
        "and say that nothing was proposed).",
    )
    @pass_app
    def command(
        app: AppContext,
        params: tuple[str, ...],
        summary_path: Path | None,
        run_date: str | None,
        run_id: str | None,
        package: Path | None,
        runner: str,
        image: str | None,
        user: str,
        fail_on_gate: bool,
    ) -> None:
        """Compile the pipeline, then run the compiled file here, step by step.

        Steps run in dependency order with the env their pods would get (secrets from the
        local environment when set); output is prefixed with the step name. Exits non-zero
        naming the failed step; dependants of a failed step are skipped. With --runner docker
        each step is a container of --image (uid 10001, read-only root, emptyDir as tmpfs,
        CRASHED_HOME mounted, host network).

        A gate that refuses the candidate is not a failure of the run: it exits 0 saying that
        nothing was proposed, unless --fail-on-gate. Ctrl-C or SIGTERM stops the running step
        (its process group, or its container), removes the run's temp folder, records the run
        as interrupted in the summary and exits 130 / 143. Temp folders of earlier runs that
        were killed outright are swept at the start.
        """
        from crashed.core.names import validate_run_id
        from crashed.orchestration_records import new_run_id
        from crashed.pipeline.compiler import compile_pipeline, read_compiled
        from crashed.pipeline.local_runner import (
            parse_overrides,
            run_compiled,
            run_workdir,
            sweep_stale_workdirs,
        )
        from crashed.pipeline.step_runners import Interrupts

        settings = app.settings
        if image and runner != "docker":
            raise InputError("--image needs --runner docker")
        run_id = validate_run_id(run_id, "--run-id") if run_id else new_run_id()
        date = _parse_run_date(run_date)
        interrupts = Interrupts()
        with interrupts.installed():
            swept = sweep_stale_workdirs()
            if swept:
                click.echo(f"swept {len(swept)} stale temp folder(s) of killed runs", err=True)
            with run_workdir(run_id) as work:
                if package is not None:
                    compiled = read_compiled(package)
                    if compiled.name != spec.name:
                        raise InputError(
                            f"{package} is pipeline {compiled.name!r}, not {spec.name!r}"
                        )
                else:
                    if image:  # the lineage then names the image the steps really ran in
                        settings = settings.model_copy(update={"crashed_image": image})
                    compiled = compile_pipeline(spec, settings, work / f"{spec.name}.yaml")
                summary = run_compiled(
                    compiled.path,
                    _step_runner(app, runner, image or compiled.image, user, run_id),
                    lake=app.adapters.lake,
                    params=parse_overrides(params, compiled.parameters),
                    run_id=run_id,
                    run_date=date,
                    workdir=work / "run",
                    echo=click.echo,
                    interrupts=interrupts,
                )
            summary.version = compiled.version
            summary.interrupted = summary.interrupted or interrupts.signal_name
            if summary_path is not None:
                payload = json.dumps(summary.as_dict(), indent=2, sort_keys=True, default=str)
                atomic_write(summary_path, payload + "\n")
            for line in summary.report_lines():
                click.echo(line)
            if interrupts.signum is not None:
                stopped = ", ".join(interrupts.stopped) or "no step was running"
                removed = "could not remove" if work.exists() else "removed"
                raise CrashedError(
                    f"interrupted by {interrupts.signal_name}: stopped {stopped}; {removed} the "
                    f"run's temp folder {work}; run {summary.run_id} recorded as interrupted"
                    + (f" in {summary_path}" if summary_path else ""),
                    exit_code=interrupts.exit_code,
                )
        failed = summary.failed_step
        if failed is not None:
            step = summary.steps[failed]
            skipped = summary.skipped
            raise CrashedError(
                f"pipeline {spec.name} failed at step {failed!r} ({step.error or 'failed'})"
                + (f"; skipped: {', '.join(skipped)}" if skipped else "")
                + f" [run {summary.run_id}]",
                exit_code=_step_exit_code(step.exit_code),
            )
        verdict = summary.gate_verdict()
        if verdict is not None and fail_on_gate:
            raise CrashedError(verdict, exit_code=GATE_FAILED_EXIT)
        if verdict is not None:
            click.echo(verdict)

    return command


def _step_runner(app: AppContext, runner: str, image: str, user: str, run_id: str) -> StepRunner:
    from crashed.pipeline.step_runners import SubprocessRunner

    settings = app.settings
    if runner == "docker":
        from crashed.pipeline.docker_runner import DockerRunner

        repo = settings.crashed_repo if settings.git_host_kind == "local" else None
        return DockerRunner(
            image, settings.home, os.environ, repo=repo, user=user, run_label=run_id
        )
    return SubprocessRunner(os.environ, {"CRASHED_HOME": str(settings.home)})


def _step_exit_code(code: int | None) -> int:
    """The failed step's own exit code when it is a meaningful one (2 input, 3 service…)."""
    return code if isinstance(code, int) and 1 < code < 126 else 1


def _print_deploy(result: DeployResult, dry_run: bool) -> None:
    if result.offline:
        click.echo(f"  state of Kubeflow Pipelines unknown ({result.offline}); the plan")
        click.echo("  is what a deploy does where none of this exists yet:")
    for action in result.actions:
        click.echo(f"  {action.describe(dry_run)}")
    if not result.changed:
        click.echo(
            f"up to date: {result.recurring_run!r} is scheduled ({result.cron!r}); nothing to do"
        )
    elif dry_run:
        click.echo("dry run: nothing was changed")
    else:
        click.echo(
            f"deployed: {result.recurring_run!r} runs on {result.cron!r} "
            f"in experiment {result.experiment!r}"
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
        from crashed.core.names import validate_namespace
        from crashed.pipeline.compiler import compile_pipeline, read_compiled

        settings = app.settings
        if namespace:
            validate_namespace(namespace, "--namespace")
        host = host or settings.kfp_host
        if not host and not dry_run:
            raise InputError("no Kubeflow Pipelines host: pass --host or set KFP_HOST")
        orchestrator = app.adapters.orchestrator(
            "kfp", host=host, client_id=client_id, namespace=namespace
        )
        # The training pipeline's companions (the monitor) deploy beside it, each idempotently.
        specs = [spec] if package is not None else [spec, *(PIPELINES[n] for n in spec.companions)]
        for one in specs:
            with tempfile.TemporaryDirectory(prefix="crashed-deploy-") as tmp:
                if package is not None:
                    compiled = read_compiled(package)
                    if compiled.name != one.name:
                        raise InputError(
                            f"{package} is pipeline {compiled.name!r}, not {one.name!r}"
                        )
                else:
                    compiled = compile_pipeline(one, settings, Path(tmp) / f"{one.name}.yaml")
                click.echo(
                    f"{'planning' if dry_run else 'deploying'} {one.name} version "
                    f"{compiled.version} to {environment} (image {compiled.image}, "
                    f"schedule {compiled.schedule!r}, experiment {compiled.experiment!r}, "
                    f"{len(compiled.ops)} steps: {', '.join(compiled.ops)})"
                )
                result = orchestrator.deploy(compiled, environment=environment, dry_run=dry_run)
            _print_deploy(result, dry_run)

    command.help = (
        f"Deploy {spec.name} to Kubeflow Pipelines as '{spec.name} - {environment}'.\n\n"
        "Uploads a pipeline version named by the compiled spec's hash (skipped when it "
        "exists), ensures the experiment, schedules a recurring run on it (cron, max "
        "concurrency 1) and then disables and deletes the superseded recurring runs (one "
        "with runs in flight is only disabled). The pipeline, its versions and runs are never "
        "deleted; an unchanged spec changes nothing. --dry-run prints the plan and needs no "
        "credentials: without a host, or when KFP cannot be read, it plans offline."
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
