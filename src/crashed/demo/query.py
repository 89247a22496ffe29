"""The example crash the demo asks the served model about."""

from __future__ import annotations

import urllib.parse

from crashed.demo.server import get_json

#: A Saturday-night single-vehicle crash with a young male driver: a high-risk example.
QUERY = (
    "accident_time=02:30&day_of_week=Saturday&males=1&females=0"
    "&accident_type=Collision%20with%20a%20fixed%20object&young_driver=1"
)


def dark_value(base: str) -> str | None:
    """A dark light condition the served model knows (real data says Dark, the full schema
    Dark No street lights …), read from the server's OpenAPI document."""
    try:
        _, spec = get_json(f"{base}/openapi.json")
        parameters = spec["paths"]["/predict"]["get"]["parameters"]
        allowed = next(
            p["schema"].get("enum", []) for p in parameters if p["name"] == "light_condition"
        )
    except (OSError, ValueError, KeyError, StopIteration):
        return None
    return next((value for value in allowed if value.startswith("Dark")), None)


def predict_url(base: str, dark: str | None) -> str:
    """``/predict`` for :data:`QUERY`, at night when the model knows a dark light value."""
    query = QUERY + ("&light_condition=" + urllib.parse.quote(dark) if dark else "")
    return f"{base}/predict?{query}"
