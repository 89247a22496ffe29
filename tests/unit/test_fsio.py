"""The one atomic write: whole or nothing, readable by other users, no temporary files left."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from crashed.fsio import atomic_write, atomic_writer


def test_new_files_are_world_readable_not_0600(tmp_path: Path) -> None:
    path = atomic_write(tmp_path / "a" / "b.json", "{}\n")
    assert path.read_text() == "{}\n"
    mode = stat.S_IMODE(path.stat().st_mode)
    assert mode & 0o044 == 0o044, oct(mode)  # group and others can read (uid 10001 in a pod)


def test_a_failed_write_keeps_the_old_content_and_leaves_no_temp_file(tmp_path: Path) -> None:
    path = atomic_write(tmp_path / "model.ubj", b"old")
    with pytest.raises(RuntimeError), atomic_writer(path) as handle:
        handle.write(b"half of the new")
        raise RuntimeError("disk full")
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.ubj"]
