"""Helpers shared by the serving benchmarks: data, training, publishing, results, statistics."""

from __future__ import annotations

import json
import os
import platform
import statistics
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb

from crashed.adapters.local_lake import LocalLake
from crashed.core.crash_schema import normalise, read_crash_csv
from crashed.core.distributions import analyse
from crashed.core.encoder import Encoder
from crashed.core.features import DATE, RAW_FEATURES
from crashed.core.reference import PromotedReference, render_reference
from crashed.core.training import TrainParams, TrainResult, train

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CSV = ROOT.parent / "shared" / "data" / "victoria-crashes" / "vic_crashes_2018.csv"
RESULTS = ROOT / "bench" / "results"


def load_split(csv: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The real rows, normalised, split Jan–Sep (train) / Oct–Dec (requests)."""
    if not csv.is_file():
        raise SystemExit(f"error: {csv} not found (pass --csv PATH to the 2018 crash file)")
    table = normalise(read_crash_csv(csv), str(csv))
    dates = pd.to_datetime(table[DATE])
    return table[dates <= "2018-09-30"], table[dates >= "2018-10-01"]


def train_ours(frame: pd.DataFrame) -> TrainResult:
    """The production recipe (the pipeline's analyse → Encoder.fit → train)."""
    return train(frame, Encoder.fit(analyse(frame)), TrainParams())


def request_params(frame: pd.DataFrame, limit: int) -> list[dict[str, str]]:
    """What clients would send for real crashes: each known raw feature as text."""
    out = []
    for record in frame[list(RAW_FEATURES)].head(limit).to_dict("records"):
        out.append({k: str(v) for k, v in record.items() if v is not None and not pd.isna(v)})
    return out


def publish(home: Path, model: bytes, distributions: dict[str, Any], run_id: str) -> Path:
    """Publish a model into ``home``'s local lake; write and return its reference file."""
    lake = LocalLake(home / "lake")
    base = f"gs://crashed-bench/models/crashed/{run_id}"
    infos = {
        "model": lake.put_bytes(f"{base}/model.ubj", model),
        "distributions": lake.put_bytes(
            f"{base}/distributions.json", json.dumps(distributions).encode()
        ),
        "metrics": lake.put_bytes(f"{base}/metrics.json", b'{"source": "bench"}'),
    }
    window = {"start": "2018-01-01", "end": "2018-09-30", "rows": 1, "positives": 0}
    reference = PromotedReference.model_validate(
        {
            "schema_version": 1,
            "status": "promoted",
            "model": {"name": "crashed", "run_id": run_id, "created_at": "2026-01-01T00:00:00Z"},
            "artifacts": {k: v.as_dict() for k, v in infos.items()},
            "metrics": {
                "roc_auc": 0.5,
                "pr_auc": 0.0,
                "log_loss": 0.0,
                "brier": 0.0,
                "precision": 0,
                "recall": 0,
                "threshold": 0.5,
                "validation_rows": 0,
                "validation_positives": 0,
            },
            "lineage": {
                "pipeline": "bench",
                "pipeline_version": "bench",
                "run_id": run_id,
                "image": "local",
                "git_commit": "0" * 40,
                "train_window": window,
                "validation_window": window,
                "platform": "local",
            },
        }
    )
    path = home / "model-reference.json"
    path.write_text(render_reference(reference), encoding="utf-8")
    return path


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "xgboost": xgb.__version__,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def summary_us(samples: list[float]) -> dict[str, float]:
    """Median/p90/p99/mean of per-call seconds, in microseconds."""
    values = np.asarray(samples) * 1e6
    return {
        "calls": len(samples),
        "median_us": round(float(np.median(values)), 1),
        "p90_us": round(float(np.percentile(values, 90)), 1),
        "p99_us": round(float(np.percentile(values, 99)), 1),
        "mean_us": round(float(statistics.fmean(values)), 1),
    }


def write_result(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return path


def flask_view_app() -> Any:
    """For comparison only (``bench_http.py``): the same ``/predict`` answers as a Flask view.

    The served app with :class:`~crashed.serving.predict.PredictEndpoint` taken out of the WSGI
    stack and its ``respond`` called from a Flask route instead: what the endpoint would cost
    as an ordinary Flask view (the README's measured reason for the WSGI layer).
    """
    from flask import Response, request

    from crashed.cli.inference import serving_app

    app = serving_app()
    endpoint = app.wsgi_app
    app.wsgi_app = endpoint.app

    @app.route("/predict", methods=["GET", "POST"])
    def predict() -> Response:
        status, headers, body = endpoint.respond(request.method, request.environ)
        return Response(body, status=status, headers=headers)

    return app
