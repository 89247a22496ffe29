"""Parse and build ``gs://bucket/path`` lake URIs."""

from __future__ import annotations

import re

from crashed.errors import InputError

_URI = re.compile(r"^gs://(?P<bucket>[a-z0-9][a-z0-9._-]{1,221}[a-z0-9])(?:/(?P<key>.*))?$")


def parse_uri(uri: str) -> tuple[str, str]:
    """Split ``gs://bucket/key`` into (bucket, key); :class:`InputError` if malformed."""
    match = _URI.match(uri)
    if not match:
        raise InputError(f"not a lake URI: {uri!r} (expected gs://bucket/path)")
    key = match.group("key") or ""
    if any(part in ("..", ".") for part in key.split("/")):
        raise InputError(f"lake URI {uri!r} has '.' or '..' segments")
    if "//" in key or key.startswith("/"):
        raise InputError(f"lake URI {uri!r} has an empty path segment")
    return match.group("bucket"), key


def join_uri(base: str, *parts: str) -> str:
    """``base`` + ``/``-joined ``parts`` (no duplicate slashes)."""
    return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts if p.strip("/"))])
