"""Deploy a compiled pipeline to Kubeflow Pipelines with the real ``kfp.Client``.

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
server's state and reports the plan without changing anything.

KFP's cron has a leading *seconds* field: the spec's 5-field schedule is converted
(:func:`crashed.pipeline.compiler.kfp_cron`). In single-user KFP, experiment calls must not
carry a namespace (400), so the namespace is only used when ``healthz`` says multi-user — then
the pipeline, experiment and recurring runs all live in it.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from crashed.errors import ServiceError
from crashed.pipeline.compiler import CompiledPipeline

log = logging.getLogger(__name__)

IN_FLIGHT_STATES = frozenset({"PENDING", "RUNNING", "PAUSED", "CANCELING"})
MAX_CONCURRENCY = 1
PAGE_SIZE = 100
REQUEST_TIMEOUT = 30.0


def pipeline_display_name(name: str, environment: str) -> str:
    """``crashed_pipeline - prod``."""
    return f"{name} - {environment}"


def experiment_name(experiment: str, environment: str) -> str:
    """Prod runs in the spec's experiment; other environments in ``<experiment>-<env>``."""
    return experiment if environment == "prod" else f"{experiment}-{environment}"


def recurring_run_name(display_name: str, version: str) -> str:
    """``crashed_pipeline - prod @ 1a2b3c4d5e6f`` (recognisable by its version hash)."""
    return f"{display_name} @ {version}"


@dataclass(frozen=True)
class DeployAction:
    """One change a deploy makes (or would make, in a dry run)."""

    verb: str
    """create-pipeline | upload-version | create-experiment | create-recurring-run |
    enable-recurring-run | disable-recurring-run | delete-recurring-run | keep-recurring-run"""
    target: str
    detail: str = ""

    def describe(self, dry_run: bool = False) -> str:
        words = self.verb.replace("-", " ")
        text = f"{'would ' if dry_run else ''}{words} {self.target}"
        return f"{text} ({self.detail})" if self.detail else text


@dataclass
class DeployResult:
    """What a deploy found and did."""

    host: str
    pipeline: str
    version: str
    experiment: str
    cron: str
    recurring_run: str
    dry_run: bool = False
    actions: list[DeployAction] = field(default_factory=list)
    pipeline_id: str | None = None
    version_id: str | None = None
    experiment_id: str | None = None
    recurring_run_id: str | None = None

    @property
    def changed(self) -> bool:
        """Whether anything was (or, in a dry run, would be) created, changed or deleted."""
        return any(action.verb != "keep-recurring-run" for action in self.actions)

    def as_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "pipeline": self.pipeline,
            "version": self.version,
            "experiment": self.experiment,
            "cron": self.cron,
            "recurring_run": self.recurring_run,
            "dry_run": self.dry_run,
            "changed": self.changed,
            "actions": [a.describe(self.dry_run) for a in self.actions],
            "pipeline_id": self.pipeline_id,
            "version_id": self.version_id,
            "experiment_id": self.experiment_id,
            "recurring_run_id": self.recurring_run_id,
        }


def safe_host(host: str) -> str:
    """The host URL without credentials, query or fragment (fit for messages)."""
    parts = urlsplit(host)
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", "")) or "(no host)"


