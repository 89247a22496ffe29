"""The Orchestrator port on Kubeflow Pipelines, with the real ``kfp.Client``.

``deploy`` is idempotent and keeps history (DESIGN §3, §6):

1. the pipeline ``<name> - <environment>`` is created once (empty) and never deleted;
2. a *version* named by the compiled file's content hash is uploaded unless one with that name
   exists;
3. the experiment is created if missing;
4. a recurring run ``<pipeline> @ <hash>`` (cron, ``max_concurrency`` 1, no catch-up) is created
   on that version (or re-enabled if it exists but was paused);
5. then superseded recurring runs of this pipeline are disabled, and deleted once none of their
   runs is in flight — KFP deletes a recurring run's in-flight runs with it
   (kubeflow/pipelines#3789), so one with runs in flight stays *disabled* and a later deploy
   deletes it. Runs themselves are never touched.

A second deploy of an unchanged spec uploads and creates nothing. ``dry_run`` reads the
server's state and reports the plan without changing anything; when the server cannot be read
(no host, no credentials, unreachable) it plans offline, as for an empty server, and says why.

``start_run`` starts one run of the *deployed* version (the one the enabled recurring run
uses; else the newest) in the pipeline's experiment; ``runs_in_flight`` lists the pipeline's
pending/running runs, started by hand or by its recurring runs.

KFP's cron has a leading *seconds* field: the spec's 5-field schedule is converted
(:func:`crashed.orchestration_records.kfp_cron`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from crashed.adapters.kfp_runs import (
    IN_FLIGHT_STATES,
    MAX_CONCURRENCY,
    create_run,
    offline_plan,
    pipeline_version_of,
    run_info,
)
from crashed.adapters.kfp_session import REQUEST_TIMEOUT, KfpSession, equals_filter, safe_host
from crashed.errors import CrashedError, NotFoundError
from crashed.orchestration_records import CompiledPipeline, DeployAction, DeployResult, RunInfo


def pipeline_display_name(name: str, environment: str) -> str:
    """``crashed_pipeline - prod``."""
    return f"{name} - {environment}"


def experiment_name(experiment: str, environment: str) -> str:
    """Prod runs in the spec's experiment; other environments in ``<experiment>-<env>``."""
    return experiment if environment == "prod" else f"{experiment}-{environment}"


def recurring_run_name(display_name: str, version: str) -> str:
    """``crashed_pipeline - prod @ 1a2b3c4d5e6f`` (recognisable by its version hash)."""
    return f"{display_name} @ {version}"


