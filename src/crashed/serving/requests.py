"""The inference API's request and response models (pydantic), and the parsers that use them.

One set of models validates every request and generates ``/openapi.json``:

- ``PredictQuery``: ``GET /predict``'s query parameters (one per raw feature, all optional);
- :class:`BatchRequest`: ``POST /predict``'s body, ``{"instances": [Instance, …]}``;
  ``PredictQuery`` and ``Instance`` are TypedDicts validated by pydantic, so a request yields
  plain dicts of the given features (no model object built and dumped per batch row: that
  halved the cost of validating a 1,000-row batch);
- :class:`PredictionResponse`, :class:`BatchResponse`, :class:`ErrorResponse`,
  :class:`NotReadyResponse`: what comes back.

The models check the *shape*: which features exist, that a value is text, a number or null, the
batch size. Whether a value is acceptable *for the served model* (a count in range, a time, a
category seen in training) is the encoder's decision (``crashed.core.encoder``), made when the
row is encoded; both kinds of mistake end as the same :class:`~crashed.serving.errors.ApiError`.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal
from urllib.parse import unquote_plus

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
)
from typing_extensions import TypedDict

from crashed.core.encoder import MAX_COUNT
from crashed.core.features import CATEGORY_FEATURES, COUNT_FEATURES, RAW_FEATURES, TIME_FEATURE
from crashed.serving.errors import ApiError
from crashed.serving.limits import MAX_BATCH

FEATURES = frozenset(RAW_FEATURES)
_FEATURE_LIST = ", ".join(RAW_FEATURES)


def json_type(value: object) -> str:
    """``a boolean``, ``a list``, … for messages about a JSON value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    return "a number"


def _schema(*alternatives: dict[str, Any], description: str) -> WithJsonSchema:
    return WithJsonSchema({"anyOf": [*alternatives, {"type": "null"}], "description": description})


_KIND_SCHEMAS = {
    "count": _schema(
        {"type": "integer", "minimum": 0, "maximum": MAX_COUNT},
        {"type": "string", "pattern": r"^\d{1,4}$"},
        description=f"a count of people or vehicles, a whole number 0–{MAX_COUNT}; "
        "empty or null = unknown",
    ),
    "time": _schema(
        {"type": "string", "pattern": r"^\d{1,2}[.:]\d{2}([.:]\d{2})?$", "examples": ["02:30"]},
        description="time of the crash (only the hour is used); empty or null = unknown",
    ),
    "category": _schema(
        {"type": "string"},
        description="one of the values seen in training (case-insensitive; the served "
        "model's values are listed by /model); any other value is a 400; "
        "empty or null = unknown",
    ),
}
_KIND = {
    **dict.fromkeys(COUNT_FEATURES, "count"),
    TIME_FEATURE: "time",
    **dict.fromkeys(CATEGORY_FEATURES, "category"),
}
_STRICT = ConfigDict(extra="forbid")
_JsonValue = StrictStr | StrictInt | StrictFloat | None


MAX_ID = 128
CLIENT_ID = "id"
_ClientId = Annotated[StrictStr, StringConstraints(max_length=MAX_ID)]
_ID_SCHEMA = _schema(
    {"type": "string", "maxLength": MAX_ID, "examples": ["T20180012345"]},
    description="optional client id of the crash (e.g. its accident_no), at most "
    f"{MAX_ID} characters: recorded in the prediction log so outcomes can be joined later; "
    "never a feature of the model",
)


def _features(name: str, value_type: Any, doc: str) -> Any:
    """A TypedDict of the 20 raw features and the client ``id``, all optional: validation
    yields a plain dict of exactly the keys given (no model object to dump per request or per
    batch row)."""
    fields = {f: Annotated[value_type, _KIND_SCHEMAS[_KIND[f]]] for f in RAW_FEATURES}
    id_type = _ClientId if value_type is str else _ClientId | None
    fields[CLIENT_ID] = Annotated[id_type, _ID_SCHEMA]
    typed = TypedDict(name, fields, total=False)  # type: ignore[operator]
    typed.__doc__ = doc
    typed.__pydantic_config__ = _STRICT  # type: ignore[attr-defined]
    return typed


PredictQuery = _features(
    "PredictQuery",
    str,
    "GET /predict: one crash, any of the 20 raw features as query parameters; a feature left "
    "out takes the served model's default (listed by /model, echoed in every answer).",
)
Instance = _features(
    "Instance",
    _JsonValue,
    "One crash of a batch: the same features, as text, numbers or null (= unknown).",
)


class BatchRequest(BaseModel):
    """POST /predict: up to 1000 crashes, scored with one booster call."""

    model_config = _STRICT
    instances: Annotated[list[Instance], Field(min_length=1, max_length=MAX_BATCH)]  # type: ignore[valid-type]


QUERY = TypeAdapter(PredictQuery)
BATCH = TypeAdapter(BatchRequest)


class ModelInfo(BaseModel):
    """The served model, echoed in every answer."""

    name: str
    run_id: str
    sha256: str


class PredictionResponse(BaseModel):
    """One scored crash."""

    prediction: Literal[0, 1] = Field(description="1 when probability >= threshold")
    probability: float = Field(ge=0, le=1)
    threshold: float
    features: dict[str, str | None] = Field(
        description="the values used, defaults filled in (null = unknown)"
    )
    model: ModelInfo


