"""The recovery UPDATEs (:mod:`cdrapi.store.recovery`) use an index that fits them,
whatever the statistics say (issue 8, item 11): after an interrupted first import, SQLite
without ``sqlite_stat1`` planned the callback UPDATE through ``ix_calls_direction``, a
scan of most of the table per call.

The statements checked are the ones an import really runs (captured as it runs), planned
with the statistics missing and with statistics that call the wrong indexes selective.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, text

from cdrapi.ingest import ingest_csv
from cdrapi.ingest.recovery import ELSEWHERE
from cdrapi.store.bulk import ensure_indexes
from cdrapi.store.calls import insert_calls
from cdrapi.store.engine import connect
from cdrapi.store.recovery import recovery_sql
from tests.ingest.conftest import append, rows

#: The recovery statements an import runs, by dialect and name.
RECOVERY_SQL = recovery_sql(ELSEWHERE)

# indexes that do not fit a recovery UPDATE (they narrow it to a share of the table)
UNFIT = ("ix_calls_direction", "ix_calls_call_status", "ix_calls_time")
# what each statement must be found through
FIT = {
    "mark": "sqlite_autoindex_calls_1 (source_key=?)",
    "clear": "sqlite_autoindex_calls_1 (source_key=?)",
    "called_back": "ix_calls_source (source=?)",
    "answered_now": "ix_calls_linkedid (linkedid=?)",
    "answered_before": "ix_calls_linkedid (linkedid=?)",
}
MISSED_NUMBERS = 2000


def line(n: int, src: str, dst: str, status: str, when: str, inbound: bool = True) -> str:
    """A 21-column cdr_csv line: inbound from the trunk to 101, or 101 out to ``dst``."""
    uid = f"1710480000.{n}"
    chan, dchan = ("PJSIP/orange", "PJSIP/101") if inbound else ("PJSIP/101", "PJSIP/orange")
    bill = 30 if status == "ANSWERED" else 0
    answer = f'"{when}"' if bill else ""
    return (
        f'"","{src}","{dst}","{"from-pstn" if inbound else "from-internal"}",'
        f'"""Caller"" <{src}>","{chan}-{n:08x}","{dchan}-{n + 1:08x}","Dial","{dchan},30",'
        f'"{when}",{answer},"{when}",{bill + 5},{bill},"{status}","DOCUMENTATION",'
        f'"{uid}","","","{uid}",{n}\n'
    )


def stored_calls(master: Path) -> None:
    """20,000 calls of one day, nine in ten inbound (direction = 'IN' narrows nothing):
    2,000 missed calls from as many numbers, the rest answered."""
    lines = []
    for n in range(20_000):
        when = f"2024-03-14 {8 + n // 2000:02d}:{n // 40 % 50:02d}:{n % 40:02d}"
        if n % 10 == 0:
            lines.append(line(n, f"07{n:08d}", "0312285000", "NO ANSWER", when))
        elif n % 10 == 1:
            lines.append(line(n, "101", f"0744{n:06d}", "ANSWERED", when, inbound=False))
        else:
            lines.append(line(n, f"0745{n:06d}", "0312285000", "ANSWERED", when))
    append(master, *lines)


def callbacks(master: Path) -> None:
    """2,000 new calls the next morning: each missed caller called back (by 101) or
    calling again and answered."""
    lines = []
    for k in range(MISSED_NUMBERS):
        n, when = 10 * k, f"2024-03-15 07:{k // 60 % 60:02d}:{k % 60:02d}"
        if k % 2:
            lines.append(line(30_000 + k, "101", f"07{n:08d}", "ANSWERED", when, inbound=False))
        else:
            lines.append(line(30_000 + k, f"07{n:08d}", "0312285000", "ANSWERED", when))
    append(master, *lines)


def missing(db: sqlite3.Connection) -> None:
    db.execute("DELETE FROM sqlite_stat1")


def misleading(db: sqlite3.Connection) -> None:
    """Statistics that say the wrong indexes are selective, and the right ones not."""
    total = db.execute("SELECT count(*) FROM calls").fetchone()[0]
    db.execute("DELETE FROM sqlite_stat1")
    for index in ("ix_calls_direction", "ix_calls_call_status"):
        db.execute("INSERT INTO sqlite_stat1 VALUES ('calls', ?, ?)", (index, f"{total} 1"))
    db.execute("INSERT INTO sqlite_stat1 VALUES ('calls', 'ix_calls_time', ?)", (f"{total} 1 1",))
    db.execute("INSERT INTO sqlite_stat1 VALUES ('calls', 'ix_calls_source', ?)", (f"{total} 50",))


