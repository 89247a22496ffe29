"""The peer users would pick instead: MLServer with its XGBoost runtime, same booster, same cores.

Used by ``bench_http.py`` (same run, alternating with our server). MLServer (``mlserver``,
``mlserver-xgboost`` from PyPI) lives in its own venv under ``.crashed/bench/`` (gitignored),
created on first use; if that install fails the benchmark skips MLServer and says why.

MLServer is handed the booster as XGBoost JSON (``model.json``) and requests speak the V2
inference protocol (``POST /v2/models/crashed/infer``) with rows *already encoded* to the
model's float32 columns: it does no feature validation, defaults or category checks, which
our ``/predict`` does per request — a simplification in MLServer's favour.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".crashed" / "bench" / "mlserver-venv"
PACKAGES = ["mlserver", "mlserver-xgboost", "uvloop<0.22"]
"""uvloop 0.22+ raises in ``asyncio.get_event_loop()`` without a running loop, which
MLServer 1.7.1's parallel inference workers call at start (they die at once)."""
MODEL = "crashed"
INFER_PATH = f"/v2/models/{MODEL}/infer"


def ensure_venv(venv: Path = VENV, timeout: float = 1200.0) -> tuple[Path | None, str]:
    """The ``mlserver`` executable (installing it on first use), or None and the reason."""
    executable = venv / "bin" / "mlserver"
    if executable.exists():
        return executable, "reused " + str(venv)
    venv.parent.mkdir(parents=True, exist_ok=True)
    log = venv.parent / "mlserver-install.log"
    try:
        with log.open("wb") as out:
            subprocess.run(
                [sys.executable, "-m", "venv", str(venv)], check=True, stdout=out, stderr=out
            )
            subprocess.run(
                [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *PACKAGES],
                check=True,
                stdout=out,
                stderr=out,
                timeout=timeout,
            )
    except (OSError, subprocess.SubprocessError) as error:
        return None, f"installing {' '.join(PACKAGES)} failed ({error}); see {log}"
    if not executable.exists():
        return None, f"no {executable} after installing {' '.join(PACKAGES)}; see {log}"
    return executable, "installed into " + str(venv)


def prepare(work: Path, booster: Any, port: int, grpc_port: int, workers: int) -> Path:
    """A model repository + server settings for ``mlserver start`` serving ``booster``."""
    folder = work / "mlserver"
    model_dir = folder / MODEL
    model_dir.mkdir(parents=True, exist_ok=True)
    booster.save_model(str(model_dir / "model.json"))
    (model_dir / "model-settings.json").write_text(
        json.dumps(
            {
                "name": MODEL,
                "implementation": "mlserver_xgboost.XGBoostModel",
                "parameters": {"uri": "./model.json"},
            }
        )
    )
    (folder / "settings.json").write_text(
        json.dumps(
            {
                "debug": False,
                "host": "127.0.0.1",
                "http_port": port,
                "grpc_port": grpc_port,
                "metrics_port": grpc_port + 1,
                "parallel_workers": workers,
            }
        )
    )
    return folder


def command(executable: Path, folder: Path) -> list[str]:
    return [str(executable), "start", str(folder)]


def environment() -> dict[str, str]:
    """One OpenMP thread per process, as our workers (``nthread=1``)."""
    return {"OMP_NUM_THREADS": "1", "PYTHONPATH": "", "PROMETHEUS_MULTIPROC_DIR": ""}


def infer_body(rows: list[list[float]]) -> str:
    """A V2 inference request for encoded rows (NaN = missing, sent as JSON ``NaN``)."""
    data = [x for row in rows for x in row]
    body = {
        "inputs": [
            {
                "name": "input-0",
                "shape": [len(rows), len(rows[0])],
                "datatype": "FP32",
                "data": data,
            }
        ]
    }
    return json.dumps(body, allow_nan=True)


def probabilities(answer: dict[str, Any]) -> list[float]:
    """The probabilities in a V2 inference response (the ``predict`` output)."""
    return [float(x) for x in answer["outputs"][0]["data"]]


def split_columns(booster: Any) -> set[int]:
    """Indices of the columns some tree splits on (the others never affect a prediction)."""
    names = booster.feature_names or [f"f{i}" for i in range(booster.num_features())]
    used = booster.get_score(importance_type="weight")
    return {i for i, name in enumerate(names) if name in used}


def sendable(row: list[float], used: set[int]) -> list[float] | None:
    """``row`` for V2 JSON (which has no NaN): NaN only in columns no tree splits on, sent
    as 0 (the prediction is unchanged); None when a split column is missing."""
    out = []
    for index, value in enumerate(row):
        if math.isnan(value):
            if index in used:
                return None
            value = 0.0
        out.append(value)
    return out


if __name__ == "__main__":
    path, why = ensure_venv()
    print(path, why)
    os.sys.exit(0 if path else 1)
