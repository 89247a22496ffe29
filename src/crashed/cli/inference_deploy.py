"""`crashed inference deploy` and `crashed inference status` (registered in ``inference``)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from crashed.cli.context import AppContext
from crashed.core.names import validate_namespace
from crashed.deploy import manifests, release


def _namespace(app: AppContext, namespace: str | None) -> str:
    if namespace is None:
        return validate_namespace(app.settings.k8s_namespace, "K8S_NAMESPACE")
    return validate_namespace(namespace, "--namespace")


def _progress(line: str) -> None:
    click.echo(line, err=True)


_context_option = click.option(
    "--context",
    "kube_context",
    envvar="KUBE_CONTEXT",
    metavar="NAME",
    help="kubeconfig context (env KUBE_CONTEXT; default: the current context, or in-cluster).",
)


@click.command()
@click.option(
    "--image",
    metavar="IMAGE",
    help="Image to run (default CRASHED_IMAGE; tagged with CI_COMMIT_SHA when it has no tag).",
)
@click.option("--namespace", metavar="NS", help="Namespace (default K8S_NAMESPACE).")
@click.option(
    "--reference",
    "reference_path",
    metavar="PATH",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Model reference to deploy (default CRASHED_MODEL_REFERENCE).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=600.0,
    show_default=True,
    metavar="SECONDS",
    help="How long to wait for the rollout.",
)
@click.option("--dry-run", is_flag=True, help="Print the manifests (YAML) and touch nothing.")
@_context_option
@click.pass_obj
def deploy(
    app: AppContext,
    image: str | None,
    namespace: str | None,
    reference_path: Path | None,
    timeout: float,
    dry_run: bool,
    kube_context: str | None,
) -> None:
    """Deploy the verified model reference: apply the manifests, wait for the rollout.

    Refuses a reference that promotes no model or whose artifacts do not match their
    checksums. A rollout whose new pods never become ready fails after --timeout, naming
    the pods' conditions; the previous pods keep serving.
    """
    settings = app.settings
    image = manifests.image_for_commit(
        image or settings.crashed_image, os.environ.get("CI_COMMIT_SHA")
    )
    namespace = _namespace(app, namespace)
    path = reference_path or settings.crashed_model_reference
    plan = release.plan(
        path, app.adapters.lake, image, namespace, release.pod_env(settings.pod_env()), settings
    )
    model = plan.reference.model
    if dry_run:
        click.echo(manifests.to_yaml(plan.objects), nl=False)
        _progress(
            f"dry run: {model.name} run {model.run_id} as {image} in namespace "
            f"{namespace}; nothing applied"
        )
        return
    cluster = app.adapters.cluster(kube_context)
    _progress(
        f"deploying {model.name} run {model.run_id} ({path}) as {image} to namespace {namespace}"
    )
    done = release.deploy(plan, cluster, timeout, _progress)
    changed = [a for a in done.applied if a.action != "unchanged"]
    click.echo(
        f"deployed {model.name} run {model.run_id} to {namespace}: "
        f"{done.state.available}/{done.state.desired} replicas available"
        + ("" if changed else " (nothing changed)")
    )


@click.command()
@click.option("--namespace", metavar="NS", help="Namespace (default K8S_NAMESPACE).")
@_context_option
@click.pass_obj
def status(app: AppContext, namespace: str | None, kube_context: str | None) -> None:
    """Show the deployed model (run id), image and replicas ready/desired."""
    namespace = _namespace(app, namespace)
    current = release.status(app.adapters.cluster(kube_context), namespace)
    info = current.info
    state = info.state
    rollout = (
        "complete"
        if state.complete
        else f"failed ({state.deadline_exceeded})"
        if state.deadline_exceeded
        else "in progress"
    )
    lines = [
        f"deployment: {info.name} (namespace {info.namespace})",
        f"image:      {current.image}",
        f"replicas:   {state.ready}/{state.desired} ready, {state.updated} updated, "
        f"{state.available} available",
        f"rollout:    {rollout}",
    ]
    if current.reference is not None:
        ref = current.reference
        lines.append(
            f"model:      {ref.model.name} run {ref.model.run_id} (created {ref.model.created_at})"
        )
        lines.append(f"reference:  ConfigMap {current.reference_config_map}")
    else:
        lines.append(f"model:      unknown ({current.problem})")
    click.echo("\n".join(lines))
