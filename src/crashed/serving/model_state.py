"""What a serving process holds: a verified model, or the reason it has none (not ready).

:meth:`ModelState.load` reads ``model-reference.json``, fetches every artifact through the Lake
port into the sha256-keyed cache (size and sha256 verified), and loads the booster with
``nthread=1`` and its encoder. Any failure leaves the state *not ready* with a one-line reason
(logged); it never raises and never keeps a model that failed verification. A not-ready state
retries at most every ``retry_seconds`` when asked (``/readyz``, ``/predict``), so a lake outage
at boot heals by itself; a ready state is never reloaded implicitly.

**Switching models** (:meth:`ModelState.switch`): the new reference is loaded and verified
*beside* the served model, which keeps answering meanwhile; only a verified model replaces it
(one reference assignment, atomic for the request threads). A reference that fails keeps the old
model serving, and the failure is logged and shown in ``/readyz`` (``last_load``). Under
gunicorn a watcher thread per worker runs the switch when asked (:meth:`request_switch`, from
the worker's ``SIGUSR1`` handler, see :mod:`crashed.serving.gunicorn_conf`).

Under gunicorn each worker builds its own state after the fork (the app factory runs in the
worker: no ``--preload``, see xgboost#8040). The lake is handed in: adapters are built only by
the composition root (``crashed.cli.inference.serving_app``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
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
    forest: bool = True
    """Serve single rows through the compiled forest when it agrees with XGBoost."""
    model: LoadedModel | None = None
    reason: str = "model not loaded yet"
    reference: Reference | None = None
    """The last reference read successfully (also when its model failed to load)."""
    attempts: int = 0
    served_reference_sha256: str | None = None
    """sha256 of the reference file's bytes the served model was loaded from."""
    last_load: dict[str, Any] | None = None
    """The last load or switch attempt: ``{reference_sha256, ok, at[, reason]}`` (reason is
    client-safe: no server paths)."""
    _last_attempt: float | None = field(default=None, init=False, repr=False)
    _attempt_sha256: str | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _wake: threading.Event = field(default_factory=threading.Event, init=False, repr=False)
    _watcher: threading.Thread | None = field(default=None, init=False, repr=False)

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
            forest=settings.crashed_serving_forest,
        )

    @property
    def ready(self) -> bool:
        return self.model is not None

    # ---- loading -------------------------------------------------------------------------
    def load(self) -> bool:
        """(Re)load from the reference; True when a verified model is now served."""
        with self._lock:
            return self._load_locked()

    def switch(self) -> bool:
        """Load the reference beside the served model and swap only when it verified.

        A reference file whose bytes are those of the served model is a no-op. Returns True
        when the reference's model is now served; on False the previous model (if any) still
        serves and :attr:`last_load` says why."""
        with self._lock:
            digest = _file_sha256(self.reference_path)
            if (
                self.model is not None
                and digest is not None
                and digest == self.served_reference_sha256
            ):
                self.last_load = _attempt(digest, True)
                log.info("model switch: the reference is unchanged, already serving it")
                return True
            return self._load_locked()

    def start_watcher(self) -> None:
        """Start the thread that runs :meth:`switch` each time :meth:`request_switch` is called."""
        if self._watcher is None:
            self._watcher = threading.Thread(
                target=self._watch, name="crashed-model-switch", daemon=True
            )
            self._watcher.start()

    def request_switch(self) -> None:
        """Ask the watcher thread to switch (safe in a signal handler: it only sets an event)."""
        self._wake.set()

    def _watch(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            try:
                self.switch()
            except Exception:  # never let the watcher die: the next request must work
                log.exception("model switch: unexpected error")

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
        self._attempt_sha256 = _file_sha256(self.reference_path)
        try:
            model = self._load_model(started)
        except Exception as error:
            reason = (
                str(error)
                if isinstance(error, _NotReady)
                else (f"unexpected {type(error).__name__} while loading: {error}")
            )
            self.last_load = _attempt(self._attempt_sha256, False, self.public(reason))
            served = self.model
            if served is not None:
                log.error(
                    "model switch failed, still serving %s sha256 %s: %s",
                    served.info["run_id"],
                    served.info["sha256"][:12],
                    reason,
                    exc_info=not isinstance(error, _NotReady),
                )
                return False
            self.reason = reason
            log.error("model not ready: %s", reason, exc_info=not isinstance(error, _NotReady))
            return False
        self.model = model  # the swap: one reference assignment, request threads never wait
        self.reference = model.reference
        self.served_reference_sha256 = self._attempt_sha256
        self.last_load = _attempt(self._attempt_sha256, True)
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
        if self.model is None:
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
        predictor = Predictor(bundle, forest=self.forest)
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
    def public(self, text: str) -> str:
        """``text`` without server file paths (clients see this; the log keeps the paths)."""
        text = text.replace(str(self.reference_path), self.reference_path.name)
        text = text.replace("file:///", "/")
        return _ABSOLUTE_PATH.sub(lambda m: f"<server path>/{m.group(1)}", text)

    @property
    def public_reason(self) -> str:
        """Why not ready, safe to show to clients."""
        return self.public(self.reason)

    def describe(self) -> dict[str, Any]:
        """``/readyz`` body: ready or not, why not, which model, and the last load attempt."""
        model = self.model
        extra = {"last_load": self.last_load} if self.last_load is not None else {}
        if model is not None:
            return {
                "ready": True,
                "model": model.info,
                "loaded_at": model.loaded_at,
                "reference_sha256": self.served_reference_sha256,
                "pid": os.getpid(),
            } | extra
        return {
            "ready": False,
            "reason": self.public_reason,
            "attempts": self.attempts,
            "pid": os.getpid(),
        } | extra

    def reference_dict(self) -> dict[str, Any] | None:
        return None if self.reference is None else as_dict(self.reference)


_ABSOLUTE_PATH = re.compile(r"(?<![\w:/.~-])/(?:[^\s'\"(),:/]+/)*([^\s'\"(),:/]*)")
"""An absolute path not inside a URI (``gs://b/x`` and ``file:///x`` are left alone)."""


def _file_sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _attempt(digest: str | None, ok: bool, reason: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "reference_sha256": digest,
        "ok": ok,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if reason is not None:
        out["reason"] = reason
    return out


class _NotReady(Exception):
    """Internal: loading stopped for a reason a human can act on."""
