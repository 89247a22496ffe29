"""``GET /predict`` query parsing: the standard library's ``parse_qsl`` is the oracle."""

from __future__ import annotations

from urllib.parse import parse_qsl, quote, quote_plus, urlencode

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from crashed.core.features import RAW_FEATURES
from crashed.serving.errors import ApiError
from crashed.serving.requests import parse_query

VALUE = st.text(alphabet=st.sampled_from("ab =&%+:é中\t/?#;"), max_size=12)


@given(st.dictionaries(st.sampled_from(RAW_FEATURES), VALUE, max_size=8), st.booleans())
@example({"accident_type": "a=b&c", "day_of_week": "100%+"}, True)
@example({"day_of_week": "%26%3D"}, False)
def test_query_parses_like_the_standard_library(params: dict[str, str], plus: bool) -> None:
    """Escaped ``&``, ``=``, ``%``, ``+`` and UTF-8 arrive as sent, with either space
    encoding, whichever decoding path the query takes."""
    query = urlencode(params, quote_via=quote_plus if plus else quote)
    expected = dict(parse_qsl(query, keep_blank_values=True, errors="replace"))
    assert parse_query(query) == expected == params


@pytest.mark.parametrize("query", ["males=1&males=2", "males=1&m%61les=2", "males=1&%6Dales=2"])
def test_a_repeated_parameter_is_a_400_with_its_count(query: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse_query(query)
    assert caught.value.status == 400
    assert caught.value.body()["field"] == "males"
    assert "2 times" in caught.value.body()["error"]


def test_an_escaped_separator_in_a_key_does_not_split_it() -> None:
    with pytest.raises(ApiError) as caught:
        parse_query("males%3D1=2")
    assert caught.value.body()["field"] == "males=1"
