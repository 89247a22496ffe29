"""Test data builders shared by unit, integration and e2e tests."""

from __future__ import annotations

from collections.abc import Mapping

from crashed.core.reference import PromotedReference
from crashed.ports import Lake

FILENAMES = {"model": "model.ubj", "distributions": "distributions.json", "metrics": "metrics.json"}


def store_reference(
    lake: Lake,
    run_id: str,
    files: Mapping[str, bytes],
    *,
    bucket: str = "crashed-lake",
    name: str = "crashed",
) -> PromotedReference:
    """Put ``files`` (model, distributions, metrics) under
    ``gs://<bucket>/models/<name>/<run_id>/`` and return a valid reference naming them with
    their real checksums; the metrics and lineage are plausible fixed values."""
    base = f"gs://{bucket}/models/{name}/{run_id}"
    artifacts = {
        artifact: lake.put_bytes(f"{base}/{FILENAMES[artifact]}", data).as_dict()
        for artifact, data in files.items()
    }
    window = {"start": "2018-01-01", "end": "2018-09-30", "rows": 100, "positives": 5}
    return PromotedReference.model_validate(
        {
            "schema_version": 1,
            "status": "promoted",
            "model": {"name": name, "run_id": run_id, "created_at": "2026-01-01T00:00:00Z"},
            "artifacts": artifacts,
            "metrics": {
                "roc_auc": 0.86,
                "pr_auc": 0.21,
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
                "pipeline_version": "test",
                "run_id": run_id,
                "image": "registry.example.com/crashed:test",
                "git_commit": "0" * 40,
                "train_window": window,
                "validation_window": window | {"start": "2018-10-01", "end": "2018-12-31"},
                "platform": "local",
            },
        }
    )
