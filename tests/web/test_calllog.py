"""The call log and call view pages in process (the real app, its lifespan, a real SQLite
store): sign-in required, the search form round-trips through the URL, a bad value shows
the API's own message next to its field, the page works without JavaScript, htmx gets
the results alone, and an account sees only its calls."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from cdrapi.settings import Settings
from cdrapi.store.accounts import create_account
from cdrapi.store.directory import replace_directory
from cdrapi.store.engine import connect
from tests.conftest import app_client
from tests.data import load

PASSWORD = "a long enough password"


def rows() -> list[dict[str, Any]]:
    calls = []
    for n in range(130):
        linkedid = f"17000000.{n}"
        base = {
            "linkedid": linkedid,
            "time": f"2024-03-{1 + n % 28:02d} {8 + n % 10:02d}:00:{n % 60:02d}",
            "caller_id": f'"Client {n}" <0721{n:06d}>', "source": f"0721{n:06d}",
            "destination": "0312285000", "direction": "IN", "call_status": "ANSWERED",
            "project_id": 1 + n % 2, "user_id": 10, "user_fullname": "Ana Pop", "qname": "support",
            "billsec": 30, "duration": 40, "hold_time": 5, "ring_time": 3,
            "recording_file": None, "inbound_route_id": 5,
        }  # fmt: skip
        calls.append({**base, "uniqueid": linkedid})
        if n % 5 == 0:  # a transfer: a second leg
            calls.append({**base, "uniqueid": f"{linkedid}-2", "destination": "101"})
    return calls


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Settings]:
    url = f"sqlite:///{tmp_path / 'cdrapi.db'}"
    engine = connect(url)
    load(engine, rows())
    replace_directory(
        engine,
        projects=[{"id": 1, "name": "Support"}, {"id": 2, "name": "Sales"}],
        users=[{"id": 10, "extension": "100", "fullname": "Ana Pop", "project_id": 1}],
        queues=[{"id": 1, "name": "support", "project_id": 1}],
        inbound_routes=[{"id": 5, "did": "0312285000", "name": "Main line", "project_id": 1}],
    )
    create_account(engine, "admin", PASSWORD)
    create_account(engine, "sales", PASSWORD, project_ids=[2])
    engine.dispose()
    yield Settings(db=url, api_token="token", timezone="Europe/Bucharest")


def signed_in(client: httpx.Client, username: str = "admin") -> httpx.Client:
    answer = client.post("/login", data={"username": username, "password": PASSWORD})
    assert answer.status_code == 303, answer.text
    return client


@pytest.fixture
def client(store: Settings) -> Iterator[httpx.Client]:
    with app_client(store) as http:
        yield signed_in(http)


def counts(page: str) -> tuple[int, ...]:
    found = re.search(r'<p class="counts">(.*?)</p>', page, re.S)
    assert found, page
    words = re.sub(r"<[^>]+>", "", found[1])
    return tuple(int(n.replace(",", "")) for n in re.findall(r"([\d,]+) (?:calls|legs)", words))


def api_count(client: httpx.Client, filters: dict[str, Any]) -> int:
    answer = client.post(
        "/api/cdr", json={"filters": filters}, headers={"Authorization": "Bearer token"}
    )
    return int(answer.json()["pagination"]["row_count"])


def test_every_page_needs_a_signed_in_account(store: Settings) -> None:
    with app_client(store) as http:
        for path in ("/?telephone_like=0721", "/calls/17000000.1"):
            answer = http.get(path)
            assert answer.status_code == 303
            target = urlsplit(answer.headers["location"])
            assert target.path == "/login" and dict(parse_qsl(target.query))["next"] == path


def test_the_form_round_trips_through_the_url(client: httpx.Client) -> None:
    query = (
        "/?from=2024-03-02&to=2024-03-20&hour_from=09:00&hour_to=15:30&direction=IN"
        "&call_status=ANSWERED&telephone_like=0721*&project_id=2&user_id=10&qname=support"
        "&inbound_route_id=5&has_recording_file=no&view=legs"
    )
    page = client.get(query).text
    for shown in ('name="from" type="date" value="2024-03-02"', 'value="2024-03-20"',
                  'value="09:00"', 'value="15:30"', 'value="0721*"',
                  'name="direction" value="IN" checked', 'value="ANSWERED" checked',
                  '<option value="2" selected>Sales</option>', 'value="10" selected',
                  '<option value="support" selected>', 'value="5" selected',
                  '<option value="no" selected>', 'value="legs" checked'):  # fmt: skip
        assert shown in page, shown
    filters = {
        "date_between": ["2024-03-02", "2024-03-20"], "hour_between": ["09:00", "15:30"],
        "direction": "IN", "call_status": "ANSWERED", "telephone_like": "0721*",
        "project_id": 2, "user_id": 10, "inbound_route_id": 5, "has_recording_file": "no",
    }  # fmt: skip
    assert counts(page) == (api_count(client, filters),)  # queue: every call's is "support"
    next_link = re.search(r'href="(/\?[^"]*after=[^"]*)"', page)
    assert next_link is None or "telephone_like=0721%2A" in next_link[1]


def test_grouped_by_call_by_default_with_both_counts(client: httpx.Client) -> None:
    page = client.get("/?project_id=1").text
    assert counts(page) == (65, api_count(client, {"project_id": 1}))  # 65 calls, 78 legs
    assert "page 1 of 2" in page
    times = re.findall(r'<a href="/calls/[^"]+">([^<]+)</a>', page)
    assert len(times) == 50 and times == sorted(times, reverse=True)  # newest first
    assert times[0] == max(row["time"] for row in rows() if row["project_id"] == 1)


def test_a_bad_date_shows_the_apis_message_next_to_the_field(client: httpx.Client) -> None:
    answer = client.get("/?from=2024-02-30&to=2024-03-01")
    assert answer.status_code == 400
    api = client.post(
        "/api/cdr",
        json={"filters": {"date_between": ["2024-02-30", "2024-03-01"]}},
        headers={"Authorization": "Bearer token"},
    ).json()["messages"]
    assert api == ['Invalid date_between: ["2024-02-30","2024-03-01"] (no such date)']
    shown = re.search(r'id="error-date_between"[^>]*>([^<]*)<', answer.text)
    assert shown and shown[1].replace("&#34;", '"') == api[0]
    shown_as_typed = 'name="from" type="text" value="2024-02-30"'
    assert (
        f'{shown_as_typed} aria-describedby="error-date_between" aria-invalid="true"' in answer.text
    )


def test_without_javascript_a_plain_get_form_and_plain_links(client: httpx.Client) -> None:
    page = client.get("/").text
    assert '<form id="search" class="search" method="get" action="/"' in page
    assert '<button type="submit">Search</button>' in page
    assert re.search(r'<a href="/calls/17000000\.\d+">', page)
    assert re.search(r'<a href="/\?page=2"', page)
    second = client.get("/?page=2").text
    assert "page 2 of 3" in second
    last = client.get("/?last=1").text
    assert "page 3 of 3" in last and "2024-03-01" in last


def test_htmx_gets_only_the_results(client: httpx.Client) -> None:
    answer = client.get("/?telephone_like=072100007", headers={"HX-Request": "true"})
    assert answer.status_code == 200 and answer.headers["vary"] == "HX-Request"
    text = answer.text.strip()
    assert text.startswith('<section id="results"') and "<html" not in text
    assert "<form" not in text and counts(text) == (10, 12)  # 0721000070 to 79
    assert 'id="error-date_between" role="alert" hx-swap-oob="true"' in text
    restore = client.get("/", headers={"HX-Request": "true", "HX-History-Restore-Request": "true"})
    assert "<html" in restore.text


def test_a_preset_is_computed_in_the_pbx_zone(client: httpx.Client) -> None:
    page = client.get("/?preset=7d").text
    dates = re.findall(r'name="(?:from|to)" type="date" value="([\d-]+)"', page)
    import datetime as dt
    from zoneinfo import ZoneInfo

    today = dt.datetime.now(ZoneInfo("Europe/Bucharest")).date()
    assert dates == [str(today - dt.timedelta(days=6)), str(today)]


def test_the_call_view_shows_every_leg_and_a_timeline(client: httpx.Client) -> None:
    page = client.get("/calls/17000000.5")
    assert page.status_code == 200
    text = page.text
    assert text.count('<details class="leg"') == 2
    for field in ("uniqueid", "dstchannel", "call_status_info", "transcription_text"):
        assert f"<dt>{field}</dt>" in text
    assert "Answered by Ana Pop" in text and "Hangs up: ANSWERED" in text
    assert 'href="/?telephone=0721000005"' in text
    assert client.get("/calls/no-such-call").status_code == 404


def test_an_account_sees_only_its_calls(store: Settings) -> None:
    with app_client(store) as http:
        signed_in(http, "sales")
        page = http.get("/").text
        assert counts(page) == (65, 78)  # project 2 only: 65 calls, 13 with a second leg
        assert "Support</option>" not in page  # the pickers hold its project only
        assert http.get("/calls/17000000.3").status_code == 200  # project 2
        assert http.get("/calls/17000000.2").status_code == 404  # project 1: not its own
        everything = http.get("/?project_id=1").text
        assert counts(everything) == (0, 0)
