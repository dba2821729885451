"""/api/cdr (cdrapi.server.app) called in process, on SQLite and PostgreSQL: every filter
checked against an independent oracle, in JSON, PHP form (text/xml) and GET requests;
pages, records, signing and authentication.

The 260 sample calls are loaded once per backend for the tests that only read them; each
test gets an app of its own (its page cache cold, as a freshly started server's). Tests
that add calls get a fresh database.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from cdrapi import http_build_query, sign
from cdrapi.protocol.records import RECORD_KEYS
from cdrapi.settings import Settings
from cdrapi.store.engine import connect
from tests.conftest import PostgresServer, app_client
from tests.data import load, oracle, sample_rows
from tests.server.conftest import assert_envelope

TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

Rows = list[dict[str, Any]]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def sample(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, Rows]:
    """A database holding the 260 sample calls (read only), and the calls."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sample') / 'cdrapi.db'}"
    else:
        server: PostgresServer = request.getfixturevalue("postgres")
        url = server.new_database()
    engine = connect(url)
    rows = load(engine, sample_rows())
    engine.dispose()
    return url, rows


@pytest.fixture
def api(sample: tuple[str, Rows]) -> Iterator[tuple[httpx.Client, Rows]]:
    url, rows = sample
    with app_client(Settings(db=url, api_token=TOKEN), headers=AUTH) as client:
        yield client, rows


@pytest.fixture
def fresh(db_url: str) -> Iterator[tuple[httpx.Client, Rows]]:
    """A client on a database of its own (the test adds calls to it)."""
    rows = load(connect(db_url), sample_rows())
    with app_client(Settings(db=db_url, api_token=TOKEN), headers=AUTH) as client:
        yield client, rows


def post_form(client: httpx.Client, params: dict[str, Any]) -> httpx.Response:
    return client.post(
        "/api/cdr", content=http_build_query(params), headers={"Content-Type": "text/xml"}
    )


def every_id(client: httpx.Client, filters: dict[str, Any], how: str = "json") -> list[int]:
    """Walk all pages as the vendor's loop does; return the ids in the order received."""
    ids: list[int] = []
    page = 1
    while True:
        params = {"page": page, "filters": filters}
        if how == "json":
            response = client.post("/api/cdr", json=params)
        elif how == "form":
            response = post_form(client, params)
        else:
            response = client.get("/api/cdr", params=http_build_query(params))
        assert response.status_code == 200, response.text
        body = response.json()
        ids += [int(r["id"]) for r in body["results"]]
        pagination = body["pagination"]
        if page >= pagination["max_page"]:
            assert pagination["row_count"] == len(ids)
            return ids
        page += 1


FILTER_CASES: list[dict[str, Any]] = [
    {},
    {"date_between": ["2024-01-05 00:00:00", "2024-01-15 23:59:59"]},
    {"date_between": ["2024-01-05", "2024-01-15"]},
    {"date_between": ["2024-01-05 10:30", "2024-01-05 10:30"]},
    {"date_between": ["2024-01-20", None]},
    {"date_between": ["", "2024-01-03"]},
    {"hour_between": ["08:00", "17"]},
    {"hour_between": ["22:00", "06:00"]},
    {"hour_between": ["10:30:00", "10:30:00"]},
    {"project_id": 1},
    {"project_id": ["1", 2]},
    {"user_id": [10, 12]},
    {"inbound_route_id": "5"},
    {"direction": "in"},
    {"direction": ["OUT", "internal"]},
    {"call_status": "no_answer"},
    {"call_status": ["BUSY", "failed", "CONGESTION"]},
    {"telephone_like": "123456"},
    {"telephone_like": "0721*"},
    {"telephone_like": "*000"},
    {"telephone_like": "07%1"},
    {"telephone_like": "07_2"},
    {"telephone_like": "2%1"},
    {"telephone_like": "ANONYM"},
    {"telephone_like": "'; DROP TABLE calls;--"},
    {"telephone_like": "10"},
    {"telephone": "100"},
    {"telephone": "0721"},
    {"source": "0721"},
    {"source": "+40*"},
    {"destination": "*00"},
    {"destination": "_"},
    {"from_id": 100},
    {"from_id": "250"},
    {"uniqueid": "1704067200.5"},
    {"uniqueid": ["1704067200.5", "1704067200.6", "nope"]},
    {"linkedid": "1704067200.3"},
    {"external_id": ["crm-1"]},
    {"has_transcription": "1"},
    {"has_transcription": "no"},
    {"has_monitor_file": True},
    {"has_recording_file": "false"},
    {"has_recording_file": "yes", "direction": "IN", "date_between": ["2024-01-02", "2024-01-28"]},
    {"telephone_like": "0721", "call_status": "ANSWERED", "hour_between": ["06", "18"]},
]


