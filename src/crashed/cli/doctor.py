"""``crashed doctor``: check the configured platform end to end, one line per check.

Each check goes through the adapters :mod:`crashed.wiring` builds (the real clients), runs in a
daemon thread with a deadline, and prints ``✓ name: detail`` or ``✗ name: detail — fix``.
Exit 0 when every check passes, 3 otherwise. Details never carry a secret: the GitLab token is
scrubbed from every message, and Secrets are read as metadata only.

Checks: settings; lake (write, read back and list a probe object under the lake path);
warehouse (reachable, the source table present); Git host (``model-reference.json`` readable on
the target branch, which needs the token's read access); and on the gcp platform, Kubeflow
Pipelines (the client's health check, with the IAP token when a client id is set) and
Kubernetes (the namespace and the Secrets the pipeline pods mount).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click

from crashed.cli.context import AppContext
from crashed.errors import CrashedError, ServiceError
from crashed.settings import Settings
from crashed.wiring import Adapters

SOURCE_TABLE = "crashes_raw"
PROBE = "doctor/probe.txt"
REFERENCE_FILE = "model-reference.json"
# The Secrets the pipeline's pods mount (crashed.pipeline.dag: GITLAB_SECRET, GCP_SECRET).
POD_SECRETS = ("crashed-gitlab", "crashed-gcp-sa")


@dataclass(frozen=True)
class CheckResult:
    """One line of the report."""

    name: str
    ok: bool
    detail: str
    fix: str = ""

    def line(self) -> str:
        mark = "✓" if self.ok else "✗"
        tail = f" — {self.fix}" if self.fix and not self.ok else ""
        return f"{mark} {self.name}: {self.detail}{tail}"


class CheckFailed(Exception):
    """A check's verdict: ``detail`` (what is wrong) and ``fix`` (what to do)."""

    def __init__(self, detail: str, fix: str = "") -> None:
        super().__init__(detail)
        self.detail, self.fix = detail, fix


