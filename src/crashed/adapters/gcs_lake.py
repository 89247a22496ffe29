"""The Cloud Storage lake: ``gs://bucket/path`` URIs are GCS objects.

Talks to real GCS, or to an emulator when ``STORAGE_EMULATOR_HOST`` is set (then the client
uses anonymous credentials and the library sends every request to that endpoint).

Integrity: every upload sends the content's MD5 with the request, so the service rejects a
corrupted body, and the MD5 the service reports back is compared with the local one. Uploads up
to 8 MiB are one multipart request; larger ones use a resumable session whose object appears
only when the last chunk is committed, so a reader never sees a partial object either way.
GCS stores no SHA-256, so :meth:`GCSLake.checksum` streams the content and hashes it.

Buckets: ``create_buckets`` decides whether a put to a missing bucket creates it. The default
(``None``) creates buckets only when talking to an emulator (the embedded/test setup, where
buckets start empty). Against real GCS the bucket is infrastructure: a missing one is an error
that names it, instead of a bucket silently created in whatever location the project defaults to.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import requests
from google.api_core import exceptions as api_exceptions
from google.api_core.retry import Retry
from google.auth import exceptions as auth_exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage
from google.cloud.storage import exceptions as storage_exceptions
from google.cloud.storage.retry import DEFAULT_RETRY

from crashed.core.checksums import bytes_digest, file_digest
from crashed.core.lake_uri import parse_uri
from crashed.errors import ConfigError, InputError, NotFoundError, ServiceError
from crashed.fsio import atomic_writer
from crashed.ports import ObjectInfo

EMULATOR_ENV = "STORAGE_EMULATOR_HOST"
_CHECKSUM = "md5"
_OCTET_STREAM = "application/octet-stream"


class GCSLake:
    """A :class:`crashed.ports.Lake` backed by Google Cloud Storage."""

    def __init__(
        self,
        project: str,
        client: storage.Client | None = None,
        *,
        create_buckets: bool | None = None,
        retry: Retry | None = DEFAULT_RETRY,
        timeout: float = 60.0,
    ) -> None:
        """``client`` defaults to one for ``project`` (anonymous against an emulator).

        ``retry`` applies to every call (``None`` disables retries); ``timeout`` is per request.
        """
        emulator = os.environ.get(EMULATOR_ENV)
        if client is None:
            try:
                client = storage.Client(
                    project=project,
                    credentials=AnonymousCredentials() if emulator else None,
                )
            except auth_exceptions.DefaultCredentialsError as error:
                raise ConfigError(
                    f"no Google credentials for Cloud Storage (project {project}): "
                    "run `gcloud auth application-default login` or set "
                    f"GOOGLE_APPLICATION_CREDENTIALS ({_first_line(error)})"
                ) from None
        self.project = project
        self.client = client
        self.create_buckets = bool(emulator) if create_buckets is None else create_buckets
        self.retry = retry
        self.timeout = timeout

    @property
    def endpoint(self) -> str:
        """The Cloud Storage endpoint the client talks to."""
        return str(self.client.api_endpoint)

    # -- Lake -------------------------------------------------------------------------------

    def put_bytes(self, uri: str, data: bytes, content_type: str | None = None) -> ObjectInfo:
        sha256, md5, size = bytes_digest(data)

        def upload(blob: storage.Blob) -> None:
            blob.upload_from_string(
                data,
                content_type=content_type or _OCTET_STREAM,
                checksum=_CHECKSUM,
                retry=self.retry,
                timeout=self.timeout,
            )

        self._upload(uri, md5, upload)
        return ObjectInfo(uri=uri, sha256=sha256, md5=md5, bytes=size)

    def put_file(self, uri: str, path: Path) -> ObjectInfo:
        self._blob(uri)  # reject a malformed URI before reading the file
        path = Path(path)
        try:
            sha256, md5, size = file_digest(path)
        except FileNotFoundError:
            raise InputError(f"file {path} does not exist") from None
        except IsADirectoryError:
            raise InputError(f"{path} is a directory, not a file") from None

        def upload(blob: storage.Blob) -> None:
            # The service checks the MD5 of what was sent; _upload compares it with `md5`,
            # so a file changed between hashing and sending is caught.
            blob.upload_from_filename(
                str(path),
                content_type=_OCTET_STREAM,
                checksum=_CHECKSUM,
                retry=self.retry,
                timeout=self.timeout,
            )

        self._upload(uri, md5, upload)
        return ObjectInfo(uri=uri, sha256=sha256, md5=md5, bytes=size)

    def get_bytes(self, uri: str) -> bytes:
        blob = self._blob(uri)
        with self._errors("reading", uri, missing=f"no object at {uri}"):
            return blob.download_as_bytes(
                raw_download=True, checksum=_CHECKSUM, retry=self.retry, timeout=self.timeout
            )

    def get_file(self, uri: str, path: Path) -> Path:
        blob = self._blob(uri)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with (
            atomic_writer(path) as handle,
            self._errors("downloading", uri, missing=f"no object at {uri}"),
        ):
            blob.download_to_file(
                handle,
                raw_download=True,
                checksum=_CHECKSUM,
                retry=self.retry,
                timeout=self.timeout,
            )
        return path

    def exists(self, uri: str) -> bool:
        blob = self._blob(uri)
        with self._errors("checking", uri):
            return bool(blob.exists(retry=self.retry, timeout=self.timeout))

    def list(self, prefix: str) -> list[str]:
        bucket, key = parse_uri(prefix)
        with self._errors("listing", prefix):
            try:
                names = [
                    blob.name
                    for blob in self.client.list_blobs(
                        bucket, prefix=key or None, retry=self.retry, timeout=self.timeout
                    )
                ]
            except api_exceptions.NotFound:  # no such bucket: nothing is under the prefix
                return []
        return sorted(f"gs://{bucket}/{name}" for name in names)

    def checksum(self, uri: str) -> ObjectInfo:
        blob = self._blob(uri)
        sink = _HashSink()
        with self._errors("reading", uri, missing=f"no object at {uri}"):
            blob.download_to_file(
                sink, raw_download=True, checksum=_CHECKSUM, retry=self.retry, timeout=self.timeout
            )
        return ObjectInfo(
            uri=uri, sha256=sink.sha256.hexdigest(), md5=sink.md5.hexdigest(), bytes=sink.size
        )

    # -- helpers ----------------------------------------------------------------------------

    def _blob(self, uri: str) -> storage.Blob:
        """The blob ``uri`` names; :class:`InputError` unless it names exactly one object."""
        bucket, key = parse_uri(uri)
        if not key:
            raise InputError(f"lake URI {uri!r} names a bucket, not an object")
        if key.endswith("/") or "//" in key:
            raise InputError(f"lake URI {uri!r} has an empty path segment")
        return self.client.bucket(bucket).blob(key)

    def _upload(self, uri: str, md5: str, upload: Callable[[storage.Blob], None]) -> None:
        """Run ``upload``; create a missing bucket if allowed; verify the stored MD5."""
        blob = self._blob(uri)
        bucket = blob.bucket.name
        missing = (
            f"bucket {bucket} does not exist (writing {uri}); create it, or build the lake "
            "with create_buckets=True"
        )
        try:
            with self._errors("writing", uri, missing=missing):
                upload(blob)
        except NotFoundError:
            if not self.create_buckets:
                raise
            self._create_bucket(bucket, uri)
            with self._errors("writing", uri, missing=missing):
                upload(blob)
        stored = _b64_to_hex(blob.md5_hash)
        if stored is not None and stored != md5:
            raise ServiceError(
                f"Cloud Storage stored {uri} with md5 {stored}, expected {md5} ({self.endpoint})"
            )

    def _create_bucket(self, bucket: str, uri: str) -> None:
        # Conflict: created meanwhile by someone else, which is what we wanted.
        with self._errors("creating the bucket for", uri), suppress(api_exceptions.Conflict):
            self.client.create_bucket(
                bucket, project=self.project, retry=self.retry, timeout=self.timeout
            )

    @contextmanager
    def _errors(self, action: str, uri: str, missing: str | None = None) -> Iterator[None]:
        """Turn client failures into one-line :mod:`crashed.errors` that name URI and endpoint.

        A 404 becomes :class:`NotFoundError` (with ``missing`` as its message) when ``missing``
        is given; everything else the service or network does becomes :class:`ServiceError`.
        """
        where = f"{action} {uri} at {self.endpoint}"
        try:
            yield
        except api_exceptions.NotFound as error:
            if missing is None:
                raise ServiceError(
                    f"Cloud Storage error {where}: 404 {_service_message(error)}"
                ) from error
            raise NotFoundError(missing) from None
        except api_exceptions.GoogleAPICallError as error:
            code = f"{error.code} " if error.code else ""
            raise ServiceError(
                f"Cloud Storage error {where}: {code}{_service_message(error)}"
            ) from error
        except api_exceptions.RetryError as error:
            reason = _network_reason(error.cause)
            raise ServiceError(
                f"Cloud Storage unreachable {where} (gave up retrying: {reason})"
            ) from error
        except requests.RequestException as error:
            raise ServiceError(
                f"Cloud Storage unreachable {where}: {_network_reason(error)}"
            ) from error
        except storage_exceptions.DataCorruption as error:
            raise ServiceError(
                f"Cloud Storage checksum mismatch {where}: {_reason(error)}"
            ) from error
        except storage_exceptions.InvalidResponse as error:
            status = getattr(getattr(error, "response", None), "status_code", "?")
            raise ServiceError(
                f"Cloud Storage error {where}: unexpected response {status}"
            ) from error
        except auth_exceptions.GoogleAuthError as error:
            raise ServiceError(
                f"Cloud Storage authentication failed {where}: {_reason(error)}"
            ) from error


class _HashSink:
    """A write-only stream that hashes what it is given (sha256, md5, size)."""

    def __init__(self) -> None:
        self.sha256 = hashlib.sha256()
        self.md5 = hashlib.md5()
        self.size = 0

    def write(self, chunk: bytes) -> int:
        self.sha256.update(chunk)
        self.md5.update(chunk)
        self.size += len(chunk)
        return len(chunk)


def _b64_to_hex(value: str | None) -> str | None:
    if not value:
        return None
    return base64.b64decode(value).hex()


def _service_message(error: api_exceptions.GoogleAPICallError) -> str:
    """The service's own message (``backend unavailable``), not the client's request dump."""
    response = getattr(error, "response", None)
    try:
        message = response.json()["error"]["message"]  # type: ignore[union-attr]
    except Exception:  # noqa: BLE001 - not JSON, no body: fall back to the exception text
        message = None
    if isinstance(message, str) and message.strip():
        return _first_line(message)
    text = re.sub(r"^[A-Z]+ \S+: ", "", _reason(error))  # drop "GET <url>: "
    return text.split(": ('Request failed", 1)[0] or type(error).__name__


def _network_reason(error: BaseException | None) -> str:
    """``Connection refused``-style text for a network error (not urllib3's whole story)."""
    if error is None:
        return "unknown error"
    if not isinstance(error, requests.RequestException | OSError):
        return _reason(error)
    found = re.search(r"\[Errno -?\d+\] ([^'\")]+)", str(error))
    if found:
        return found.group(1).strip()
    if isinstance(error, requests.Timeout):
        return f"timed out ({type(error).__name__})"
    return type(error).__name__


def _reason(error: BaseException | None) -> str:
    if error is None:
        return "unknown error"
    message = getattr(error, "message", None) or str(error) or type(error).__name__
    return _first_line(message)


def _first_line(value: object) -> str:
    text = str(value).strip()
    return text.splitlines()[0][:300] if text else ""