class KfpOrchestrator:
    """Deploys compiled pipelines to one KFP endpoint.

    ``client_id`` is the OAuth client id of the Identity-Aware Proxy in front of KFP (the token
    comes from the ambient Google credentials); without it the host is called as is.
    """

    def __init__(
        self,
        host: str,
        client_id: str | None = None,
        namespace: str = "kubeflow",
        *,
        request_timeout: float = REQUEST_TIMEOUT,
        client_factory: Callable[..., Any] | None = None,
    ) -> None:
        if not host:
            raise ServiceError("no Kubeflow Pipelines host: pass --host or set KFP_HOST")
        self.host = host.rstrip("/")
        self.client_id = client_id or None
        self.namespace = namespace or "kubeflow"
        self.request_timeout = request_timeout
        self._client_factory = client_factory
        self._client: Any = None
        self._multi_user: bool | None = None

    # -- connection ----------------------------------------------------------------------

    @property
    def client(self) -> Any:
        """The ``kfp.Client``, created (and health-checked) on first use."""
        if self._client is None:
            self._client = self._connect()
        return self._client

    def _connect(self) -> Any:
        import warnings

        factory = self._client_factory
        if factory is None:
            import kfp

            factory = kfp.Client
        kwargs: dict[str, Any] = {"host": self.host, "namespace": self.namespace}
        if self.client_id:
            kwargs["client_id"] = self.client_id
        try:
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore", FutureWarning)
                client = factory(**kwargs)
        except Exception as error:  # noqa: BLE001 - auth/transport errors of many kinds
            if self.client_id and getattr(error, "status", None) is None:
                first = " ".join(str(error).split(". ")[0].split())[:200]
                raise ServiceError(
                    f"cannot get an IAP token for Kubeflow Pipelines at {safe_host(self.host)} "
                    f"(client id {self.client_id}): {type(error).__name__}: {first}"
                ) from None
            raise self._error("connecting", error) from None
        # kfp.Client only checks healthz when no namespace is given (and then retries 5x with
        # sleeps); ask once, with a timeout, to fail fast and learn whether KFP is multi-user.
        health = self._call(
            "checking health",
            client._healthz_api.healthz_service_get_healthz,
            _request_timeout=self.request_timeout,
        )
        self._multi_user = bool(getattr(health, "multi_user", False))
        return client

    @property
    def _scope(self) -> str | None:
        """The namespace for pipelines, experiments and recurring runs in multi-user KFP; none
        in single-user KFP (where a namespace on experiment calls is a 400)."""
        _ = self.client
        return self.namespace if self._multi_user else None

    def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            with contextlib.redirect_stdout(io.StringIO()) as printed, _quiet_urllib3():
                result = fn(*args, **kwargs)
        except Exception as error:  # noqa: BLE001 - translated into one clear line
            raise self._error(what, error) from None
        if printed.getvalue().strip():
            log.debug("%s", printed.getvalue().strip())
        return result

    def _error(self, what: str, error: BaseException) -> ServiceError:
        host = safe_host(self.host)
        status = getattr(error, "status", None)
        if isinstance(status, int) and status in (401, 403):
            hint = (
                "check --client-id and the Google credentials allowed through IAP"
                if self.client_id
                else "the endpoint needs authentication (pass --client-id for IAP)"
            )
            return ServiceError(
                f"Kubeflow Pipelines at {host} refused the request while {what} "
                f"(HTTP {status}): {hint}, and that you may use namespace {self.namespace!r}"
            )
        if isinstance(status, int) and status > 0:
            return ServiceError(
                f"Kubeflow Pipelines at {host} answered HTTP {status} while {what}: "
                f"{_server_message(error)}"
            )
        return ServiceError(
            f"cannot reach Kubeflow Pipelines at {host} while {what}: {_network_reason(error)}"
        )

    def _pages(self, what: str, fn: Callable[..., Any], attr: str, **kwargs: Any) -> Iterator[Any]:
        token = ""
        while True:
            response = self._call(what, fn, page_token=token, page_size=PAGE_SIZE, **kwargs)
            yield from getattr(response, attr, None) or []
            token = getattr(response, "next_page_token", None) or ""
            if not token:
                return

    # -- reads ---------------------------------------------------------------------------

    def find_pipeline(self, display_name: str) -> Any | None:
        found = [
            p
            for p in self._pages(
                f"looking up pipeline {display_name!r}",
                self.client.list_pipelines,
                "pipelines",
                filter=_equals("display_name", display_name),
                namespace=self._scope,
            )
            if p.display_name == display_name
        ]
        return found[0] if found else None

    def find_version(self, pipeline_id: str, version: str) -> Any | None:
        for item in self._pages(
            f"listing versions of pipeline {pipeline_id}",
            self.client.list_pipeline_versions,
            "pipeline_versions",
            pipeline_id=pipeline_id,
        ):
            if version in (item.display_name, getattr(item, "name", None)):
                return item
        return None

    def find_experiment(self, name: str) -> Any | None:
        namespace = self._scope
        kwargs: dict[str, Any] = {"filter": _equals("display_name", name)}
        if namespace:
            kwargs["namespace"] = namespace
        for item in self._pages(
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
        if self._scope:
            kwargs["namespace"] = self._scope
        return [
            run
            for run in self._pages(
                "listing recurring runs",
                self.client.list_recurring_runs,
                "recurring_runs",
                **kwargs,
            )
            if run.pipeline_version_reference is not None
            and run.pipeline_version_reference.pipeline_id == pipeline_id
        ]

    def runs_in_flight(self, recurring_run: Any) -> int:
        """How many runs started by ``recurring_run`` are still pending/running."""
        return sum(
            1
            for run in self._pages(
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
                    self._call(
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
                self._call(
                    f"disabling recurring run {name}",
                    self.client.disable_recurring_run,
                    run.recurring_run_id,
                )
        in_flight = self.runs_in_flight(run)
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
            self._call(
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
            namespace=self._scope,
        )
        created = self._call(
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
        uploaded = self._call(
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
            namespace=self._scope,
        )
        created = self._call(
            f"creating experiment {name!r}",
            self.client._experiment_api.experiment_service_create_experiment,
            experiment=body,
        )
        return str(created.experiment_id)

    def _create_recurring_run(self, result: DeployResult, compiled: CompiledPipeline) -> str:
        created = self._call(
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


@contextlib.contextmanager
def _quiet_urllib3() -> Iterator[None]:
    """urllib3 logs each connection retry as a warning; the caller reports the outcome."""
    logger = logging.getLogger("urllib3.connectionpool")
    previous = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(previous)


def _equals(key: str, value: str) -> str:
    return json.dumps(
        {"predicates": [{"operation": 1, "key": key, "stringValue": value}]}  # 1 = EQUALS
    )


def _server_message(error: BaseException) -> str:
    body = getattr(error, "body", None)
    message = ""
    if body:
        try:
            payload = json.loads(body)
            message = str(payload.get("message") or payload.get("error") or "")
        except (ValueError, AttributeError):
            message = str(body)
    message = message or str(getattr(error, "reason", "") or type(error).__name__)
    return " ".join(message.split())[:300]


def _network_reason(error: BaseException) -> str:
    text = str(getattr(error, "reason", None) or error)
    found = re.search(r"\[Errno -?\d+\][^'\")]*", text)
    if found:
        return found.group(0).strip()
    for marker in ("timed out", "Name or service not known", "Connection refused"):
        if marker.lower() in text.lower():
            return marker
    return type(error).__name__
