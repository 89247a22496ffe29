"""The pipeline's ops: ``op(ctx, inp: <Op>Input) -> <Op>Output`` (see ``pipeline.contracts``).

The runner stores each output model's JSON in the lake; the URI of that manifest is the op's
single output.
"""

from crashed.pipeline.ops.registry import OPS, run_in_process, run_op

__all__ = ["OPS", "run_in_process", "run_op"]
