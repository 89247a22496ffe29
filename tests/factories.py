"""Test data builders shared by unit, integration and e2e tests."""

from __future__ import annotations

import io
from collections.abc import Mapping
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from crashed.core.model_bundle import ModelBundle
from crashed.core.prediction_log import SCHEMA as PREDICTION_LOG_SCHEMA
from crashed.core.prediction_log import day_prefix
from crashed.core.reference import PromotedReference
from crashed.ports import Lake
from crashed.settings import Settings

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


def log_predictions(
    lake: Lake,
    settings: Settings,
    reference: PromotedReference,
    traffic: pd.DataFrame,
    day: date,
    client_ids: list[str] | None = None,
) -> np.ndarray:
    """Write what serving logs for ``traffic`` (normalised crashes) scored by ``reference``'s
    model on ``day``: the prediction-log schema, one Parquet file. Returns the probabilities.
    Client ids are unknown to the warehouse unless given."""
    bundle = ModelBundle.from_bytes(lake.get_bytes(reference.artifacts.model.uri))
    p = bundle.predict_matrix(bundle.encoder.encode_frame(traffic))
    n = len(traffic)
    columns: dict[str, object] = {
        "ts": [datetime(day.year, day.month, day.day, 12, tzinfo=UTC)] * n,
        "model_name": [reference.model.name] * n,
        "run_id": [reference.model.run_id] * n,
        "model_sha256": [reference.artifacts.model.sha256] * n,
        "client_id": client_ids or [f"L{i:06d}" for i in range(n)],
        "source": ["get"] * n,
        "probability": p.astype(float),
        "decision": (p >= bundle.threshold).astype("int8"),
        "latency_us": np.full(n, 80.0),
    }
    for field in PREDICTION_LOG_SCHEMA:
        if field.name not in columns:
            values = traffic[field.name].reset_index(drop=True)
            columns[field.name] = values.astype("Int64") if field.type == pa.int64() else values
    frame = pd.DataFrame(columns)[PREDICTION_LOG_SCHEMA.names]
    table = pa.Table.from_pandas(frame, schema=PREDICTION_LOG_SCHEMA, preserve_index=False)
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    prefix = day_prefix(settings.lake_uri(), reference.model.name, day)
    lake.put_bytes(f"{prefix}test-{len(lake.list(prefix)):04d}.parquet", buffer.getvalue())
    return p
