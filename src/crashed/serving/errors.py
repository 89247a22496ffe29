"""JSON errors of the inference API: one exception type, one body shape, one set of handlers.

Every client mistake is a JSON 4xx ``{"error", "field"[, "index", "allowed"]}`` (see
:class:`~crashed.serving.requests.ErrorResponse`); only genuine bugs are 500, logged with their
traceback and never shown to the client.

No error body echoes more than :data:`SHOWN` characters of one client value: quoted values in
messages (``'…'``, as ``!r`` renders them), the ``field`` and a path are clipped (:func:`clip`).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from crashed.serving.limits import MAX_BODY_BYTES

log = logging.getLogger("crashed.serving.app")

INTERNAL_ERROR = {"error": "internal server error (logged)", "field": None}
SHOWN = 200
"""Most characters of one client value an error body shows."""
_SINGLE = r"'((?:[^'\\\n]|\\.){N})(?:[^'\\\n]|\\.)+'"
_DOUBLE = r'"((?:[^"\\\n]|\\.){N})(?:[^"\\\n]|\\.)+"'
_QUOTED = re.compile((_SINGLE + "|" + _DOUBLE).replace("N", str(SHOWN)))


def clip(text: str, limit: int = SHOWN) -> str:
    """``text`` cut to ``limit`` characters (with an ellipsis), for client values."""
    return text if len(text) <= limit else text[:limit] + "…"


def clip_quoted(message: str) -> str:
    """``message`` with every quoted value longer than :data:`SHOWN` characters clipped."""

    def _cut(match: re.Match[str]) -> str:
        if match.group(1) is not None:
            return f"'{match.group(1)}…'"
        return f'"{match.group(2)}…"'

    return _QUOTED.sub(_cut, message)


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
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        field = None if self.field is None else clip(self.field)
        out: dict[str, Any] = {"error": clip_quoted(self.message), "field": field}
        if self.index is not None:
            out["index"] = self.index
        if self.allowed is not None:
            out["allowed"] = self.allowed
        out.update(self.extra)
        return out


def dumps(body: Any) -> str:
    """Compact JSON (no key sorting: cheaper than ``jsonify``)."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(dumps(body), status=status, mimetype="application/json", headers=headers)


def install_error_handlers(app: Flask) -> None:
    """Answer :class:`ApiError`, werkzeug's HTTP errors and bugs as JSON."""

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
            message = (
                f"method {clip(request.method)} is not allowed on {clip(request.path)}; "
                f"use {allowed}"
            )
        elif code == 413:
            message = f"request body larger than {MAX_BODY_BYTES} bytes"
            field = "body"
        elif code == 404:
            message = f"no such endpoint {clip(request.path)}; see /openapi.json"
        out = json_response({"error": message, "field": field}, code)
        for name, value in response.headers.items():
            if name.lower() not in ("content-type", "content-length"):
                out.headers[name] = value
        return out

    @app.errorhandler(Exception)
    def _bug(error: Exception) -> Response:
        log.exception("internal error on %s %s", request.method, request.path)
        return json_response(INTERNAL_ERROR, 500)
