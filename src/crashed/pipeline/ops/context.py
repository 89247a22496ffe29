"""What every op receives besides its input model: settings, the ports, the run id, lake helpers."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pandas as pd

from crashed.core.names import validate_run_id
from crashed.core.reference import PromotedReference, Reference, parse_reference
from crashed.ports import Orchestrator, Ports
from crashed.settings import Settings
from crashed.verification import fetch_verified

log = logging.getLogger("crashed.pipeline")
REFERENCE_PATH = "model-reference.json"


@dataclass
class OpContext:
    """Per-op context. The ports are built once by the caller (the composition root) and
    handed in; an op never constructs an adapter."""

    settings: Settings
    ports: Ports
    run_id: str
    orchestrator: Orchestrator | None = None
    """Only the monitor starts runs; training ops never see an orchestrator."""

    def __post_init__(self) -> None:
        validate_run_id(self.run_id)

    def run_uri(self, name: str) -> str:
        """Working area of this run: ``gs://bucket/<lake_path>/runs/<run_id>/<name>``."""
        return self.settings.lake_uri("runs", self.run_id, name)

    def model_uri(self, name: str) -> str:
        """Immutable artifact path: ``…/models/<model>/<run_id>/<name>``."""
        return self.settings.lake_uri("models", self.settings.crashed_model_name, self.run_id, name)

    def put_text(self, uri: str, text: str, content_type: str = "application/json") -> str:
        self.ports.lake.put_bytes(uri, text.encode("utf-8"), content_type)
        return uri

    def get_frame(self, uri: str) -> pd.DataFrame:
        return pd.read_parquet(io.BytesIO(self.ports.lake.get_bytes(uri)))

    def production_reference(self) -> PromotedReference | None:
        """The reference on the Git host's target branch, when a model has been promoted."""
        text = self.ports.git_host.read_file(REFERENCE_PATH)
        if text is None:
            return None
        reference: Reference = parse_reference(text, f"{REFERENCE_PATH} (target branch)")
        return reference if isinstance(reference, PromotedReference) else None

    def fetch_production(self, reference: PromotedReference, name: str) -> bytes:
        """A production artifact, checksum-verified through the local cache."""
        artifact = getattr(reference.artifacts, name)
        return fetch_verified(artifact, name, self.ports.lake, self.settings.home / "cache")

    @contextmanager
    def step(self, what: str) -> Iterator[None]:
        """Log ``what`` and how long it took."""
        started = time.perf_counter()
        log.info("  %s …", what)
        yield
        log.info("  %s: done in %.2fs", what, time.perf_counter() - started)
