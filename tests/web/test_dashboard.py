"""The dashboard page in process (the real app, a real SQLite store): sign-in required,
the figures shown (key figures, tables, the charts' JSON) are the store's for the same
search, a scoped account sees only its projects' figures and names, the search is the
call log's (kept by the links between the two pages), the period defaults to the last
30 days, htmx gets the figures alone."""

from __future__ import annotations

import datetime as dt
import html
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import text

from cdrapi.protocol.filters import ScopedCallFilters, narrow, parse_filters
from cdrapi.settings import Settings
from cdrapi.store.accounts import create_account
from cdrapi.store.dashboard import Dashboard, DashboardReader
from cdrapi.store.directory import replace_directory
from cdrapi.store.engine import connect
from cdrapi.web.dashboard import chart_data
from cdrapi.web.searchform import LogFilters
from cdrapi.web.shown import duration
from tests.conftest import app_client
from tests.data import load

PASSWORD = "a long enough password"
ZONE = "Europe/Bucharest"
SEARCH = {"from": "2024-03-01", "to": "2024-03-31"}


def rows() -> list[dict[str, Any]]:
    """Two projects, each with its own queue and user; calls of one to three legs, some
    missed (called back or not)."""
    found = []
    for n in range(160):
        project = 1 + n % 2
        answered = n % 4 in (1, 2)
        base = {
            "linkedid": f"1709.{n}",
            "time": f"2024-03-{1 + n % 28:02d} {7 + n % 12:02d}:{n % 60:02d}:00",
            "caller_id": "", "source": f"0721{n:06d}", "destination": "0312285000",
            "direction": ("IN", "OUT", "IN", "INTERNAL")[n % 4],
            "call_status": "ANSWERED" if answered else ("NO ANSWER", "BUSY")[n % 8 // 4],
            "project_id": project, "project": ("Support", "Sales")[project - 1],
            "qname": ("support", "salesq")[project - 1] if n % 3 else None,
            "user_id": 9 + project if answered else None,
            "user_fullname": ("Ana Pop", "Dan Vanzare")[project - 1] if answered else None,
            "billsec": 20 + n % 90 if answered else 0, "duration": 200,
            "hold_time": (3, 15, 25, 60)[n % 4], "ring_time": 3,
            "is_recovered": None if answered else n % 3 % 2,
        }  # fmt: skip
        found.append({**base, "uniqueid": base["linkedid"]})
        for part in range(n % 3):  # more legs: rang, not answered
            found.append({**base, "uniqueid": f"{base['linkedid']}-{part}",
                          "call_status": "NO ANSWER", "billsec": 0, "user_id": None,
                          "user_fullname": None})  # fmt: skip
    return found


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Settings]:
    url = f"sqlite:///{tmp_path / 'cdrapi.db'}"
    engine = connect(url)
    load(engine, rows())
    replace_directory(
        engine,
        projects=[{"id": 1, "name": "Support"}, {"id": 2, "name": "Sales"}],
        users=[
            {"id": 10, "extension": "100", "fullname": "Ana Pop", "project_id": 1},
            {"id": 11, "extension": "200", "fullname": "Dan Vanzare", "project_id": 2},
        ],
        queues=[
            {"id": 1, "name": "support", "project_id": 1},
            {"id": 2, "name": "salesq", "project_id": 2},
        ],
    )
    create_account(engine, "admin", PASSWORD)
    create_account(engine, "sales", PASSWORD, project_ids=[2])
    engine.dispose()
    yield Settings(db=url, api_token="token", timezone=ZONE)


def signed_in(http: httpx.Client, username: str) -> httpx.Client:
    answer = http.post("/login", data={"username": username, "password": PASSWORD})
    assert answer.status_code == 303, answer.text
    return http


def store_figures(settings: Settings, filters: Any) -> Dashboard:
    engine = connect(settings.db, create=False)
    try:
        return DashboardReader(engine).figures(filters, dt.datetime.now(ZoneInfo(ZONE)))
    finally:
        engine.dispose()


