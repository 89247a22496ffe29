"""publish: write the run's artifacts immutably, build the reference and report, propose it."""

from __future__ import annotations

import os
import re
import subprocess
from datetime import UTC, datetime

from crashed.core.charts import to_png
from crashed.core.checksums import bytes_digest
from crashed.core.evaluation import ClassificationMetrics, Evaluation
from crashed.core.model_bundle import ModelBundle
from crashed.core.promotion import Outcome, PromotionDecision, decide_promotion
from crashed.core.reference import (
    Artifact,
    Artifacts,
    Lineage,
    Metrics,
    ModelInfo,
    PromotedReference,
    Window,
    artifact_items,
    render_reference,
)
from crashed.core.report import DataFindings, render_report
from crashed.errors import CrashedError
from crashed.pipeline.contracts import (
    ExtractOutput,
    ProposalInfo,
    PublishedArtifact,
    PublishInput,
    PublishOutput,
)
from crashed.pipeline.ops.context import REFERENCE_PATH, OpContext
from crashed.pipeline.ops.shadow import shadow_on_log
from crashed.ports import FileChange, ObjectInfo, Proposal


def publish(ctx: OpContext, inp: PublishInput) -> PublishOutput:
    """Copy artifacts to ``models/<model>/<run_id>/``, render the report, propose the change."""
    evaluation = Evaluation.model_validate_json(ctx.ports.lake.get_bytes(inp.evaluate.metrics_uri))
    artifacts = {
        "model": _immutable_copy(ctx, inp.train.model_uri, "model.ubj"),
        "distributions": _immutable_copy(ctx, inp.analyse.distributions_uri, "distributions.json"),
        "metrics": _immutable_copy(ctx, inp.evaluate.metrics_uri, "metrics.json"),
    }
    candidate = evaluation.candidate.overall
    reference = _reference(ctx, inp.extract, artifacts, candidate)
    production = ctx.production_reference()
    decision = decide_promotion(
        candidate_sha256=reference.artifacts.model.sha256,
        production_sha256=production.artifacts.model.sha256 if production else None,
        gate=evaluation.gate,
        force=inp.force_promotion,
    )
    findings = DataFindings(
        warnings=inp.validate_.warnings,
        drift=inp.validate_.drift,
        importance=inp.train.importance,
        best_rounds=inp.train.best_rounds,
    )
    candidate_model = ModelBundle.from_bytes(ctx.ports.lake.get_bytes(inp.train.model_uri))
    shadow = shadow_on_log(ctx, candidate_model, inp.run_date)
    _chart_pngs(ctx, evaluation)
    report = render_report(
        reference,
        evaluation,
        findings,
        decision.note,
        why=inp.trigger_reason,
        shadow=shadow,
        min_segment_positives=ctx.settings.report_min_segment_positives,
    )
    report_info = ctx.ports.lake.put_bytes(
        ctx.model_uri("report.md"), report.encode(), "text/markdown"
    )
    reference = reference.model_copy(
        update={
            "artifacts": reference.artifacts.model_copy(update={"report": _artifact(report_info)})
        }
    )
    reference_text = render_reference(reference)
    reference_uri = ctx.model_uri("model-reference.json")
    ctx.put_text(reference_uri, reference_text)
    proposal = _propose(ctx, decision, candidate, report, reference_text)
    return PublishOutput(
        artifacts=[
            PublishedArtifact(name=name, **artifact.model_dump())
            for name, artifact in artifact_items(reference)
        ],
        metrics=candidate,
        gate=evaluation.gate,
        outcome=decision.outcome,
        forced=decision.forced,
        identical_to_production=decision.outcome is Outcome.IDENTICAL,
        decision=decision.note,
        proposal=proposal,
        reference_uri=reference_uri,
        report_uri=report_info.uri,
    )


def _chart_pngs(ctx: OpContext, evaluation: Evaluation) -> None:
    """The report's charts as PNG files beside the artifacts, for viewers without Mermaid."""
    for chart in evaluation.charts:
        name = re.sub(r"[^a-z0-9]+", "-", chart.title.lower()).strip("-")
        ctx.ports.lake.put_bytes(ctx.model_uri(f"charts/{name}.png"), to_png(chart), "image/png")


def _propose(
    ctx: OpContext,
    decision: PromotionDecision,
    candidate: ClassificationMetrics,
    report: str,
    reference_text: str,
) -> ProposalInfo | None:
    if not decision.propose:
        print(f"  no proposal: {decision.note}")
        return None
    name = ctx.settings.crashed_model_name
    result = ctx.ports.git_host.propose(
        Proposal(
            branch=f"model-update/{name}",
            title=f"Model update: {name} {ctx.run_id} "
            f"(ROC-AUC {_f(candidate.roc_auc)}, PR-AUC {_f(candidate.pr_auc)})",
            description=report,
            changes=[FileChange(REFERENCE_PATH, reference_text)],
            labels=("model-update", *(("forced",) if decision.forced else ())),
            target_branch=ctx.settings.gitlab_target_branch,
        )
    )
    print(f"  proposal {result.action}: {result.id} {result.url}")
    return ProposalInfo(action=result.action, id=result.id, url=result.url, branch=result.branch)


def _immutable_copy(ctx: OpContext, source: str, name: str) -> Artifact:
    """Copy ``source`` to the run's immutable model path; never overwrite different content."""
    lake = ctx.ports.lake
    data = lake.get_bytes(source)
    target = ctx.model_uri(name)
    sha256 = bytes_digest(data)[0]
    if lake.exists(target):
        existing = lake.checksum(target)
        if existing.sha256 != sha256:
            raise CrashedError(
                f"{target} already exists with different content; artifacts of "
                "a run are immutable (start a new run)"
            )
        return _artifact(existing)
    return _artifact(lake.put_bytes(target, data))


def _artifact(info: ObjectInfo) -> Artifact:
    return Artifact(uri=info.uri, sha256=info.sha256, md5=info.md5, bytes=info.bytes)


def _reference(
    ctx: OpContext,
    extracted: ExtractOutput,
    artifacts: dict[str, Artifact],
    candidate: ClassificationMetrics,
) -> PromotedReference:
    settings = ctx.settings
    windows = {
        part: Window(start=w.start, end=w.end, rows=w.rows, positives=w.positives)
        for part, w in (("train", extracted.train), ("validation", extracted.validation))
    }
    return PromotedReference(
        schema_version=1,
        status="promoted",
        model=ModelInfo(
            name=settings.crashed_model_name,
            run_id=ctx.run_id,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        ),
        artifacts=Artifacts(**artifacts),
        metrics=Metrics(
            roc_auc=candidate.roc_auc,
            pr_auc=candidate.pr_auc,
            log_loss=candidate.log_loss,
            brier=candidate.brier,
            precision=candidate.precision,
            recall=candidate.recall,
            threshold=candidate.threshold,
            validation_rows=candidate.rows,
            validation_positives=candidate.positives,
        ),
        lineage=Lineage(
            pipeline="crashed_pipeline",
            pipeline_version=os.environ.get("CRASHED_PIPELINE_VERSION", "local"),
            run_id=ctx.run_id,
            image=settings.crashed_image,
            git_commit=code_commit(),
            train_window=windows["train"],
            validation_window=windows["validation"],
            platform=settings.crashed_platform,
        ),
    )


def code_commit() -> str:
    """The code's git commit: CI's, the image's build arg, or the local checkout's."""
    for variable in ("CI_COMMIT_SHA", "CRASHED_GIT_COMMIT"):
        if os.environ.get(variable):
            return os.environ[variable]
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _f(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