def run_checks(
    plan: list[tuple[str, Callable[[], str], str, str]],
    timeout: float,
    secrets: tuple[str, ...] = (),
) -> list[CheckResult]:
    """Run every ``(name, check, fix, endpoint)`` at once, each in a daemon thread, and wait
    at most ``timeout`` seconds in all. A check returns its ✓ detail or raises."""
    outcomes: list[dict[str, Any]] = [{} for _ in plan]

    def target(check: Callable[[], str], outcome: dict[str, Any]) -> None:
        started = time.monotonic()
        try:
            outcome["detail"] = check()
        except BaseException as error:  # noqa: BLE001 - every failure becomes a ✗ line
            outcome["error"] = error
        outcome["seconds"] = time.monotonic() - started

    threads = [
        threading.Thread(target=target, args=(check, outcome), name=f"doctor-{name}", daemon=True)
        for (name, check, _, _), outcome in zip(plan, outcomes, strict=True)
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return [
        _result(name, fix, endpoint, timeout, outcome, secrets)
        for (name, _, fix, endpoint), outcome in zip(plan, outcomes, strict=True)
    ]


def _result(
    name: str,
    fix: str,
    endpoint: str,
    timeout: float,
    outcome: dict[str, Any],
    secrets: tuple[str, ...],
) -> CheckResult:
    if "detail" in outcome:
        return CheckResult(name, True, f"{outcome['detail']} ({outcome['seconds']:.1f} s)")
    if "error" not in outcome:
        return CheckResult(name, False, f"{endpoint}: no answer within {timeout:g} s", fix)
    error = outcome["error"]
    if isinstance(error, CheckFailed):
        detail, fix = error.detail, error.fix or fix
    elif isinstance(error, CrashedError):
        detail = error.message
    else:
        detail = f"{endpoint}: {type(error).__name__}: {error}"
    return CheckResult(name, False, _scrub(_one_line(detail), secrets), fix)


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _scrub(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


# -- the checks ---------------------------------------------------------------------------------


def check_lake(adapters: Adapters) -> str:
    settings = adapters.settings
    uri = settings.lake_uri(PROBE)
    payload = f"crashed doctor {time.time():.0f}\n".encode()
    adapters.lake.put_bytes(uri, payload, content_type="text/plain")
    if adapters.lake.get_bytes(uri) != payload:
        raise CheckFailed(f"{uri} read back different bytes", "check the bucket's consistency")
    listed = adapters.lake.list(settings.lake_uri("doctor"))
    if uri not in listed:
        raise CheckFailed(f"{uri} was written but not listed", "check list permission")
    return f"wrote, read back and listed {uri}"


def check_warehouse(adapters: Adapters) -> str:
    settings = adapters.settings
    where = (
        f"BigQuery {settings.gcp_project}.{settings.warehouse_dataset}"
        if settings.warehouse_kind == "bigquery"
        else f"DuckDB {settings.home / 'warehouse.duckdb'}"
    )
    if not adapters.warehouse.table_exists(SOURCE_TABLE):
        raise CheckFailed(
            f"{where} answers, but table {SOURCE_TABLE} is missing",
            "load data: crashed data load --csv <file>",
        )
    columns = adapters.warehouse.columns(SOURCE_TABLE)
    return f"{where}: table {SOURCE_TABLE} has {len(columns)} columns"


def check_git_host(adapters: Adapters) -> str:
    settings = adapters.settings
    branch = settings.gitlab_target_branch
    text = adapters.git_host.read_file(REFERENCE_FILE, ref=branch)
    where = (
        f"GitLab {settings.gitlab_url} project {settings.gitlab_project}"
        if settings.git_host_kind == "gitlab"
        else "local git repository"
    )
    if text is None:
        raise CheckFailed(
            f"{where}: no {REFERENCE_FILE} on branch {branch}",
            f"commit the repository's {REFERENCE_FILE} to {branch} (GITLAB_TARGET_BRANCH)",
        )
    return f"{where}: read {REFERENCE_FILE} on {branch} ({len(text)} bytes)"


def check_kfp(adapters: Adapters) -> str:
    settings = adapters.settings
    if not settings.kfp_host:
        raise CheckFailed("KFP_HOST is not set", "set KFP_HOST to the Kubeflow Pipelines URL")
    orchestrator = adapters.orchestrator("kfp")
    orchestrator.client  # noqa: B018 - kfp.Client's construction calls GET …/healthz
    auth = "through IAP" if settings.kfp_client_id else "without IAP"
    return f"{settings.kfp_host} healthy ({auth})"


def check_kubernetes(adapters: Adapters) -> str:
    settings = adapters.settings
    namespace = settings.k8s_namespace
    cluster = adapters.cluster()
    api = getattr(cluster, "api", None)
    if api is None:  # another Cluster implementation: only its presence can be shown
        return f"cluster configured ({type(cluster).__name__})"
    _metadata(api, f"/api/v1/namespaces/{namespace}", f"namespace {namespace}")
    missing = [
        name
        for name in POD_SECRETS
        if _metadata(api, f"/api/v1/namespaces/{namespace}/secrets/{name}", "", missing_ok=True)
        is None
    ]
    if missing:
        raise CheckFailed(
            f"namespace {namespace} lacks Secret(s) {', '.join(missing)}",
            "create them (docs/deploy.md: kubectl create secret generic …)",
        )
    return f"{api.configuration.host}: namespace {namespace} with Secrets {', '.join(POD_SECRETS)}"


def _metadata(api: Any, path: str, what: str, missing_ok: bool = False) -> dict | None:
    """GET ``path`` as PartialObjectMetadata: names and labels only, never a Secret's data."""
    from kubernetes.client.rest import ApiException

    try:
        return api.call_api(
            path,
            "GET",
            header_params={
                "Accept": "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
            },
            response_type="object",
            auth_settings=["BearerToken"],
            _return_http_data_only=True,
            _request_timeout=5,
        )
    except ApiException as error:
        if error.status == 404 and missing_ok:
            return None
        if error.status == 404:
            raise CheckFailed(
                f"{what} does not exist", "kubectl create namespace (docs/deploy.md)"
            ) from None
        if error.status in (401, 403):
            raise CheckFailed(
                f"not authorised to read {what or path} (HTTP {error.status})",
                "grant get on namespaces and secrets to this identity",
            ) from None
        raise ServiceError(f"Kubernetes API answered HTTP {error.status} for {path}") from None
    except Exception as error:  # noqa: BLE001 - urllib3 and socket errors alike
        reason = getattr(error, "reason", None) or error
        raise ServiceError(
            f"Kubernetes API {api.configuration.host} unreachable: {reason}"
        ) from None


# -- the command --------------------------------------------------------------------------------


def diagnose(settings: Settings, adapters: Adapters, timeout: float) -> list[CheckResult]:
    """Every check for ``settings``' platform, in order (run concurrently)."""
    token = settings.gitlab_token.get_secret_value() if settings.gitlab_token else ""
    gcs, bigquery, gitlab = (
        settings.lake_kind == "gcs",
        settings.warehouse_kind == "bigquery",
        settings.git_host_kind == "gitlab",
    )
    plan: list[tuple[str, Callable[[], str], str, str]] = [
        (
            "lake",
            lambda: check_lake(adapters),
            "create the bucket (LAKE_BUCKET) and grant the identity object read/write"
            if gcs
            else "make CRASHED_HOME writable",
            f"Cloud Storage {os.environ.get('STORAGE_EMULATOR_HOST') or 'storage.googleapis.com'}"
            if gcs
            else f"lake folder {settings.home / 'lake'}",
        ),
        (
            "warehouse",
            lambda: check_warehouse(adapters),
            "create the dataset (WAREHOUSE_DATASET) and grant BigQuery read/job rights"
            if bigquery
            else "check CRASHED_HOME",
            f"BigQuery {settings.bigquery_api_endpoint or 'bigquery.googleapis.com'}"
            if bigquery
            else f"DuckDB {settings.home / 'warehouse.duckdb'}",
        ),
        (
            "git host",
            lambda: check_git_host(adapters),
            "check GITLAB_URL, GITLAB_PROJECT and a GITLAB_TOKEN with api scope"
            if gitlab
            else "run inside the project's git repository (or set CRASHED_REPO)",
            f"GitLab {settings.gitlab_url}" if gitlab else "local git repository",
        ),
    ]
    if settings.crashed_platform == "gcp":
        plan += [
            (
                "kubeflow",
                lambda: check_kfp(adapters),
                "check KFP_HOST (and KFP_CLIENT_ID for IAP)",
                f"Kubeflow Pipelines {settings.kfp_host}",
            ),
            (
                "kubernetes",
                lambda: check_kubernetes(adapters),
                "check KUBECONFIG / the current context and K8S_NAMESPACE",
                "Kubernetes API",
            ),
        ]
    return run_checks(plan, timeout, (token,))


@click.command()
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    help="Seconds each check may take.",
)
@click.pass_obj
def doctor(app: AppContext, timeout: float) -> None:
    """Check the configured platform end to end: one line per check, with the fix."""
    try:
        settings = app.settings
    except CrashedError as error:
        click.echo(
            CheckResult("settings", False, error.message, "fix the variable named (README)").line()
        )
        sys.exit(3)
    click.echo(
        CheckResult(
            "settings",
            True,
            f"platform {settings.crashed_platform} (warehouse {settings.warehouse_kind}, "
            f"lake {settings.lake_kind}, git host {settings.git_host_kind})",
        ).line()
    )
    if not app.debug:  # the clients' retry chatter is not the report
        for handler in logging.getLogger().handlers:
            handler.setLevel(logging.ERROR)
    adapters = app.adapters
    failed = 0
    for result in diagnose(settings, adapters, timeout):
        click.echo(result.line())
        failed += not result.ok
    if failed:
        click.echo(f"{failed} check(s) failed", err=True)
        sys.exit(3)