@pytest.mark.parametrize("filters", FILTER_CASES, ids=[str(case) for case in FILTER_CASES])
def test_filters_match_the_oracle(api: tuple[httpx.Client, Rows], filters: dict[str, Any]) -> None:
    client, rows = api
    expected = [row["id"] for row in rows if oracle(row, filters)]
    assert every_id(client, filters) == expected


@pytest.mark.parametrize("how", ["form", "get"])
def test_form_and_get_requests_read_like_json(api: tuple[httpx.Client, Rows], how: str) -> None:
    client, rows = api
    filters = {
        "date_between": ["2024-01-03", "2024-01-20 12:00"],
        "direction": ["IN", "OUT"],
        "has_recording_file": True,
        "telephone_like": "07",
    }
    expected = [row["id"] for row in rows if oracle(row, filters)]
    assert expected
    assert every_id(client, filters, how) == expected


def test_pages_hold_every_record_once_in_id_order(api: tuple[httpx.Client, Rows]) -> None:
    client, rows = api
    ids = every_id(client, {})
    assert ids == sorted(ids) == [row["id"] for row in rows]
    first = client.post("/api/cdr", json={"page": 1}).json()
    assert first["pagination"] == {
        "row_count": 260,
        "page_size": 100,
        "current_page": 1,
        "max_page": 3,
    }
    # Out of order and repeated requests give the same pages (keyset cache or not).
    third = client.post("/api/cdr", json={"page": 3}).json()
    assert [r["id"] for r in third["results"]] == [str(i) for i in ids[200:]]
    again = client.post("/api/cdr", json={"page": 2}).json()
    assert [r["id"] for r in again["results"]] == [str(i) for i in ids[100:200]]


def test_page_past_the_end_is_empty_with_the_pagination(api: tuple[httpx.Client, Rows]) -> None:
    client, _ = api
    past = client.post("/api/cdr", json={"page": 4}).json()
    assert past["results"] == []
    assert past["pagination"] == {
        "row_count": 260,
        "page_size": 100,
        "current_page": 4,
        "max_page": 3,
    }


def test_the_largest_page_number_is_empty(api: tuple[httpx.Client, Rows]) -> None:
    client, _ = api
    last = client.post("/api/cdr", json={"page": "9223372036854775807"})
    assert last.status_code == 200
    assert last.json()["results"] == []


def test_a_page_number_past_64_bits_is_invalid(api: tuple[httpx.Client, Rows]) -> None:
    client, _ = api
    huge = client.post("/api/cdr", json={"page": "99999999999999999999999999"})
    assert huge.status_code == 400
    assert huge.json()["messages"] == ["Invalid page: 99999999999999999999999999"]


def test_no_match_is_an_empty_page_zero(api: tuple[httpx.Client, Rows]) -> None:
    client, _ = api
    empty = client.post("/api/cdr", json={"filters": {"telephone": "nobody"}}).json()
    assert empty == {
        "has_error": False,
        "messages": [],
        "results": [],
        "pagination": {"row_count": 0, "page_size": 100, "current_page": 0, "max_page": 0},
    }


