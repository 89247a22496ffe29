"""One namespace validator and one boolean parser, used everywhere."""

from __future__ import annotations

import pytest

from crashed.core.names import validate_namespace, validate_run_id
from crashed.core.values import parse_bool
from crashed.errors import InputError


@pytest.mark.parametrize("name", ["crashed", "a", "ml-prod-2", "a" * 63])
def test_valid_namespaces(name: str) -> None:
    assert validate_namespace(name) == name


@pytest.mark.parametrize("name", ["", "Crashed", "-a", "a-", "a_b", "a.b", "a" * 64, "ns\n"])
def test_invalid_namespaces_name_the_field(name: str) -> None:
    with pytest.raises(InputError) as error:
        validate_namespace(name, "--namespace")
    assert error.value.message.startswith("--namespace: ")
    assert error.value.exit_code == 2


@pytest.mark.parametrize("run_id", ["run-1", "2026.12.02_0000", "a" * 128])
def test_valid_run_ids(run_id: str) -> None:
    assert validate_run_id(run_id) == run_id


@pytest.mark.parametrize("run_id", ["", "-x", "a/b", "../etc", "a b", "a" * 129])
def test_invalid_run_ids(run_id: str) -> None:
    with pytest.raises(InputError):
        validate_run_id(run_id)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("true", True),
        (" Yes ", True),
        ("1", True),
        ("ON", True),
        (True, True),
        ("false", False),
        ("no", False),
        ("0", False),
        ("off", False),
        (False, False),
        ("", False),
        (None, False),
    ],
)
def test_parse_bool(value: object, expected: bool) -> None:
    assert parse_bool(value, "flag") is expected


def test_parse_bool_empty_can_mean_missing_and_junk_is_an_error() -> None:
    assert parse_bool("  ", "flag", empty=None) is None
    with pytest.raises(InputError) as error:
        parse_bool("maybe", "force_promotion")
    assert error.value.message.startswith("force_promotion: expected true or false")
