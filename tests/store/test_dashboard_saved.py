"""The dashboard's figures of days saved in the store (store/dashboard_saved.py,
dashboard_days.py), on SQLite and PostgreSQL: a new reader (a restarted server, another
worker: its own engine, nothing in memory) reads the saved days and counts none, with
every figure equal to Python's over the stored rows; after each kind of write it counts
only the days written (and those a call that came to span days makes stale); a write
made while a reader counts (after it read the marks, before it saved) never leaves a
stale day that looks good; two workers on one PostgreSQL store, also at once, stay
right; two threads of one reader (the warm-up and a view) never count a day both, and
are right; a store made before the table gets it when opened."""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, event, inspect, select, text, update

from cdrapi.protocol.filters import CallFilters, parse_filters
from cdrapi.store.dashboard import DashboardReader
from cdrapi.store.dashboard_saved import dashboard_days
from cdrapi.store.engine import connect
from cdrapi.store.schema import calls
from tests.data import load
from tests.store.test_dashboard import NOW, legs
from tests.store.test_dashboard_days import (
    PERIODS,
    WEEK,
    add_legs,
    agrees,
    midnight_calls,
    write,
)


@pytest.fixture
def engines(db_url: str) -> Iterator[Callable[[], Engine]]:
    """Engines on one store, each as a server process (or worker) of its own would have."""
    made: list[Engine] = []

    def new() -> Engine:
        made.append(connect(db_url))
        return made[-1]

    yield new
    for engine in made:
        engine.dispose()


def saved_rows(engine: Engine) -> int:
    with engine.connect() as conn:
        return len(conn.execute(select(dashboard_days.c.day)).all())


def test_a_new_reader_reads_the_saved_days_and_counts_none(
    engines: Callable[[], Engine],
) -> None:
    first = engines()
    load(first, legs(500, seed=3))
    reader = DashboardReader(first)
    for filters in PERIODS:
        agrees(first, reader, filters)
    assert reader.read_days > 0 and saved_rows(first) >= 10
    for _ in range(2):  # a restart, then another worker
        engine = engines()
        again = DashboardReader(engine)
        for filters in PERIODS:
            before = again.read_days
            agrees(engine, again, filters)
            # a search by direction is kept in memory only: its 7 days are counted
            assert again.read_days - before == (7 if "direction" in filters else 0)


def test_a_search_by_number_is_not_saved(engines: Callable[[], Engine]) -> None:
    engine = engines()
    load(engine, legs(200, seed=4))
    DashboardReader(engine).figures(
        parse_filters({**WEEK, "telephone_like": "0721*"}, CallFilters), NOW
    )
    assert saved_rows(engine) == 0


def test_after_each_kind_of_write_a_new_reader_counts_only_the_days_written(
    engines: Callable[[], Engine],
) -> None:
    engine = engines()
    rows = load(engine, legs(500, seed=3))
    for filters in PERIODS:
        agrees(engine, DashboardReader(engine), filters)
    missed = next(row for row in rows if row["is_recovered"] == 0 and row["linkedid"])
    later = next(row for row in rows if row["time"] < "2024-05-06" and row["linkedid"] == "")
    changes: list[tuple[Any, int]] = [  # (the write, days of WEEK it changes)
        (update(calls).where(calls.c.linkedid == missed["linkedid"]).values(is_recovered=1), 1),
        (update(calls).where(calls.c.id == rows[7]["id"]).values(hold_time=999, qname="late"), 1),
        (update(calls).where(calls.c.id == later["id"]).values(time="2024-05-06 23:59:59"), 2),
    ]
    for change, written in changes:
        write(engine, change)
        reader = DashboardReader(engines())
        agrees(engine, reader, WEEK)
        assert reader.read_days == written
        for filters in PERIODS:  # (and the saved days of the other periods are right)
            agrees(engine, DashboardReader(engines()), filters)
    # legs added (no mark on SQLite: found by their ids): a call of its own, and a leg that
    # makes a call of 2024-05-02 span to the 4th (whose saved day then counts it wrongly)
    add_legs(engine, rows)
    reader = DashboardReader(engines())
    agrees(engine, reader, WEEK)
    assert reader.read_days == 3  # the 3rd and 4th, then the 2nd, found stale
    for filters in PERIODS:
        agrees(engine, DashboardReader(engines()), filters)
    write(engine, calls.delete().where(calls.c.id == rows[20]["id"]))  # every day again
    reader = DashboardReader(engines())
    agrees(engine, reader, WEEK)
    assert reader.read_days == 10


def test_a_day_saved_before_its_call_spanned_midnight_is_counted_again(
    engines: Callable[[], Engine],
) -> None:
    """A leg added on the 3rd to a call of the 2nd: a reader of the 3rd alone saves the 3rd
    (listing the call), the 2nd stays saved as it was (counting the call as the 2nd's);
    a new reader of both days finds the 2nd stale from the 3rd's list."""
    engine = engines()
    rows = load(engine, midnight_calls())
    both = {"date_between": ["2024-05-02", "2024-05-03"]}
    agrees(engine, DashboardReader(engine), both)
    alone = next(
        row for row in rows if row["linkedid"].startswith("day-") and "05-02" in row["time"]
    )
    template = {key: value for key, value in alone.items() if key != "id"}
    load(engine, [{**template, "uniqueid": "late.1", "time": "2024-05-03 09:00:00",
                   "call_status": "ANSWERED", "billsec": 40}])  # fmt: skip
    agrees(engine, DashboardReader(engines()), {"date_between": ["2024-05-03", "2024-05-03"]})
    reader = DashboardReader(engines())
    agrees(engine, reader, both)
    agrees(engine, reader, {"date_between": ["2024-05-01", "2024-05-05"]})