def text_of(page: str, ident: str) -> str:
    found = re.search(rf'id="{ident}"[^>]*>(.*?)</(?:dd|table)>', page, re.S)
    assert found, ident
    return html.unescape(re.sub(r"<[^>]+>", " ", found[1])).split()


def table(page: str, ident: str) -> list[list[str]]:
    found = re.search(rf'<table[^>]*id="{ident}"[^>]*>(.*?)</table>', page, re.S)
    assert found, ident
    body = found[1].split("<tbody>", 1)[1]
    return [
        [html.unescape(re.sub(r"<[^>]+>", "", cell)).strip() for cell in
         re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)]
        for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)
    ]  # fmt: skip


def check_page(page: str, board: Dashboard) -> None:
    """Every figure of ``board`` is on ``page``, as the page writes it."""
    assert text_of(page, "fig-calls") == [f"{board.calls:,}"]
    assert text_of(page, "fig-answered") == [f"{board.answered:,}"]
    assert board.answer_rate is not None
    assert text_of(page, "fig-answer-rate") == [f"{board.answer_rate * 100:.1f}", "%"]
    for name in ("wait_average", "wait_p90", "talk_average", "talk_p90"):
        value = getattr(board, name)
        assert text_of(page, "fig-" + name.replace("_", "-")) == [duration(round(value))], name
    assert text_of(page, "fig-missed") == [f"{board.missed:,}"]
    charts = json.loads(html.unescape(re.search(
        r'<script type="application/json" id="dashboard-data">(.*?)</script>', page, re.S
    )[1]))  # fmt: skip
    assert charts == chart_data(board)
    directions = table(page, "table-by_direction")
    assert [row[0] for row in directions] == board.buckets
    assert [[int(n) for n in row[1:4]] for row in directions] == [
        [board.by_direction[d][i] for d in ("IN", "OUT", "INTERNAL")]
        for i in range(len(board.buckets))
    ]
    statuses = table(page, "table-by_status")
    assert sum(int(row[-1]) for row in statuses) == board.calls
    assert [[int(n) for n in row[1:]] for row in table(page, "table-heat")] == board.heat
    assert table(page, "table-queues") == [
        [q.name, str(q.offered), str(q.answered), str(q.abandoned),
         f"{q.service_level * 100:.1f} %" if q.service_level is not None else "—"]
        for q in board.queues
    ]  # fmt: skip
    assert table(page, "table-users") == [
        [u.name, str(u.answered), duration(u.talk)] for u in board.users
    ]
    if not board.missed_calls:
        assert "None: every missed call was called back." in page
        return
    missed = table(page, "table-missed")
    assert [row[:3] for row in missed] == [
        [m.time, m.source, m.queue or "—"] for m in board.missed_calls
    ]


def test_without_a_session_it_redirects_to_the_sign_in(store: Settings) -> None:
    with app_client(store) as http:
        answer = http.get("/dashboard?preset=7d")
        assert answer.status_code == 303
        target = urlsplit(answer.headers["location"])
        assert target.path == "/login"
        assert dict(parse_qsl(target.query))["next"] == "/dashboard?preset=7d"


def test_the_figures_shown_are_the_stores(store: Settings) -> None:
    with app_client(store) as http:
        page = signed_in(http, "admin").get("/dashboard", params=SEARCH).text
    filters = parse_filters({"date_between": ["2024-03-01", "2024-03-31"]}, ScopedCallFilters)
    board = store_figures(store, filters)
    assert board.calls == 160 and board.missed > 0 and len(board.queues) == 2  # a real test
    check_page(page, board)
    assert "Support" in page and "Ana Pop" in page


def test_a_scoped_account_sees_only_its_projects_figures(store: Settings) -> None:
    with app_client(store) as http:
        page = signed_in(http, "sales").get("/dashboard", params=SEARCH).text
        direct = http.get("/dashboard", params={**SEARCH, "project_id": "1"})
    filters = narrow(
        parse_filters({"date_between": ["2024-03-01", "2024-03-31"]}, ScopedCallFilters),
        project_scope=[2],
    )
    board = store_figures(store, filters)
    assert board.calls == 80
    check_page(page, board)
    for other in ("Support", "support", "Ana Pop"):  # project 1's names: not even a picker
        assert other not in page, other
    assert "fig-calls" in direct.text and text_of(direct.text, "fig-calls") == ["0"]


