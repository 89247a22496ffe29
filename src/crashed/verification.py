"""Verify a reference's artifacts through the Lake port; fetch them into a sha256-keyed cache.

Two depths:

- :func:`verify_reference` / :func:`fetch_verified`: size and sha256 of each artifact.
- :func:`verify_contents` (``crashed models verify``, the MR job): also *where* each artifact is
  (pinned to ``gs://<LAKE_BUCKET>/<LAKE_PATH>/models/<CRASHED_MODEL_NAME>/<run_id>/``) and
  *what* it is: the model loads as a crashed UBJSON bundle and predicts a finite probability on
  a probe row (its encoder's defaults); ``distributions.json`` has the shape the encoder needs
  and the vocabularies the model was trained on; ``metrics.json`` validates as an
  :class:`~crashed.core.evaluation.Evaluation` of this model, with the numbers the reference
  records; ``report.md`` is UTF-8 text. A swapped or foreign artifact fails here, not at serving.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from crashed.core.encoder import Encoder, FeatureError
from crashed.core.evaluation import Evaluation
from crashed.core.features import CATEGORY_FEATURES, COUNT_FEATURES
from crashed.core.reference import Artifact, PromotedReference, artifact_items
from crashed.errors import CrashedError, NotFoundError, ServiceError
from crashed.fsio import atomic_write
from crashed.ports import Lake
from crashed.settings import Settings

if TYPE_CHECKING:  # XGBoost loads only when a model is checked: light pipeline steps stay light
    from crashed.core.model_bundle import ModelBundle

CheckKind = Literal["ok", "location", "missing", "unreachable", "checksum", "content"]
"""What an :class:`ArtifactCheck` found: ``location`` = URI outside the pinned prefix,
``missing`` / ``unreachable`` = the lake's answer, ``checksum`` = size or sha256 differ,
``content`` = the bytes are not what the artifact claims to be."""


@dataclass(frozen=True)
class ArtifactCheck:
    """The outcome of checking one artifact."""

    name: str
    uri: str
    ok: bool
    problem: str = ""
    kind: CheckKind = "ok"


def check_bytes(name: str, artifact: Artifact, data: bytes) -> ArtifactCheck:
    """Compare ``data`` with the artifact's recorded size and sha256."""
    if len(data) != artifact.bytes:
        problem = f"size {len(data)} bytes, expected {artifact.bytes}"
        return ArtifactCheck(name, artifact.uri, False, problem, "checksum")
    digest = hashlib.sha256(data).hexdigest()
    if digest != artifact.sha256:
        problem = f"sha256 {digest[:12]}…, expected {artifact.sha256[:12]}…"
        return ArtifactCheck(name, artifact.uri, False, problem, "checksum")
    return ArtifactCheck(name, artifact.uri, True)


def _lake_failure(name: str, uri: str, error: CrashedError) -> ArtifactCheck:
    kind: CheckKind = (
        "missing"
        if isinstance(error, NotFoundError)
        else "unreachable"
        if isinstance(error, ServiceError)
        else "content"
    )
    return ArtifactCheck(name, uri, False, _one_line(error.message), kind)


def _fetch(name: str, artifact: Artifact, lake: Lake) -> tuple[ArtifactCheck, bytes]:
    try:
        data = lake.get_bytes(artifact.uri)
    except CrashedError as error:
        return _lake_failure(name, artifact.uri, error), b""
    return check_bytes(name, artifact, data), data


def verify_reference(reference: PromotedReference, lake: Lake) -> list[ArtifactCheck]:
    """Download every artifact and check size and sha256; never raises for a bad artifact."""
    return [_fetch(name, artifact, lake)[0] for name, artifact in artifact_items(reference)]


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


# ---- where: every artifact under the configured bucket and model prefix --------------------
_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*")


def artifact_prefix(settings: Settings, run_id: str) -> str:
    """``gs://<LAKE_BUCKET>/<LAKE_PATH>/models/<CRASHED_MODEL_NAME>/<run_id>/``."""
    return settings.lake_uri("models", settings.crashed_model_name, run_id) + "/"


