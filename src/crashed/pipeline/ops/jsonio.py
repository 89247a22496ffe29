"""Stable, readable JSON for documents the ops write (artifacts and manifests)."""

from __future__ import annotations

import json
from typing import Any


def dumps(data: Any) -> str:
    """Indented, key-sorted JSON with a trailing newline (byte-stable for checksums)."""
    return json.dumps(data, indent=2, sort_keys=True, default=str) + "\n"
