"""The embedded lake: ``gs://bucket/path`` URIs mapped to ``<root>/bucket/path`` files."""

from __future__ import annotations

from pathlib import Path

from crashed.core.checksums import file_digest
from crashed.core.lake_uri import parse_uri
from crashed.errors import InputError, NotFoundError
from crashed.fsio import TEMP_SUFFIX, atomic_write
from crashed.ports import ObjectInfo


class LocalLake:
    """A folder standing in for Cloud Storage. Writes are atomic (temp file + rename)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path_for(self, uri: str) -> Path:
        """The local file that backs ``uri``."""
        bucket, key = parse_uri(uri)
        if not key:
            raise InputError(f"lake URI {uri!r} names a bucket, not an object")
        path = (self.root / bucket / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise InputError(f"lake URI {uri!r} escapes the lake")
        return path

    def put_bytes(self, uri: str, data: bytes, content_type: str | None = None) -> ObjectInfo:
        path = self.path_for(uri)
        atomic_write(path, data)
        return self.checksum(uri)

    def get_bytes(self, uri: str) -> bytes:
        path = self.path_for(uri)
        try:
            return path.read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            raise NotFoundError(f"no object at {uri}") from None

    def put_file(self, uri: str, path: Path) -> ObjectInfo:
        try:
            data = Path(path).read_bytes()
        except FileNotFoundError:
            raise InputError(f"file {path} does not exist") from None
        return self.put_bytes(uri, data)

    def get_file(self, uri: str, path: Path) -> Path:
        atomic_write(Path(path), self.get_bytes(uri))
        return Path(path)

    def exists(self, uri: str) -> bool:
        return self.path_for(uri).is_file()

    def list(self, prefix: str) -> list[str]:
        bucket, key = parse_uri(prefix)
        base = self.root / bucket
        if not base.is_dir():
            return []
        # Walk only the deepest folder the prefix fully names.
        folder = base / key.rpartition("/")[0] if "/" in key else base
        if not folder.is_dir():
            return []
        uris = []
        for path in folder.rglob("*"):
            if path.is_file() and not path.name.endswith(TEMP_SUFFIX):
                uri = f"gs://{bucket}/{path.relative_to(base).as_posix()}"
                if uri.startswith(prefix):
                    uris.append(uri)
        return sorted(uris)

    def checksum(self, uri: str) -> ObjectInfo:
        path = self.path_for(uri)
        if not path.is_file():
            raise NotFoundError(f"no object at {uri}")
        sha256, md5, size = file_digest(path)
        return ObjectInfo(uri=uri, sha256=sha256, md5=md5, bytes=size)
