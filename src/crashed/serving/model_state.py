"""What a serving process holds: a verified model, or the reason it has none (not ready).

:meth:`ModelState.load` reads ``model-reference.json``, fetches every artifact through the Lake
port into the sha256-keyed cache (size and sha256 verified), and loads the booster with
``nthread=1`` and its encoder. Any failure leaves the state *not ready* with a one-line reason
(logged); it never raises and never keeps a model that failed verification. A not-ready state
retries at most every ``retry_seconds`` when asked (``/readyz``, ``/predict``), so a lake outage
at boot heals by itself; a ready state is never reloaded implicitly (SIGHUP starts new workers).

Under gunicorn each worker builds its own state after the fork (the app factory runs in the
worker: no ``--preload``, see xgboost#8040). The lake is handed in: adapters are built only by
the composition root (``crashed.cli.inference.serving_app``).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from crashed.core.encoder import FeatureError
from crashed.core.model_bundle import ModelBundle, ModelFormatError
from crashed.core.reference import (
    EmptyReference,
    PromotedReference,
    Reference,
    artifact_items,
    as_dict,
    read_reference,
)
from crashed.errors import CrashedError
from crashed.ports import Lake
from crashed.serving.predictor import Predictor
from crashed.settings import Settings
from crashed.verification import fetch_verified

log = logging.getLogger(__name__)

DEFAULT_RETRY_SECONDS = 30.0


@dataclass(frozen=True)
class LoadedModel:
    """A verified model ready to serve."""

    reference: PromotedReference
    predictor: Predictor
    metrics: dict[str, Any]
    """The ``metrics.json`` artifact (verified), as published."""
    loaded_at: str
    seconds: float

    @cached_property
    def info_json(self) -> str:
        """:attr:`info` as compact JSON (serialised once)."""
        return json.dumps(self.info, separators=(",", ":"))

    @cached_property
    def threshold_json(self) -> str:
        return json.dumps(self.predictor.threshold)

    @property
    def info(self) -> dict[str, str]:
        """``{name, run_id, sha256}`` echoed in every prediction."""
        return {
            "name": self.reference.model.name,
            "run_id": self.reference.model.run_id,
            "sha256": self.reference.artifacts.model.sha256,
        }


@dataclass
class ModelState:
    """Holds the loaded model or why there is none. Reads are lock-free; loads are serialised."""

    reference_path: Path
    lake: Lake | None
    cache_dir: Path
    retry_seconds: float = DEFAULT_RETRY_SECONDS
    lake_problem: str | None = None
    """Why there is no lake (``lake`` None): the not-ready reason, e.g. missing credentials."""
    model: LoadedModel | None = None
    reason: str = "model not loaded yet"
    reference: Reference | None = None
    """The last reference read successfully (also when its model failed to load)."""
    attempts: int = 0
    _last_attempt: float | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @classmethod
    def from_settings(
        cls, settings: Settings, lake: Lake | None, *, lake_problem: str | None = None
    ) -> ModelState:
        """State for ``CRASHED_MODEL_REFERENCE`` reading artifacts through ``lake`` (built by the
        composition root; None with ``lake_problem`` when it could not be opened)."""
        return cls(
            reference_path=Path(settings.crashed_model_reference),
            lake=lake,
            cache_dir=settings.home / "cache",
            lake_problem=lake_problem,
        )

    @property
    def ready(self) -> bool:
        return self.model is not None

    # ---- loading -------------------------------------------------------------------------
    def load(self) -> bool:
        """(Re)load from the reference; True when a verified model is now served."""
        with self._lock:
            return self._load_locked()

    def retry_if_due(self) -> bool:
        """When not ready and the retry interval has passed, try loading again (non-blocking:
        a request never waits for another thread's load). Returns readiness."""
        if self.model is not None:
            return True
        last = self._last_attempt
        if last is not None and time.monotonic() - last < self.retry_seconds:
            return False
        if not self._lock.acquire(blocking=False):
            return self.model is not None
        try:
            if self.model is None:
                self._load_locked()
        finally:
            self._lock.release()
        return self.model is not None

    def _load_locked(self) -> bool:
        self.attempts += 1
        self._last_attempt = time.monotonic()
        started = time.perf_counter()
        try:
            model = self._load_model(started)
        except _NotReady as problem:
            self.model = None
            self.reason = str(problem)
            log.error("model not ready: %s", self.reason)
            return False
        except Exception as error:
            self.model = None
            self.reason = f"unexpected {type(error).__name__} while loading: {error}"
            log.exception("model not ready: %s", self.reason)
            return False
        self.model = model
        self.reason = ""
        info = model.info
        log.info(
            "model ready: %s run %s sha256 %s (%d columns, threshold %.4f) in %.2fs from %s",
            info["name"],
            info["run_id"],
            info["sha256"][:12],
            model.predictor.width,
            model.predictor.threshold,
            model.seconds,
            self.reference_path,
        )
        return True

    def _load_model(self, started: float) -> LoadedModel:
        source = str(self.reference_path)
        try:
            reference = read_reference(self.reference_path)
        except CrashedError as error:
            raise _NotReady(f"cannot read the model reference: {error.message}") from None
        self.reference = reference
        if isinstance(reference, EmptyReference):
            raise _NotReady(f"no model promoted yet ({source}: {reference.message})")
        lake = self._lake()
        blobs: dict[str, bytes] = {}
        for name, artifact in artifact_items(reference):
            try:
                blobs[name] = fetch_verified(artifact, name, lake, self.cache_dir)
            except CrashedError as error:
                message = error.message
                if not message.startswith("artifact "):
                    message = f"artifact {name} ({artifact.uri}): {message}"
                raise _NotReady(message) from None
        try:
            bundle = ModelBundle.from_bytes(blobs["model"], nthread=1)
        except ModelFormatError as error:
            raise _NotReady(f"artifact model ({reference.artifacts.model.uri}): {error}") from None
        try:
            metrics = json.loads(blobs["metrics"])
        except ValueError as error:
            raise _NotReady(f"artifact metrics is not JSON: {error}") from None
        if not isinstance(metrics, dict):
            raise _NotReady("artifact metrics is not a JSON object")
        predictor = Predictor(bundle)
        try:
            predictor.predict_one({})  # warm up, and prove the documented defaults encode
        except FeatureError as error:
            raise _NotReady(
                f"the model's default for {error.field} does not encode: {error}"
            ) from None
        return LoadedModel(
            reference=reference,
            predictor=predictor,
            metrics=metrics,
            loaded_at=datetime.now(UTC).isoformat(timespec="seconds"),
            seconds=time.perf_counter() - started,
        )

    def _lake(self) -> Lake:
        if self.lake is None:
            raise _NotReady(f"cannot open the lake: {self.lake_problem or 'no lake configured'}")
        return self.lake

    # ---- reporting -----------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """``/readyz`` body: ready or not, why not, and which model."""
        model = self.model
        if model is not None:
            return {
                "ready": True,
                "model": model.info,
                "loaded_at": model.loaded_at,
                "pid": os.getpid(),
            }
        return {
            "ready": False,
            "reason": self.reason,
            "attempts": self.attempts,
            "pid": os.getpid(),
        }

    def reference_dict(self) -> dict[str, Any] | None:
        return None if self.reference is None else as_dict(self.reference)


class _NotReady(Exception):
    """Internal: loading stopped for a reason a human can act on."""
