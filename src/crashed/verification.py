"""Verify a reference's artifacts through the Lake port; fetch them into a sha256-keyed cache."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from crashed.core.reference import Artifact, PromotedReference, artifact_items
from crashed.errors import CrashedError
from crashed.fsio import atomic_write
from crashed.ports import Lake


@dataclass(frozen=True)
class ArtifactCheck:
    """The outcome of checking one artifact."""

    name: str
    uri: str
    ok: bool
    problem: str = ""


def check_bytes(name: str, artifact: Artifact, data: bytes) -> ArtifactCheck:
    """Compare ``data`` with the artifact's recorded size and sha256."""
    if len(data) != artifact.bytes:
        return ArtifactCheck(
            name, artifact.uri, False, f"size {len(data)} bytes, expected {artifact.bytes}"
        )
    digest = hashlib.sha256(data).hexdigest()
    if digest != artifact.sha256:
        return ArtifactCheck(
            name, artifact.uri, False, f"sha256 {digest[:12]}…, expected {artifact.sha256[:12]}…"
        )
    return ArtifactCheck(name, artifact.uri, True)


def verify_reference(reference: PromotedReference, lake: Lake) -> list[ArtifactCheck]:
    """Download every artifact and check size and sha256; never raises for a bad artifact."""
    checks = []
    for name, artifact in artifact_items(reference):
        try:
            data = lake.get_bytes(artifact.uri)
        except CrashedError as error:
            checks.append(ArtifactCheck(name, artifact.uri, False, error.message))
            continue
        checks.append(check_bytes(name, artifact, data))
    return checks


def fetch_verified(artifact: Artifact, name: str, lake: Lake, cache: Path) -> bytes:
    """The artifact's bytes, verified; served from ``cache/<sha256>`` when already there.

    Raises :class:`CrashedError` naming the artifact when it is missing or does not match.
    """
    cached = cache / artifact.sha256
    if cached.is_file():
        data = cached.read_bytes()
        if check_bytes(name, artifact, data).ok:
            return data
        cached.unlink(missing_ok=True)
    data = lake.get_bytes(artifact.uri)
    check = check_bytes(name, artifact, data)
    if not check.ok:
        raise CrashedError(f"artifact {name} ({artifact.uri}) failed verification: {check.problem}")
    atomic_write(cached, data)
    return data
