"""Validators for names the system passes to other systems (one rule each, used everywhere)."""

from __future__ import annotations

import re

from crashed.errors import InputError

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def validate_namespace(namespace: str, field: str = "namespace") -> str:
    """A Kubernetes namespace: an RFC 1123 DNS label (lower case, digits, '-', ≤ 63 chars)."""
    if not isinstance(namespace, str) or not _DNS_LABEL.fullmatch(namespace):
        raise InputError(
            f"{field}: {namespace!r} is not a valid Kubernetes namespace "
            "(lower-case letters, digits and '-', starting and ending alphanumeric, ≤ 63 chars)"
        )
    return namespace


def validate_run_id(run_id: str, field: str = "run_id") -> str:
    """A pipeline run id: letters, digits, '.', '_' and '-', ≤ 128 chars, no leading symbol."""
    if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id):
        raise InputError(f"{field}: {run_id!r} is not a valid run id")
    return run_id
