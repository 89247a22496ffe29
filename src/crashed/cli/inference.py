"""``crashed inference``: serve the model named by ``CRASHED_MODEL_REFERENCE``.

``start`` runs Flask's development server (one process, threads); ``start-prod`` replaces this
process with gunicorn (see :mod:`crashed.serving.gunicorn_conf`), so the gunicorn master keeps
this PID (signals, containers) and imports neither XGBoost nor the app before forking workers.
Each worker then calls :func:`serving_app`, the composition root of the serving side.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from crashed.cli.context import AppContext
from crashed.errors import CrashedError, ServiceError
from crashed.settings import load_settings
from crashed.wiring import build_adapters

if TYPE_CHECKING:
    from flask import Flask

APP = "crashed.cli.inference:serving_app()"
GUNICORN_CONFIG = "python:crashed.serving.gunicorn_conf"
PIDFILE = "inference.pid"


def gunicorn_argv(bind: str, app: str = APP, *, debug: bool = False) -> list[str]:
    """The gunicorn command ``start-prod`` executes (the HTTP benchmark reuses it)."""
    argv = [sys.executable, "-m", "gunicorn", "--config", GUNICORN_CONFIG, "--bind", bind]
    if debug:
        argv += ["--log-level", "debug"]
    return [*argv, app]


def serving_app() -> Flask:
    """gunicorn's app factory (in each worker, after the fork): settings → lake → app.

    A lake that cannot be opened (e.g. no cloud credentials) leaves the worker alive but not
    ready, with the reason, rather than failing its boot.
    """
    from crashed.serving.app import create_app

    settings = load_settings()
    try:
        lake = build_adapters(settings).lake
    except CrashedError as error:
        return create_app(settings, None, lake_problem=error.message)
    return create_app(settings, lake)


@click.group()
def inference() -> None:
    """Serve predictions over HTTP (the model named by CRASHED_MODEL_REFERENCE)."""


@inference.command("start")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.pass_obj
def start(ctx: AppContext, host: str, port: int) -> None:
    """Development server (Flask, one process). Use start-prod for anything real."""
    from crashed.serving.app import create_app

    try:
        lake, problem = ctx.adapters.lake, None
    except CrashedError as error:
        lake, problem = None, error.message
    app = create_app(ctx.settings, lake, lake_problem=problem)
    click.echo(f"crashed inference (development server) on http://{host}:{port}", err=True)
    app.run(host=host, port=port, threaded=True, use_reloader=False, debug=False)


@inference.command("start-prod")
@click.option(
    "--bind",
    default="0.0.0.0:8000",
    show_default=True,
    help="HOST:PORT to listen on (gunicorn --bind).",
)
@click.option(
    "--pidfile",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where gunicorn writes the master's PID  [default: $CRASHED_HOME/inference.pid].",
)
@click.pass_obj
def start_prod(ctx: AppContext, bind: str, pidfile: Path | None) -> None:
    """Production server: gunicorn, WEB_CONCURRENCY workers (default: CPU count), no preload.

    Run `crashed inference reload` to switch to the current model reference without a restart.
    """
    settings = ctx.settings  # a configuration error stops here, before gunicorn starts
    pidfile = pidfile or settings.home / PIDFILE
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    argv = gunicorn_argv(bind, debug=ctx.debug)
    argv[-1:-1] = ["--pid", str(pidfile)]
    click.echo(
        f"crashed inference: model reference {settings.crashed_model_reference}; "
        f"exec {shlex.join(argv[1:])}",
        err=True,
    )
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(argv[0], argv)


@inference.command("reload")
@click.option("--url", default="http://127.0.0.1:8000", show_default=True, help="Server URL.")
@click.option("--pid", "master", type=int, default=None, help="PID of the gunicorn master.")
@click.option(
    "--pidfile",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Pidfile of the master (used without --pid)  [default: $CRASHED_HOME/inference.pid].",
)
@click.option(
    "--reference",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The reference file the server reads  [default: the server's CRASHED_MODEL_REFERENCE "
    "(from /proc), else this shell's].",
)
@click.option("--timeout", default=60.0, show_default=True, type=click.FloatRange(min=1))
@click.pass_obj
def reload(
    ctx: AppContext,
    url: str,
    master: int | None,
    pidfile: Path | None,
    reference: Path | None,
    timeout: float,
) -> None:
    """Switch a running start-prod server to the current model reference, seamlessly.

    Every worker loads and verifies the new reference beside the model it serves and swaps
    only when it verified; a bad reference keeps the old model serving. Waits until every
    worker reports; exits 0 when all serve the new reference, 3 when any kept the old one.
    """
    from crashed.serving.reload import read_pidfile, reload_server, server_reference

    settings = ctx.settings
    if master is None:
        master = read_pidfile(pidfile or settings.home / PIDFILE)
    reference = reference or server_reference(master) or Path(settings.crashed_model_reference)
    outcomes = reload_server(master, url, reference, timeout=timeout)
    for result in outcomes:
        model = result.model or {}
        serving = f"{model.get('run_id', '?')} sha256 {str(model.get('sha256', '?'))[:12]}"
        if result.switched:
            click.echo(f"worker {result.pid}: serving {serving}")
        else:
            shown = f"still serving {serving}" if result.model else "not ready"
            click.echo(f"worker {result.pid}: {shown}; the new reference failed: {result.reason}")
    kept = [r.pid for r in outcomes if not r.switched]
    if kept:
        raise ServiceError(
            f"{len(kept)} of {len(outcomes)} worker(s) did not switch to {reference.name}"
        )
