"""JSON logs of the inference service through python-json-logger: app, gunicorn error and access.

One object per line: ``{"ts", "level", "logger", "pid", "message"[, "exc"]}`` for every record,
and for each request gunicorn's access record adds ``type: access``, ``remote``, ``method``,
``path``, ``query`` (at most 512 characters), ``status``, ``bytes``, ``duration_ms``,
``user_agent``. The access record is built from named atoms only: gunicorn also hands every
request header (``Authorization``, cookies) and environ variable to the access logger, and none
of those is ever written.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from pythonjsonlogger.json import JsonFormatter

RENAME = {
    "asctime": "ts",
    "levelname": "level",
    "name": "logger",
    "process": "pid",
    "exc_info": "exc",
}
_FIELDS = "{asctime}{levelname}{name}{process}{message}"
ACCESS_FORMAT = "%(m)s %(U)s %(s)s"
"""gunicorn's ``access_log_format``: the short human ``message`` of an access record."""
_ACCESS_ATOMS = {
    "h": "remote",
    "m": "method",
    "U": "path",
    "q": "query",
    "s": "status",
    "B": "bytes",
    "a": "user_agent",
}


class LogFormatter(JsonFormatter):
    """python-json-logger's formatter with our field names and UTC millisecond timestamps."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("fmt", _FIELDS)
        kwargs.setdefault("style", "{")
        kwargs.setdefault("rename_fields", RENAME)
        kwargs.setdefault("json_ensure_ascii", False)
        kwargs.setdefault("json_default", str)
        super().__init__(*args, **kwargs)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        moment = datetime.fromtimestamp(record.created, UTC)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class AccessFormatter(LogFormatter):
    """gunicorn access records: the named atoms as fields (never headers or environ)."""

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        super().add_fields(log_data, record, message_dict)
        atoms = record.args if isinstance(record.args, dict) else {}
        log_data["type"] = "access"
        for atom, name in _ACCESS_ATOMS.items():
            value = atoms.get(atom)
            log_data[name] = None if value in (None, "-", "") else value
        if isinstance(log_data["query"], str):
            log_data["query"] = log_data["query"][:512]
        with contextlib.suppress(TypeError, ValueError):
            log_data["status"] = int(log_data["status"])
        micros = atoms.get("D")
        log_data["duration_ms"] = round(micros / 1000, 3) if isinstance(micros, int) else None


def gunicorn_logconfig(level: str = "INFO") -> dict[str, Any]:
    """gunicorn's ``logconfig_dict``: access on stdout, gunicorn's and the app's log on stderr."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {"()": LogFormatter},
            "access": {"()": AccessFormatter},
        },
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            },
            "access": {
                "class": "logging.StreamHandler",
                "formatter": "access",
                "stream": "ext://sys.stdout",
            },
        },
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            "gunicorn.error": {"level": level, "handlers": ["stderr"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": ["access"], "propagate": False},
        },
    }


def ensure_app_logging(name: str = "crashed") -> None:
    """Give the ``crashed`` loggers a JSON stderr handler when nothing else would show INFO
    lines (gunicorn configures the root through :func:`gunicorn_logconfig`; the CLI configures
    the root itself)."""
    logger = logging.getLogger(name)
    if logger.handlers or logging.getLogger().handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(LogFormatter())
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
