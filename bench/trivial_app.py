"""The HTTP benchmark's baseline: a trivial Flask JSON endpoint (no model, no parsing).

Served by ``bench_http.py`` under exactly the gunicorn settings of ``crashed inference
start-prod`` (same config module), so the ratio isolates what ``/predict`` itself costs.
"""

from __future__ import annotations

from flask import Flask, Response, jsonify


def create_app() -> Flask:
    app = Flask("trivial")

    @app.get("/predict")
    def predict() -> Response:
        return jsonify(prediction=0, probability=0.5)

    @app.get("/readyz")
    def readyz() -> Response:
        return jsonify(ready=True)

    return app
