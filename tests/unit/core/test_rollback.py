"""Promotion history and rollback plans from file revisions (pure, no Git)."""

from __future__ import annotations

import hashlib

import pytest

from crashed.core.reference import PromotedReference, empty_reference, render_reference
from crashed.core.rollback import choose_target, plan_rollback, promotions
from crashed.errors import InputError, NotFoundError
from crashed.ports import FileRevision


def reference(run_id: str, roc_auc: float = 0.86, pr_auc: float = 0.21) -> str:
    """A valid promoted reference whose model sha256 is derived from ``run_id``."""

    def artifact(name: str) -> dict[str, object]:
        digest = hashlib.sha256(f"{run_id}/{name}".encode()).hexdigest()
        uri = f"gs://crashed-lake/models/crashed/{run_id}/{name}"
        return {"uri": uri, "sha256": digest, "md5": digest[:32], "bytes": 10}

    window = {"start": "2018-10-01", "end": "2018-12-31", "rows": 100, "positives": 5}
    data = {
        "schema_version": 1,
        "status": "promoted",
        "model": {"name": "crashed", "run_id": run_id, "created_at": "2026-01-01T00:00:00Z"},
        "artifacts": {n: artifact(n) for n in ("model", "distributions", "metrics")},
        "metrics": {
            "roc_auc": roc_auc,
            "pr_auc": pr_auc,
            "log_loss": 0.12,
            "brier": 0.03,
            "precision": 0.3,
            "recall": 0.4,
            "threshold": 0.2,
            "validation_rows": 100,
            "validation_positives": 5,
        },
        "lineage": {
            "pipeline": "crashed_pipeline",
            "pipeline_version": "v",
            "run_id": run_id,
            "image": "img",
            "git_commit": "0" * 40,
            "train_window": window,
            "validation_window": window,
            "platform": "local",
        },
    }
    return render_reference(PromotedReference.model_validate(data))


def revision(n: int, content: str | None, proposal: str = "") -> FileRevision:
    return FileRevision(
        commit=f"{n:040x}",
        committed_at=f"2026-01-0{n}T00:00:00+00:00",
        title=f"commit {n}",
        content=content,
        proposal_id=proposal,
        merged_at=f"2026-01-0{n}T12:00:00+00:00" if proposal else None,
    )


R1, R2, R3 = reference("r1", 0.87, 0.23), reference("r2", 0.85, 0.20), reference("r3")
EMPTY = render_reference(empty_reference())


def test_promotions_skip_empty_deleted_and_invalid_states() -> None:
    history = promotions(
        [
            revision(1, EMPTY),
            revision(2, R1, "1"),
            revision(3, "{ hand edit"),
            revision(4, None),
            revision(5, R2, "2"),
        ]
    )
    assert [(p.run_id, p.commit[-1], p.proposal_id, p.kind) for p in history] == [
        ("r1", "2", "1", "promotion"),
        ("r2", "5", "2", "promotion"),
    ]
    row = history[0].as_dict()
    assert row["when"] == "2026-01-02T12:00:00+00:00"  # merged, not committed
    assert (row["roc_auc"], row["pr_auc"]) == (0.87, 0.23)
    assert row["model_sha256"] == hashlib.sha256(b"r1/model").hexdigest()
    assert "content" not in row


def test_a_restored_model_is_a_rollback() -> None:
    history = promotions([revision(1, R1), revision(2, R2), revision(3, R1)])
    assert [p.kind for p in history] == ["promotion", "promotion", "rollback"]
    assert history[2].when == "2026-01-03T00:00:00+00:00"  # no proposal: committed_at


def test_default_target_is_the_model_before_the_current() -> None:
    history = promotions([revision(1, R1), revision(2, R2), revision(3, R3)])
    current = history[-1].reference
    assert choose_target(history, current).run_id == "r2"
    assert choose_target(history, current, "r1").run_id == "r1"


def test_rolling_back_a_rollback_restores_what_it_replaced() -> None:
    history = promotions([revision(1, R1), revision(2, R2), revision(3, R1)])
    assert choose_target(history, history[-1].reference).run_id == "r2"


def test_choose_target_errors() -> None:
    history = promotions([revision(1, R1), revision(2, R2)])
    current = history[-1].reference
    with pytest.raises(NotFoundError, match="never promoted"):
        choose_target(history, current, "r9")
    with pytest.raises(InputError, match="current model"):
        choose_target(history, current, "r2")
    with pytest.raises(InputError, match="not a valid run id"):
        choose_target(history, current, "../r1")
    only = promotions([revision(1, R1)])
    with pytest.raises(NotFoundError, match="only model ever promoted"):
        choose_target(only, only[0].reference)


def test_plan_restores_the_exact_text_with_a_report() -> None:
    history = promotions([revision(1, R1, "1"), revision(2, R2, "2")])

    plan = plan_rollback(history, R2, reason="live PR-AUC fell to 0.12", model_name="crashed")

    assert plan.content == R1
    assert plan.target.commit == history[0].commit
    assert plan.title == "Rollback: crashed to r1 (from r2)"
    assert "**Reason:** live PR-AUC fell to 0.12" in plan.description
    assert "| ROC-AUC | 0.8500 | 0.8700 | +0.0200 |" in plan.description
    assert "| PR-AUC | 0.2000 | 0.2300 | +0.0300 |" in plan.description
    assert f"commit `{history[0].commit[:12]}` (proposal 1)" in plan.description


def test_plan_refuses_without_a_promoted_model_or_reason() -> None:
    history = promotions([revision(1, R1)])
    with pytest.raises(NotFoundError, match="no model is promoted"):
        plan_rollback(history, EMPTY, reason="x", model_name="crashed")
    with pytest.raises(NotFoundError, match="missing"):
        plan_rollback(history, None, reason="x", model_name="crashed")
    with pytest.raises(InputError, match="reason is empty"):
        plan_rollback(history, R1, reason="  ", model_name="crashed")
