"""The python-gitlab client the GitLab host uses: tenacity retries and token-free errors.

Every HTTP request python-gitlab makes goes through :meth:`RetryingGitlab.http_request`, which
retries transient failures (5xx, connection errors, timeouts) with exponential backoff
(tenacity). 401/403/404 and other 4xx fail at once. :class:`ErrorTranslator` turns python-gitlab
and requests failures into :class:`~crashed.errors.ServiceError` /
:class:`~crashed.errors.NotFoundError` messages that name the GitLab URL, the project and the
status, and never the token.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn
from urllib.parse import quote

import gitlab
import requests
from gitlab import const as gitlab_const
from gitlab.exceptions import GitlabError
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from crashed.errors import CrashedError, NotFoundError, ServiceError

log = logging.getLogger(__name__)

TRANSIENT_STATUS = frozenset(gitlab_const.RETRYABLE_TRANSIENT_ERROR_CODES)
_NETWORK_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)


def is_transient(error: BaseException) -> bool:
    """5xx (incl. Cloudflare's 52x), GitLab's "Resource lock" 409, connection errors, timeouts."""
    if isinstance(error, _NETWORK_ERRORS):
        return True
    if isinstance(error, GitlabError):
        code = error.response_code
        if code in TRANSIENT_STATUS:
            return True
        return code == 409 and "resource lock" in str(error.error_message).lower()
    return False


class RetryingGitlab(gitlab.Gitlab):
    """A python-gitlab client whose every HTTP request is retried by tenacity.

    python-gitlab's own ``retry_transient_errors`` is turned off: its backoff is fixed
    (0.1 s × 2ⁿ) and its retry count can only be set per call, not per client. Retrying at this
    one choke point covers every call (including pagination) with a configurable count and
    backoff, and is testable with a fake server. 429 stays with python-gitlab
    (``obey_rate_limit``, honouring ``Retry-After``), capped at the same count.
    """

    def __init__(
        self,
        url: str,
        *,
        private_token: str,
        timeout: float,
        retries: int,
        backoff: float,
        max_backoff: float,
        scrub: Callable[[str], str],
    ) -> None:
        super().__init__(
            url,
            private_token=private_token,
            timeout=timeout,
            retry_transient_errors=False,
            keep_base_url=True,
            user_agent="crashed (python-gitlab)",
        )
        self._crashed_retries = retries
        self._crashed_backoff = backoff
        self._crashed_max_backoff = max_backoff
        self._crashed_scrub = scrub

    def http_request(self, verb: str, path: str, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs["retry_transient_errors"] = False
        kwargs.setdefault("max_retries", self._crashed_retries)
        retrying = Retrying(
            stop=stop_after_attempt(self._crashed_retries + 1),
            wait=wait_exponential(multiplier=self._crashed_backoff, max=self._crashed_max_backoff),
            retry=retry_if_exception(is_transient),
            before_sleep=self._log_retry(verb, path),
            reraise=True,
        )
        return retrying(super().http_request, verb, path, *args, **kwargs)

    def _log_retry(self, verb: str, path: str) -> Callable[[RetryCallState], None]:
        def before_sleep(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            if isinstance(error, GitlabError) and error.response_code is not None:
                reason = f"HTTP {error.response_code}"
            else:
                reason = type(error).__name__
            wait = state.next_action.sleep if state.next_action else 0.0
            log.warning(
                "GitLab %s %s failed (%s); retry %d/%d in %.1fs",
                verb.upper(),
                self._crashed_scrub(path.split("?", 1)[0]),
                reason,
                state.attempt_number,
                self._crashed_retries,
                wait,
            )

        return before_sleep


class ErrorTranslator:
    """One clear, token-free line for every failure talking to one GitLab project."""

    def __init__(self, url: str, project: str, token: str, retries: int) -> None:
        self.url, self.project, self.retries = url, project, retries
        self._secrets = {s for s in (token, quote(token, safe="")) if s}

    def scrub(self, text: str) -> str:
        """``text`` with the token (raw or URL-encoded) replaced by ``***``."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    @contextmanager
    def errors(self, action: str) -> Iterator[None]:
        """Translate python-gitlab and requests failures raised inside the block."""
        try:
            yield
        except CrashedError as error:
            error.message = self.scrub(error.message)
            error.args = (error.message,)
            raise
        except GitlabError as error:
            self._raise_http(error, action)
        except requests.RequestException as error:
            detail = self.scrub(str(error))[:300]
            raise ServiceError(
                f"GitLab at {self.url} is unreachable while {action} for project "
                f"{self.project!r} (gave up after {self.retries + 1} attempts): "
                f"{type(error).__name__}: {detail}"
            ) from None

    def _raise_http(self, error: GitlabError, action: str) -> NoReturn:
        code = error.response_code
        detail = self.scrub(str(error.error_message))[:300]
        where = f"GitLab at {self.url}, project {self.project!r}"
        if code == 401:
            message = (
                f"{where}: 401 Unauthorized while {action}: the token was rejected "
                "(check GITLAB_TOKEN: expired, revoked, or for another GitLab instance)"
            )
        elif code == 403:
            message = (
                f"{where}: 403 Forbidden while {action}: the token needs the api scope and at "
                f"least the Developer role ({detail})"
            )
        elif code == 404:
            if "project" in detail.lower():
                message = (
                    f"{where}: 404 project not found while {action} (check GITLAB_PROJECT, "
                    "and that the token's user can see the project)"
                )
            else:
                message = f"{where}: 404 not found while {action} ({detail})"
            raise NotFoundError(self.scrub(message)) from None
        elif code is None:
            message = f"{where}: {type(error).__name__} while {action}: {detail}"
        elif code in TRANSIENT_STATUS:
            message = (
                f"{where}: HTTP {code} while {action}, still failing after "
                f"{self.retries + 1} attempts ({detail})"
            )
        else:
            message = f"{where}: HTTP {code} while {action} ({detail})"
        raise ServiceError(self.scrub(message)) from None
