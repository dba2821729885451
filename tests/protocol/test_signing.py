"""sign / verify: the vendor's golden vector, the rules, and a differential test against php."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cdrapi.protocol.encoding import http_build_query, parse_str
from cdrapi.protocol.signing import sign, verify

from .conftest import PhpOracle
from .test_encoding import (
    BATCH_MAX,
    BATCH_MIN,
    DIFFERENTIAL,
    is_plain_key,
    mismatches,
    php_float,
    php_int,
    php_text,
)

# The JSON request of the vendor page, filters in the page's order.
GOLDEN_FILTERS = [
    "date_between", "project_id", "user_id", "inbound_route_id", "direction", "call_status",
    "telephone_like", "telephone", "source", "destination", "hour_between", "from_id",
    "uniqueid", "linkedid", "has_transcription", "has_monitor_file", "has_recording_file",
    "external_id",
]  # fmt: skip
GOLDEN_REQUEST: dict[str, Any] = {
    "page": 1,
    "filters": {
        name: (["2024-01-01 00:00:00", "2024-01-15 23:59:59"] if name == "date_between" else None)
        for name in GOLDEN_FILTERS
    },
    "api_hash": "ff9a6b157cb1f79db73e7507635f878a",
}
GOLDEN_QUERY = (
    "page=1&filters%5Bdate_between%5D%5B0%5D=2024-01-01+00%3A00%3A00"
    "&filters%5Bdate_between%5D%5B1%5D=2024-01-15+23%3A59%3A59"
)
GOLDEN_KEY = "your_api_key"
GOLDEN_HASH = "ff9a6b157cb1f79db73e7507635f878a"


def test_golden_vector() -> None:
    assert len(GOLDEN_REQUEST["filters"]) == 18
    assert (
        http_build_query({k: v for k, v in GOLDEN_REQUEST.items() if k != "api_hash"})
        == GOLDEN_QUERY
    )
    assert sign(GOLDEN_REQUEST, GOLDEN_KEY) == GOLDEN_HASH
    assert verify(GOLDEN_REQUEST, GOLDEN_KEY)


def test_golden_vector_as_a_form_body() -> None:
    """The same request sent as the vendor's form body verifies too."""
    body = GOLDEN_QUERY + "&api_hash=" + GOLDEN_HASH
    params = parse_str(body)
    assert params == {
        "page": "1",
        "filters": {"date_between": {0: "2024-01-01 00:00:00", 1: "2024-01-15 23:59:59"}},
        "api_hash": GOLDEN_HASH,
    }
    assert verify(params, GOLDEN_KEY)


def test_golden_vector_matches_php(php: PhpOracle) -> None:
    assert php.sign([(GOLDEN_REQUEST, GOLDEN_KEY)]) == [GOLDEN_HASH]


def md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8", "surrogateescape")).hexdigest()


SIGN_CASES: list[tuple[str, Any, str, str]] = [
    ("empty", {}, "k", md5("k")),
    ("empty key", {"a": "1"}, "", md5("a=1")),
    ("api_hash left out", {"a": "1", "api_hash": "zzz"}, "k", md5("a=1k")),
    ("api_hash of any type left out", {"api_hash": ["x"], "a": 1}, "k", md5("a=1k")),
    ("nested api_hash signed", {"a": {"api_hash": "x"}}, "k", md5("a%5Bapi_hash%5D=xk")),
    ("list params", ["x", None, True], "k", md5("0=x&2=1k")),
    ("utf-8 key", {"a": "1"}, "clé", md5("a=1clé")),
    ("raw byte key", {"a": "1"}, "\udcff", md5("a=1\udcff")),
    ("floats and nulls", {"a": 0.1 + 0.2, "b": None, "c": 1e20}, "k", md5("a=0.3&c=1.0E%2B20k")),
]


@pytest.mark.parametrize(
    ("params", "key", "expected"), [c[1:] for c in SIGN_CASES], ids=[c[0] for c in SIGN_CASES]
)
def test_sign_rules(params: Any, key: str, expected: str) -> None:
    assert sign(params, key) == expected


