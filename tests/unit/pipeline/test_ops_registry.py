"""Every op the pipeline declares resolves to a function taking exactly its declared inputs."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

from crashed.pipeline.ops.registry import INPUTS, OPS, OUTPUTS, op_function
from crashed.pipeline.spec import PIPELINES


def test_registry_matches_the_declared_ops() -> None:
    declared = [op.name for spec in PIPELINES.values() for op in spec.ops]
    assert tuple(declared) == OPS
    assert [spec.name for spec in PIPELINES.values()] == ["crashed_pipeline", "crashed_monitor"]


@pytest.mark.parametrize(
    "op", [op for spec in PIPELINES.values() for op in spec.ops], ids=lambda op: op.name
)
def test_each_op_takes_its_input_model_and_returns_its_output_model(op) -> None:  # type: ignore[no-untyped-def]
    signature = inspect.signature(op_function(op.name), eval_str=True)
    assert list(signature.parameters) == ["ctx", "inp"]
    assert signature.parameters["inp"].annotation is INPUTS[op.name]
    assert signature.return_annotation is OUTPUTS[op.name]
    # The input model holds exactly the declared inputs: run id/date, parameters, upstream.
    fields = {f.alias or name for name, f in INPUTS[op.name].model_fields.items()}
    assert fields == set(op.inputs)


def test_unknown_op_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        op_function("deploy")


def test_light_steps_do_not_import_the_training_stack() -> None:
    code = (
        "import sys, crashed.pipeline.ops.registry as r; r.op_function('extract'); "
        "print('xgboost' in sys.modules, 'sklearn' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_the_fakes_satisfy_the_ports() -> None:
    from tests.fakes import FakeGitHost, FakeLake, FakeOrchestrator, FakePorts, FakeWarehouse

    from crashed.ports import GitHost, Lake, Orchestrator, Ports, Warehouse

    assert isinstance(FakeLake(), Lake)
    assert isinstance(FakeWarehouse(FakeLake()), Warehouse)
    assert isinstance(FakeGitHost(), GitHost)
    assert isinstance(FakeOrchestrator(), Orchestrator)
    assert isinstance(FakePorts(), Ports)
