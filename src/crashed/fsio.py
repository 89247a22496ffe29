"""The one atomic file write: a temporary file in the same folder, fsync'd, then renamed.

A reader sees the old content or the new, never half a file; a failed write leaves the old
file intact and no temporary file behind. New files are ``0644`` (before the umask), not
``mkstemp``'s ``0600``: a container user other than the writer (uid 10001 reading a mounted
lake) must be able to read them.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

DEFAULT_MODE = 0o644
TEMP_SUFFIX = ".tmp"


@contextmanager
def atomic_writer(path: Path, mode: int = DEFAULT_MODE) -> Iterator[BinaryIO]:
    """A binary handle whose content replaces ``path`` when the block ends without error."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write(path: Path, data: bytes | str, mode: int = DEFAULT_MODE) -> Path:
    """Replace ``path`` with ``data`` (text is UTF-8) atomically; return ``path``."""
    with atomic_writer(path, mode) as handle:
        handle.write(data.encode("utf-8") if isinstance(data, str) else data)
    return Path(path)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current
