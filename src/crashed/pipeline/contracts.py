"""Typed op contracts: each op takes one input model and returns one output model.

An op's output is its *manifest*: the model's JSON is written to the lake
(``runs/<run_id>/<op>.json``) and its URI is the step's only KFP output parameter. A downstream
step receives upstream manifest URIs on its command line; :func:`crashed.pipeline.ops.run_op`
reads and validates them into the upstream output models, so no op ever reads another op's
output by string key.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from crashed.core.evaluation import (
    ClassificationMetrics,
    DriftFinding,
    WindowCounts,
)
from crashed.core.gate import GateDecision
from crashed.core.names import validate_run_id
from crashed.core.promotion import Outcome
from crashed.core.values import parse_bool


class Contract(BaseModel):
    """Base of every op input and output: unknown fields are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class OpInput(Contract):
    """What every op receives: the run id (KFP's job id) and the run date (ISO)."""

    run_id: str
    run_date: str

    @field_validator("run_id")
    @classmethod
    def _run_id(cls, value: str) -> str:
        return validate_run_id(value)


class OpOutput(Contract):
    """What every manifest carries besides the op's own fields (filled in by ``run_op``)."""

    op: str = ""
    run_id: str = ""
    seconds: float = 0.0


# -- extract -------------------------------------------------------------------------------------


class ExtractInput(OpInput):
    train_start: str = ""
    train_end: str = ""
    validation_start: str = ""
    validation_end: str = ""


class WindowExport(WindowCounts):
    """One window materialised as a warehouse table and exported to the lake as Parquet."""

    uri: str
    table: str


class ExtractOutput(OpOutput):
    source_table: str
    train: WindowExport
    validation: WindowExport


# -- validate ------------------------------------------------------------------------------------


class ValidateInput(OpInput):
    extract: ExtractOutput


class ValidateOutput(OpOutput):
    passed: bool
    violations: list[str]
    warnings: list[str]
    drift: list[DriftFinding]
    production_run_id: str | None = None
    report_uri: str = ""


# -- analyse -------------------------------------------------------------------------------------


class AnalyseInput(OpInput):
    extract: ExtractOutput


class AnalyseOutput(OpOutput):
    distributions_uri: str
    vocabulary_sizes: dict[str, int]


# -- train ---------------------------------------------------------------------------------------


class TrainInput(OpInput):
    extract: ExtractOutput
    validate_: ValidateOutput = Field(alias="validate")
    analyse: AnalyseOutput

    model_config = ConfigDict(populate_by_name=True)


class TrainOutput(OpOutput):
    model_uri: str
    model_sha256: str
    best_rounds: int
    threshold: float
    holdout: dict[str, float | None]
    importance: list[tuple[str, float]]
    params: dict[str, Any]
    fit_seconds: float
    columns: int


# -- evaluate ------------------------------------------------------------------------------------


class EvaluateInput(OpInput):
    extract: ExtractOutput
    train: TrainOutput


class EvaluateOutput(OpOutput):
    metrics_uri: str
    gate: GateDecision
    candidate: ClassificationMetrics
    production: ClassificationMetrics | None = None
    production_run_id: str | None = None


# -- publish -------------------------------------------------------------------------------------


class PublishInput(OpInput):
    extract: ExtractOutput
    validate_: ValidateOutput = Field(alias="validate")
    analyse: AnalyseOutput
    train: TrainOutput
    evaluate: EvaluateOutput
    force_promotion: bool = False
    trigger_reason: str = Field(default="", max_length=2000)
    """Why this run was started (the monitor's trigger), shown at the top of the report."""

    model_config = ConfigDict(populate_by_name=True)

    @field_validator("force_promotion", mode="before")
    @classmethod
    def _flag(cls, value: object) -> bool:
        return bool(parse_bool(value, "force_promotion"))


class PublishedArtifact(Contract):
    name: str
    uri: str
    sha256: str
    md5: str
    bytes: int


class ProposalInfo(Contract):
    action: str
    id: str
    url: str
    branch: str


class PublishOutput(OpOutput):
    artifacts: list[PublishedArtifact]
    metrics: ClassificationMetrics
    gate: GateDecision
    outcome: Outcome
    forced: bool
    identical_to_production: bool
    decision: str
    proposal: ProposalInfo | None = None
    reference_uri: str
    report_uri: str


INPUTS: dict[str, type[OpInput]] = {
    "extract": ExtractInput,
    "validate": ValidateInput,
    "analyse": AnalyseInput,
    "train": TrainInput,
    "evaluate": EvaluateInput,
    "publish": PublishInput,
}
OUTPUTS: dict[str, type[OpOutput]] = {
    "extract": ExtractOutput,
    "validate": ValidateOutput,
    "analyse": AnalyseOutput,
    "train": TrainOutput,
    "evaluate": EvaluateOutput,
    "publish": PublishOutput,
}
