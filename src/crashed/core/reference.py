"""``model-reference.json``: the single, versioned source of truth for what serves.

Two states, both validated on every read:

- *no model promoted yet*: ``{"schema_version": 1, "status": "no-model-promoted", …}``
- *promoted*: ``status = "promoted"`` with ``model``, ``artifacts`` (model, distributions,
  metrics — each ``uri``, ``sha256``, ``md5``, ``bytes``), ``metrics`` and ``lineage``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from crashed.errors import InputError, NotFoundError

SCHEMA_VERSION = 1
ARTIFACT_NAMES = ("model", "distributions", "metrics")
STATUSES = ("promoted", "no-model-promoted")
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Md5 = Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
LakeUri = Annotated[str, Field(pattern=r"^gs://[a-z0-9][a-z0-9._-]{1,221}[a-z0-9]/.+")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Artifact(_Strict):
    uri: LakeUri
    sha256: Sha256
    md5: Md5
    bytes: int = Field(ge=0)


class ModelInfo(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,62}$")
    run_id: str = Field(min_length=1)
    created_at: str = Field(min_length=10)


class Artifacts(_Strict):
    model: Artifact
    distributions: Artifact
    metrics: Artifact
    report: Artifact | None = None


class Metrics(_Strict):
    roc_auc: float | None = Field(default=None, ge=0, le=1)
    pr_auc: float | None = Field(default=None, ge=0, le=1)
    log_loss: float | None = Field(default=None, ge=0)
    brier: float | None = Field(default=None, ge=0, le=1)
    precision: float = Field(ge=0, le=1)
    recall: float = Field(ge=0, le=1)
    threshold: float = Field(ge=0, le=1)
    validation_rows: int = Field(ge=0)
    validation_positives: int = Field(ge=0)


class Window(_Strict):
    start: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")
    end: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")
    rows: int = Field(ge=0)
    positives: int = Field(ge=0)


class Lineage(_Strict):
    pipeline: str
    pipeline_version: str
    run_id: str
    image: str
    git_commit: str
    train_window: Window
    validation_window: Window
    platform: str


class PromotedReference(_Strict):
    schema_version: Literal[1]
    status: Literal["promoted"]
    model: ModelInfo
    artifacts: Artifacts
    metrics: Metrics
    lineage: Lineage


class EmptyReference(_Strict):
    schema_version: Literal[1]
    status: Literal["no-model-promoted"]
    message: str = "No model has been promoted yet: run the pipeline and merge its proposal."


Reference = PromotedReference | EmptyReference


def empty_reference() -> EmptyReference:
    return EmptyReference(schema_version=SCHEMA_VERSION, status="no-model-promoted")


class InvalidReference(InputError):
    """A reference that does not validate: ``field`` is the dotted path of the first bad field
    (``"(root)"`` for the document itself), ``problems`` every (field, message) found (≤ 5)."""

    def __init__(self, source: str, problems: list[tuple[str, str]], summary: str = "") -> None:
        text = summary or "invalid reference: " + "; ".join(f"{f}: {m}" for f, m in problems)
        super().__init__(f"{source}: {text}")
        self.source = source
        self.problems = problems
        self.field = problems[0][0]


def _shown(value: object) -> str:
    """A JSON value for a one-line message: its kind and its JSON text, cut to 60 characters."""
    if value is None:
        return "null"
    kinds = {str: "the string", bool: "the boolean", float: "the number", int: "the integer"}
    kind = kinds.get(type(value), "the object" if isinstance(value, dict) else "the array")
    text = json.dumps(value)  # escapes control characters: the message stays one line
    return f"{kind} {text if len(text) <= 60 else text[:57] + '…'}"


def _field(loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as a dotted path, safe for one line."""
    path = ".".join(str(p) for p in loc) or "(root)"
    path = path if path.isprintable() else json.dumps(path)
    return path if len(path) <= 80 else path[:77] + "…"


def _check_header(data: dict[str, Any], source: str) -> None:
    """``schema_version`` must be the JSON integer 1 (not ``"1"``, ``1.0`` or ``true``) and
    ``status`` one of :data:`STATUSES`: each a single line naming the field."""
    version = data.get("schema_version")
    if "schema_version" not in data or type(version) is not int:
        got = "it is missing" if "schema_version" not in data else f"got {_shown(version)}"
        raise InvalidReference(
            source,
            [("schema_version", f"expected the integer {SCHEMA_VERSION}")],
            f"schema_version: expected the integer {SCHEMA_VERSION}, {got}",
        )
    if version != SCHEMA_VERSION:
        raise InvalidReference(
            source,
            [("schema_version", "unsupported version")],
            f"schema_version {version!r} is not supported (expected {SCHEMA_VERSION})",
        )
    status = data.get("status")
    if not isinstance(status, str) or status not in STATUSES:
        got = "it is missing" if "status" not in data else f"got {_shown(status)}"
        expected = " or ".join(repr(s) for s in STATUSES)
        raise InvalidReference(
            source, [("status", f"expected {expected}")], f"status: expected {expected}, {got}"
        )


def parse_reference(text: str, source: str = "model-reference.json") -> Reference:
    """Validate reference JSON strictly (no ``"100"`` for a count, no ``1.0`` for a version);
    :class:`InvalidReference` (an :class:`InputError`, exit 2) naming the first bad fields."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidReference(
            source,
            [("(root)", "not valid JSON")],
            f"not valid JSON ({error.msg} at line {error.lineno})",
        ) from None
    if not isinstance(data, dict):
        raise InvalidReference(
            source, [("(root)", "expected a JSON object")], "expected a JSON object"
        )
    _check_header(data, source)
    kind = PromotedReference if data["status"] == "promoted" else EmptyReference
    try:
        return kind.model_validate(data, strict=True)
    except ValidationError as error:
        problems = [(_field(item["loc"]), item["msg"]) for item in error.errors()[:5]]
        raise InvalidReference(source, problems) from None


def read_reference(path: Path) -> Reference:
    """Read and validate the reference file at ``path``."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFoundError(f"{path}: no such model reference file") from None
    except UnicodeDecodeError as error:
        raise InvalidReference(
            str(path), [("(root)", "not UTF-8")], f"not UTF-8 text (byte {error.start})"
        ) from None
    except OSError as error:
        raise InputError(f"{path}: cannot read the model reference: {error.strerror}") from None
    return parse_reference(text, str(path))


def render_reference(reference: Reference) -> str:
    """Canonical JSON text (stable key order, trailing newline) for commits and diffs."""
    return json.dumps(reference.model_dump(mode="json", exclude_none=True), indent=2) + "\n"


def require_promoted(
    reference: Reference, source: str = "model-reference.json"
) -> PromotedReference:
    """The promoted reference, or :class:`NotFoundError` with the 'no model yet' message."""
    if isinstance(reference, EmptyReference):
        raise NotFoundError(f"{source}: no model has been promoted yet ({reference.message})")
    return reference


def artifact_items(reference: PromotedReference) -> list[tuple[str, Artifact]]:
    """(name, artifact) pairs present in the reference, in a stable order."""
    items = [(name, getattr(reference.artifacts, name)) for name in ARTIFACT_NAMES]
    if reference.artifacts.report is not None:
        items.append(("report", reference.artifacts.report))
    return items


def as_dict(reference: Reference) -> dict[str, Any]:
    return reference.model_dump(mode="json", exclude_none=True)
