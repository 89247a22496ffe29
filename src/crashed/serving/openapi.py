"""The OpenAPI 3 description served at ``/openapi.json``.

Written by hand; the feature parameters (defaults, allowed category values) come from the
loaded model's encoder, so the document always matches what ``/predict`` accepts.
"""

from __future__ import annotations

from typing import Any

from crashed import __version__
from crashed.core.encoder import MAX_COUNT, Encoder
from crashed.core.features import CATEGORY_FEATURES, COUNT_FEATURES, TIME_FEATURE
from crashed.serving.limits import MAX_BATCH, MAX_BODY_BYTES, MAX_QUERY_BYTES

_ERROR = {"$ref": "#/components/schemas/Error"}
_NOT_READY = {"$ref": "#/components/schemas/NotReady"}


def _json_response(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def feature_schemas(encoder: Encoder | None) -> dict[str, dict[str, Any]]:
    """JSON schema of each feature's value (with its default and allowed values when known)."""
    schemas: dict[str, dict[str, Any]] = {}
    for feature in COUNT_FEATURES:
        schemas[feature] = {
            "type": "integer",
            "minimum": 0,
            "maximum": MAX_COUNT,
            "description": "count of people/vehicles; empty = unknown",
        }
    schemas[TIME_FEATURE] = {
        "type": "string",
        "pattern": r"^\d{1,2}[.:]\d{2}([.:]\d{2})?$",
        "example": "02:30",
        "description": "time of the crash (only the hour is used); empty = unknown",
    }
    for feature in CATEGORY_FEATURES:
        schemas[feature] = {
            "type": "string",
            "description": "one of the values seen in training (case-insensitive); "
            "any other value is rejected with 400; empty = unknown",
        }
    if encoder is not None:
        for feature, schema in schemas.items():
            default = encoder.defaults.get(feature)
            schema["default"] = default
            if feature in encoder.vocabularies:
                schema["enum"] = list(encoder.vocabularies[feature])
    return schemas


def build_openapi(encoder: Encoder | None, model_info: dict[str, str] | None) -> dict[str, Any]:
    """The whole document; ``encoder`` None (no model loaded) gives the generic parameters."""
    features = feature_schemas(encoder)
    parameters = [
        {"name": name, "in": "query", "required": False, "schema": schema}
        for name, schema in features.items()
    ]
    model_note = (
        f" Served model: {model_info['name']} run {model_info['run_id']}."
        if model_info
        else " No model is loaded right now: allowed values appear once one is."
    )
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "crashed inference",
            "version": __version__,
            "description": "Probability that a Victorian road crash is alcohol-related. "
            "Features a request leaves out take the model's documented defaults "
            "(see the parameter defaults); unseen category values are rejected with 400."
            + model_note,
        },
        "paths": {
            "/predict": {
                "get": {
                    "summary": "Score one crash given as query parameters",
                    "parameters": parameters,
                    "responses": {
                        "200": _json_response(
                            "prediction", {"$ref": "#/components/schemas/Prediction"}
                        ),
                        "400": _json_response(
                            "bad parameter (unknown, repeated, invalid value)", _ERROR
                        ),
                        "413": _json_response(f"query string over {MAX_QUERY_BYTES} B", _ERROR),
                        "503": _json_response("no verified model loaded", _NOT_READY),
                    },
                },
                "post": {
                    "summary": "Score a batch of crashes (one booster call)",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/BatchRequest"}
                            }
                        },
                    },
                    "responses": {
                        "200": _json_response(
                            "predictions, in request order",
                            {"$ref": "#/components/schemas/BatchPrediction"},
                        ),
                        "400": _json_response("malformed JSON or a bad instance", _ERROR),
                        "413": _json_response(
                            f"body over {MAX_BODY_BYTES} B or too many instances", _ERROR
                        ),
                        "503": _json_response("no verified model loaded", _NOT_READY),
                    },
                },
            },
            "/healthz": {
                "get": {
                    "summary": "Liveness: the process answers (200 even without a model)",
                    "responses": {"200": _json_response("alive", {"type": "object"})},
                }
            },
            "/readyz": {
                "get": {
                    "summary": "Readiness: 200 only when a verified model is loaded",
                    "responses": {
                        "200": _json_response("ready", {"type": "object"}),
                        "503": _json_response("not ready, with the reason", _NOT_READY),
                    },
                }
            },
            "/model": {
                "get": {
                    "summary": "The served model's reference (lineage, checksums) and metrics",
                    "responses": {
                        "200": _json_response("model", {"type": "object"}),
                        "503": _json_response("no verified model loaded", _NOT_READY),
                    },
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
                    "responses": {"200": _json_response("OpenAPI 3", {"type": "object"})},
                }
            },
        },
        "components": {"schemas": _component_schemas(features)},
    }


def _component_schemas(features: dict[str, dict[str, Any]]) -> dict[str, Any]:
    model = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "run_id": {"type": "string"},
            "sha256": {"type": "string"},
        },
    }
    scored = {
        "prediction": {"type": "integer", "enum": [0, 1]},
        "probability": {"type": "number", "minimum": 0, "maximum": 1},
    }
    nullable = {
        name: {**{k: v for k, v in schema.items() if k != "default"}, "nullable": True}
        for name, schema in features.items()
    }
    return {
        "Instance": {
            "type": "object",
            "additionalProperties": False,
            "properties": nullable,
        },
        "BatchRequest": {
            "type": "object",
            "required": ["instances"],
            "additionalProperties": False,
            "properties": {
                "instances": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": MAX_BATCH,
                    "items": {"$ref": "#/components/schemas/Instance"},
                }
            },
        },
        "Prediction": {
            "type": "object",
            "properties": {
                **scored,
                "threshold": {"type": "number"},
                "features": {
                    "type": "object",
                    "description": "the values used, defaults filled in (null = unknown)",
                },
                "model": model,
            },
        },
        "BatchPrediction": {
            "type": "object",
            "properties": {
                "predictions": {
                    "type": "array",
                    "items": {"type": "object", "properties": scored},
                },
                "threshold": {"type": "number"},
                "model": model,
            },
        },
        "Error": {
            "type": "object",
            "properties": {
                "error": {"type": "string"},
                "field": {"type": "string", "nullable": True},
                "index": {"type": "integer", "description": "batch instance, when relevant"},
                "allowed": {"type": "array", "items": {"type": "string"}},
            },
        },
        "NotReady": {
            "type": "object",
            "properties": {"ready": {"type": "boolean"}, "reason": {"type": "string"}},
        },
    }
