"""The web call log's reads (store/calllog.py) on SQLite and PostgreSQL: one row per call
summarised over its legs, newest first, exact counts equal to the API's, paging by key
that loses and doubles no call, the scope applied, and a call's legs with its events."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event

from cdrapi.protocol.filters import CallFilters, ScopedCallFilters, narrow, parse_filters
from cdrapi.store import calllog
from cdrapi.store.calllog import PAGE_SIZE, CallLog, Key
from cdrapi.store.engine import connect
from cdrapi.store.pages import CallPages
from cdrapi.store.queue_calls import save_queue_calls
from tests.data import load


def leg(n: int, linkedid: str, time: str, **values: Any) -> dict[str, Any]:
    return {
        "uniqueid": f"u{n}",
        "linkedid": linkedid,
        "time": time,
        "time_end": time,
        "caller_id": f'"Caller {n}" <07210000{n % 100:02d}>',
        "source": f"07210000{n % 100:02d}",
        "destination": "100",
        "direction": "IN",
        "call_status": "NO ANSWER",
        "project_id": 1 + n % 2,
        **dict.fromkeys(("qname", "user_fullname", "recording_file", "transcription_id")),
        **dict.fromkeys(("hold_time", "ring_time", "billsec"), 0),
        "comments": None,
        **values,
    }


def many_calls(count: int, seed: int = 3) -> list[dict[str, Any]]:
    """``count`` calls of one to three legs, many at the same second, some without a
    linkedid; legs stored out of time order (a later leg may get a lower id)."""
    rng = random.Random(seed)
    rows = []
    for n in range(count):
        second = rng.randrange(0, 4000)  # collisions: equal times are common
        time = (
            f"2024-05-{1 + second // 1000:02d} 10:{second % 1000 // 60 % 60:02d}:{second % 60:02d}"
        )
        linkedid = "" if n % 17 == 0 else f"call-{n}"
        for part in range(1 if not linkedid else rng.choice([1, 1, 2, 3])):
            rows.append(leg(n * 10 + part, linkedid, time, direction=rng.choice(["IN", "OUT"])))
    rng.shuffle(rows)
    return rows


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = connect(db_url)
    yield engine
    engine.dispose()


def test_a_call_is_one_row_summarised_over_its_legs(engine: Engine) -> None:
    load(engine, [
        leg(1, "A", "2024-05-01 10:00:00", hold_time=30, ring_time=12, qname="support"),
        leg(2, "A", "2024-05-01 10:00:40", call_status="ANSWERED", billsec=60,
            user_fullname="Ana", recording_file="a.wav", ring_time=5),
        leg(3, "A", "2024-05-01 10:02:00", call_status="ANSWERED", billsec=20,
            transcription_id="t1", direction="INTERNAL"),
        leg(4, "B", "2024-05-01 09:00:00"),
    ])  # fmt: skip
    page = CallLog(engine).page(CallFilters())
    assert [row.key for row in page.rows] == ["A", "B"]
    call = page.rows[0]
    assert (call.legs, call.status, call.user, call.queue) == (3, "ANSWERED", "Ana", "support")
    assert (call.wait, call.ring, call.talk) == (30, 12, 80)
    assert call.recorded and call.transcribed
    assert (call.time, call.direction, call.source) == ("2024-05-01 10:00:00", "IN", "0721000001")
    assert (page.calls, page.legs, page.pages) == (2, 4, 1)
    missed = page.rows[1]
    assert (missed.legs, missed.status, missed.recorded) == (1, "NO ANSWER", False)


def test_the_filters_choose_legs_as_the_api_does(engine: Engine) -> None:
    """A call appears at its first chosen leg, summarised over its chosen legs only."""
    load(engine, [
        leg(1, "A", "2024-05-01 10:00:00"),
        leg(2, "A", "2024-05-01 10:00:40", direction="OUT", call_status="ANSWERED", billsec=9),
    ])  # fmt: skip
    log = CallLog(engine)
    outgoing = parse_filters({"direction": "OUT"}, CallFilters)
    page = log.page(outgoing)
    assert [(row.time, row.legs, row.status) for row in page.rows] == [
        ("2024-05-01 10:00:40", 1, "ANSWERED")
    ]
    assert page.legs == CallPages(engine).fetch(outgoing, 1).row_count == 1


def test_legs_newest_first_with_equal_times_by_id(engine: Engine) -> None:
    rows = load(engine, many_calls(120))
    page = CallLog(engine).page(CallFilters(), grouped=False)
    expected = sorted(rows, key=lambda row: (row["time"], row["id"]), reverse=True)
    assert [row.id for row in page.rows] == [row["id"] for row in expected[:PAGE_SIZE]]


@pytest.fixture(params=["walk", "sort"])
def how(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways a page is read: walking the time index, or sorting the matches."""
    monkeypatch.setattr(calllog, "_WALK_FROM", 0 if request.param == "walk" else 10**9)
    return str(request.param)


