"""The ``crashed`` command: groups data, pipelines, models, inference and demo."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import select
import signal
import sys
import traceback
from typing import NoReturn

import click

from crashed import __version__
from crashed.cli.context import AppContext
from crashed.errors import CrashedError, NotFoundError


class _Root(click.Group):
    """Root group: errors become one line and an exit code (tracebacks only with --debug)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except BrokenPipeError:  # `crashed --help | head -1`
            if _stdout_closed():
                _closed_pipe()
            raise

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            try:
                return super().invoke(ctx)
            finally:
                _flush_stdout()  # a closed pipe shows here, not at interpreter exit
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException) as error:
            if isinstance(error, click.BadParameter) and _missing_path(error):
                error.exit_code = NotFoundError.exit_code  # click.Path(exists=True): 4, not 2
            raise
        except CrashedError as error:
            _fail(ctx, error.message, error.exit_code)
        except KeyboardInterrupt:
            _fail(ctx, "interrupted", 130)
        except BrokenPipeError as error:
            if _stdout_closed():
                _closed_pipe()
            _fail(ctx, f"unexpected {type(error).__name__}: {error}", 1, unexpected=True)
        except FileNotFoundError as error:  # a missing file is exit 4 even where unforeseen
            missing = f"{error.filename}: no such file or directory" if error.filename else error
            _fail(ctx, str(missing), NotFoundError.exit_code)
        except Exception as error:  # noqa: BLE001 - last line of defence for the user
            _fail(ctx, f"unexpected {type(error).__name__}: {error}", 1, unexpected=True)


CLOSED_PIPE_EXIT = 128 + signal.SIGPIPE
"""What a shell reports for a Unix tool that a closed pipe stopped (141)."""


def _missing_path(error: click.BadParameter) -> bool:
    """A ``click.Path(exists=True)`` option naming a file that does not exist."""
    param_type = error.param.type if error.param is not None else None
    return isinstance(param_type, click.Path) and isinstance(error.__context__, FileNotFoundError)


def _fail(ctx: click.Context, message: str, code: int, unexpected: bool = False) -> None:
    debug = bool(ctx.obj and ctx.obj.debug)
    if debug:
        traceback.print_exc()
    click.secho(f"error: {message}", fg="red", err=True)
    if unexpected and not debug:
        click.echo("(a bug: run with --debug for the traceback and report it)", err=True)
    sys.exit(code)


def _flush_stdout() -> None:
    with contextlib.suppress(ValueError):  # already closed
        sys.stdout.flush()


def _stdout_closed() -> bool:
    """Whether stdout is a pipe nobody reads any more (``| head`` has exited)."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, ValueError, io.UnsupportedOperation):
        return False
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return any(events & select.POLLERR for _, events in poller.poll(0))


def _closed_pipe() -> NoReturn:
    """The reader went away: not an error to report. Stop quietly, as a Unix tool would: no
    message, no traceback at interpreter exit (stdout now points at /dev/null)."""
    with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.exit(CLOSED_PIPE_EXIT)


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
