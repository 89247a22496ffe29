"""publish: write the run's artifacts immutably, build the reference and report, propose it."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime
from typing import Any

from crashed.core.checksums import bytes_digest
from crashed.core.reference import (
    Artifact,
    Artifacts,
    Lineage,
    Metrics,
    ModelInfo,
    PromotedReference,
    Window,
    render_reference,
)
from crashed.core.report import render_report
from crashed.errors import CrashedError, InputError
from crashed.pipeline.ops.context import REFERENCE_PATH, OpContext
from crashed.ports import FileChange, ObjectInfo, Proposal


def publish(
    ctx: OpContext,
    extract: str,
    validate: str,
    analyse: str,
    train: str,
    evaluate: str,
    force_promotion: str = "false",
) -> dict[str, Any]:
    """Copy artifacts to ``models/<model>/<run_id>/``, render the report, propose the change."""
    force = _flag("force_promotion", force_promotion)
    extracted, validation = ctx.get_json(extract), ctx.get_json(validate)
    analysed, trained = ctx.get_json(analyse), ctx.get_json(train)
    evaluated = ctx.get_json(evaluate)
    evaluation = ctx.get_json(evaluated["metrics_uri"])
    artifacts = {
        "model": _immutable_copy(ctx, trained["model_uri"], "model.ubj"),
        "distributions": _immutable_copy(ctx, analysed["distributions_uri"], "distributions.json"),
        "metrics": _immutable_copy(ctx, evaluated["metrics_uri"], "metrics.json"),
    }
    candidate = evaluation["candidate"]["overall"]
    reference = _reference(ctx, extracted, artifacts, candidate)
    production = ctx.production_reference()
    gate_passed = bool(evaluation["gate"]["passed"])
    identical = production is not None and (
        production.artifacts.model.sha256 == reference.artifacts.model.sha256
    )
    if identical:
        note = "The candidate model is byte-identical to production: nothing to propose."
    elif gate_passed:
        note = "Every gate rule passed."
    elif force:
        note = "⚠️ Promotion was **forced** (`force_promotion=true`) despite failing rules."
    else:
        failed = [r["name"] for r in evaluation["gate"]["rules"] if not r["passed"]]
        note = f"Not proposed: failed rule(s): {', '.join(failed)}."
    report = render_report(reference, evaluation, validation, trained, note)
    report_info = ctx.adapters.lake.put_bytes(
        ctx.model_uri("report.md"), report.encode(), "text/markdown"
    )
    reference = reference.model_copy(
        update={
            "artifacts": reference.artifacts.model_copy(update={"report": _artifact(report_info)})
        }
    )
    reference_text = render_reference(reference)
    ctx.adapters.lake.put_bytes(
        ctx.model_uri("model-reference.json"), reference_text.encode(), "application/json"
    )
    proposal: dict[str, Any] | None = None
    if identical or not (gate_passed or force):
        print(f"  no proposal: {note}")
    else:
        result = ctx.adapters.git_host.propose(
            Proposal(
                branch=f"model-update/{ctx.settings.crashed_model_name}",
                title=f"Model update: {ctx.settings.crashed_model_name} {ctx.run_id} "
                f"(ROC-AUC {_f(candidate['roc_auc'])}, PR-AUC {_f(candidate['pr_auc'])})",
                description=report,
                changes=[FileChange(REFERENCE_PATH, reference_text)],
                labels=("model-update", *(("forced",) if force and not gate_passed else ())),
                target_branch=ctx.settings.gitlab_target_branch,
            )
        )
        proposal = {
            "action": result.action,
            "id": result.id,
            "url": result.url,
            "branch": result.branch,
        }
        print(f"  proposal {result.action}: {result.id} {result.url}")
    return {
        "artifacts": [
            {"name": name, **a.model_dump()}
            for name, a in (
                ("model", reference.artifacts.model),
                ("distributions", reference.artifacts.distributions),
                ("metrics", reference.artifacts.metrics),
                ("report", reference.artifacts.report),
            )
        ],
        "metrics": {
            k: candidate.get(k)
            for k in (
                "roc_auc",
                "pr_auc",
                "log_loss",
                "brier",
                "precision",
                "recall",
                "f1",
                "threshold",
            )
        },
        "gate": evaluation["gate"],
        "forced": force and not gate_passed,
        "identical_to_production": identical,
        "decision": note,
        "proposal": proposal,
        "reference_uri": ctx.model_uri("model-reference.json"),
        "report_uri": report_info.uri,
    }


def _flag(name: str, value: str) -> bool:
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no", ""):
        return False
    raise InputError(f"{name}: expected true or false, got {value!r}")


def _immutable_copy(ctx: OpContext, source: str, name: str) -> Artifact:
    """Copy ``source`` to the run's immutable model path; never overwrite different content."""
    lake = ctx.adapters.lake
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
    extracted: dict[str, Any],
    artifacts: dict[str, Artifact],
    candidate: dict[str, Any],
) -> PromotedReference:
    settings = ctx.settings
    windows = {
        part: Window(
            start=extracted[part]["start"],
            end=extracted[part]["end"],
            rows=extracted[part]["rows"],
            positives=extracted[part]["positives"],
        )
        for part in ("train", "validation")
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
            roc_auc=candidate["roc_auc"],
            pr_auc=candidate["pr_auc"],
            log_loss=candidate["log_loss"],
            brier=candidate["brier"],
            precision=candidate["precision"],
            recall=candidate["recall"],
            threshold=candidate["threshold"],
            validation_rows=candidate["rows"],
            validation_positives=candidate["positives"],
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
