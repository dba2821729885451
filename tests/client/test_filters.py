"""Filters as Python values: every filter of SPEC §4, sent by the client over real HTTP to our
server, gives exactly the records an independent oracle picks, in id order; and the
request is what the vendor's clients send (a signed PHP form body as text/xml) or JSON."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import orjson
import pytest

from cdrapi.client import AsyncClient
from cdrapi.client.filters import encode_filters
from cdrapi.protocol.encoding import http_build_query
from cdrapi.protocol.signing import sign
from tests.client.conftest import KEY, TOKEN, Server
from tests.data import oracle

D = dt.date
T = dt.time

# (Python keyword arguments, the same filters as the oracle reads them)
CASES: list[tuple[dict[str, Any], dict[str, Any]]] = [
    ({}, {}),
    (
        {"date_between": (D(2024, 1, 5), D(2024, 1, 15))},
        {"date_between": ["2024-01-05 00:00:00", "2024-01-15 23:59:59"]},
    ),
    (
        {"date_between": (dt.datetime(2024, 1, 20, 10, 30), None)},
        {"date_between": ["2024-01-20 10:30:00", None]},
    ),
    ({"date_between": [None, "2024-01-03"]}, {"date_between": [None, "2024-01-03"]}),
    ({"hour_between": (T(22), T(6))}, {"hour_between": ["22:00:00", "06:00:00"]}),
    ({"hour_between": (T(8), T(17, 59, 59))}, {"hour_between": ["08:00:00", "17:59:59"]}),
    ({"project_id": [1, 2]}, {"project_id": [1, 2]}),
    ({"user_id": (10, 12)}, {"user_id": [10, 12]}),
    ({"inbound_route_id": 5}, {"inbound_route_id": 5}),
    ({"direction": ["IN", "OUT"]}, {"direction": ["IN", "OUT"]}),
    ({"direction": "internal"}, {"direction": "internal"}),
    ({"call_status": "NO ANSWER"}, {"call_status": "NO ANSWER"}),
    ({"call_status": {"BUSY", "FAILED"}}, {"call_status": ["BUSY", "FAILED"]}),
    ({"telephone_like": "0721*"}, {"telephone_like": "0721*"}),
    ({"telephone_like": "07_2%1"}, {"telephone_like": "07_2%1"}),
    ({"telephone": "100"}, {"telephone": "100"}),
    ({"source": "+40*"}, {"source": "+40*"}),
    ({"destination": "*00"}, {"destination": "*00"}),
    ({"from_id": 640}, {"from_id": 640}),
    (
        {"uniqueid": ["1704067200.5", "1704067200.6"]},
        {"uniqueid": ["1704067200.5", "1704067200.6"]},
    ),
    ({"linkedid": "1704067200.3"}, {"linkedid": "1704067200.3"}),
    ({"external_id": ["crm-1"]}, {"external_id": ["crm-1"]}),
    ({"has_transcription": True}, {"has_transcription": "1"}),
    ({"has_monitor_file": False}, {"has_monitor_file": "0"}),
    ({"has_recording_file": True}, {"has_recording_file": "1"}),
    (
        {
            "date_between": (D(2024, 1, 2), D(2024, 1, 28)),
            "direction": "IN",
            "has_recording_file": True,
            "hour_between": (T(6), T(20)),
            "project_id": None,  # not applied
        },
        {
            "date_between": ["2024-01-02", "2024-01-28"],
            "direction": "IN",
            "has_recording_file": "1",
            "hour_between": ["06:00:00", "20:00:00"],
        },
    ),
]


def _id(case: tuple[dict[str, Any], dict[str, Any]]) -> str:
    return ",".join(case[0]) or "none"


@pytest.mark.parametrize("case", CASES, ids=[_id(case) for case in CASES])
def test_every_filter_matches_the_oracle(
    server: Server, case: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    kwargs, meaning = case
    expected = [row["id"] for row in server.rows if oracle(row, meaning)]
    with server.client() as client:
        got = [int(record["id"]) for record in client.iter_records(**kwargs)]
    assert got == expected


@pytest.mark.parametrize("case", CASES[::5], ids=[_id(case) for case in CASES[::5]])
def test_json_requests_and_the_async_client_agree(
    server: Server, case: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    kwargs, meaning = case
    expected = [row["id"] for row in server.rows if oracle(row, meaning)]
    with server.client(json=True) as client:
        assert [int(r["id"]) for r in client.iter_records(**kwargs)] == expected

    async def pull_async() -> list[int]:
        async with AsyncClient(server.url, TOKEN, KEY, concurrency=3) as client:
            return [int(r["id"]) async for r in client.iter_records(**kwargs)]

    assert asyncio.run(pull_async()) == expected


def test_the_request_is_the_vendors_signed_form_body(server: Server) -> None:
    with server.client() as client:
        page = client.page(
            page=2, date_between=(D(2024, 1, 1), D(2024, 1, 15)), direction=["IN", "OUT"]
        )
    assert page.current_page == 2
    (seen,) = server.switch.requests
    params: dict[str, Any] = {
        "page": 2,
        "filters": {
            "date_between": ["2024-01-01 00:00:00", "2024-01-15 23:59:59"],
            "direction": ["IN", "OUT"],
        },
    }
    params["api_hash"] = sign(params, KEY)
    assert seen.method == "POST"
    assert seen.headers["content-type"] == "text/xml"
    assert seen.headers["authorization"] == f"Bearer {TOKEN}"
    assert seen.body.decode() == http_build_query(params)
    assert seen.body.startswith(b"page=2&filters%5Bdate_between%5D%5B0%5D=2024-01-01+00%3A00%3A00")


def test_json_requests_are_signed_the_same_way(server: Server) -> None:
    with server.client(json=True) as client:
        client.page(has_transcription=False, from_id=3)
    (seen,) = server.switch.requests
    assert seen.headers["content-type"] == "application/json"
    body = orjson.loads(seen.body)
    assert body["filters"] == {"has_transcription": 0, "from_id": 3}
    assert body["api_hash"] == sign({"page": 1, "filters": body["filters"]}, KEY)


def test_python_values_become_protocol_values() -> None:
    assert encode_filters(
        {
            "date_between": (D(2024, 2, 29), dt.datetime(2024, 3, 1, 8, 5, 9, 999)),
            "hour_between": [T(22, 30), T(6)],
            "project_id": {3, 1, 2},
            "direction": ("IN",),
            "has_transcription": True,
            "has_monitor_file": False,
            "telephone": None,
            "user_id": [],
            "uniqueid": ["a", None, "b"],
            "from_id": 7,
        }
    ) == {
        "date_between": ["2024-02-29 00:00:00", "2024-03-01 08:05:09"],
        "hour_between": ["22:30:00", "06:00:00"],
        "project_id": [1, 2, 3],
        "direction": ["IN"],
        "has_transcription": 1,
        "has_monitor_file": 0,
        "uniqueid": ["a", "b"],
        "from_id": 7,
    }
    assert encode_filters({"date_between": (None, D(2024, 1, 15))}) == {
        "date_between": [None, "2024-01-15 23:59:59"]
    }
    assert encode_filters({"date_between": (None, None)}) == {}


@pytest.mark.parametrize(
    ("filters", "error"),
    [
        ({"date_between": "2024-01-01"}, TypeError),
        ({"date_between": (D(2024, 1, 1),)}, ValueError),
        ({"direction": object()}, TypeError),
        ({"project_id": [b"1"]}, TypeError),
    ],
)
def test_values_the_protocol_cannot_carry_are_refused_before_sending(
    filters: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        encode_filters(filters)
