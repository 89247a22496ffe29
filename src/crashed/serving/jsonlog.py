"""One-JSON-object-per-line logs for the inference service (access log and app log)."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime


def timestamp() -> str:
    """UTC ISO-8601 with milliseconds."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "pid", "message"[, "exc"]}`` per record."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "ts": timestamp(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def ensure_app_logging(name: str = "crashed") -> None:
    """Give the ``crashed`` loggers a JSON stderr handler when nothing else would show INFO
    lines (gunicorn workers configure only their own loggers; the CLI configures the root)."""
    logger = logging.getLogger(name)
    if logger.handlers or logging.getLogger().handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