def plan(db_path: Path, sql: str, params: Any) -> list[str]:
    db = sqlite3.connect(db_path)  # a new connection: the statistics as they are now
    try:
        return [r[3] for r in db.execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall()]
    finally:
        db.close()


@pytest.mark.parametrize("statistics", [missing, misleading])
def test_the_updates_of_a_later_import_use_fitting_indexes(tmp_path: Path, statistics: Any) -> None:
    db_path = tmp_path / "store.db"
    store = connect(f"sqlite:///{db_path}")
    master = tmp_path / "Master.csv"
    stored_calls(master)
    ingest_csv(store, [master])  # a bulk load: indexes built, ANALYZE run
    store.dispose()
    db = sqlite3.connect(db_path)
    statistics(db)
    db.commit()
    db.close()
    updates: list[tuple[str, Any]] = []

    def seen(_conn: Any, _cursor: Any, sql: str, params: Any, _context: Any, many: bool) -> None:
        if sql.startswith("UPDATE calls") and "is_recovered" in sql:
            updates.append((sql, params[0] if many else params))

    store = connect(f"sqlite:///{db_path}")
    event.listen(store, "before_cursor_execute", seen)
    callbacks(master)
    summary = ingest_csv(store, [master])
    assert summary.stored == MISSED_NUMBERS
    recovered = rows(store, "is_recovered", where=text("is_recovered IS NOT NULL"))
    assert recovered == [(1,)] * MISSED_NUMBERS  # every missed call called back
    store.dispose()
    assert {sql for sql, _ in updates} >= {RECOVERY_SQL["sqlite"]["called_back"]}
    db = sqlite3.connect(db_path)
    statistics(db)  # as the run found them (it may have gathered them again)
    db.commit()
    db.close()
    for sql, params in updates:
        steps = plan(db_path, sql, params)
        assert not [s for s in steps if any(index in s for index in UNFIT)], (sql, steps)
        assert not [s for s in steps if s.startswith("SCAN")], (sql, steps)
        names = [name for name, known in RECOVERY_SQL["sqlite"].items() if known == sql]
        assert names, sql
        assert any(FIT[names[0]] in s for s in steps), (sql, steps)


def test_each_sqlite_statement_without_statistics(tmp_path: Path) -> None:
    """Every recovery statement, planned on a store with no statistics at all."""
    db_path = tmp_path / "store.db"
    store = connect(f"sqlite:///{db_path}")
    master = tmp_path / "Master.csv"
    append(master, *(line(n, f"07{n:08d}", "0312285000", "NO ANSWER", "2024-03-14 09:00:00")
                     for n in range(50)))  # fmt: skip
    ingest_csv(store, [master])
    store.dispose()
    db = sqlite3.connect(db_path)
    db.execute("DROP TABLE IF EXISTS sqlite_stat1")
    db.commit()
    db.close()
    for name, sql in RECOVERY_SQL["sqlite"].items():
        steps = plan(db_path, sql, [""] * sql.count("?"))
        assert any(FIT[name] in s for s in steps), (name, steps)
        assert not [s for s in steps if any(index in s for index in UNFIT)], (name, steps)


def test_postgresql_plans_fit_without_statistics_too(postgres: Any) -> None:
    """PostgreSQL plans a table never analysed much as SQLite without statistics: the
    callback went through ix_calls_direction. Analysed or not, no statement uses an
    index that does not fit it, and the callback goes through ix_calls_source."""
    store: Engine = connect(postgres.new_database())
    stored = [
        {"source": f"07{i % 5000:08d}", "destination": "0312285000", "direction": "IN",
         "time": f"2024-03-{1 + i % 28:02d} 10:00:00", "call_status": "NO ANSWER",
         "linkedid": f"1710000000.{i}", "is_recovered": 0, "source_key": f"k{i}"}
        for i in range(20_000)
    ]  # fmt: skip
    ensure_indexes(store)
    insert_calls(store, stored)
    params = {"key": "k5", "number": "0700000005", "since": "2024-03-01 00:00:00",
              "until": "2024-03-02", "first": 19_000}  # fmt: skip
    for analyse in (False, True):
        with store.begin() as conn:
            if analyse:
                conn.exec_driver_sql("ANALYZE calls")
            for name, sql in RECOVERY_SQL["postgresql"].items():
                steps = conn.execute(text(f"EXPLAIN {sql}"), params).scalars().all()
                assert not any(index in s for s in steps for index in UNFIT), (name, steps)
                if name == "called_back":
                    assert any("ix_calls_source" in s for s in steps), steps
    store.dispose()