def test_sign_rules_match_php(php: PhpOracle) -> None:
    assert php.sign([(params, key) for _, params, key, _ in SIGN_CASES]) == [
        c[3] for c in SIGN_CASES
    ]


def test_sign_does_not_modify_params() -> None:
    params = {"a": "1", "api_hash": "x"}
    sign(params, "k")
    assert params == {"a": "1", "api_hash": "x"}


def test_verify_accepts_any_case() -> None:
    params: dict[str, Any] = {"page": 2, "filters": {"direction": "IN"}}
    good = sign(params, "k")
    assert verify({**params, "api_hash": good}, "k")
    assert verify({**params, "api_hash": good.upper()}, "k")
    assert verify({"api_hash": good, **params}, "k")  # its position does not matter


PAGE_2 = sign({"page": 2}, "k")


@pytest.mark.parametrize(
    "params",
    [
        {"page": 2},
        {"page": 2, "api_hash": None},
        {"page": 2, "api_hash": 123},
        {"page": 2, "api_hash": [PAGE_2]},
        {"page": 2, "api_hash": ""},
        {"page": 2, "api_hash": "0" * 32},
        {"page": 3, "api_hash": PAGE_2},
        {"page": 2, "api_hash": PAGE_2 + " "},
        {"page": 2, "api_hash": PAGE_2[:-1]},
        {"page": 2, "api_hash": "ⓐ" + PAGE_2[1:]},
        {"page": 2, "api_hash": "\ud800"},
        {"page": 2, "filters": {"api_hash": PAGE_2}},
        [PAGE_2],
    ],
    ids=repr,
)
def test_verify_rejects(params: Any) -> None:
    assert not verify(params, "k")


def test_verify_needs_the_right_key() -> None:
    assert verify({"page": 2, "api_hash": PAGE_2}, "k")
    assert not verify({"page": 2, "api_hash": PAGE_2}, "K")


# ---------------------------------------------------------------------------
# Differential: request-shaped parameters with hostile values

plain_key = st.one_of(
    st.sampled_from([*GOLDEN_FILTERS, "action", "api_hash", "x-y_z", "é", "0", "7", "-1", "05"]),
    st.text(
        alphabet=st.characters(codec="utf-8", exclude_characters=" .[]\x00"), min_size=1, max_size=6
    ).filter(is_plain_key),
)
leaf = st.one_of(st.none(), st.booleans(), php_int, php_float, php_text)
filter_value = st.one_of(
    leaf,
    st.lists(leaf, max_size=3),
    st.dictionaries(plain_key, leaf, max_size=3),
    st.lists(st.lists(leaf, max_size=2), max_size=2),
)
requests = st.builds(
    lambda page, filters, extra, api_hash, hash_first: {
        **({"api_hash": api_hash} if hash_first and api_hash is not None else {}),
        "page": page,
        "filters": filters,
        **extra,
        **({"api_hash": api_hash} if not hash_first and api_hash is not None else {}),
    },
    st.one_of(st.none(), php_int, php_text),
    st.dictionaries(plain_key, filter_value, max_size=6),
    st.dictionaries(
        plain_key.filter(lambda k: k not in ("page", "filters")), filter_value, max_size=2
    ),
    st.one_of(st.none(), php_text, st.just("ff9a6b157cb1f79db73e7507635f878a")),
    st.booleans(),
)
api_keys = st.one_of(st.just(GOLDEN_KEY), php_text)


@DIFFERENTIAL
@given(st.lists(st.tuples(requests, api_keys), min_size=BATCH_MIN, max_size=BATCH_MAX))
def test_sign_matches_php(php: PhpOracle, cases: list[tuple[dict[str, Any], str]]) -> None:
    ours = [sign(params, key) for params, key in cases]
    bad = mismatches(cases, ours, php.sign(cases))
    assert not bad, [http_build_query(c[0][0]) for c in bad]

    for (params, key), signature in zip(cases, ours, strict=True):
        # What the server does with a form request: parse_str, then verify.
        body = http_build_query({**params, "api_hash": signature.upper()})
        received = parse_str(body)
        assert sign(received, key) == signature, body
        assert verify(received, key), body
