"""JSON logs through python-json-logger: app records, gunicorn access records, no secrets."""

from __future__ import annotations

import io
import json
import logging
import logging.config
from datetime import timedelta
from types import SimpleNamespace

from gunicorn.glogging import Logger

from crashed.serving.logs import ACCESS_FORMAT, AccessFormatter, LogFormatter, gunicorn_logconfig

SECRET = "Bearer s3cr3t-token"


def record(message: str, *args: object, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            import sys

            exc_info = sys.exc_info()
    return logging.LogRecord("crashed.x", logging.ERROR, __file__, 1, message, args, exc_info)


def test_app_record_is_one_json_object() -> None:
    line = LogFormatter().format(record("model not ready: %s", "no such file", exc=True))
    assert "\n" not in line
    data = json.loads(line)
    assert data["level"] == "ERROR"
    assert data["logger"] == "crashed.x"
    assert data["message"] == "model not ready: no such file"
    assert isinstance(data["pid"], int)
    assert data["ts"].endswith("Z")
    assert "RuntimeError: boom" in data["exc"]


def gunicorn_access_line(headers: list[tuple[str, str]], environ: dict[str, str]) -> dict:
    """What gunicorn's own Logger.access writes through our access formatter."""
    cfg = SimpleNamespace(access_log_format=ACCESS_FORMAT)
    logger = Logger.__new__(Logger)
    logger.cfg = cfg
    logger._access_log_enabled = True
    logger.access_log = logging.getLogger("test.gunicorn.access")
    logger.access_log.propagate = False
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(AccessFormatter())
    logger.access_log.handlers = [handler]
    logger.access_log.setLevel(logging.INFO)
    resp = SimpleNamespace(status="200 OK", sent=123, headers=[("Set-Cookie", "session=abc")])
    req = SimpleNamespace(headers=headers)
    logger.access(resp, req, environ, timedelta(microseconds=2500))
    return json.loads(stream.getvalue())


def test_access_record_has_named_fields_and_no_headers() -> None:
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": "/predict?males=2",
        "PATH_INFO": "/predict",
        "QUERY_STRING": "males=2&" + "x" * 1000,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_AUTHORIZATION": SECRET,
        "HTTP_USER_AGENT": "bench",
    }
    data = gunicorn_access_line([("AUTHORIZATION", SECRET), ("COOKIE", "session=abc")], environ)
    assert data["type"] == "access"
    assert (data["method"], data["path"], data["status"]) == ("GET", "/predict", 200)
    assert data["bytes"] == 123
    assert data["duration_ms"] == 2.5
    assert data["remote"] == "127.0.0.1"
    assert data["user_agent"] == "bench"
    assert len(data["query"]) == 512
    assert data["message"] == "GET /predict 200"
    text = json.dumps(data)
    assert "s3cr3t" not in text and "session=abc" not in text


def test_gunicorn_logconfig_is_a_valid_dict_config() -> None:
    root = logging.getLogger()
    names = ("gunicorn.access", "gunicorn.error")
    saved = [(root, root.level, root.handlers[:], root.propagate)] + [
        (lg, lg.level, lg.handlers[:], lg.propagate) for lg in map(logging.getLogger, names)
    ]
    try:
        config = gunicorn_logconfig("WARNING")
        root_config = {"level": logging.getLevelName(root.level), "handlers": []}
        logging.config.dictConfig(config | {"root": root_config})
        access = logging.getLogger("gunicorn.access")
        assert isinstance(access.handlers[0].formatter, AccessFormatter)
        error = logging.getLogger("gunicorn.error")
        assert isinstance(error.handlers[0].formatter, LogFormatter)
        assert error.level == logging.WARNING
    finally:  # leave the process's logging as it was for other tests
        for logger, level, handlers, propagate in saved:
            logger.setLevel(level)
            logger.handlers[:] = handlers
            logger.propagate = propagate
