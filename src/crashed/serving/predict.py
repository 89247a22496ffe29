"""``/predict``: the one request path for predictions (``GET`` one crash, ``POST`` a batch).

:class:`PredictEndpoint` is a small WSGI layer mounted in front of the Flask app (which serves
the probes and metadata); every ``/predict`` request — valid or not, any method — is answered
here and nowhere else: :func:`~crashed.serving.requests.parse_query` /
:func:`~crashed.serving.requests.parse_batch` (the pydantic request models), the model's
predictor, the JSON body, the Prometheus counters, the prediction log. Errors are
:class:`~crashed.serving.errors.ApiError` bodies, exactly as the Flask routes render them.

Why not a Flask view: Flask's per-request machinery (request and app contexts, URL routing,
hooks, a response object) costs about as much as the prediction itself. Measured under the
same gunicorn configuration (``bench/bench_http.py``, docs/serving.md), the same ``respond``
behind a Flask route reached 64–76 % of a trivial Flask endpoint's requests/s, this layer
100 % [94 %, 108 %] (target 90 %).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from time import perf_counter
from time import time as wall_time
from typing import TYPE_CHECKING, Any

from crashed.core.encoder import FeatureError
from crashed.core.features import CATEGORY_FEATURES
from crashed.serving.errors import INTERNAL_ERROR, ApiError, dumps
from crashed.serving.limits import MAX_BODY_BYTES, MAX_QUERY_BYTES
from crashed.serving.metrics import ServingMetrics
from crashed.serving.model_state import LoadedModel, ModelState
from crashed.serving.predictor import BatchFeatureError, Prediction
from crashed.serving.requests import parse_batch, parse_query

if TYPE_CHECKING:
    from crashed.serving.prediction_log import PredictionLog

log = logging.getLogger("crashed.serving.app")

ROUTE = "/predict"
ALLOW = "GET, HEAD, OPTIONS, POST"
_JSON = ("Content-Type", "application/json")
_STATUS = {s.value: f"{s.value} {s.phrase}" for s in HTTPStatus}
StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class PredictEndpoint:
    """WSGI: ``/predict`` answered here, every other path passed on to ``app``."""

    def __init__(
        self,
        app: WsgiApp,
        state: ModelState,
        metrics: ServingMetrics,
        prediction_log: PredictionLog | None = None,
    ) -> None:
        self.app = app
        self.state = state
        self.metrics = metrics
        self.log = prediction_log

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != ROUTE:
            return self.app(environ, start_response)
        started = time.perf_counter()
        method = environ.get("REQUEST_METHOD", "GET")
        status, headers, body = self.respond(method, environ)
        headers.append(("Content-Length", str(len(body))))
        start_response(_STATUS.get(status, str(status)), headers)
        self.metrics.observe_request(ROUTE, method, status, time.perf_counter() - started)
        return [b""] if method == "HEAD" else [body]

    def respond(self, method: str, environ: dict[str, Any]) -> tuple[int, list, bytes]:
        """(status, headers, body) for one ``/predict`` request; never raises."""
        try:
            query = environ.get("QUERY_STRING", "")
            if len(query) > MAX_QUERY_BYTES:
                raise ApiError(413, f"query string longer than {MAX_QUERY_BYTES} bytes", "query")
            if method in ("GET", "HEAD"):
                return 200, [_JSON], self.predict_one(query)
            if method == "POST":
                require_json(environ)
                return 200, [_JSON], self.predict_batch(read_body(environ))
            if method == "OPTIONS":
                return 200, [_JSON, ("Allow", ALLOW)], b""
            raise ApiError(
                405,
                f"method {method} is not allowed on {ROUTE}; use {ALLOW}",
                headers={"Allow": ALLOW},
            )
        except ApiError as error:
            return error.status, [_JSON, *error.headers.items()], dumps(error.body()).encode()
        except Exception:
            log.exception("internal error on %s %s", method, ROUTE)
            return 500, [_JSON], dumps(INTERNAL_ERROR).encode()

    def predict_one(self, query: str) -> bytes:
        model = ready_model(self.state, self.metrics)
        started = perf_counter()
        params = parse_query(query)
        try:
            result = model.predictor.predict_one(params)
        except FeatureError as error:
            raise feature_error(model, error.field, error.message) from None
        if self.log is not None:  # one tuple appended; columns are built by the flusher
            self.log.record(
                (
                    wall_time(),
                    model,
                    params.get("id"),
                    "get",
                    result.values,
                    result.probability,
                    result.prediction,
                    (perf_counter() - started) * 1e6,
                )
            )
        self.metrics.observe_prediction(result.probability)
        return prediction_json(model, result).encode()

    def predict_batch(self, raw: bytes) -> bytes:
        model = ready_model(self.state, self.metrics)
        started = perf_counter()
        instances = parse_batch(raw)
        try:
            scored = model.predictor.predict_many(instances)
        except BatchFeatureError as error:
            raise feature_error(model, error.field, error.message, error.index) from None
        if self.log is not None:
            latency = (perf_counter() - started) * 1e6
            self.log.record_batch(wall_time(), model, instances, scored, latency)
        self.metrics.observe_predictions([probability for probability, _ in scored])
        predictions = [
            {"prediction": prediction, "probability": round(probability, 6)}
            for probability, prediction in scored
        ]
        return (
            f'{{"predictions":{dumps(predictions)},'
            f'"threshold":{model.threshold_json},"model":{model.info_json}}}'
        ).encode()


def prediction_json(model: LoadedModel, result: Prediction) -> str:
    """The ``GET /predict`` body (:class:`~crashed.serving.requests.PredictionResponse`); the
    model's constant parts are serialised once per model."""
    return (
        f'{{"prediction":{result.prediction},'
        f'"probability":{round(result.probability, 6)!r},'
        f'"threshold":{model.threshold_json},'
        f'"features":{result.features_json},'
        f'"model":{model.info_json}}}'
    )