def check_location(name: str, artifact: Artifact, prefix: str) -> ArtifactCheck | None:
    """A failed check when ``artifact.uri`` is not a plain file name directly under ``prefix``
    (another bucket, model or run, a sub-folder, ``..``); None when it is."""
    uri = artifact.uri
    if uri.startswith(prefix) and _FILE_NAME.fullmatch(uri[len(prefix) :]):
        return None
    problem = f"expected a file directly under {prefix} (the configured bucket, model and run)"
    return ArtifactCheck(name, uri, False, problem, "location")


# ---- what: each artifact parsed as what it claims to be ------------------------------------
class _Shape(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)


class _CategoryCounts(_Shape):
    counts: dict[str, Annotated[int, Field(ge=0)]]


class _NumericSummary(_Shape):
    p50: float | None


class _TimeSummary(_Shape):
    hour_mode: Annotated[int, Field(ge=0, le=23)] | None


class DistributionsShape(_Shape):
    """What the encoder (and so serving) needs from ``distributions.json``."""

    distributions_version: Literal[1]
    rows: Annotated[int, Field(ge=0)]
    categorical: dict[str, _CategoryCounts]
    numeric: dict[str, _NumericSummary]
    time: _TimeSummary


@dataclass
class _Parsed:
    """Artifacts that parsed, for the checks across artifacts."""

    bundle: ModelBundle | None = None
    encoder: Encoder | None = None
    """The encoder fitted on ``distributions.json``."""
    evaluation: Evaluation | None = None


class _Bad(Exception):
    """Internal: one artifact is not what it claims to be (the message says what was expected)."""


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _first_error(error: ValidationError) -> str:
    item = error.errors()[0]
    field = ".".join(str(p) for p in item["loc"]) or "(document)"
    return _one_line(f"{field}: {item['msg']}")


def _check_model(data: bytes, reference: PromotedReference, parsed: _Parsed) -> None:
    from crashed.core.model_bundle import ModelBundle, ModelFormatError

    expected = "expected an XGBoost UBJSON model bundle"
    try:
        bundle = ModelBundle.from_bytes(data, nthread=1)
    except ModelFormatError as error:
        reason = re.sub(r"\[\d\d:\d\d:\d\d\] \S+:\d+: ", "", str(error))  # XGBoost's log prefix
        raise _Bad(f"{expected}: {reason}") from None
    except Exception as error:  # noqa: BLE001 - any loader failure is a bad artifact
        raise _Bad(f"{expected}: {type(error).__name__}: {error}") from None
    if bundle.name != reference.model.name:
        raise _Bad(f"expected model {reference.model.name!r}, the bundle is {bundle.name!r}")
    encoder = bundle.encoder
    try:
        row = encoder.encode_one(encoder.resolve({}))
        probability = bundle.predict_matrix(row.reshape(1, -1))
    except FeatureError as error:
        raise _Bad(f"{expected}: its default for {error.field} does not encode") from None
    except Exception as error:  # noqa: BLE001 - XGBoost errors on a malformed booster
        raise _Bad(f"{expected}: the probe row fails: {type(error).__name__}: {error}") from None
    value = np.asarray(probability, dtype=np.float64)
    if value.shape != (1,) or not np.isfinite(value[0]) or not 0.0 <= value[0] <= 1.0:
        raise _Bad(
            "expected one finite probability in [0, 1] for the probe row (the encoder's "
            f"defaults), got {value.ravel()[:3].tolist()}"
        )
    parsed.bundle = bundle


def _check_distributions(data: bytes, reference: PromotedReference, parsed: _Parsed) -> None:
    expected = "expected distributions.json (feature vocabularies and summaries)"
    try:
        DistributionsShape.model_validate_json(data)
    except ValidationError as error:
        raise _Bad(f"{expected}: {_first_error(error)}") from None
    document = json.loads(data)
    absent = [f for f in CATEGORY_FEATURES if f not in document["categorical"]]
    absent += [f for f in COUNT_FEATURES if f not in document["numeric"]]
    if absent:
        raise _Bad(f"{expected}: no summary of {', '.join(absent[:5])}")
    try:
        parsed.encoder = Encoder.fit(document)
    except Exception as error:  # noqa: BLE001 - whatever the encoder trips on
        raise _Bad(f"{expected}: the encoder cannot use it: {type(error).__name__}") from None


