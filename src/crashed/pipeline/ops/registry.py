"""Op name → function and contracts, and the one way to run an op (container step or in-process).

Each op ``x`` is the function ``x(ctx, inp: XInput) -> XOutput`` of module
``crashed.pipeline.ops.x``, imported only when it runs: a step's container then loads just what
it needs (extract never imports sklearn or XGBoost; 0.8 s of start-up saved per light step).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from importlib import import_module
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from crashed.errors import InputError
from crashed.monitoring.contracts import MonitorInput, MonitorOutput
from crashed.pipeline.contracts import INPUTS as TRAINING_INPUTS
from crashed.pipeline.contracts import OUTPUTS as TRAINING_OUTPUTS
from crashed.pipeline.contracts import OpInput, OpOutput
from crashed.pipeline.ops.context import OpContext
from crashed.pipeline.spec import PipelineSpec
from crashed.ports import Lake, Orchestrator, Ports
from crashed.settings import Settings

log = logging.getLogger("crashed.pipeline")

INPUTS: dict[str, type[OpInput]] = {**TRAINING_INPUTS, "monitor": MonitorInput}
OUTPUTS: dict[str, type[OpOutput]] = {**TRAINING_OUTPUTS, "monitor": MonitorOutput}
MODULES: dict[str, str] = {
    **{name: f"crashed.pipeline.ops.{name}" for name in TRAINING_INPUTS},
    "monitor": "crashed.monitoring.monitor",
}
OPS: tuple[str, ...] = tuple(INPUTS)

OpFunction = Callable[[OpContext, Any], OpOutput]


def op_function(name: str) -> OpFunction:
    """The function implementing op ``name``."""
    if name not in OPS:
        raise KeyError(name)
    return getattr(import_module(MODULES[name]), name)


def op_input(name: str, values: Mapping[str, Any]) -> OpInput:
    """Validate ``values`` into op ``name``'s input model; a bad value is an :class:`InputError`
    naming the field and what was expected."""
    try:
        return INPUTS[name].model_validate(dict(values))
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, item['loc'])) or name}: {item['msg']}"
            for item in error.errors(include_url=False)
        )
        raise InputError(f"op {name}: invalid input: {problems}") from None


def read_manifest(lake: Lake, op: str, uri: str) -> OpOutput:
    """Op ``op``'s manifest at ``uri``, validated into its output model."""
    data = lake.get_bytes(uri.strip())
    try:
        return OUTPUTS[op].model_validate_json(data)
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        where = ".".join(map(str, first["loc"]))
        raise InputError(f"{uri} is not a valid {op} manifest ({where}: {first['msg']})") from None


def execute(
    settings: Settings,
    ports: Ports,
    name: str,
    inp: OpInput,
    orchestrator: Orchestrator | None = None,
) -> OpOutput:
    """Run op ``name`` on a validated input; store its manifest as ``runs/<run>/<name>.json``
    and return the output with ``op``, ``run_id`` and ``seconds`` filled in."""
    ctx = OpContext(settings, ports, run_id=inp.run_id, orchestrator=orchestrator)
    started = time.perf_counter()
    log.info("[%s] run %s", name, ctx.run_id)
    output = op_function(name)(ctx, inp)
    seconds = round(time.perf_counter() - started, 3)
    output = output.model_copy(update={"op": name, "run_id": ctx.run_id, "seconds": seconds})
    uri = ctx.put_text(ctx.run_uri(f"{name}.json"), output.model_dump_json(indent=2) + "\n")
    log.info("[%s] done in %.2fs -> %s", name, seconds, uri)
    return output


def run_op(
    spec: PipelineSpec,
    name: str,
    inputs: Mapping[str, str],
    output_file: Path | None,
    settings: Settings,
    ports: Ports,
    orchestrator: Orchestrator | None = None,
) -> str:
    """The container step: string inputs (upstream manifest URIs, parameters) → manifest URI,
    also written to ``output_file`` (the KFP output parameter)."""
    op = spec.op(name)
    values: dict[str, Any] = {key: inputs[key] for key in op.inputs if key in inputs}
    for upstream in op.upstream:
        values[upstream] = read_manifest(ports.lake, upstream, str(values[upstream]))
    output = execute(settings, ports, name, op_input(name, values), orchestrator)
    uri = settings.lake_uri("runs", output.run_id, f"{name}.json")
    if output_file is not None:
        output_file.parent.mkdir(parents=True, exist_ok=True)
        output_file.write_text(uri)
    return uri


def run_in_process(
    spec: PipelineSpec,
    settings: Settings,
    ports: Ports,
    run_id: str,
    run_date: str,
    parameters: Mapping[str, str] | None = None,
    orchestrator: Orchestrator | None = None,
) -> dict[str, OpOutput]:
    """Every op of ``spec`` in order, in this process, outputs handed on as models (fast tests
    and notebooks; the manifests still land in the lake as in a real run)."""
    params = {**spec.parameters, **(parameters or {})}
    outputs: dict[str, OpOutput] = {}
    for op in spec.ops:
        values: dict[str, Any] = {"run_id": run_id, "run_date": run_date}
        values |= {key: params[key] for key in op.params if key in params}
        values |= {upstream: outputs[upstream] for upstream in op.upstream}
        inp = op_input(op.name, values)
        outputs[op.name] = execute(
            settings, ports, op.name, inp, orchestrator if op.starts_runs else None
        )
    return outputs
