"""`crashed pipelines <pipeline> run-op <op> …`: the container command of every pipeline step."""

from __future__ import annotations

from pathlib import Path

import click

from crashed.pipeline.spec import OpSpec, PipelineSpec


def _op_command(spec: PipelineSpec, op: OpSpec) -> click.Command:
    params: list[click.Parameter] = []
    for name in op.inputs:
        flag = "--" + name.replace("_", "-")
        required = name in ("run_id", "run_date") or name in op.upstream
        default = None if required else spec.parameters.get(name, "")
        helptext = (
            f"URI of the {name} step's manifest."
            if name in op.upstream
            else "Run id (KFP's job id)."
            if name == "run_id"
            else "Run date (ISO), windows are relative to it."
            if name == "run_date"
            else f"Pipeline parameter {name} (default {default!r})."
        )
        params.append(click.Option([flag, name], required=required, default=default, help=helptext))
    params.append(
        click.Option(
            ["--output-file", "output_file"],
            type=click.Path(path_type=Path, dir_okay=False),
            help="Where to write this step's manifest URI (KFP output).",
        )
    )

    @click.pass_obj
    def callback(app, output_file: Path | None, **inputs: str) -> None:  # type: ignore[no-untyped-def]
        from crashed.pipeline.ops import run_op

        orchestrator = app.adapters.orchestrator() if op.starts_runs else None
        run_op(spec, op.name, inputs, output_file, app.settings, app.adapters, orchestrator)

    return click.Command(name=op.name, params=params, callback=callback, help=f"{op.description}.")


def run_op_command(spec: PipelineSpec) -> click.Group:
    """The ``run-op`` group with one command per op of ``spec``."""
    group = click.Group(
        name="run-op", help="Run one step of the pipeline (each step's container command)."
    )
    for op in spec.ops:
        group.add_command(_op_command(spec, op))
    return group
