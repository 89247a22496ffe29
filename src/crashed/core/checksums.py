"""sha256 + md5 + size of bytes and files, computed in one pass."""

from __future__ import annotations

import hashlib
from pathlib import Path

_CHUNK = 1 << 20


def bytes_digest(data: bytes) -> tuple[str, str, int]:
    """(sha256 hex, md5 hex, size) of ``data``."""
    return hashlib.sha256(data).hexdigest(), hashlib.md5(data).hexdigest(), len(data)


def file_digest(path: Path) -> tuple[str, str, int]:
    """(sha256 hex, md5 hex, size) of the file at ``path``, streamed."""
    sha, md5, size = hashlib.sha256(), hashlib.md5(), 0
    with Path(path).open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            sha.update(chunk)
            md5.update(chunk)
            size += len(chunk)
    return sha.hexdigest(), md5.hexdigest(), size