class ScoredInstance(BaseModel):
    prediction: Literal[0, 1]
    probability: float = Field(ge=0, le=1)


class BatchResponse(BaseModel):
    """Predictions in request order."""

    predictions: list[ScoredInstance]
    threshold: float
    model: ModelInfo


class ErrorResponse(BaseModel):
    """Every error: what is wrong and which field (body, query, instances or a feature); a
    batch error adds the instance's index, an unseen category the allowed values."""

    error: str
    field: str | None
    index: int | None = None
    allowed: list[str] | None = None


class NotReadyResponse(ErrorResponse):
    """503: no verified model is loaded, and why."""

    ready: Literal[False]
    reason: str


RESPONSE_MODELS: tuple[type[BaseModel], ...] = (
    PredictionResponse,
    BatchResponse,
    ErrorResponse,
    NotReadyResponse,
)

# ---- parsing ---------------------------------------------------------------------------------


def parse_query(query: str) -> dict[str, str]:
    """A raw WSGI ``QUERY_STRING`` → the given features (validated by :class:`PredictQuery`).

    Split by hand (``&``, ``+``/``%XX`` as UTF-8): several times cheaper than werkzeug's
    MultiDict, and a repeated parameter is an error rather than silently one of its values.
    Unless an escaped ``&`` or ``=`` could move a boundary, the whole string is decoded once
    before it is split (the same result as decoding each part, in one call).
    """
    params: dict[str, str] = {}
    if query:
        if not query.isascii():  # WSGI passes the raw bytes as latin-1
            query = query.encode("latin-1", "replace").decode("utf-8", "replace")
        if "%26" in query or "%3D" in query or "%3d" in query:
            pairs = [(_unquote(k), _unquote(v)) for k, _, v in _split(query)]
        else:
            pairs = [(k, v) for k, _, v in _split(_unquote(query))]
        params = dict(pairs)
        if len(params) != len(pairs):
            keys = [key for key, _ in pairs]
            key = next(key for key in keys if keys.count(key) > 1)
            times = keys.count(key)
            raise ApiError(400, f"parameter {key!r} is given {times} times; give it once", key)
    try:
        return QUERY.validate_python(params)
    except ValidationError as error:
        raise _query_error(error) from None


def _unquote(text: str) -> str:
    """``unquote_plus``, skipped when there is nothing to decode."""
    if "%" in text:
        return unquote_plus(text, errors="replace")
    return text.replace("+", " ") if "+" in text else text


def _split(query: str) -> list[tuple[str, str, str]]:
    return [part.partition("=") for part in query.split("&") if part]


def parse_batch(raw: bytes) -> list[dict[str, str | float | None]]:
    """A ``POST /predict`` body → one dict of given features per instance (text, numbers or
    None as sent: :meth:`Predictor.predict_many` reads them with its ``as_text``).

    JSON is read by the standard library first (a key twice in one object, ``NaN`` and
    ``Infinity`` are errors there), then validated by :class:`BatchRequest`.
    """
    try:
        body = json.loads(raw, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except _DuplicateKey as error:
        raise ApiError(400, f"key {error.key!r} appears twice in one object", error.key) from None
    except (ValueError, RecursionError) as error:
        detail = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
        raise ApiError(400, f"malformed JSON body: {detail}", "body") from None
    try:
        request = BATCH.validate_python(body)
    except ValidationError as error:
        raise _batch_error(error, body) from None
    return request.instances


def _query_error(error: ValidationError) -> ApiError:
    problem = error.errors(include_url=False)[0]
    field = str(problem["loc"][0]) if problem["loc"] else "query"
    if problem["type"] == "extra_forbidden":
        return ApiError(
            400, f"unknown parameter {field!r}; the features are: {_FEATURE_LIST}", field
        )
    return ApiError(400, f"{field}: {problem['msg']}", field)


def _batch_error(error: ValidationError, body: object) -> ApiError:
    problems = error.errors(include_url=False)
    for problem in problems:
        if problem["type"] == "too_long" and problem["loc"] == ("instances",):
            count = len(body["instances"])  # type: ignore[index]
            return ApiError(413, f"{count} instances; at most {MAX_BATCH} per request", "instances")
    problem = problems[0]
    loc, kind = problem["loc"], problem["type"]
    if not loc:
        return ApiError(400, 'expected a JSON object like {"instances": [{…}, …]}', "body")
    if loc[0] != "instances":
        return ApiError(400, f'unknown key {loc[0]!r}; the body has only "instances"', str(loc[0]))
    if len(loc) == 1:
        return ApiError(400, '"instances" must be a non-empty list of objects', "instances")
    index = int(loc[1])
    if len(loc) == 2:
        got = json_type(body["instances"][index])  # type: ignore[index]
        message = f"instances[{index}] must be an object of feature: value, got {got}"
        return ApiError(400, message, "instances", index=index)
    field = str(loc[2])
    if field == CLIENT_ID and kind != "extra_forbidden":
        message = f"{CLIENT_ID}: expected a string of at most {MAX_ID} characters or null"
        return ApiError(400, message, field, index=index)
    if kind == "extra_forbidden":
        message = f"unknown feature {field!r}; the features are: {_FEATURE_LIST}"
        return ApiError(400, message, field, index=index)
    got = json_type(problem.get("input"))
    message = f"{field}: expected a string, a number or null, got {got}"
    return ApiError(400, message, field, index=index)


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return out


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")
