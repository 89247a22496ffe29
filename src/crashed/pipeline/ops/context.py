"""What every op receives: settings, injected adapters, the run id and run date, lake helpers."""

from __future__ import annotations

import io
import json
import logging
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pandas as pd

from crashed.core.reference import PromotedReference, Reference, parse_reference
from crashed.errors import InputError
from crashed.settings import Settings
from crashed.wiring import Adapters

log = logging.getLogger("crashed.pipeline")
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
REFERENCE_PATH = "model-reference.json"


@dataclass
class OpContext:
    """Per-op context. Adapters are built once by the caller and injected here."""

    settings: Settings
    adapters: Adapters
    run_id: str
    run_date: str

    def __post_init__(self) -> None:
        if not _RUN_ID.match(self.run_id):
            raise InputError(f"run_id: {self.run_id!r} is not a valid run id")

    def run_uri(self, name: str) -> str:
        """Working area of this run: ``gs://bucket/<lake_path>/runs/<run_id>/<name>``."""
        return self.settings.lake_uri("runs", self.run_id, name)

    def model_uri(self, name: str) -> str:
        """Immutable artifact path: ``…/models/<model>/<run_id>/<name>``."""
        return self.settings.lake_uri("models", self.settings.crashed_model_name, self.run_id, name)

    def put_json(self, uri: str, data: Any) -> str:
        self.adapters.lake.put_bytes(uri, dumps(data).encode(), "application/json")
        return uri

    def get_json(self, uri: str) -> Any:
        return json.loads(self.adapters.lake.get_bytes(uri))

    def get_frame(self, uri: str) -> pd.DataFrame:
        return pd.read_parquet(io.BytesIO(self.adapters.lake.get_bytes(uri)))

    def production_reference(self) -> PromotedReference | None:
        """The reference on the Git host's target branch, when a model has been promoted."""
        text = self.adapters.git_host.read_file(REFERENCE_PATH)
        if text is None:
            return None
        reference: Reference = parse_reference(text, f"{REFERENCE_PATH} (target branch)")
        return reference if isinstance(reference, PromotedReference) else None

    @contextmanager
    def step(self, what: str) -> Iterator[None]:
        """Log ``what`` and how long it took."""
        started = time.perf_counter()
        log.info("  %s …", what)
        yield
        log.info("  %s: done in %.2fs", what, time.perf_counter() - started)


def dumps(data: Any) -> str:
    """Stable, readable JSON."""
    return json.dumps(data, indent=2, sort_keys=True, default=str) + "\n"
