"""Every HTTP error of the real gunicorn server is JSON, clipped, and free of server paths.

gunicorn answers some requests before the app sees them (request line over 8190 bytes, a header
over 8190 bytes, more than 100 headers, a malformed request line): its HTML answer is replaced
by the app's JSON shape (``gunicorn_conf.json_write_error``). Also: 415 for a non-JSON POST,
client values clipped to 200 characters, no file path in a 503, and slow clients cut off.
"""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import requests
from tests.integration.test_gunicorn_server import NIGHT, start_prod
from tests.servers.procs import Server

if TYPE_CHECKING:
    from tests.serving_fixtures import Served, TrainedModel

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc"),
]
READ_SECONDS = 3  # CRASHED_REQUEST_READ_SECONDS of this module's server (default 10)


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory,
    small_model: TrainedModel,
    serve_model: Callable[..., Served],
) -> Iterator[Server]:
    served = serve_model(tmp_path_factory.mktemp("errors") / "home", small_model, "run-a")
    extra = {"CRASHED_REQUEST_READ_SECONDS": str(READ_SECONDS)}
    server = start_prod(served, served.home / "server.log", extra)
    yield server
    server.stop()


def raw(server: Server, data: bytes, timeout: float = 30.0) -> tuple[int, dict[str, str], bytes]:
    """Send ``data`` on a fresh connection; (status, headers, body) of the answer."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        sock.sendall(data)
        received = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
            head, sep, body = received.partition(b"\r\n\r\n")
            if sep:
                lines = head.decode("latin1").split("\r\n")
                headers = dict(line.split(": ", 1) for line in lines[1:])
                if len(body) >= int(headers.get("Content-Length", "0")):
                    break
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode("latin1").split("\r\n")
    headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def longest_run(text: str, char: str = "Z") -> int:
    return max((len(m) for m in re.findall(f"{char}+", text)), default=0)


@pytest.mark.parametrize(
    ("request_bytes", "status", "field"),
    [
        (
            b"GET /predict?males=" + b"1" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
            414,
            "request_line",
        ),
        (
            b"GET /predict HTTP/1.1\r\nHost: x\r\nX-Big: " + b"Z" * 9000 + b"\r\n\r\n",
            431,
            "headers",
        ),
        (
            b"GET /predict HTTP/1.1\r\nHost: x\r\n"
            + b"".join(b"X-H%d: 1\r\n" % i for i in range(150))
            + b"\r\n",
            431,
            "headers",
        ),
        (b"Z" * 300 + b"\r\n\r\n", 400, None),
    ],
    ids=["request-line-414", "header-431", "too-many-headers-431", "malformed-400"],
)
def test_gunicorn_errors_are_json(
    server: Server, request_bytes: bytes, status: int, field: str | None
) -> None:
    got, headers, body = raw(server, request_bytes)
    assert got == status
    assert headers["content-type"] == "application/json"
    document = json.loads(body)
    assert set(document) == {"error", "field"} and document["field"] == field
    assert longest_run(document["error"]) <= 200
    assert requests.get(server.url + NIGHT, timeout=10).status_code == 200  # server unharmed


def test_non_json_post_is_415(server: Server) -> None:
    response = requests.post(
        f"{server.url}/predict",
        data="males=2",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=10,
    )
    assert response.status_code == 415
    assert response.headers["Content-Type"] == "application/json"
    assert response.json()["field"] == "content-type"
    ok = requests.post(
        f"{server.url}/predict",
        data=b'{"instances": [{}]}',
        headers={"Content-Type": "application/json; charset=utf-8"},
        timeout=10,
    )
    assert ok.status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/predict?" + "Z" * 3000 + "=1", None),
        ("GET", "/predict?day_of_week=" + "Z" * 3000, None),
        ("GET", "/" + "Z" * 3000, None),
        ("POST", "/predict", {"instances": [{"Z" * 3000: 1}]}),
        ("POST", "/predict", {"instances": [{"day_of_week": "Z" * 3000}]}),
    ],
    ids=["unknown-parameter", "unseen-category", "unknown-path", "unknown-feature", "batch-value"],
)
def test_error_bodies_echo_at_most_200_characters_of_a_value(
    server: Server, method: str, path: str, body: object
) -> None:
    response = requests.request(method, server.url + path, json=body, timeout=10)
    assert 400 <= response.status_code < 500
    document = response.json()
    assert longest_run(response.text) in range(1, 201), document
    assert document["field"] is None or len(document["field"]) <= 201


def test_503_shows_no_server_path(
    tmp_path: Path, small_model: TrainedModel, serve_model: Callable[..., Served]
) -> None:
    """A worker without a model: the reason reaches clients without paths; the log keeps them."""
    from crashed.serving.app import create_app

    served = serve_model(tmp_path / "home", small_model, "run-a")
    served.lake.path_for(served.reference.artifacts.model.uri).unlink()
    app = create_app(served.settings, served.lake)
    client = app.test_client()
    for path in ("/predict", "/readyz"):
        response = client.get(path)
        assert response.status_code == 503
        text = response.get_data(as_text=True)
        assert str(tmp_path) not in text and "/tmp" not in text, text
        assert "model.ubj" in response.get_json()["reason"]


def test_a_slow_client_is_cut_off_while_others_are_served(server: Server) -> None:
    """Headers sent one byte per second hold a request thread for at most READ_SECONDS (then
    a JSON 408 and the connection closes); twelve of them (more than the 2 × 4 request threads)
    do not stop other clients from being served."""
    request = b"GET /predict HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"z" * 600
    sockets = []
    for _ in range(12):  # more than the 2 × 4 request threads
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        sock.sendall(request[:1])
        sockets.append(sock)
    started = time.monotonic()
    served = 0
    cut = 0
    try:
        for index in range(1, 60):
            for sock in list(sockets):
                try:
                    sock.sendall(request[index : index + 1])
                except OSError:
                    sockets.remove(sock)
                    cut += 1
            if requests.get(server.url + NIGHT, timeout=30).status_code == 200:
                served += 1
            if not sockets:
                break
            time.sleep(1.0)
    finally:
        for sock in sockets:
            sock.close()
    assert served >= 1
    assert not sockets, f"{len(sockets)} slow clients still connected after 60 s"
    assert cut == 12
    assert time.monotonic() - started < 60
    assert f"request not received within {READ_SECONDS}" in server.log.read_text()
