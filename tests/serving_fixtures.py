"""Serving fixtures: small trained models, published into a local lake with a reference.

``small_model`` (session) trains on a synthetic frame built here (fast, no data needed);
``real_model`` (session) trains on the real 2018 rows (skipped when ../shared is absent).
``served`` (function) publishes ``small_model`` into a fresh local lake and writes
``model-reference.json`` for it: everything ``crashed.serving`` needs, no server.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from tests.factories import store_reference

from crashed.adapters.local_lake import LocalLake
from crashed.core.crash_schema import normalise, read_crash_csv
from crashed.core.distributions import analyse
from crashed.core.encoder import Encoder
from crashed.core.features import DATE, LABEL
from crashed.core.model_bundle import ModelBundle
from crashed.core.reference import PromotedReference, empty_reference, render_reference
from crashed.core.training import TrainParams, train
from crashed.settings import Settings

BUCKET = "crashed-test-lake"

TYPES = [
    "Collision with vehicle",
    "Collision with a fixed object",
    "Struck Pedestrian",
    "Vehicle overturned (no collision)",
    "Struck animal",
]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
DCA = [
    "REAR END(VEHICLES IN SAME LANE)",
    "LEFT OFF CARRIAGEWAY INTO OBJECT/PARKED VEHICLE",
    "CROSS TRAFFIC(INTERSECTIONS ONLY)",
]
LIGHT = ["Day", "Dark Street lights on", "Dark No street lights", "Dusk/Dawn"]
GEOMETRY = ["Not at intersection", "Cross intersection", "T intersection"]
SPEEDS = ["60 km/hr", "50 km/hr", "80 km/hr", "100 km/hr"]
HIT_RUN = ["No", "Yes"]


def synthetic_frame(rows: int = 1500, seed: int = 0) -> pd.DataFrame:
    """A normalised crash frame whose label depends on night, weekend, fixed objects, dark."""
    rng = np.random.default_rng(seed)
    hours = rng.integers(0, 24, rows)
    minutes = rng.integers(0, 60, rows)
    kind = rng.choice(len(TYPES), rows, p=[0.55, 0.2, 0.1, 0.1, 0.05])
    day = rng.integers(0, 7, rows)
    light = np.where((hours < 6) | (hours > 19), rng.integers(1, 3, rows), 0)
    night = (hours < 5) | (hours >= 22)
    weekend = day >= 5
    logit = -4.0 + 2.2 * night + 0.9 * weekend + 1.3 * (kind == 1) + 0.6 * (light > 0)
    label = rng.random(rows) < 1 / (1 + np.exp(-logit))
    dates = pd.Timestamp("2018-01-01") + pd.to_timedelta(np.sort(rng.integers(0, 365, rows)), "D")
    raw = pd.DataFrame(
        {
            DATE: dates.strftime("%Y-%m-%d"),
            LABEL: np.where(label, "Yes", "No"),
            "accident_time": [f"{h:02d}.{m:02d}.00" for h, m in zip(hours, minutes, strict=True)],
            "accident_type": [TYPES[k] for k in kind],
            "day_of_week": [DAYS[d] for d in day],
            "dca_code": rng.choice(DCA, rows),
            "hit_run_flag": rng.choice(HIT_RUN, rows, p=[0.9, 0.1]),
            "light_condition": [LIGHT[i] for i in light],
            "road_geometry": rng.choice(GEOMETRY, rows),
            "speed_zone": rng.choice(SPEEDS, rows),
        }
    )
    for column in ("inj_or_fatal", "males", "females", "driver", "passengervehicle"):
        raw[column] = rng.integers(0, 3, rows).astype(str)
    for column in (
        "fatality",
        "pedestrian",
        "old_driver",
        "young_driver",
        "unlicencsed",
        "heavyvehicle",
        "motorcycle",
    ):
        raw[column] = (rng.random(rows) < 0.1).astype(int).astype(str)
    return normalise(raw, "synthetic")


@dataclass(frozen=True)
class TrainedModel:
    """Model bytes plus the artifacts published beside them."""

    model: bytes
    distributions: dict[str, Any]
    metrics: dict[str, Any]

    def bundle(self) -> ModelBundle:
        return ModelBundle.from_bytes(self.model, nthread=1)


def train_model(frame: pd.DataFrame, params: TrainParams, name: str = "crashed") -> TrainedModel:
    distributions = analyse(frame)
    result = train(frame, Encoder.fit(distributions), params, name=name)
    metrics = {
        "roc_auc": result.holdout["roc_auc"],
        "threshold": result.bundle.threshold,
        "rows": len(frame),
        "best_rounds": result.best_rounds,
    }
    return TrainedModel(result.bundle.to_bytes(), distributions, metrics)


def publish(
    lake: LocalLake, trained: TrainedModel, run_id: str, name: str = "crashed"
) -> PromotedReference:
    """Put the artifacts under ``gs://BUCKET/models/<name>/<run_id>/`` and describe them."""
    files = {
        "model": trained.model,
        "distributions": json.dumps(trained.distributions).encode(),
        "metrics": json.dumps(trained.metrics).encode(),
    }
    return store_reference(lake, run_id, files, bucket=BUCKET, name=name)


