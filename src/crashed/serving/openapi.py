"""The OpenAPI 3.1 document served at ``/openapi.json``, generated from the request/response
models in :mod:`crashed.serving.requests` (the same models that validate requests).

pydantic's JSON Schema (2020-12) is OpenAPI 3.1's schema dialect, so the models' schemas go
into ``components`` as they are. The loaded model adds what only it knows: each feature's
default and, for categories, the allowed values.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import TypeAdapter

from crashed import __version__
from crashed.core.encoder import Encoder
from crashed.serving.limits import MAX_BATCH, MAX_BODY_BYTES, MAX_QUERY_BYTES
from crashed.serving.requests import (
    RESPONSE_MODELS,
    BatchRequest,
    Instance,
    PredictQuery,
)

_REF = "#/components/schemas/{model}"
_MODELS: tuple[Any, ...] = (PredictQuery, Instance, BatchRequest, *RESPONSE_MODELS)


def _model_schemas() -> dict[str, Any]:
    """Every model's JSON schema by name (nested models hoisted beside them)."""
    inputs = [(m.__name__, "validation", TypeAdapter(m)) for m in _MODELS]
    refs, top = TypeAdapter.json_schemas(inputs, ref_template=_REF)
    schemas: dict[str, Any] = dict(top.get("$defs", {}))
    for (name, _), ref in refs.items():
        if "$ref" in ref:  # the model's own schema is in $defs already
            continue
        schemas.setdefault(name, ref)
    return schemas


_SCHEMAS = _model_schemas()


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF.format(model=name)}


def _json(description: str, name: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(name)}}}


def _object(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"type": "object"}}},
    }


def _with_model(schemas: dict[str, Any], encoder: Encoder | None) -> dict[str, Any]:
    """Feature properties with the served model's defaults and allowed category values."""
    if encoder is None:
        return schemas
    schemas = copy.deepcopy(schemas)
    for name in (PredictQuery.__name__, Instance.__name__):
        for feature, schema in schemas[name]["properties"].items():
            schema["default"] = encoder.defaults.get(feature)
            if feature in encoder.vocabularies:
                schema["anyOf"][0]["enum"] = list(encoder.vocabularies[feature])
    return schemas


def _parameters(schemas: dict[str, Any]) -> list[dict[str, Any]]:
    """``GET /predict``'s query parameters: a property each (its first, non-null form)."""
    out = []
    for name, prop in schemas[PredictQuery.__name__]["properties"].items():
        schema = {**prop["anyOf"][0], "description": prop["description"]}
        default = prop.get("default")
        if schema.get("type") == "integer" and isinstance(default, str) and default.isdigit():
            default = int(default)  # the encoder keeps every default as text
        if default is not None:  # None: left out means unknown
            schema["default"] = default
        out.append({"name": name, "in": "query", "required": False, "schema": schema})
    return out


def build_openapi(encoder: Encoder | None, model_info: dict[str, str] | None) -> dict[str, Any]:
    """The whole document; ``encoder`` None (no model loaded) gives the generic parameters."""
    schemas = _with_model(_SCHEMAS, encoder)
    model_note = (
        f" Served model: {model_info['name']} run {model_info['run_id']}."
        if model_info
        else " No model is loaded right now: defaults and allowed values appear once one is."
    )
    not_ready = _json("no verified model loaded (with the reason)", "NotReadyResponse")
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "crashed inference",
            "version": __version__,
            "description": "Probability that a Victorian road crash is alcohol-related. "
            "Features a request leaves out take the model's documented defaults; unseen "
            "category values are rejected with 400." + model_note,
        },
        "paths": {
            "/predict": {
                "get": {
                    "summary": "Score one crash given as query parameters",
                    "parameters": _parameters(schemas),
                    "responses": {
                        "200": _json("prediction", "PredictionResponse"),
                        "400": _json("unknown, repeated or invalid parameter", "ErrorResponse"),
                        "413": _json(f"query string over {MAX_QUERY_BYTES} B", "ErrorResponse"),
                        "503": not_ready,
                    },
                },
                "post": {
                    "summary": f"Score up to {MAX_BATCH} crashes (one booster call)",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("BatchRequest")}},
                    },
                    "responses": {
                        "200": _json("predictions, in request order", "BatchResponse"),
                        "400": _json("malformed JSON or a bad instance", "ErrorResponse"),
                        "413": _json(
                            f"body over {MAX_BODY_BYTES} B or over {MAX_BATCH} instances",
                            "ErrorResponse",
                        ),
                        "503": not_ready,
                    },
                },
            },
            "/healthz": {
                "get": {
                    "summary": "Liveness: the process answers (200 even without a model)",
                    "responses": {"200": _object("alive")},
                }
            },
            "/readyz": {
                "get": {
                    "summary": "Readiness: 200 only when a verified model is loaded",
                    "responses": {"200": _object("ready"), "503": not_ready},
                }
            },
            "/model": {
                "get": {
                    "summary": "The served model's reference (lineage, checksums), metrics, "
                    "and each feature's default and allowed values",
                    "responses": {"200": _object("model"), "503": not_ready},
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics (request counts, latency, probabilities)",
                    "responses": {
                        "200": {
                            "description": "Prometheus text format",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "This document",
                    "responses": {"200": _object("OpenAPI 3.1")},
                }
            },
        },
        "components": {"schemas": schemas},
    }
