"""The pipeline's ops: plain functions taking an :class:`OpContext` and plain string inputs.

Each returns its manifest (a JSON-able dict), which the runner stores in the lake; the URI of
that manifest is the op's single output.
"""

from crashed.pipeline.ops.registry import OPS, run_op

__all__ = ["OPS", "run_op"]
