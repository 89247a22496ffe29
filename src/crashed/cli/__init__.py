"""The ``crashed`` command: groups data, pipelines, models, inference and demo."""

from __future__ import annotations

import logging
import sys
import traceback

import click

from crashed import __version__
from crashed.cli.context import AppContext
from crashed.errors import CrashedError


class _Root(click.Group):
    """Root group: errors become one line and an exit code (tracebacks only with --debug)."""

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except CrashedError as error:
            _fail(ctx, error.message, error.exit_code)
        except KeyboardInterrupt:
            _fail(ctx, "interrupted", 130)
        except Exception as error:  # noqa: BLE001 - last line of defence for the user
            _fail(ctx, f"unexpected {type(error).__name__}: {error}", 1, unexpected=True)


def _fail(ctx: click.Context, message: str, code: int, unexpected: bool = False) -> None:
    debug = bool(ctx.obj and ctx.obj.debug)
    if debug:
        traceback.print_exc()
    click.secho(f"error: {message}", fg="red", err=True)
    if unexpected and not debug:
        click.echo("(a bug: run with --debug for the traceback and report it)", err=True)
    sys.exit(code)


@click.group(cls=_Root, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.version_option(__version__, prog_name="crashed")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """crashed: train, review and serve the alcohol-related crash model through Git.

    Configuration comes from environment variables (and ./.env); see the README.
    """
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO,
        format="%(message)s",
        stream=sys.stderr,
    )
    ctx.obj = AppContext(debug=debug)


def _register() -> None:
    from crashed.cli.data import data
    from crashed.cli.demo import demo
    from crashed.cli.doctor import doctor
    from crashed.cli.inference import inference
    from crashed.cli.inference_deploy import deploy, status
    from crashed.cli.models import models
    from crashed.cli.monitor import monitor
    from crashed.cli.pipelines import pipelines

    inference.add_command(deploy)
    inference.add_command(status)
    for group in (data, pipelines, models, inference, monitor, demo, doctor):
        cli.add_command(group)


_register()


def main() -> None:
    """Console entry point."""
    cli(prog_name="crashed")