def ready_model(state: ModelState, metrics: ServingMetrics) -> LoadedModel:
    """The served model, or a 503 :class:`ApiError` saying why there is none."""
    model = state.model
    if model is None:
        if state.retry_if_due():
            metrics.set_ready(True)
            model = state.model
        if model is None:
            reason = state.public_reason  # no server paths to clients; the log has them
            raise ApiError(
                503,
                f"model not ready: {reason}",
                extra={"ready": False, "reason": reason},
                headers={"Retry-After": "5"},
            )
    return model


def feature_error(
    model: LoadedModel, field: str, message: str, index: int | None = None
) -> ApiError:
    """A value the model cannot encode; an unseen category lists the allowed values."""
    allowed = None
    if field in CATEGORY_FEATURES:
        allowed = list(model.predictor.encoder.vocabularies.get(field, ()))
    return ApiError(400, f"{field}: {message}", field, index=index, allowed=allowed)


def require_json(environ: dict[str, Any]) -> None:
    """415 unless the body is declared JSON (``application/json`` or ``…+json``; a request
    without ``Content-Type`` is read as JSON)."""
    declared = environ.get("CONTENT_TYPE", "")
    media = declared.split(";", 1)[0].strip().lower()
    if media and media != "application/json" and not media.endswith("+json"):
        raise ApiError(
            415,
            f"POST /predict takes a JSON body (Content-Type: application/json), got {media!r}",
            "content-type",
            headers={"Accept-Post": "application/json"},
        )


def read_body(environ: dict[str, Any]) -> bytes:
    """The request body, at most ``MAX_BODY_BYTES`` (413 beyond), also when it is chunked."""
    raw_length = (environ.get("CONTENT_LENGTH") or "").strip()
    length = int(raw_length) if raw_length.isdigit() else None
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