def test_record_shape_and_types(api: tuple[httpx.Client, Rows]) -> None:
    client, rows = api
    response = client.post("/api/cdr", json={"filters": {"uniqueid": "1704067200.0"}})
    assert response.headers["content-type"] == "application/json"
    (result,) = response.json()["results"]
    assert tuple(result) == RECORD_KEYS
    assert len(RECORD_KEYS) == 43
    row = rows[0]
    assert result["id"] == str(row["id"])
    assert result["time"] == row["time"]
    assert isinstance(result["bill_minutes"], int)
    assert result["bill_minutes"] == -(-row["billsec"] // 60)
    hours, rest = divmod(row["billsec"], 3600)
    assert result["bill_duration"] == f"{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"
    assert result["inbound_route_id"] in (None, "5", "6")
    assert result["customer_id"] is None


def test_long_durations_pass_24_hours(api: tuple[httpx.Client, Rows]) -> None:
    client, rows = api
    long_call = next(row for row in rows if row["billsec"] == 90000)
    body = client.post("/api/cdr", json={"filters": {"uniqueid": long_call["uniqueid"]}}).json()
    assert body["results"][0]["bill_duration"] == "25:00:00"
    assert body["results"][0]["bill_minutes"] == 1500


def test_new_calls_are_counted_at_once(fresh: tuple[httpx.Client, Rows], db_url: str) -> None:
    client, _ = fresh
    assert client.post("/api/cdr", json={}).json()["pagination"]["row_count"] == 260
    load(connect(db_url), sample_rows(5, seed=99))
    body = client.post("/api/cdr", json={"page": 3}).json()
    assert body["pagination"]["row_count"] == 265
    assert len(body["results"]) == 65


def test_sync_with_from_id_misses_nothing(fresh: tuple[httpx.Client, Rows], db_url: str) -> None:
    client, rows = fresh
    seen: list[int] = []
    engine = connect(db_url)
    for batch in range(4):
        last = seen[-1] if seen else 0
        body = client.post("/api/cdr", json={"filters": {"from_id": last + 1}}).json()
        seen += [int(r["id"]) for r in body["results"]]
        load(engine, sample_rows(30, seed=batch))
    while True:
        body = client.post("/api/cdr", json={"filters": {"from_id": seen[-1] + 1}}).json()
        if not body["results"]:
            break
        seen += [int(r["id"]) for r in body["results"]]
    assert seen == list(range(rows[0]["id"], rows[0]["id"] + 260 + 120))


# --- signed requests (api_key) --------------------------------------------------------

PARAMS: dict[str, Any] = {
    "page": 1,
    "filters": {"date_between": ["2024-01-01", None], "telephone": None},
    "action": "list",
}
SIGNED = {**PARAMS, "api_hash": sign(PARAMS, "secret")}


@pytest.fixture
def signing(sample: tuple[str, Rows]) -> Iterator[httpx.Client]:
    """A server with two tokens and an api_key, asked with the second token."""
    settings = Settings(db=sample[0], api_token="a,b", api_key="secret")
    with app_client(settings, headers={"Authorization": "Bearer b"}) as client:
        yield client


def test_an_unsigned_request_is_403(signing: httpx.Client) -> None:
    unsigned = signing.post("/api/cdr", json=PARAMS)
    assert unsigned.status_code == 403
    assert unsigned.json()["messages"] == ["Invalid api_hash"]


@pytest.mark.parametrize(
    "how",
    [
        pytest.param(lambda c: c.post("/api/cdr", json=SIGNED), id="json"),
        pytest.param(
            lambda c: c.post(
                "/api/cdr", json={**PARAMS, "api_hash": sign(PARAMS, "secret").upper()}
            ),
            id="json, hash in upper case",
        ),
        pytest.param(lambda c: post_form(c, SIGNED), id="PHP form"),
        pytest.param(lambda c: c.get("/api/cdr", params=http_build_query(SIGNED)), id="GET"),
    ],
)
def test_a_signed_request_is_served(signing: httpx.Client, how: Any) -> None:
    assert how(signing).status_code == 200


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({**PARAMS, "api_hash": sign(PARAMS, "other")}, id="signed with another key"),
        pytest.param({**SIGNED, "page": 2}, id="changed after signing"),
        pytest.param({**PARAMS, "api_hash": ["x"]}, id="api_hash not text"),
    ],
)
def test_a_wrong_signature_is_403(signing: httpx.Client, params: dict[str, Any]) -> None:
    assert signing.post("/api/cdr", json=params).status_code == 403


def test_api_hash_is_ignored_without_a_key(api: tuple[httpx.Client, Rows]) -> None:
    client, _ = api
    response = client.post("/api/cdr", json={"page": 1, "api_hash": "anything"})
    assert response.status_code == 200


# --- authentication -------------------------------------------------------------------


@pytest.fixture
def anonymous(sample: tuple[str, Rows]) -> Iterator[httpx.Client]:
    """A client that sends no Authorization of its own."""
    with app_client(Settings(db=sample[0], api_token=TOKEN)) as client:
        yield client


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Basic dGVzdC10b2tlbg=="},
        {"Authorization": "Bearer"},
        {"Authorization": f"Token {TOKEN}"},
    ],
)
def test_authentication_is_required(anonymous: httpx.Client, headers: dict[str, str]) -> None:
    response = anonymous.post("/api/cdr", headers=headers, json={})
    assert assert_envelope(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"


def test_the_bearer_scheme_is_read_in_any_case(anonymous: httpx.Client) -> None:
    response = anonymous.post("/api/cdr", headers={"Authorization": f"bearer {TOKEN}"})
    assert response.status_code == 200
