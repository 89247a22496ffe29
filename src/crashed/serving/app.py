"""The inference HTTP API (Flask app factory).

``create_app()`` builds the model state from settings and loads it right away: under gunicorn
the factory runs in each worker after the fork (never ``--preload``), so every worker verifies
and loads its own booster before it accepts a connection.

Every client mistake is a JSON 4xx naming the field; only genuine bugs are 500 (logged).
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote_plus

from flask import Flask, Request, Response, request
from werkzeug.exceptions import HTTPException

from crashed.core.encoder import FeatureError
from crashed.core.features import CATEGORY_FEATURES, RAW_FEATURES
from crashed.serving.jsonlog import ensure_app_logging
from crashed.serving.limits import MAX_BATCH, MAX_BODY_BYTES, MAX_QUERY_BYTES
from crashed.serving.metrics import CONTENT_TYPE, ServingMetrics, multiprocess_dir
from crashed.serving.model_state import LoadedModel, ModelState
from crashed.serving.openapi import build_openapi
from crashed.serving.predictor import BatchFeatureError, Prediction
from crashed.settings import Settings, load_settings

log = logging.getLogger(__name__)

FEATURES = frozenset(RAW_FEATURES)
ROUTES = frozenset({"/predict", "/healthz", "/readyz", "/model", "/metrics", "/openapi.json"})
_T0 = "crashed.t0"
FAST_PATH_ENV = "CRASHED_SERVING_FAST_PATH"
_FEATURE_LIST = ", ".join(RAW_FEATURES)


class ApiError(Exception):
    """A client error answered as ``{"error", "field"[, "index", "allowed"]}``."""

    def __init__(
        self,
        status: int,
        message: str,
        field: str | None = None,
        *,
        index: int | None = None,
        allowed: list[str] | None = None,
        extra: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.index = index
        self.allowed = allowed
        self.extra = extra or {}
        self.headers = headers

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.message, "field": self.field}
        if self.index is not None:
            out["index"] = self.index
        if self.allowed is not None:
            out["allowed"] = self.allowed
        out.update(self.extra)
        return out


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """Compact JSON (no key sorting: cheaper than ``jsonify``)."""
    text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    return Response(text, status=status, mimetype="application/json", headers=headers)


def create_app(
    settings: Settings | None = None,
    state: ModelState | None = None,
    *,
    fast_path: bool | None = None,
) -> Flask:
    """The app. Without ``state`` one is built from ``settings`` (default: the environment)
    and loaded now; a failed load leaves the app alive but not ready. ``fast_path`` (default:
    ``CRASHED_SERVING_FAST_PATH``, on) puts :class:`FastPredict` in front of Flask."""
    ensure_app_logging()
    if state is None:
        state = ModelState.from_settings(settings or load_settings())
        state.load()
    app = Flask("crashed.serving")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    metrics = ServingMetrics(multiprocess_dir())
    metrics.set_ready(state.ready)
    app.extensions["crashed"] = {"state": state, "metrics": metrics}
    openapi_cache: list[tuple[LoadedModel | None, dict[str, Any]]] = []

    # ---- instrumentation and limits -------------------------------------------------------
    @app.before_request
    def _start() -> Response | None:
        request.environ[_T0] = time.perf_counter()
        if len(request.environ.get("QUERY_STRING", "")) > MAX_QUERY_BYTES:
            raise ApiError(413, f"query string longer than {MAX_QUERY_BYTES} bytes", "query")
        return None

    @app.after_request
    def _record(response: Response) -> Response:
        started = request.environ.get(_T0)
        if started is not None:
            path = request.path
            metrics.observe_request(
                path if path in ROUTES else "unmatched",
                request.method,
                response.status_code,
                time.perf_counter() - started,
            )
        return response

    # ---- errors ----------------------------------------------------------------------------
    @app.errorhandler(ApiError)
    def _api_error(error: ApiError) -> Response:
        return json_response(error.body(), error.status, error.headers)

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Response:
        response = error.get_response()
        code = error.code or 500
        message = error.description or error.name
        field = None
        if code == 405:
            allowed = response.headers.get("Allow", "")
            message = f"method {request.method} is not allowed on {request.path}; use {allowed}"
        elif code == 413:
            message = f"request body larger than {MAX_BODY_BYTES} bytes"
            field = "body"
        elif code == 404:
            message = f"no such endpoint {request.path}; see /openapi.json"
        out = json_response({"error": message, "field": field}, code)
        for name, value in response.headers.items():
            if name.lower() not in ("content-type", "content-length"):
                out.headers[name] = value
        return out

    @app.errorhandler(Exception)
    def _bug(error: Exception) -> Response:
        log.exception("internal error on %s %s", request.method, request.path)
        return json_response({"error": "internal server error (logged)", "field": None}, 500)

    # ---- probes and metadata ----------------------------------------------------------------
    @app.get("/healthz")
    def healthz() -> Response:
        return json_response({"status": "alive", "pid": os.getpid()})

    @app.get("/readyz")
    def readyz() -> Response:
        state.retry_if_due()
        metrics.set_ready(state.ready)
        body = state.describe()
        if body["ready"]:
            return json_response(body)
        error = {"error": f"model not ready: {state.reason}", "field": None}
        return json_response(error | body, 503, {"Retry-After": "5"})

    @app.get("/model")
    def model_info() -> Response:
        model = _model_or_503(state, metrics)
        predictor = model.predictor
        encoder = predictor.encoder
        return json_response(
            _finite(
                {
                    "ready": True,
                    "model": model.info,
                    "threshold": predictor.threshold,
                    "loaded_at": model.loaded_at,
                    "reference": model.reference.model_dump(mode="json", exclude_none=True),
                    "metrics": model.metrics,
                    "features": {
                        f: {
                            "default": encoder.defaults.get(f),
                            **(
                                {"allowed": list(encoder.vocabularies[f])}
                                if f in encoder.vocabularies
                                else {}
                            ),
                        }
                        for f in encoder.features
                    },
                }
            )
        )

    @app.get("/metrics")
    def prometheus() -> Response:
        metrics.set_ready(state.ready)
        return Response(metrics.render(), mimetype=None, content_type=CONTENT_TYPE)

    @app.get("/openapi.json")
    def openapi() -> Response:
        model = state.model
        if not openapi_cache or openapi_cache[0][0] is not model:
            document = build_openapi(
                model.predictor.encoder if model else None, model.info if model else None
            )
            openapi_cache[:] = [(model, document)]
        return json_response(openapi_cache[0][1])

    # ---- prediction ---------------------------------------------------------------------------
    @app.route("/predict", methods=["GET", "POST"])
    def predict() -> Response:
        model = _model_or_503(state, metrics)
        if request.method == "POST":
            return _predict_batch(model, metrics, request)
        params = _query_params(request.environ.get("QUERY_STRING", ""))
        try:
            result = model.predictor.predict_one(params)
        except FeatureError as error:
            raise _feature_error(model, error.field, error.message) from None
        metrics.observe_prediction(result.probability)
        return Response(_prediction_json(model, result), mimetype="application/json")

    if fast_path is None:
        fast_path = os.environ.get(FAST_PATH_ENV, "1").strip().lower() not in ("0", "false", "no")
    if fast_path:
        app.wsgi_app = FastPredict(app.wsgi_app, state, metrics)  # type: ignore[method-assign]
    return app


class FastPredict:
    """WSGI fast path for the hot request, a valid ``GET /predict`` on a ready model.

    It answers without Flask's request machinery (context, routing, hooks, response object),
    with the same parsing, prediction, JSON and metrics as the Flask view. Everything else —
    other routes and methods, and any request it would not answer 200 (bad input, not
    ready, too long, a bug) — goes to the Flask app unchanged, so every error response comes
    from one place. ``CRASHED_SERVING_FAST_PATH=0`` turns it off.
    """

    def __init__(self, app: Any, state: ModelState, metrics: ServingMetrics) -> None:
        self.app = app
        self.state = state
        self.metrics = metrics

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO") != "/predict" or environ.get("REQUEST_METHOD") != "GET":
            return self.app(environ, start_response)
        started = time.perf_counter()
        model = self.state.model
        query = environ.get("QUERY_STRING", "")
        if model is None or len(query) > MAX_QUERY_BYTES:
            return self.app(environ, start_response)
        try:
            result = model.predictor.predict_one(_query_params(query))
            body = _prediction_json(model, result).encode()
        except Exception:  # noqa: BLE001 - Flask answers (and logs) it the one true way
            return self.app(environ, start_response)
        start_response(
            "200 OK",
            [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
        )
        self.metrics.observe_prediction(result.probability)
        self.metrics.observe_request("/predict", "GET", 200, time.perf_counter() - started)
        return [body]


def _prediction_json(model: LoadedModel, result: Prediction) -> str:
    """The ``GET /predict`` body; the model's constant parts are serialised once per model."""
    features = json.dumps(result.features, separators=(",", ":"), ensure_ascii=False)
    return (
        f'{{"prediction":{result.prediction},'
        f'"probability":{round(result.probability, 6)!r},'
        f'"threshold":{model.threshold_json},'
        f'"features":{features},'
        f'"model":{model.info_json}}}'
    )


