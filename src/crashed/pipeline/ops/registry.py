"""Op name → function, and the one way to run an op (used by the ``run-op`` CLI)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from crashed.pipeline.ops.analyse import analyse
from crashed.pipeline.ops.context import OpContext
from crashed.pipeline.ops.evaluate import evaluate
from crashed.pipeline.ops.extract import extract
from crashed.pipeline.ops.publish import publish
from crashed.pipeline.ops.train import train
from crashed.pipeline.ops.validate import validate
from crashed.pipeline.spec import PipelineSpec
from crashed.settings import Settings
from crashed.wiring import Adapters

log = logging.getLogger("crashed.pipeline")

OPS: dict[str, Callable[..., dict[str, Any]]] = {
    "extract": extract,
    "validate": validate,
    "analyse": analyse,
    "train": train,
    "evaluate": evaluate,
    "publish": publish,
}


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
    manifest = OPS[name](ctx, **kwargs)
    seconds = time.perf_counter() - started
    manifest = {"op": name, "run_id": ctx.run_id, "seconds": round(seconds, 3), **manifest}
    uri = ctx.put_json(ctx.run_uri(f"{name}.json"), manifest)
    if output_file is not None:
        output_file.parent.mkdir(parents=True, exist_ok=True)
        output_file.write_text(uri)
    log.info("[%s] done in %.2fs -> %s", name, seconds, uri)
    return uri
