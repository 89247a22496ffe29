"""One connection to Kubeflow Pipelines through the real ``kfp.Client``: health check, one-line
errors (never a token or a password), quiet paging.

In single-user KFP, experiment calls must not carry a namespace (400), so the namespace is only
used when ``healthz`` says multi-user (:attr:`KfpSession.scope`).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from crashed.errors import ServiceError

log = logging.getLogger(__name__)

PAGE_SIZE = 100
REQUEST_TIMEOUT = 30.0


def safe_host(host: str) -> str:
    """The host URL without credentials, query or fragment (fit for messages)."""
    parts = urlsplit(host)
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", "")) or "(no host)"


class KfpSession:
    """A lazily connected ``kfp.Client`` for one KFP endpoint.

    ``client_id`` is the OAuth client id of the Identity-Aware Proxy in front of KFP (the token
    comes from the ambient Google credentials); without it the host is called as is.
    """

    def __init__(
        self,
        host: str,
        client_id: str | None = None,
        namespace: str = "kubeflow",
        *,
        request_timeout: float = REQUEST_TIMEOUT,
        client_factory: Callable[..., Any] | None = None,
    ) -> None:
        self.host = (host or "").rstrip("/")
        self.client_id = client_id or None
        self.namespace = namespace or "kubeflow"
        self.request_timeout = request_timeout
        self._client_factory = client_factory
        self._client: Any = None
        self._multi_user: bool | None = None

    # -- connection ----------------------------------------------------------------------

    @property
    def client(self) -> Any:
        """The ``kfp.Client``, created (and health-checked) on first use."""
        if self._client is None:
            self._client = self._connect()
        return self._client

    def _connect(self) -> Any:
        import warnings

        if not self.host:
            raise ServiceError("no Kubeflow Pipelines host: pass --host or set KFP_HOST")
        factory = self._client_factory
        if factory is None:
            import kfp

            factory = kfp.Client
        kwargs: dict[str, Any] = {"host": self.host, "namespace": self.namespace}
        if self.client_id:
            kwargs["client_id"] = self.client_id
        try:
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore", FutureWarning)
                client = factory(**kwargs)
        except Exception as error:  # noqa: BLE001 - auth/transport errors of many kinds
            if self.client_id and getattr(error, "status", None) is None:
                first = " ".join(str(error).split(". ")[0].split())[:200]
                raise ServiceError(
                    f"cannot get an IAP token for Kubeflow Pipelines at {safe_host(self.host)} "
                    f"(client id {self.client_id}): {type(error).__name__}: {first}"
                ) from None
            raise self.error("connecting", error) from None
        # kfp.Client only checks healthz when no namespace is given (and then retries 5x with
        # sleeps); ask once, with a timeout, to fail fast and learn whether KFP is multi-user.
        health = self.call(
            "checking health",
            client._healthz_api.healthz_service_get_healthz,
            _request_timeout=self.request_timeout,
        )
        self._multi_user = bool(getattr(health, "multi_user", False))
        return client

    @property
    def scope(self) -> str | None:
        """The namespace for pipelines, experiments and recurring runs in multi-user KFP; none
        in single-user KFP (where a namespace on experiment calls is a 400)."""
        _ = self.client
        return self.namespace if self._multi_user else None

    def call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            with contextlib.redirect_stdout(io.StringIO()) as printed, _quiet_urllib3():
                result = fn(*args, **kwargs)
        except Exception as error:  # noqa: BLE001 - translated into one clear line
            raise self.error(what, error) from None
        if printed.getvalue().strip():
            log.debug("%s", printed.getvalue().strip())
        return result

    def error(self, what: str, error: BaseException) -> ServiceError:
        host = safe_host(self.host)
        status = getattr(error, "status", None)
        if isinstance(status, int) and status in (401, 403):
            hint = (
                "check --client-id and the Google credentials allowed through IAP"
                if self.client_id
                else "the endpoint needs authentication (pass --client-id for IAP)"
            )
            return ServiceError(
                f"Kubeflow Pipelines at {host} refused the request while {what} "
                f"(HTTP {status}): {hint}, and that you may use namespace {self.namespace!r}"
            )
        if isinstance(status, int) and status > 0:
            return ServiceError(
                f"Kubeflow Pipelines at {host} answered HTTP {status} while {what}: "
                f"{_server_message(error)}"
            )
        return ServiceError(
            f"cannot reach Kubeflow Pipelines at {host} while {what}: {_network_reason(error)}"
        )

    def pages(self, what: str, fn: Callable[..., Any], attr: str, **kwargs: Any) -> Iterator[Any]:
        token = ""
        while True:
            response = self.call(what, fn, page_token=token, page_size=PAGE_SIZE, **kwargs)
            yield from getattr(response, attr, None) or []
            token = getattr(response, "next_page_token", None) or ""
            if not token:
                return


@contextlib.contextmanager
def _quiet_urllib3() -> Iterator[None]:
    """urllib3 logs each connection retry as a warning; the caller reports the outcome."""
    logger = logging.getLogger("urllib3.connectionpool")
    previous = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(previous)


def equals_filter(key: str, value: str) -> str:
    return json.dumps(
        {"predicates": [{"operation": 1, "key": key, "stringValue": value}]}  # 1 = EQUALS
    )


def _server_message(error: BaseException) -> str:
    body = getattr(error, "body", None)
    message = ""
    if body:
        try:
            payload = json.loads(body)
            message = str(payload.get("message") or payload.get("error") or "")
        except (ValueError, AttributeError):
            message = str(body)
    message = message or str(getattr(error, "reason", "") or type(error).__name__)
    return " ".join(message.split())[:300]


def _network_reason(error: BaseException) -> str:
    text = str(getattr(error, "reason", None) or error)
    found = re.search(r"\[Errno -?\d+\][^'\")]*", text)
    if found:
        return found.group(0).strip()
    for marker in ("timed out", "Name or service not known", "Connection refused"):
        if marker.lower() in text.lower():
            return marker
    return type(error).__name__
