"""Every op the pipeline declares resolves to a function taking exactly its declared inputs."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

from crashed.pipeline.ops.registry import OPS, op_function
from crashed.pipeline.spec import CRASHED_PIPELINE


def test_registry_matches_the_declared_ops() -> None:
    assert tuple(op.name for op in CRASHED_PIPELINE.ops) == OPS


@pytest.mark.parametrize("op", CRASHED_PIPELINE.ops, ids=lambda op: op.name)
def test_op_signature_matches_its_declared_inputs(op) -> None:  # type: ignore[no-untyped-def]
    parameters = list(inspect.signature(op_function(op.name)).parameters)
    assert parameters[0] == "ctx"
    assert set(parameters[1:]) == set(op.inputs) - {"run_id", "run_date"}


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
