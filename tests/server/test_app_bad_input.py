"""Malformed and hostile requests to /api/cdr (cdrapi.server.app, called in process, on
SQLite): always a 4xx with the vendor envelope, never a 5xx and never a partial answer.
Bodies over the limit arrive both with a Content-Length and as a stream without one."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cdrapi.protocol.filters import FILTER_NAMES
from cdrapi.settings import Settings
from cdrapi.store.engine import connect
from tests.conftest import app_client
from tests.data import load, sample_rows
from tests.server.conftest import assert_envelope

AUTH = {"Authorization": "Bearer t"}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    url = f"sqlite:///{tmp_path_factory.mktemp('bad') / 'cdrapi.db'}"
    load(connect(url), sample_rows(30))
    with app_client(Settings(db=url, api_token="t"), headers=AUTH) as http:
        yield http


def nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = {"k": value}
    return value


def test_body_over_one_mebibyte(client: httpx.Client) -> None:
    big = b"page=1&filters[telephone]=" + b"1" * (1 << 20)
    assert_envelope(client.post("/api/cdr", content=big), 413)


def test_body_over_one_mebibyte_without_content_length(client: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while read
        for _ in range(20):
            yield b"9" * 65536

    assert_envelope(client.post("/api/cdr", content=chunks()), 413)


def test_body_just_under_the_limit_is_read(client: httpx.Client) -> None:
    body = b"page=1&pad=" + b"x" * ((1 << 20) - 20)
    assert client.post("/api/cdr", content=body).status_code == 200


def test_json_nested_14_deep_is_read(client: httpx.Client) -> None:
    assert client.post("/api/cdr", json={"pad": nested(14)}).status_code == 200


def test_json_nested_deeper_than_16_is_refused(client: httpx.Client) -> None:
    messages = assert_envelope(client.post("/api/cdr", json={"pad": nested(16)}), 400)
    assert messages == ["Invalid request: nesting deeper than 16 levels"]


def test_form_nested_deeper_than_16_is_refused(client: httpx.Client) -> None:
    form = "pad" + "[a]" * 20 + "=1"
    assert_envelope(client.post("/api/cdr", content=form), 400)


def test_json_nested_100_000_deep_is_refused(client: httpx.Client) -> None:
    deep_json = '{"pad": ' + "[" * 100_000
    assert_envelope(client.post("/api/cdr", content=deep_json), 400)


def test_deeper_than_php_nesting_limit_is_refused_not_dropped(client: httpx.Client) -> None:
    form = "filters[telephone]=x&pad" + "[a]" * 70 + "=1"
    assert_envelope(client.post("/api/cdr", content=form), 400)


IDS = [str(i) for i in range(1001)]


def test_json_lists_over_1000_items_are_refused(client: httpx.Client) -> None:
    messages = assert_envelope(client.post("/api/cdr", json={"filters": {"uniqueid": IDS}}), 400)
    assert messages == ["Invalid request: more than 1000 items in one array"]


def test_form_lists_over_1000_items_are_refused(client: httpx.Client) -> None:
    form = "&".join(f"filters[uniqueid][]={i}" for i in range(1001))
    assert_envelope(client.post("/api/cdr", content=form), 400)


def test_a_list_of_1000_items_is_read(client: httpx.Client) -> None:
    fine = client.post("/api/cdr", json={"filters": {"uniqueid": IDS[:1000]}})
    assert fine.status_code == 200


@pytest.mark.parametrize(
    "body",
    [b"{", b'{"page": 1,}', b'{"page": NaN}', b"{'page': 1}", b'{"page": 1} x', b"\xff{"],
)
def test_invalid_json(client: httpx.Client, body: bytes) -> None:
    messages = assert_envelope(
        client.post("/api/cdr", content=body, headers={"Content-Type": "application/json"}), 400
    )
    assert messages[0].startswith("Invalid JSON")


@pytest.mark.parametrize("body", ["[1, 2]", '"page"', "3", "null", "true"])
def test_json_that_is_not_an_object(client: httpx.Client, body: str) -> None:
    response = client.post("/api/cdr", content=body, headers={"Content-Type": "application/json"})
    assert assert_envelope(response, 400) == ["Invalid JSON: the body must be an object"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"page": 0}, "Invalid page: 0"),
        ({"page": -1}, "Invalid page: -1"),
        ({"page": 1.5}, "Invalid page: 1.5"),
        ({"page": True}, "Invalid page: true"),
        ({"page": [1]}, "Invalid page: [1]"),
        ({"page": {"a": 1}}, 'Invalid page: {"a":1}'),
        ({"page": "1e3"}, "Invalid page: 1e3"),
        ({"page": " 2"}, "Invalid page:  2"),
        ({"filters": "x"}, "Invalid filters: x (expected a map of filter names to values)"),
        ({"filters": 5}, "Invalid filters: 5 (expected a map of filter names to values)"),
        (
            {"filters": ["date_between"]},
            'Invalid filters: ["date_between"] (expected a map of filter names to values)',
        ),
        ({"filters": {"from_idxx": 1}}, "Invalid filter: from_idxx"),
        (
            {"filters": {"date_between": "2024-01-01"}},
            "Invalid date_between: 2024-01-01 (expected [from, to])",
        ),
        (
            {"filters": {"date_between": ["2024-01-01", "2024-01-02", "2024-01-03"]}},
            'Invalid date_between: ["2024-01-01","2024-01-02","2024-01-03"] (expected [from, to])',
        ),
        (
            {"filters": {"date_between": ["2024-02-30", None]}},
            'Invalid date_between: ["2024-02-30",null] (no such date)',
        ),
        (
            {"filters": {"date_between": ["2023-02-29", None]}},
            'Invalid date_between: ["2023-02-29",null] (no such date)',
        ),
        (
            {"filters": {"date_between": ["2024-13-01", None]}},
            'Invalid date_between: ["2024-13-01",null] (no such date)',
        ),
        (
            {"filters": {"date_between": ["2024-01-01 24:00:00", None]}},
            'Invalid date_between: ["2024-01-01 24:00:00",null] (no such time)',
        ),
        (
            {"filters": {"date_between": ["yesterday", None]}},
            'Invalid date_between: ["yesterday",null] (expected YYYY-MM-DD, YYYY-MM-DD HH:MM '
            "or YYYY-MM-DD HH:MM:SS)",
        ),
        (
            {"filters": {"date_between": ["2024-01-02", "2024-01-01"]}},
            'Invalid date_between: ["2024-01-02","2024-01-01"] (from is after to)',
        ),
        (
            {"filters": {"date_between": [["2024-01-01"], None]}},
            'Invalid date_between: [["2024-01-01"],null] (expected text)',
        ),
        (
            {"filters": {"hour_between": ["10:60", "11"]}},
            'Invalid hour_between: ["10:60","11"] (no such time)',
        ),
        (
            {"filters": {"hour_between": ["25", "11"]}},
            'Invalid hour_between: ["25","11"] (no such time)',
        ),
        (
            {"filters": {"hour_between": ["9", "11"]}},
            'Invalid hour_between: ["9","11"] (expected HH, HH:MM or HH:MM:SS)',
        ),
        (
            {"filters": {"project_id": "abc"}},
            "Invalid project_id: abc (expected an id or a list of ids)",
        ),
        (
            {"filters": {"user_id": [1, "x"]}},
            'Invalid user_id: [1,"x"] (expected an id or a list of ids)',
        ),
        (
            {"filters": {"inbound_route_id": -3}},
            "Invalid inbound_route_id: -3 (expected an id or a list of ids)",
        ),
        (
            {"filters": {"project_id": 1.0}},
            "Invalid project_id: 1.0 (expected an id or a list of ids)",
        ),
        (
            {"filters": {"direction": "sideways"}},
            "Invalid direction: sideways (expected one of IN, OUT, INTERNAL)",
        ),
        (
            {"filters": {"call_status": ["ANSWERED", "LOST"]}},
            'Invalid call_status: ["ANSWERED","LOST"] (expected one of ANSWERED, NO ANSWER, BUSY, '
            "FAILED, CONGESTION)",
        ),
        (
            {"filters": {"telephone_like": {"a": "1"}}},
            'Invalid telephone_like: {"a":"1"} (expected text)',
        ),
        ({"filters": {"telephone": ["1", "2"]}}, 'Invalid telephone: ["1","2"] (expected text)'),
        ({"filters": {"source": 1.5}}, "Invalid source: 1.5 (expected text)"),
        ({"filters": {"from_id": "-1"}}, "Invalid from_id: -1 (expected an integer >= 0)"),
        ({"filters": {"from_id": [1]}}, "Invalid from_id: [1] (expected an integer >= 0)"),
        (
            {"filters": {"uniqueid": {"a": {"b": "c"}}}},
            'Invalid uniqueid: {"a":{"b":"c"}} (expected text)',
        ),
        (
            {"filters": {"has_transcription": "maybe"}},
            "Invalid has_transcription: maybe (expected 1/true/yes or 0/false/no)",
        ),
        (
            {"filters": {"has_recording_file": 2}},
            "Invalid has_recording_file: 2 (expected 1/true/yes or 0/false/no)",
        ),
    ],
)
def test_wrong_values_name_the_filter(
    client: httpx.Client, params: dict[str, Any], message: str
) -> None:
    assert assert_envelope(client.post("/api/cdr", json=params), 400) == [message]


def test_every_problem_is_reported(client: httpx.Client) -> None:
    params = {"page": "x", "filters": {"a": 1, "b": 2, "direction": "x", "from_id": "y"}}
    messages = assert_envelope(client.post("/api/cdr", json=params), 400)
    assert messages == [
        "Invalid page: x",
        "Invalid filter: a",
        "Invalid filter: b",
        "Invalid direction: x (expected one of IN, OUT, INTERNAL)",
        "Invalid from_id: y (expected an integer >= 0)",
    ]


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS"])
def test_unknown_methods(client: httpx.Client, method: str) -> None:
    messages = assert_envelope(client.request(method, "/api/cdr"), 405)
    assert messages == ["Method not allowed"]


def test_unknown_paths(client: httpx.Client) -> None:
    assert assert_envelope(client.get("/api/cdrs"), 404) == ["Not found"]


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"filters[telephone]=%FF%FE", "text/xml"),
        (b"filters[telephone]=\xff\xfe", "application/x-www-form-urlencoded"),
        (b"filters[\xff]=1", "text/plain"),
        (b'{"filters": {"telephone": "\xff"}}', "application/json"),
        (b'{"filters": {"telephone": "\\ud800"}}', "application/json"),
    ],
)
def test_invalid_utf8(client: httpx.Client, body: bytes, content_type: str) -> None:
    assert_envelope(
        client.post("/api/cdr", content=body, headers={"Content-Type": content_type}), 400
    )


SQL_LOOKING = ["' OR 1=1 --", '"; DELETE FROM calls; --', "%' OR '%'='", "\\", "_%_"]
TEXT_FILTERS = ["telephone_like", "telephone", "source", "uniqueid", "external_id"]


@pytest.mark.parametrize("value", SQL_LOOKING)
@pytest.mark.parametrize("name", TEXT_FILTERS)
def test_sql_looking_text_is_searched_as_text(client: httpx.Client, name: str, value: str) -> None:
    response = client.post("/api/cdr", json={"filters": {name: value}})
    assert response.status_code == 200, (name, value)
    assert response.json()["pagination"]["row_count"] == 0


def test_sql_looking_text_leaves_the_calls_as_they_were(client: httpx.Client) -> None:
    for value in SQL_LOOKING:
        for name in TEXT_FILTERS:
            assert client.post("/api/cdr", json={"filters": {name: value}}).status_code == 200
    assert client.post("/api/cdr", json={}).json()["pagination"]["row_count"] == 30


def test_multipart_form_is_read_like_php(client: httpx.Client) -> None:
    files = {"filters[uniqueid][]": (None, "1704067200.3"), "page": (None, "1")}
    response = client.post("/api/cdr", files=files)
    assert response.status_code == 200
    assert [r["uniqueid"] for r in response.json()["results"]] == ["1704067200.3"]


def test_broken_multipart_form_is_read_or_refused_with_an_envelope(client: httpx.Client) -> None:
    broken = client.post(
        "/api/cdr",
        content=b"--x\r\nContent-Disposition: form-data\r\n\r\nzz",
        headers={"Content-Type": "multipart/form-data; boundary=x"},
    )
    assert broken.status_code in (200, 400)
    if broken.status_code == 400:
        assert_envelope(broken, 400)


def test_empty_post_falls_back_to_the_query_string(client: httpx.Client) -> None:
    response = client.post("/api/cdr?filters[uniqueid]=1704067200.4", content=b"")
    assert [r["uniqueid"] for r in response.json()["results"]] == ["1704067200.4"]


def test_form_body_with_json_content_type_is_invalid_json(client: httpx.Client) -> None:
    response = client.post(
        "/api/cdr", content=b"page=1", headers={"Content-Type": "application/json"}
    )
    assert assert_envelope(response, 400)[0].startswith("Invalid JSON")


# --- hostile tokens and api_hash values (a server with an api_key) --------------------


@pytest.fixture(scope="module")
def signing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    url = f"sqlite:///{tmp_path_factory.mktemp('signing') / 'cdrapi.db'}"
    load(connect(url), sample_rows(30))
    with app_client(Settings(db=url, api_token="t", api_key="k\u00e9y")) as http:
        yield http


@pytest.mark.parametrize(
    ("method", "url", "request_options"),
    [
        pytest.param("GET", "/api/cdr", {"headers": {"Authorization": b"Bearer \xe9\xff\x00"}},
                     id="token not UTF-8, with NUL"),
        pytest.param("GET", "/api/cdr", {"headers": {"Authorization": b"Bearer " + b"t" * 60_000}},
                     id="token of 60,000 bytes"),
        pytest.param("GET", "/api/cdr", {"headers": {"Authorization": b"\xff\xfe"}},
                     id="Authorization not UTF-8"),
        pytest.param("GET", "/api/cdr?api_hash=%C3%A9&page=1", {"headers": AUTH},
                     id="api_hash not ASCII"),
        pytest.param("GET", "/api/cdr?api_hash=%FF&page=%FF", {"headers": AUTH},
                     id="api_hash and page not UTF-8"),
        pytest.param("GET", "/api/cdr?%FF=1&api_hash=" + "a" * 32, {"headers": AUTH},
                     id="a name not UTF-8"),
        pytest.param("POST", "/api/cdr", {"headers": AUTH, "content": b"api_hash=%E9&\xff=1"},
                     id="form not UTF-8"),
        pytest.param("POST", "/api/cdr", {"headers": AUTH, "json": {"api_hash": "\u00e9" * 32}},
                     id="api_hash of 32 non-ASCII characters"),
        pytest.param("POST", "/api/cdr",
                     {"headers": AUTH, "json": {"api_hash": ["x"], "\u00e9": 1}},
                     id="api_hash a list"),
    ],
)  # fmt: skip
def test_hostile_tokens_and_hashes_are_4xx(
    signing: httpx.Client, method: str, url: str, request_options: dict[str, Any]
) -> None:
    response = signing.request(method, url, **request_options)
    assert 400 <= response.status_code < 500, response.text
    assert_envelope(response, response.status_code)


# --- anything at all ------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    page=json_values,
    filters=st.dictionaries(st.sampled_from([*FILTER_NAMES, "bogus"]), json_values, max_size=4),
)
def test_any_json_gets_200_or_a_400_envelope(
    client: httpx.Client, page: Any, filters: dict[str, Any]
) -> None:
    response = client.post(
        "/api/cdr",
        content=json.dumps({"page": page, "filters": filters}),
        headers={"Content-Type": "application/json"},
    )
    if response.status_code != 200:
        assert_envelope(response, 400)
    else:
        assert response.json()["has_error"] is False


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=st.binary(max_size=200) | st.text(alphabet="[]=&%+.ab01 _\\'\"*", max_size=60))
def test_any_form_body_gets_200_or_a_400_envelope(client: httpx.Client, body: bytes | str) -> None:
    data = body.encode() if isinstance(body, str) else body
    response = client.post("/api/cdr", content=data, headers={"Content-Type": "text/xml"})
    if response.status_code != 200:
        assert_envelope(response, 400)