class KfpOrchestrator:
    """Deploys and runs compiled pipelines on one KFP endpoint.

    ``client_id`` is the OAuth client id of the Identity-Aware Proxy in front of KFP (the token
    comes from the ambient Google credentials); without it the host is called as is. Nothing
    connects until a method needs the server.
    """

    def __init__(
        self,
        host: str | None,
        client_id: str | None = None,
        namespace: str = "kubeflow",
        *,
        request_timeout: float = REQUEST_TIMEOUT,
        client_factory: Callable[..., Any] | None = None,
    ) -> None:
        self.session = KfpSession(
            host or "",
            client_id,
            namespace,
            request_timeout=request_timeout,
            client_factory=client_factory,
        )
        self.host = self.session.host

    @property
    def client(self) -> Any:
        return self.session.client

    # -- reads ---------------------------------------------------------------------------

    def find_pipeline(self, display_name: str) -> Any | None:
        found = [
            p
            for p in self.session.pages(
                f"looking up pipeline {display_name!r}",
                self.client.list_pipelines,
                "pipelines",
                filter=equals_filter("display_name", display_name),
                namespace=self.session.scope,
            )
            if p.display_name == display_name
        ]
        return found[0] if found else None

    def find_version(self, pipeline_id: str, version: str) -> Any | None:
        for item in self.session.pages(
            f"listing versions of pipeline {pipeline_id}",
            self.client.list_pipeline_versions,
            "pipeline_versions",
            pipeline_id=pipeline_id,
        ):
            if version in (item.display_name, getattr(item, "name", None)):
                return item
        return None

    def find_experiment(self, name: str) -> Any | None:
        namespace = self.session.scope
        kwargs: dict[str, Any] = {"filter": equals_filter("display_name", name)}
        if namespace:
            kwargs["namespace"] = namespace
        for item in self.session.pages(
            f"looking up experiment {name!r}",
            self.client._experiment_api.experiment_service_list_experiments,
            "experiments",
            **kwargs,
        ):
            if item.display_name == name:
                return item
        return None

    def recurring_runs_of(self, pipeline_id: str) -> list[Any]:
        """Every recurring run (in any experiment) that runs a version of ``pipeline_id``."""
        kwargs: dict[str, Any] = {}
        if self.session.scope:
            kwargs["namespace"] = self.session.scope
        return [
            run
            for run in self.session.pages(
                "listing recurring runs",
                self.client.list_recurring_runs,
                "recurring_runs",
                **kwargs,
            )
            if run.pipeline_version_reference is not None
            and run.pipeline_version_reference.pipeline_id == pipeline_id
        ]

    def _count_in_flight(self, recurring_run: Any) -> int:
        """How many runs started by ``recurring_run`` are still pending/running."""
        return sum(
            1
            for run in self.session.pages(
                f"listing runs of recurring run {recurring_run.display_name!r}",
                self.client.list_runs,
                "runs",
                experiment_id=recurring_run.experiment_id,
            )
            if run.recurring_run_id == recurring_run.recurring_run_id
            and str(run.state) in IN_FLIGHT_STATES
        )

    # -- deploy --------------------------------------------------------------------------

    def deploy(
        self, compiled: CompiledPipeline, environment: str = "prod", dry_run: bool = False
    ) -> DeployResult:
        """Make KFP run ``compiled`` on its schedule (see the module docstring)."""
        display = pipeline_display_name(compiled.name, environment)
        result = DeployResult(
            host=safe_host(self.host),
            pipeline=display,
            version=compiled.version,
            experiment=experiment_name(compiled.experiment, environment),
            cron=compiled.kfp_cron,
            recurring_run=recurring_run_name(display, compiled.version),
            dry_run=dry_run,
        )
        act = result.actions.append

        if dry_run:
            try:
                _ = self.session.scope  # connects: host, credentials, health
            except CrashedError as error:
                return offline_plan(result, compiled, error.message)
        pipeline = self.find_pipeline(display)
        result.pipeline_id = pipeline.pipeline_id if pipeline else None
        if pipeline is None:
            act(DeployAction("create-pipeline", repr(display)))
            if not dry_run:
                result.pipeline_id = self._create_pipeline(display, compiled)

        version = self.find_version(result.pipeline_id, compiled.version) if pipeline else None
        result.version_id = version.pipeline_version_id if version else None
        if version is None:
            act(DeployAction("upload-version", compiled.version, f"from {compiled.path.name}"))
            if not dry_run:
                result.version_id = self._upload_version(result.pipeline_id, compiled)

        experiment = self.find_experiment(result.experiment)
        result.experiment_id = experiment.experiment_id if experiment else None
        if experiment is None:
            act(DeployAction("create-experiment", repr(result.experiment)))
            if not dry_run:
                result.experiment_id = self._create_experiment(result.experiment, compiled)

        ours = self.recurring_runs_of(pipeline.pipeline_id) if pipeline else []
        current = [
            run for run in ours if result.version_id is not None and self._is_current(run, result)
        ]
        enabled = [run for run in current if str(run.mode) == "ENABLE"]
        keep = (enabled or current or [None])[0]
        if keep is None:
            act(
                DeployAction(
                    "create-recurring-run",
                    repr(result.recurring_run),
                    f"cron {result.cron!r}, max concurrency {MAX_CONCURRENCY}",
                )
            )
            if not dry_run:
                result.recurring_run_id = self._create_recurring_run(result, compiled)
        else:
            result.recurring_run_id = keep.recurring_run_id
            if str(keep.mode) != "ENABLE":
                act(DeployAction("enable-recurring-run", repr(keep.display_name), "was paused"))
                if not dry_run:
                    self.session.call(
                        "enabling the recurring run",
                        self.client.enable_recurring_run,
                        keep.recurring_run_id,
                    )

        for run in ours:
            if keep is not None and run.recurring_run_id == keep.recurring_run_id:
                continue
            self._retire(run, result, dry_run)
        return result

    def _is_current(self, run: Any, result: DeployResult) -> bool:
        trigger = getattr(run, "trigger", None)
        cron = getattr(getattr(trigger, "cron_schedule", None), "cron", None)
        return (
            run.pipeline_version_reference.pipeline_version_id == result.version_id
            and run.experiment_id == result.experiment_id
            and cron == result.cron
            and str(run.max_concurrency) == str(MAX_CONCURRENCY)
        )

    def _retire(self, run: Any, result: DeployResult, dry_run: bool) -> None:
        name = repr(run.display_name)
        if str(run.mode) != "DISABLE":
            result.actions.append(DeployAction("disable-recurring-run", name, "superseded"))
            if not dry_run:
                self.session.call(
                    f"disabling recurring run {name}",
                    self.client.disable_recurring_run,
                    run.recurring_run_id,
                )
        in_flight = self._count_in_flight(run)
        if in_flight:
            result.actions.append(
                DeployAction(
                    "keep-recurring-run",
                    name,
                    f"disabled; {in_flight} run(s) in flight, a later deploy deletes it",
                )
            )
            return
        result.actions.append(DeployAction("delete-recurring-run", name, "superseded"))
        if not dry_run:
            self.session.call(
                f"deleting recurring run {name}",
                self.client.delete_recurring_run,
                run.recurring_run_id,
            )

    # -- writes --------------------------------------------------------------------------

    def _create_pipeline(self, display: str, compiled: CompiledPipeline) -> str:
        import kfp_server_api

        # Created empty, so that its first version is named by the content hash too
        # (``upload_pipeline`` would add a version named after the pipeline).
        body = kfp_server_api.V2beta1Pipeline(
            display_name=display,
            description=f"{compiled.name}: versions are named by the compiled spec's hash",
            namespace=self.session.scope,
        )
        created = self.session.call(
            f"creating pipeline {display!r}",
            self.client._pipelines_api.pipeline_service_create_pipeline,
            pipeline=body,
        )
        return str(created.pipeline_id)

    def _upload_version(self, pipeline_id: str | None, compiled: CompiledPipeline) -> str:
        description = (
            f"{compiled.name} {compiled.version}: schedule {compiled.schedule!r}, "
            f"experiment {compiled.experiment!r}"
        )
        uploaded = self.session.call(
            f"uploading version {compiled.version}",
            self.client.upload_pipeline_version,
            pipeline_package_path=str(compiled.path),
            pipeline_version_name=compiled.version,
            pipeline_id=pipeline_id,
            description=description,
        )
        return str(uploaded.pipeline_version_id)

    def _create_experiment(self, name: str, compiled: CompiledPipeline) -> str:
        import kfp_server_api

        body = kfp_server_api.V2beta1Experiment(
            display_name=name,
            description=f"scheduled runs of {compiled.name}",
            namespace=self.session.scope,
        )
        created = self.session.call(
            f"creating experiment {name!r}",
            self.client._experiment_api.experiment_service_create_experiment,
            experiment=body,
        )
        return str(created.experiment_id)

    def _create_recurring_run(self, result: DeployResult, compiled: CompiledPipeline) -> str:
        created = self.session.call(
            f"creating recurring run {result.recurring_run!r}",
            self.client.create_recurring_run,
            experiment_id=result.experiment_id,
            job_name=result.recurring_run,
            description=f"{compiled.name} version {compiled.version} on {compiled.schedule!r}",
            cron_expression=result.cron,
            max_concurrency=MAX_CONCURRENCY,
            no_catchup=True,
            pipeline_id=result.pipeline_id,
            version_id=result.version_id,
            enabled=True,
        )
        return str(created.recurring_run_id)

    # -- runs ----------------------------------------------------------------------------

    def start_run(
        self,
        pipeline: str,
        parameters: Mapping[str, str],
        reason: str,
        environment: str = "prod",
    ) -> RunInfo:
        """Start one run of the deployed version of ``pipeline`` in its experiment."""
        display = pipeline_display_name(pipeline, environment)
        found = self.find_pipeline(display)
        if found is None:
            raise NotFoundError(f"pipeline {display!r} is not deployed to {safe_host(self.host)}")
        schedules = self.recurring_runs_of(found.pipeline_id)
        current = [r for r in schedules if str(r.mode) == "ENABLE"] or schedules
        if not current:
            raise NotFoundError(f"pipeline {display!r} has no recurring run: deploy it first")
        version_id = current[0].pipeline_version_reference.pipeline_version_id
        experiment_id = current[0].experiment_id
        created = create_run(
            self.session, found.pipeline_id, version_id, experiment_id, display, parameters, reason
        )
        return run_info(created, pipeline, self.host)

    def runs_in_flight(self, pipeline: str, environment: str = "prod") -> list[RunInfo]:
        """Pending/running runs of ``pipeline`` (started by hand or by its recurring runs)."""
        found = self.find_pipeline(pipeline_display_name(pipeline, environment))
        if found is None:
            return []
        schedules = self.recurring_runs_of(found.pipeline_id)
        ours = {r.recurring_run_id for r in schedules}
        return [  # its runs live in its recurring runs' experiments (start_run's too)
            run_info(run, pipeline, self.host)
            for experiment_id in sorted({r.experiment_id for r in schedules})
            for run in self.session.pages(
                "listing runs", self.client.list_runs, "runs", experiment_id=experiment_id
            )
            if str(run.state) in IN_FLIGHT_STATES
            and (run.recurring_run_id in ours or pipeline_version_of(run) == found.pipeline_id)
        ]