def _model_or_503(state: ModelState, metrics: ServingMetrics) -> LoadedModel:
    model = state.model
    if model is None:
        if state.retry_if_due():
            metrics.set_ready(True)
            model = state.model
        if model is None:
            raise ApiError(
                503,
                f"model not ready: {state.reason}",
                extra={"ready": False, "reason": state.reason},
                headers={"Retry-After": "5"},
            )
    return model


def _query_params(query: str) -> dict[str, str]:
    """Parse a raw WSGI ``QUERY_STRING``: one value per known feature, else :class:`ApiError`.

    Hand-rolled (``&``-separated, ``+``/``%XX`` decoded as UTF-8) because it is on the hot
    path: several times cheaper than building werkzeug's MultiDict for 20 parameters.
    """
    params: dict[str, str] = {}
    if not query:
        return params
    if not query.isascii():  # WSGI passes the raw bytes as latin-1
        query = query.encode("latin-1", "replace").decode("utf-8", "replace")
    for part in query.split("&"):
        if not part:
            continue
        key, _, value = part.partition("=")
        if "%" in key or "+" in key:
            key = unquote_plus(key, errors="replace")
        if "%" in value or "+" in value:
            value = unquote_plus(value, errors="replace")
        if key not in FEATURES:
            raise ApiError(
                400, f"unknown parameter {key!r}; the features are: {_FEATURE_LIST}", key
            )
        if key in params:
            times = sum(1 for p in query.split("&") if unquote_plus(p.partition("=")[0]) == key)
            raise ApiError(400, f"parameter {key!r} is given {times} times; give it once", key)
        params[key] = value
    return params