def test_a_write_while_a_reader_counts_never_leaves_a_stale_day(
    engines: Callable[[], Engine],
) -> None:
    """As the reader reads the marks (its snapshot taken), a leg of the 3rd is updated and
    one is added to the 4th, committed, before it counts; it saves what it counted. A new
    reader counts those two days again, and is right; so is the first reader after."""
    engine, other = engines(), engines()
    rows = load(engine, legs(500, seed=7))
    on_3rd = next(row for row in rows if row["time"].startswith("2024-05-03"))
    template = {key: value for key, value in rows[0].items() if key != "id"}
    written: list[bool] = []

    def meanwhile(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if written or "FROM dashboard_marks" not in statement:
            return  # (the marks are read: the snapshot is taken)
        written.append(True)
        write(other, update(calls).where(calls.c.id == on_3rd["id"]).values(billsec=3333))
        load(other, [{**template, "uniqueid": "meanwhile", "linkedid": "meanwhile",
                      "time": "2024-05-04 11:00:00", "call_status": "ANSWERED",
                      "billsec": 12, "is_recovered": None}])  # fmt: skip

    reader = DashboardReader(engine)
    event.listen(engine, "after_cursor_execute", meanwhile)
    reader.figures(parse_filters(WEEK, CallFilters), NOW)  # (the figures before the writes)
    event.remove(engine, "after_cursor_execute", meanwhile)
    assert written and saved_rows(engine) > 0
    fresh = DashboardReader(engines())
    agrees(engine, fresh, WEEK)
    assert fresh.read_days == 2  # (and saves them)
    before = reader.read_days
    agrees(engine, reader, WEEK)
    assert reader.read_days == before  # its two stale days: read as the other saved them


@pytest.mark.parametrize("backend", ["postgresql"])
def test_two_workers_on_one_postgresql_store_stay_right(
    engines: Callable[[], Engine], backend: str
) -> None:
    one, two = engines(), engines()
    rows = load(one, legs(600, seed=8))
    first, second = DashboardReader(one), DashboardReader(two)
    failures: list[BaseException] = []

    def view(reader: DashboardReader) -> None:
        try:
            reader.figures(parse_filters(WEEK, CallFilters), NOW)
        except BaseException as exc:  # (reported below)
            failures.append(exc)

    workers = [threading.Thread(target=view, args=(reader,)) for reader in (first, second)]
    for worker in workers:  # both count the same days at once, and save them
        worker.start()
    for worker in workers:
        worker.join()
    assert not failures
    with one.connect() as conn:
        saved = conn.execute(text("SELECT count(*), count(DISTINCT day) FROM dashboard_days"))
        assert tuple(saved.one()) == (10, 10)
    for n, row in enumerate(rows[:16:4]):  # writes through one worker, read by both
        writer = one if n % 2 else two
        write(writer, update(calls).where(calls.c.id == row["id"]).values(billsec=n + 1000))
        for reader in (first, second):
            for filters in PERIODS:
                agrees(one, reader, filters)
    third = DashboardReader(engines())
    for filters in PERIODS[:3]:  # (the saved searches)
        agrees(one, third, filters)
    assert third.read_days == 0


def test_two_threads_of_one_reader_count_each_day_once(engines: Callable[[], Engine]) -> None:
    """While one thread counts the 1st to the 7th (paused in its statement), another asks
    for the 4th to the 9th: it counts the 8th and 9th, waits for the 4th to the 7th and
    takes them as the first counted them. Every day is counted once; both are right."""
    engine = engines()
    load(engine, legs(500, seed=9))
    reader = DashboardReader(engine)
    inside, go = threading.Event(), threading.Event()
    first = {"date_between": ["2024-05-01", "2024-05-07"]}
    second = {"date_between": ["2024-05-04", "2024-05-09"]}

    def pause(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if threading.current_thread().name == "first" and "user_fullname" in statement:
            inside.set()
            assert go.wait(30)

    event.listen(engine, "before_cursor_execute", pause)
    counting = threading.Thread(
        target=reader.count, args=(parse_filters(first, CallFilters),), name="first"
    )
    counting.start()
    assert inside.wait(30)
    assert reader.counting(parse_filters(second, CallFilters))  # (the 4th to the 7th)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        asked = pool.submit(agrees, engine, reader, second)  # (raises if wrong)
        time.sleep(0.5)
        assert not asked.done()  # waiting for the first thread's days
        go.set()
        asked.result(30)
    counting.join(30)
    assert not counting.is_alive()
    assert reader.read_days == 9  # the 1st to the 9th, once each
    event.remove(engine, "before_cursor_execute", pause)
    for filters in (first, second):
        agrees(engine, reader, filters)
    assert reader.read_days == 9


def test_a_store_made_before_the_saved_days_gets_them(
    engines: Callable[[], Engine], db_url: str
) -> None:
    engine = engines()
    load(engine, legs(100, seed=1))
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE dashboard_days"))
    engine.dispose()
    opened = engines()  # connect() makes the schema's missing tables
    assert inspect(opened).has_table("dashboard_days")
    with opened.begin() as conn:
        conn.execute(text("DROP TABLE dashboard_days"))
    bare = connect(db_url, create=False)  # (no schema made: the reader makes its table)
    try:
        agrees(bare, DashboardReader(bare), WEEK)
        assert saved_rows(bare) == 10
    finally:
        bare.dispose()