def _check_metrics(data: bytes, reference: PromotedReference, parsed: _Parsed) -> None:
    try:
        parsed.evaluation = Evaluation.model_validate_json(data)
    except ValidationError as error:
        raise _Bad(f"expected metrics.json (an evaluation): {_first_error(error)}") from None


def _check_report(data: bytes, reference: PromotedReference, parsed: _Parsed) -> None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise _Bad(f"expected UTF-8 Markdown text: byte {error.start} is not UTF-8") from None
    if "\x00" in text:
        raise _Bad(f"expected UTF-8 Markdown text: a NUL character at {text.index(chr(0))}")


_CONTENT_CHECKS: dict[str, Callable[[bytes, PromotedReference, _Parsed], None]] = {
    "model": _check_model,
    "distributions": _check_distributions,
    "metrics": _check_metrics,
    "report": _check_report,
}


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def _across(reference: PromotedReference, parsed: _Parsed) -> dict[str, str]:
    """Problems found by comparing artifacts with each other and with the reference."""
    problems: dict[str, str] = {}
    bundle, encoder, evaluation = parsed.bundle, parsed.encoder, parsed.evaluation
    if bundle is not None and encoder is not None:
        for feature in CATEGORY_FEATURES:
            ours, theirs = encoder.vocabularies[feature], bundle.encoder.vocabularies[feature]
            if ours != theirs:
                problems["distributions"] = (
                    f"expected the distributions the model was trained on: {feature} has "
                    f"{len(ours)} values here, {len(theirs)} in the model's encoder"
                )
                break
    if evaluation is None:
        return problems
    overall = evaluation.candidate.overall
    if bundle is not None and not _close(overall.threshold, bundle.threshold):
        problems["metrics"] = (
            f"expected the evaluation of this model: threshold {overall.threshold:.6g} in "
            f"metrics.json, {bundle.threshold:.6g} in the model"
        )
        return problems
    recorded = reference.metrics
    pairs: dict[str, tuple[Any, Any]] = {
        name: (getattr(recorded, name), getattr(overall, name))
        for name in ("roc_auc", "pr_auc", "log_loss", "brier", "precision", "recall", "threshold")
    }
    pairs["validation_rows"] = (recorded.validation_rows, overall.rows)
    pairs["validation_positives"] = (recorded.validation_positives, overall.positives)
    for name, (in_reference, in_file) in pairs.items():
        if not _close(in_reference, in_file):
            problems["metrics"] = (
                f"expected the metrics the reference records: {name} {in_reference} in the "
                f"reference, {in_file} in metrics.json"
            )
            break
    return problems


def verify_contents(
    reference: PromotedReference, lake: Lake, settings: Settings
) -> list[ArtifactCheck]:
    """Every artifact's location, size, sha256 and content, one check each (first problem
    wins); never raises for a bad artifact. Artifacts outside the pinned prefix are not
    downloaded at all."""
    prefix = artifact_prefix(settings, reference.model.run_id)
    parsed = _Parsed()
    checks: dict[str, ArtifactCheck] = {}
    for name, artifact in artifact_items(reference):
        check = check_location(name, artifact, prefix)
        if check is None:
            check, data = _fetch(name, artifact, lake)
            if check.ok:
                try:
                    _CONTENT_CHECKS[name](data, reference, parsed)
                except _Bad as bad:
                    check = ArtifactCheck(name, artifact.uri, False, _one_line(str(bad)), "content")
        checks[name] = check
    for name, problem in _across(reference, parsed).items():
        checks[name] = ArtifactCheck(name, checks[name].uri, False, problem, "content")
    return list(checks.values())


def exit_code(checks: list[ArtifactCheck]) -> int:
    """The README's exit codes for a verification: 0 all good, 3 the lake could not be reached,
    4 an artifact is missing, 2 any other mismatch (the reference is not what it claims)."""
    kinds = {check.kind for check in checks if not check.ok}
    if not kinds:
        return 0
    if "unreachable" in kinds:
        return ServiceError.exit_code
    if "missing" in kinds:
        return NotFoundError.exit_code
    return 2
