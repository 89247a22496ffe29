"""The training pipeline's shape, declared once: its ops, their inputs, parameters and schedule.

The kfp DAG (``crashed.pipeline.dag``), the ``run-op`` CLI and the local runner all read this.

Every op is a container running ``crashed pipelines <pipeline> run-op <op> --<input> VALUE …
--output-file PATH``. Inputs are plain strings; an op writes the lake URI of its *manifest*
(a small JSON describing what it produced) to ``--output-file``: that is its single output
parameter, named ``manifest``. Downstream ops receive upstream manifests as inputs named after
the upstream op (``--extract gs://…/extract.json``).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class OpSpec:
    """One pipeline step."""

    name: str
    description: str
    params: tuple[str, ...] = ()
    """Pipeline parameters passed through to the op (plus ``run_id`` and ``run_date`` always)."""
    upstream: tuple[str, ...] = ()
    """Ops whose manifest URI this op receives (as an input named after the op)."""
    starts_runs: bool = False
    """The op may start pipeline runs (it is handed the Orchestrator port)."""

    @property
    def inputs(self) -> tuple[str, ...]:
        return ("run_id", "run_date", *self.params, *self.upstream)


@dataclass(frozen=True)
class PipelineSpec:
    """A pipeline: ops in topological order, parameters with defaults, schedule, experiment."""

    name: str
    description: str
    ops: tuple[OpSpec, ...]
    parameters: dict[str, str] = field(default_factory=dict)
    schedule: str = "0 0 * * *"
    experiment: str = "crashed"
    companions: tuple[str, ...] = ()
    """Pipelines deployed beside this one by its ``deploy-prod``/``deploy-dev``."""

    def op(self, name: str) -> OpSpec:
        for op in self.ops:
            if op.name == name:
                return op
        raise KeyError(name)


WINDOW_PARAMS = ("train_start", "train_end", "validation_start", "validation_end")

CRASHED_PIPELINE = PipelineSpec(
    name="crashed_pipeline",
    description="Train the alcohol-related crash classifier, gate it against production, "
    "and propose it for review.",
    parameters={
        # Empty window bounds mean "relative to the run date": validation = the 3 months
        # before the run date, training = the 12 months before that.
        "train_start": "",
        "train_end": "",
        "validation_start": "",
        "validation_end": "",
        "force_promotion": "false",
        # Set by the monitor when it starts a run: the report's "why this retrain".
        "trigger_reason": "",
    },
    schedule="0 0 * * *",
    experiment="crashed",
    companions=("crashed_monitor",),
    ops=(
        OpSpec(
            "extract",
            "select the training and validation windows and export them",
            params=WINDOW_PARAMS,
        ),
        OpSpec(
            "validate",
            "check schema, label, null rates and drift of the extracted data",
            upstream=("extract",),
        ),
        OpSpec(
            "analyse",
            "vocabularies and numeric summaries -> distributions.json",
            upstream=("extract",),
        ),
        OpSpec(
            "train",
            "fit the XGBoost model with the shared encoder",
            upstream=("extract", "validate", "analyse"),
        ),
        OpSpec(
            "evaluate",
            "score candidate and production on the validation window; gate",
            upstream=("extract", "train"),
        ),
        OpSpec(
            "publish",
            "write artifacts with checksums and propose the model for review",
            params=("force_promotion", "trigger_reason"),
            upstream=("extract", "validate", "analyse", "train", "evaluate"),
        ),
    ),
)

CRASHED_MONITOR = PipelineSpec(
    name="crashed_monitor",
    description="Watch the production model's logged predictions for drift and live quality; "
    "start one retraining run or open a rollback proposal when they breach.",
    parameters={
        # Empty bounds: the MONITOR_WINDOW_DAYS up to the run date.
        "since": "",
        "until": "",
        "trigger": "true",
    },
    schedule="0 6 * * *",
    experiment="crashed",
    ops=(
        OpSpec(
            "monitor",
            "drift and live quality of the prediction log; trigger a retrain or a rollback",
            params=("since", "until", "trigger"),
            starts_runs=True,
        ),
    ),
)

PIPELINES: dict[str, PipelineSpec] = {
    CRASHED_PIPELINE.name: CRASHED_PIPELINE,
    CRASHED_MONITOR.name: CRASHED_MONITOR,
}