def write_reference(path: Path, reference: PromotedReference | None) -> None:
    """Write (atomically) ``reference``, or the 'no model promoted yet' one for None."""
    text = render_reference(reference if reference is not None else empty_reference())
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


@dataclass
class Served:
    """A lake with a published model and a reference file pointing at it."""

    home: Path
    lake: LocalLake
    reference_path: Path
    reference: PromotedReference
    settings: Settings

    def publish(self, trained: TrainedModel, run_id: str) -> PromotedReference:
        """Publish another model into this lake (the reference file is left alone)."""
        return publish(self.lake, trained, run_id)

    def set_reference(self, reference: PromotedReference | None) -> None:
        """Point the reference file at ``reference`` (None: 'no model promoted yet')."""
        write_reference(self.reference_path, reference)

    def env(self) -> dict[str, str]:
        """Environment for a ``crashed`` subprocess serving this model."""
        return {
            "CRASHED_HOME": str(self.home),
            "CRASHED_PLATFORM": "local",
            "CRASHED_MODEL_REFERENCE": str(self.reference_path),
        }


@pytest.fixture(scope="session")
def small_model() -> TrainedModel:
    """A quick model on synthetic rows (same pipeline as production: analyse → fit → train)."""
    return train_model(synthetic_frame(), TrainParams(max_rounds=50, early_stopping_rounds=20))


@pytest.fixture(scope="session")
def small_model_b() -> TrainedModel:
    """A second, different model (another seed) for reload tests."""
    return train_model(
        synthetic_frame(seed=1), TrainParams(max_rounds=30, early_stopping_rounds=10, seed=1)
    )


@pytest.fixture(scope="session")
def real_frame(real_crashes_csv: Path) -> pd.DataFrame:
    return normalise(read_crash_csv(real_crashes_csv), str(real_crashes_csv))


@pytest.fixture(scope="session")
def real_model(real_frame: pd.DataFrame) -> ModelBundle:
    """The production recipe on the real 2018 rows (default hyper-parameters)."""
    return train_model(real_frame, TrainParams()).bundle()


def make_served(home: Path, trained: TrainedModel, run_id: str = "run-a") -> Served:
    home.mkdir(parents=True, exist_ok=True)
    lake = LocalLake(home / "lake")
    reference = publish(lake, trained, run_id)
    reference_path = home / "model-reference.json"
    write_reference(reference_path, reference)
    settings = Settings(
        crashed_home=home, crashed_platform="local", crashed_model_reference=reference_path
    )
    return Served(home, lake, reference_path, reference, settings)


@pytest.fixture(scope="session")
def crash_rows() -> Callable[..., pd.DataFrame]:
    """:func:`synthetic_frame` (for test modules, which import nothing from here at run time)."""
    return synthetic_frame


@pytest.fixture(scope="session")
def serve_model() -> Callable[..., Served]:
    """:func:`make_served` (home folder, trained model, run id → :class:`Served`)."""
    return make_served


@pytest.fixture
def served(tmp_path: Path, small_model: TrainedModel) -> Served:
    return make_served(tmp_path / "home", small_model)
