"""User-facing errors: one clear line, a meaningful exit code, never a traceback."""

from __future__ import annotations


class CrashedError(Exception):
    """An error the user can act on. The CLI prints ``message`` and exits with ``exit_code``."""

    exit_code = 1

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if exit_code is not None:
            self.exit_code = exit_code


class InputError(CrashedError):
    """Bad input from the user (file, option, request): exit code 2."""

    exit_code = 2


class ConfigError(CrashedError):
    """Invalid configuration (environment variable or .env): exit code 2."""

    exit_code = 2


class ServiceError(CrashedError):
    """A remote service (warehouse, lake, Git host, cluster) failed or is unreachable."""

    exit_code = 3


class NotFoundError(CrashedError):
    """A table, object, proposal or model that should exist does not."""

    exit_code = 4
