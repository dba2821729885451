"""The dashboard's figures kept day by day (store/dashboard.py, dashboard_parts.py,
dashboard_marks.py), on SQLite and PostgreSQL: one reader asked again after each kind of
write (legs added to a day, a missed call called back, a call that comes to span
midnight, a leg moved to another day, a leg deleted) answers what Python counts over
the stored rows then; calls crossing midnight count once, at their first chosen leg,
whatever period is asked; a period with times of day is read whole."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, select, text, update

from cdrapi.protocol.filters import CallFilters, parse_filters
from cdrapi.store.dashboard import DashboardReader
from cdrapi.store.engine import bump_version, connect
from cdrapi.store.schema import calls
from tests.data import load, oracle
from tests.store.test_dashboard import NOW, check, days, expected, legs

WEEK = {"date_between": ["2024-04-30", "2024-05-09"]}


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = connect(db_url)
    yield engine
    engine.dispose()


def stored(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(row) for row in conn.execute(select(calls)).mappings()]


def unit_of(filters: dict[str, Any]) -> str:
    first, last = (dt.date.fromisoformat(end[:10]) for end in filters["date_between"])
    return "hour" if (last - first).days < 3 else "day"


def agrees(engine: Engine, reader: DashboardReader, filters: dict[str, Any]) -> None:
    """The reader's figures of ``filters`` equal Python's over the rows stored now."""
    board = reader.figures(parse_filters(filters, CallFilters), NOW)
    chosen = [row for row in stored(engine) if oracle(row, filters)]
    unit = unit_of(filters)
    assert board.unit == unit
    first, last = (end[:10] for end in filters["date_between"])
    check(board, expected(chosen, unit, days(first, last)))


def write(engine: Engine, statement: Any) -> None:
    with engine.begin() as conn:
        conn.execute(statement)
        bump_version(conn)


PERIODS = [
    WEEK,
    {"date_between": ["2024-05-02", "2024-05-04"]},
    {"date_between": ["2024-05-03", "2024-05-03"]},  # one day: per hour
    {"date_between": ["2024-05-01", "2024-05-07"], "direction": "IN"},
]


def test_one_reader_follows_every_write(engine: Engine) -> None:
    rows = load(engine, legs(500, seed=3))
    reader = DashboardReader(engine)
    for filters in PERIODS:
        agrees(engine, reader, filters)
    missed = next(row for row in rows if row["is_recovered"] == 0 and row["linkedid"])
    changes = [
        # a missed call called back (recovery's update of is_recovered)
        update(calls).where(calls.c.linkedid == missed["linkedid"]).values(is_recovered=1),
        # a queue's wait copied onto a leg (queue_log after the CDR)
        update(calls).where(calls.c.id == rows[7]["id"]).values(hold_time=999, qname="late"),
        # a leg moved to another day (rederive)
        update(calls).where(calls.c.id == rows[11]["id"]).values(time="2024-05-06 23:59:59"),
    ]
    for change in changes:
        write(engine, change)
        for filters in PERIODS:
            agrees(engine, reader, filters)
    # legs added: a new call, and a leg that makes a call of 2024-05-02 span to the 4th
    add_legs(engine, rows)
    for filters in PERIODS:
        agrees(engine, reader, filters)
    write(engine, calls.delete().where(calls.c.id == rows[20]["id"]))
    for filters in PERIODS:
        agrees(engine, reader, filters)


def midnight_calls() -> list[dict[str, Any]]:
    """Calls whose legs cross midnight (the first leg before, the answered one after),
    around calls that do not."""
    found = []
    for n in range(40):
        day = 1 + n % 4
        before = f"2024-05-0{day} 23:{50 + n % 10}:00"
        after = f"2024-05-0{day + 1} 00:0{n % 10}:30"
        base = {
            "uniqueid": f"x{n}.0", "linkedid": f"cross-{n}", "time": before,
            "caller_id": "", "source": f"07{n:08d}", "destination": "100",
            "direction": "IN", "call_status": "NO ANSWER", "qname": "support",
            "hold_time": 10 + n, "billsec": 0, "duration": 60, "ring_time": 2,
            "user_id": None, "user_fullname": None, "is_recovered": None,
        }  # fmt: skip
        found.append(base)
        found.append({**base, "uniqueid": f"x{n}.1", "time": after, "direction": "INTERNAL",
                      "call_status": "ANSWERED" if n % 3 else "BUSY", "billsec": 30 + n,
                      "user_id": 10, "user_fullname": "Ana Pop",
                      "is_recovered": None if n % 3 else 0})  # fmt: skip
        found.append({**base, "uniqueid": f"y{n}", "linkedid": f"day-{n}",
                      "time": f"2024-05-0{day} 12:00:{n % 60:02d}"})  # fmt: skip
    return found


@pytest.mark.parametrize(
    "filters",
    [
        {"date_between": ["2024-05-01", "2024-05-05"]},
        {"date_between": ["2024-05-02", "2024-05-02"]},  # the second legs of the 1st's calls
        {"date_between": ["2024-05-02", "2024-05-03"]},
        {"date_between": ["2024-05-01", "2024-05-05"], "call_status": "ANSWERED"},
    ],
)
def test_a_call_across_midnight_counts_once_at_its_first_chosen_leg(
    engine: Engine, filters: dict[str, Any]
) -> None:
    load(engine, midnight_calls())
    reader = DashboardReader(engine)
    agrees(engine, reader, {"date_between": ["2024-05-01", "2024-05-05"]})  # days kept
    agrees(engine, reader, filters)
    agrees(engine, reader, filters)  # again, from what was kept


def test_a_period_with_times_of_day_is_read_whole(engine: Engine) -> None:
    load(engine, legs(400, seed=11))
    reader = DashboardReader(engine)
    filters = {"date_between": ["2024-05-02 10:30", "2024-05-05 15:00:59"]}
    agrees(engine, reader, filters)
    board = reader.figures(parse_filters(filters, CallFilters), NOW)
    assert board.calls > 50


def test_the_store_marks_the_days_it_writes(engine: Engine) -> None:
    """The triggers: an update marks its leg's day (before and after a move); on
    PostgreSQL an insert marks its days too."""
    rows = load(engine, legs(50, seed=2))
    DashboardReader(engine).figures(CallFilters(), NOW)  # creates the marks if missing
    write(
        engine, update(calls).where(calls.c.id == rows[0]["id"]).values(time="2024-06-01 10:00:00")
    )
    with engine.connect() as conn:
        marks = dict(conn.execute(text("SELECT day, changes FROM dashboard_marks")).all())
    assert marks["2024-06-01"] >= 1 and marks[rows[0]["time"][:10]] >= 1


def add_legs(engine: Engine, rows: list[dict[str, Any]]) -> None:
    """Two legs more: a call of its own on 2024-05-03, and a leg on the 4th of a call of
    2024-05-02 (which then spans the days between)."""
    earlier = next(row for row in rows if row["linkedid"] and row["time"].startswith("2024-05-02"))
    template = {key: value for key, value in rows[0].items() if key != "id"}
    load(engine, [
        {**template, "uniqueid": "new.1", "linkedid": "new-call", "time": "2024-05-03 10:00:00",
         "call_status": "ANSWERED", "billsec": 77, "is_recovered": None},
        {**template, "uniqueid": "new.2", "linkedid": earlier["linkedid"],
         "time": "2024-05-04 08:00:00", "call_status": "ANSWERED", "billsec": 5,
         "direction": "OUT", "is_recovered": None},
    ])  # fmt: skip
