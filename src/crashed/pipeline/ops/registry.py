"""Op name → function, and the one way to run an op (used by the ``run-op`` CLI)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from importlib import import_module
from pathlib import Path
from typing import Any

from crashed.pipeline.ops.context import OpContext
from crashed.pipeline.spec import PipelineSpec
from crashed.settings import Settings
from crashed.wiring import Adapters

log = logging.getLogger("crashed.pipeline")

OPS: tuple[str, ...] = ("extract", "validate", "analyse", "train", "evaluate", "publish")
"""Each op ``x`` is the function ``x`` of module ``crashed.pipeline.ops.x``, imported only when
it runs: a step's container then loads just what it needs (extract never imports sklearn or
XGBoost; 0.8 s of start-up saved per light step)."""


def op_function(name: str) -> Callable[..., dict[str, Any]]:
    """The function implementing op ``name``."""
    if name not in OPS:
        raise KeyError(name)
    return getattr(import_module(f"crashed.pipeline.ops.{name}"), name)


def run_op(
    spec: PipelineSpec,
    name: str,
    inputs: Mapping[str, str],
    output_file: Path | None,
    settings: Settings,
    adapters: Adapters,
) -> str:
    """Run op ``name``; store its manifest in the lake; write the manifest URI to
    ``output_file`` (the KFP output parameter). Returns the manifest URI."""
    op = spec.op(name)
    ctx = OpContext(settings, adapters, run_id=inputs["run_id"], run_date=inputs["run_date"])
    kwargs = {
        key: inputs[key] for key in op.inputs if key not in ("run_id", "run_date") and key in inputs
    }
    started = time.perf_counter()
    log.info("[%s] %s (run %s)", name, op.description, ctx.run_id)
    manifest = op_function(name)(ctx, **kwargs)
    seconds = time.perf_counter() - started
    manifest = {"op": name, "run_id": ctx.run_id, "seconds": round(seconds, 3), **manifest}
    uri = ctx.put_json(ctx.run_uri(f"{name}.json"), manifest)
    if output_file is not None:
        output_file.parent.mkdir(parents=True, exist_ok=True)
        output_file.write_text(uri)
    log.info("[%s] done in %.2fs -> %s", name, seconds, uri)
    return uri