def call_keys(rows: list[dict[str, Any]], keep: Any = lambda row: True) -> list[str]:
    """Each call's key, newest first by its first chosen leg: the oracle of the order."""
    firsts: dict[str, tuple[str, int]] = {}
    for row in rows:
        if keep(row):
            key = row["linkedid"] or f"#{row['id']}"
            position = (row["time"], row["id"])
            firsts[key] = min(firsts.get(key, position), position)
    ordered = sorted(firsts.items(), key=lambda item: item[1], reverse=True)
    return [key for key, _ in ordered]


def shown(log: CallLog, page: calllog.LogPage) -> list[str]:
    return [row.key if not row.key.startswith("u") else f"#{row.id}" for row in page.rows]


def test_paging_by_key_loses_and_doubles_no_call(engine: Engine, how: str) -> None:
    rows = load(engine, many_calls(400))
    log = CallLog(engine)
    inbound = parse_filters({"direction": "IN"}, CallFilters)
    for filters, keep in ((CallFilters(), lambda row: True),
                          (inbound, lambda row: row["direction"] == "IN")):  # fmt: skip
        expected = call_keys(rows, keep)
        page = log.page(filters)
        assert page.calls == len(expected) and page.pages == -(-len(expected) // PAGE_SIZE)
        seen, pages = shown(log, page), [page]
        while page.has_next:
            assert page.last is not None
            page = log.page(filters, after=Key.parse(str(page.last)), number=page.number + 1)
            seen += shown(log, page)
            pages.append(page)
        assert seen == expected  # every call once, in order
        assert page.number == page.pages and len(pages) == page.pages
        last = log.page(filters, last=True)
        assert shown(log, last) == shown(log, pages[-1]) and last.number == last.pages
        for number in range(len(pages) - 1, 0, -1):  # back by key to the first page
            assert page.first is not None
            page = log.page(filters, before=page.first, number=number)
            assert shown(log, page) == shown(log, pages[number - 1]), number
        for number, expected_page in enumerate(pages[:3], 1):  # by number (offset)
            assert shown(log, log.page(filters, number=number)) == shown(log, expected_page)


def test_counts_equal_the_api_for_each_filter(engine: Engine, how: str) -> None:
    rows = load(engine, many_calls(150))
    log, api = CallLog(engine), CallPages(engine)
    for raw in ({}, {"direction": "OUT"}, {"telephone_like": "072100001"},
                {"date_between": ["2024-05-02", "2024-05-03"]}, {"project_id": 2}):  # fmt: skip
        filters = parse_filters(raw, CallFilters)
        grouped, legs = log.page(filters), log.page(filters, grouped=False)
        assert grouped.legs == legs.legs == api.fetch(filters, 1).row_count, raw
        chosen = {row["id"] for row in rows} if not raw else None
        if chosen is not None:
            assert grouped.calls == len(call_keys(rows))


def test_the_scope_is_applied(engine: Engine, how: str) -> None:
    rows = load(engine, many_calls(150))
    scoped = narrow(ScopedCallFilters(), project_scope=[2])
    log = CallLog(engine)
    page = log.page(scoped, grouped=False)
    mine = [row for row in rows if row["project_id"] == 2]
    assert page.legs == len(mine)
    seen: list[int] = []
    while True:
        seen += [row.id for row in page.rows]
        if not page.has_next:
            break
        page = log.page(scoped, grouped=False, after=page.last, number=page.number + 1)
    assert sorted(seen) == sorted(row["id"] for row in mine)
    other = next(row for row in rows if row["project_id"] == 1 and row["linkedid"])
    assert log.call(scoped, other["linkedid"]) is None or all(
        found["project_id"] == 2
        for found in log.call(scoped, other["linkedid"]).legs  # type: ignore[union-attr]
    )


def test_a_page_past_the_end_is_the_last_and_an_empty_store_has_one_empty_page(
    engine: Engine,
) -> None:
    log = CallLog(engine)
    empty = log.page(CallFilters())
    assert (empty.rows, empty.calls, empty.pages, empty.number) == ([], 0, 1, 1)
    load(engine, many_calls(80))
    beyond = log.page(CallFilters(), after=Key("2000-01-01 00:00:00", 1), number=99)
    assert beyond.number == beyond.pages and beyond.rows


def test_a_call_has_every_field_of_every_leg_and_its_queue_events(engine: Engine) -> None:
    load(engine, [
        leg(1, "A", "2024-05-01 10:00:00", qname="support", comments="first"),
        leg(2, "A", "2024-05-01 10:00:40", call_status="ANSWERED"),
        leg(3, "", "2024-05-01 11:00:00"),
    ])  # fmt: skip
    events = [[1714557600, "u1", "support", "NONE", "ENTERQUEUE", ["", "0721000001", "1"]]]
    with engine.begin() as conn:
        save_queue_calls(conn, [{"callid": "u1", "events": events, "qname": "support"}])
    log = CallLog(engine)
    call = log.call(CallFilters(), "A")
    assert call is not None and [found["uniqueid"] for found in call.legs] == ["u1", "u2"]
    assert call.legs[0]["comments"] == "first" and "dstchannel" in call.legs[0]
    assert call.queue_events == {"u1": events}
    alone = log.call(CallFilters(), "u3")  # a leg without a linkedid, by its uniqueid
    assert alone is not None and len(alone.legs) == 1
    assert log.call(CallFilters(), "nope") is None


def test_sqlite_plans_use_the_time_index(tmp_path: Path) -> None:
    """A page with many matches walks ix_calls_time backwards (no sort of every match)."""
    engine = connect(f"sqlite:///{tmp_path / 's.db'}")
    load(engine, many_calls(200))
    inbound = parse_filters({"direction": "IN"}, CallFilters)
    log = CallLog(engine)
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        seen.append(sql)

    event.listen(engine, "before_cursor_execute", record)
    original = calllog._WALK_FROM
    try:
        calllog._WALK_FROM = 0
        log.page(inbound)
    finally:
        calllog._WALK_FROM = original
        event.remove(engine, "before_cursor_execute", record)
    walks = [sql for sql in seen if "INDEXED BY ix_calls_time" in sql]
    assert walks
    with sqlite3.connect(tmp_path / "s.db") as conn:
        plan = conn.execute(
            "EXPLAIN QUERY PLAN "
            + walks[0]
            .replace("?", "'IN'", 1)
            .replace("LIMIT ?", "LIMIT 5")
            .replace("OFFSET ?", "OFFSET 0")
        ).fetchall()
    steps = " | ".join(str(step[-1]) for step in plan)
    assert "ix_calls_time" in steps and "TEMP B-TREE" not in steps, steps
    engine.dispose()
