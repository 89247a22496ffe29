"""Request limits of the inference service (documented in ``/openapi.json`` and the README)."""

from __future__ import annotations

MAX_QUERY_BYTES = 4096
"""Longest ``GET /predict`` query string; longer → 413. (gunicorn's own request-line limit,
8190 bytes, answers a JSON 414 before the app sees anything longer still.)"""
MAX_BODY_BYTES = 2 * 1024 * 1024
"""Largest request body; larger → 413."""
MAX_BATCH = 1000
"""Most instances one ``POST /predict`` may carry; more → 413."""