def _feature_error(
    model: LoadedModel, field: str, message: str, index: int | None = None
) -> ApiError:
    allowed = None
    if field in CATEGORY_FEATURES:
        allowed = list(model.predictor.encoder.vocabularies.get(field, ()))
    return ApiError(400, f"{field}: {message}", field, index=index, allowed=allowed)


def _predict_batch(model: LoadedModel, metrics: ServingMetrics, req: Request) -> Response:
    instances = _parse_instances(_read_body(req))
    try:
        scored = model.predictor.predict_many(instances)
    except BatchFeatureError as error:
        raise _feature_error(model, error.field, error.message, error.index) from None
    for probability, _ in scored:
        metrics.observe_prediction(probability)
    return json_response(
        {
            "predictions": [
                {"prediction": prediction, "probability": round(probability, 6)}
                for probability, prediction in scored
            ],
            "threshold": model.predictor.threshold,
            "model": model.info,
        }
    )


def _read_body(req: Request) -> bytes:
    """The request body, at most ``MAX_BODY_BYTES`` (413 beyond), also when it is chunked.

    (werkzeug's own limit silently truncates a chunked body at the maximum.)
    """
    environ = req.environ
    length = req.content_length
    if length is not None and length > MAX_BODY_BYTES:
        raise ApiError(413, f"request body larger than {MAX_BODY_BYTES} bytes", "body")
    if length is None and not environ.get("wsgi.input_terminated"):
        return b""  # no length and no end marker: nothing can be read safely
    stream = environ["wsgi.input"]
    wanted = MAX_BODY_BYTES + 1 if length is None else length
    chunks: list[bytes] = []
    size = 0
    while size < wanted:
        chunk = stream.read(min(wanted - size, 1 << 16))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > MAX_BODY_BYTES:
        raise ApiError(413, f"request body larger than {MAX_BODY_BYTES} bytes", "body")
    return b"".join(chunks)


def _parse_instances(raw: bytes) -> list[dict[str, str]]:
    """``{"instances": [{feature: value}, …]}`` → request-style string parameters."""
    try:
        body = json.loads(raw, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except _DuplicateKey as error:
        raise ApiError(400, f"key {error.key!r} appears twice in one object", error.key) from None
    except (ValueError, RecursionError) as error:
        detail = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
        raise ApiError(400, f"malformed JSON body: {detail}", "body") from None
    if not isinstance(body, dict):
        raise ApiError(400, 'expected a JSON object like {"instances": [{…}, …]}', "body")
    extra = [k for k in body if k != "instances"]
    if extra:
        raise ApiError(400, f'unknown key {extra[0]!r}; the body has only "instances"', extra[0])
    instances = body.get("instances")
    if not isinstance(instances, list) or not instances:
        raise ApiError(400, '"instances" must be a non-empty list of objects', "instances")
    if len(instances) > MAX_BATCH:
        raise ApiError(
            413, f"{len(instances)} instances; at most {MAX_BATCH} per request", "instances"
        )
    return [_instance_params(index, instance) for index, instance in enumerate(instances)]


def _instance_params(index: int, instance: object) -> dict[str, str]:
    if not isinstance(instance, dict):
        raise ApiError(
            400,
            f"instances[{index}] must be an object of feature: value, got {_json_type(instance)}",
            "instances",
            index=index,
        )
    params: dict[str, str] = {}
    for key, value in instance.items():
        if key not in FEATURES:
            raise ApiError(
                400, f"unknown feature {key!r}; the features are: {_FEATURE_LIST}", key, index=index
            )
        if isinstance(value, str):
            params[key] = value
        elif value is None:
            params[key] = ""
        elif isinstance(value, bool) or not isinstance(value, int | float):
            raise ApiError(
                400,
                f"{key}: expected a string, a number or null, got {_json_type(value)}",
                key,
                index=index,
            )
        elif isinstance(value, float) and value.is_integer():
            params[key] = str(int(value))
        else:
            params[key] = str(value)
    return params


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def _json_type(value: object) -> str:
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


def _finite(value: Any) -> Any:
    """Replace NaN/inf floats (invalid JSON) with null, recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
