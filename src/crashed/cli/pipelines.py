"""`crashed pipelines …`: list, compile, run locally, deploy to Kubeflow, and run one op."""

from __future__ import annotations

import click

from crashed.pipeline.spec import PIPELINES, PipelineSpec


@click.group()
def pipelines() -> None:
    """Training pipelines: list, compile, run-local, deploy-prod/dev and run-op."""


def _pipeline_group(spec: PipelineSpec) -> click.Group:
    @click.group(name=spec.name, help=f"{spec.description}")
    def group() -> None:
        pass

    from crashed.cli.run_op import run_op_command

    group.add_command(run_op_command(spec))
    return group


for _spec in PIPELINES.values():
    pipelines.add_command(_pipeline_group(_spec))
