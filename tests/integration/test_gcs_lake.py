"""What only the Cloud Storage lake does: buckets, integrity checks, service failures.

The shared behaviour is in ``test_lake_contract.py``.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from google.api_core.retry import Retry
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage
from tests.servers.procs import free_port

from crashed.adapters import gcs_lake as gcs_lake_module
from crashed.adapters.gcs_lake import EMULATOR_ENV, GCSLake
from crashed.errors import ConfigError, NotFoundError, ServiceError


def client_for(endpoint: str) -> storage.Client:
    return storage.Client(
        project="crashed-test",
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": endpoint},
    )


# -- buckets ----------------------------------------------------------------------------------


def test_put_to_a_missing_bucket_fails_without_create_buckets(gcs_lake: GCSLake) -> None:
    uri = "gs://crashed-absent-bucket/x/y.bin"

    with pytest.raises(NotFoundError) as caught:
        gcs_lake.put_bytes(uri, b"data")

    assert "crashed-absent-bucket" in caught.value.message
    assert uri in caught.value.message
    assert not gcs_lake.exists(uri)


def test_put_to_a_missing_bucket_creates_it_with_create_buckets(
    gcs_env: str, tmp_path: Path
) -> None:
    lake = GCSLake("crashed-test", create_buckets=True, retry=None)
    uri = "gs://crashed-made-on-demand/x/y.bin"

    info = lake.put_bytes(uri, b"data")
    again = lake.put_file("gs://crashed-made-on-demand/z.bin", _write(b"more", tmp_path))

    assert info.md5 == hashlib.md5(b"data").hexdigest()
    assert again.bytes == 4
    assert lake.list("gs://crashed-made-on-demand/") == [
        "gs://crashed-made-on-demand/x/y.bin",
        "gs://crashed-made-on-demand/z.bin",
    ]


def test_create_buckets_defaults_to_true_only_against_an_emulator(
    gcs_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert GCSLake("crashed-test").create_buckets is True
    assert GCSLake("crashed-test", create_buckets=False).create_buckets is False

    monkeypatch.delenv(EMULATOR_ENV)
    assert GCSLake("crashed-test", client=client_for(gcs_env)).create_buckets is False


def test_emulator_client_is_anonymous_and_uses_the_emulator(gcs_env: str) -> None:
    lake = GCSLake("crashed-test")
    assert isinstance(lake.client._credentials, AnonymousCredentials)
    assert lake.endpoint == gcs_env


# -- integrity --------------------------------------------------------------------------------


def test_large_upload_uses_a_resumable_session_and_round_trips(
    gcs_lake: GCSLake, gcs_bucket: str, tmp_path: Path
) -> None:
    data = bytes(range(256)) * (36 * 1024 + 7)  # ~9 MiB: above the single-request limit
    uri = f"gs://{gcs_bucket}/big/blob.bin"

    info = gcs_lake.put_bytes(uri, data)
    from_file = gcs_lake.put_file(f"gs://{gcs_bucket}/big/file.bin", _write(data, tmp_path))

    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert from_file == gcs_lake.checksum(f"gs://{gcs_bucket}/big/file.bin")
    assert gcs_lake.checksum(uri) == info
    assert gcs_lake.get_file(uri, tmp_path / "out.bin").read_bytes() == data


def test_a_stored_md5_that_disagrees_is_a_service_error(
    gcs_lake: GCSLake, gcs_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def wrong_digest(data: bytes) -> tuple[str, str, int]:
        return "0" * 64, "0" * 32, len(data)

    monkeypatch.setattr(gcs_lake_module, "bytes_digest", wrong_digest)
    uri = f"gs://{gcs_bucket}/x.bin"

    with pytest.raises(ServiceError, match="md5"):
        gcs_lake.put_bytes(uri, b"content")


# -- service failures -------------------------------------------------------------------------

CALLS: dict[str, Callable[[GCSLake, str, Path], object]] = {
    "put_bytes": lambda lake, uri, tmp: lake.put_bytes(uri, b"x"),
    "put_file": lambda lake, uri, tmp: lake.put_file(uri, _write(b"x", tmp)),
    "get_bytes": lambda lake, uri, tmp: lake.get_bytes(uri),
    "get_file": lambda lake, uri, tmp: lake.get_file(uri, tmp / "out" / "x.bin"),
    "exists": lambda lake, uri, tmp: lake.exists(uri),
    "list": lambda lake, uri, tmp: lake.list(uri),
    "checksum": lambda lake, uri, tmp: lake.checksum(uri),
}


@pytest.fixture
def no_emulator_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(EMULATOR_ENV, raising=False)


@pytest.mark.usefixtures("no_emulator_env")
@pytest.mark.parametrize("call", CALLS, ids=list(CALLS))
def test_unreachable_endpoint_is_a_one_line_service_error(call: str, tmp_path: Path) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    lake = GCSLake("crashed-test", client=client_for(endpoint), retry=None, timeout=5)
    uri = "gs://crashed-test/a/b.bin"

    with pytest.raises(ServiceError) as caught:
        CALLS[call](lake, uri, tmp_path)

    message = caught.value.message
    assert uri in message
    assert endpoint in message
    assert "\n" not in message
    assert not (tmp_path / "out" / "x.bin").exists()


@pytest.mark.usefixtures("no_emulator_env")
def test_unreachable_endpoint_after_retries_is_a_service_error() -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    retry = Retry(initial=0.05, maximum=0.1, timeout=0.5)
    lake = GCSLake("crashed-test", client=client_for(endpoint), retry=retry, timeout=5)

    with pytest.raises(ServiceError, match="gave up retrying") as caught:
        lake.get_bytes("gs://crashed-test/a.bin")

    assert endpoint in caught.value.message
    assert "\n" not in caught.value.message


class _Unavailable(BaseHTTPRequestHandler):
    def _fail(self) -> None:
        body = b'{"error": {"code": 503, "message": "backend unavailable"}}'
        self.send_response(503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = _fail

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def unavailable_endpoint() -> Iterator[str]:
    """A server that answers every request with 503."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Unavailable)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.usefixtures("no_emulator_env")
@pytest.mark.parametrize("call", CALLS, ids=list(CALLS))
def test_5xx_is_a_one_line_service_error(
    unavailable_endpoint: str, call: str, tmp_path: Path
) -> None:
    lake = GCSLake("crashed-test", client=client_for(unavailable_endpoint), retry=None)
    uri = "gs://crashed-test/a/b.bin"

    with pytest.raises(ServiceError) as caught:
        CALLS[call](lake, uri, tmp_path)

    message = caught.value.message
    assert "503" in message
    assert uri in message
    assert unavailable_endpoint in message
    assert "\n" not in message
    assert not (tmp_path / "out" / "x.bin").exists()


def test_missing_credentials_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(EMULATOR_ENV, raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "no-such-key.json"))

    with pytest.raises(ConfigError, match="credentials"):
        GCSLake("crashed-test")


def _write(data: bytes, folder: Path) -> Path:
    path = folder / f"upload-{hashlib.md5(data).hexdigest()[:8]}.bin"
    path.write_bytes(data)
    return path
