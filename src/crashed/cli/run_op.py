"""`crashed pipelines <pipeline> run-op <op> …`: the container command of every pipeline step."""

from __future__ import annotations

import click

from crashed.pipeline.spec import PipelineSpec


def run_op_command(spec: PipelineSpec) -> click.Group:
    @click.group(name="run-op")
    def run_op() -> None:
        """Run one step of the pipeline (this is each step's container command)."""

    return run_op
