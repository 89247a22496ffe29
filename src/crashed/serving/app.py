"""The inference HTTP API (Flask app factory).

``create_app(settings, lake)`` builds the model state over the lake it is handed and loads it
right away. Under gunicorn the factory (``crashed.cli.inference:serving_app``, the composition
root) runs in each worker after the fork (never ``--preload``), so every worker verifies and
loads its own booster before it accepts a connection. With settings and a lake it also starts
the worker's prediction log (:mod:`crashed.serving.prediction_log`, unless
``CRASHED_PREDICTION_LOG=0``), writing into that same lake.

``/predict`` is answered by :class:`~crashed.serving.predict.PredictEndpoint` in front of Flask;
Flask serves ``/healthz``, ``/readyz``, ``/model``, ``/metrics`` and ``/openapi.json``.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any

from flask import Flask, Response, request

from crashed.ports import Lake
from crashed.serving.errors import ApiError, install_error_handlers, json_response
from crashed.serving.limits import MAX_BODY_BYTES, MAX_QUERY_BYTES
from crashed.serving.logs import ensure_app_logging
from crashed.serving.metrics import CONTENT_TYPE, ServingMetrics, multiprocess_dir
from crashed.serving.model_state import LoadedModel, ModelState
from crashed.serving.openapi import build_openapi
from crashed.serving.predict import ROUTE, PredictEndpoint, ready_model
from crashed.serving.prediction_log import PredictionLog
from crashed.settings import Settings

ROUTES = frozenset({ROUTE, "/healthz", "/readyz", "/model", "/metrics", "/openapi.json"})
_T0 = "crashed.t0"


def create_app(
    settings: Settings | None = None,
    lake: Lake | None = None,
    *,
    state: ModelState | None = None,
    lake_problem: str | None = None,
) -> Flask:
    """The app over ``state``, or over a state built from ``settings`` reading artifacts
    through ``lake`` and loaded now (a failed load leaves the app alive but not ready;
    ``lake_problem`` says why there is no lake)."""
    ensure_app_logging()
    if state is None:
        if settings is None:
            raise TypeError("create_app needs settings (and a lake) or a model state")
        state = ModelState.from_settings(settings, lake, lake_problem=lake_problem)
        state.load()
    app = Flask("crashed.serving")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    metrics = ServingMetrics(multiprocess_dir())
    metrics.set_ready(state.ready)
    app.extensions["crashed"] = {"state": state, "metrics": metrics}
    install_error_handlers(app)
    openapi_cache: list[tuple[LoadedModel | None, dict[str, Any]]] = []

    @app.before_request
    def _start() -> None:
        request.environ[_T0] = time.perf_counter()
        if len(request.environ.get("QUERY_STRING", "")) > MAX_QUERY_BYTES:
            raise ApiError(413, f"query string longer than {MAX_QUERY_BYTES} bytes", "query")

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
        error = {"error": f"model not ready: {body['reason']}", "field": None}
        return json_response(error | body, 503, {"Retry-After": "5"})

    @app.get("/model")
    def model_info() -> Response:
        model = ready_model(state, metrics)
        encoder = model.predictor.encoder
        features = {
            f: {"default": encoder.defaults.get(f)}
            | ({"allowed": list(encoder.vocabularies[f])} if f in encoder.vocabularies else {})
            for f in encoder.features
        }
        body = {
            "ready": True,
            "model": model.info,
            "threshold": model.predictor.threshold,
            "loaded_at": model.loaded_at,
            "reference": model.reference.model_dump(mode="json", exclude_none=True),
            "metrics": model.metrics,
            "features": features,
        }
        return json_response(_finite(body))

    @app.get("/metrics")
    def prometheus() -> Response:
        metrics.set_ready(state.ready)
        return Response(metrics.render(), mimetype=None, content_type=CONTENT_TYPE)

    @app.get("/openapi.json")
    def openapi() -> Response:
        model = state.model
        if not openapi_cache or openapi_cache[0][0] is not model:
            encoder = model.predictor.encoder if model else None
            openapi_cache[:] = [(model, build_openapi(encoder, model.info if model else None))]
        return json_response(openapi_cache[0][1])

    prediction_log = None
    if settings is not None and lake is not None:
        prediction_log = PredictionLog.from_settings(settings, lake, metrics)
    app.extensions["crashed"]["prediction_log"] = prediction_log
    app.wsgi_app = PredictEndpoint(app.wsgi_app, state, metrics, prediction_log)  # type: ignore[method-assign]
    return app


def _finite(value: Any) -> Any:
    """Replace NaN/inf floats (invalid JSON) with null, recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