def test_the_search_is_the_call_logs_and_the_links_keep_it(store: Settings) -> None:
    query = {**SEARCH, "direction": "IN", "qname": "support"}
    with app_client(store) as http:
        signed_in(http, "admin")
        page = http.get("/dashboard", params=query).text
        calllog = http.get("/", params=query).text
    assert 'action="/dashboard"' in page and 'hx-get="/dashboard"' in page
    assert 'name="direction" value="IN" checked' in page
    wanted = "?from=2024-03-01&amp;to=2024-03-31&amp;qname=support&amp;direction=IN"
    assert f'<a href="/{wanted}" data-keep-search>Calls</a>' in page
    assert f'<a id="to-calllog" href="/{wanted}">' in page
    assert f'<a href="/dashboard{wanted}" data-keep-search>Dashboard</a>' in calllog
    filters = parse_filters(
        {"date_between": ["2024-03-01", "2024-03-31"], "direction": "IN", "qname": "support"},
        LogFilters,
    )
    board = store_figures(store, filters)
    assert 0 < board.calls < 160
    assert text_of(page, "fig-calls") == [f"{board.calls:,}"]


def test_without_a_date_the_last_30_days(store: Settings) -> None:
    today = dt.datetime.now(ZoneInfo(ZONE)).date()
    with app_client(store) as http:
        page = signed_in(http, "admin").get("/dashboard").text
    dates = re.findall(r'name="(?:from|to)" type="date" value="([\d-]+)"', page)
    assert dates == [str(today - dt.timedelta(days=29)), str(today)]
    assert len(table(page, "table-by_direction")) == 30  # one row per day, quiet ones too


def test_htmx_gets_the_figures_alone_and_a_bad_search_its_message(store: Settings) -> None:
    with app_client(store) as http:
        signed_in(http, "admin")
        answer = http.get("/dashboard", params=SEARCH, headers={"HX-Request": "true"})
        bad = http.get("/dashboard", params={"from": "2024-02-30", "to": "2024-03-01"})
    text = answer.text.strip()
    assert text.startswith('<section id="results"') and "<form" not in text
    assert 'id="dashboard-data"' in text
    assert bad.status_code == 400
    assert "no such date" in html.unescape(bad.text)


def test_a_short_period_is_charted_per_hour(store: Settings) -> None:
    with app_client(store) as http:
        page = signed_in(http, "admin").get("/dashboard?from=2024-03-05&to=2024-03-06").text
    hours = [row[0] for row in table(page, "table-by_direction")]
    assert hours[:2] == ["2024-03-05 00:00", "2024-03-05 01:00"] and len(hours) == 48
    assert "Calls per hour by direction" in page


def test_a_restarted_server_shows_the_figures_it_saved(store: Settings) -> None:
    """The figures counted by one server are saved in the store, per account's scope; a
    server started after it (a new app: nothing in memory) shows them, as the store's."""
    for _ in range(2):  # the first server counts and saves; the next reads what was saved
        pages = {}
        with app_client(store) as http:
            for name in ("admin", "sales"):
                http.cookies.clear()
                pages[name] = signed_in(http, name).get("/dashboard", params=SEARCH).text
        engine = connect(store.db, create=False)
        try:
            with engine.connect() as conn:
                saved = conn.execute(text("SELECT search, count(*) FROM dashboard_days GROUP BY 1"))
                assert dict(saved.all()) == {"calls": 31, "project_scope=2": 31}
        finally:
            engine.dispose()
        period = parse_filters({"date_between": ["2024-03-01", "2024-03-31"]}, ScopedCallFilters)
        check_page(pages["admin"], store_figures(store, period))
        check_page(pages["sales"], store_figures(store, narrow(period, project_scope=[2])))
