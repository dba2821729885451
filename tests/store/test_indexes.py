"""Indexes and the planner's statistics after an interrupted bulk load (issue 8, item 11).

A first import into an empty store drops the secondary indexes and builds them at its
end. Killed (or stopped by a full disk) before that end, it leaves them missing; the next
run builds them. Without statistics, SQLite then planned the ``is_recovered`` update
(``source = ? AND time ... AND direction = 'IN'``) through ``ix_calls_direction``: a scan
of half the table per statement, 923 lines in 120 s on a million calls. These tests
check that every path that builds indexes leaves the statistics right, and that the
check made at the start of every import costs nothing when nothing is missing.

The lines are cdr_csv's 21 columns (``Master.csv`` with ``loguniqueid`` and
``loguserfield``), written here: calls in and out through a trunk and between
extensions, from a few thousand outside numbers, a third of the inbound ones unanswered.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event

from cdrapi.store.bulk import bulk_load, ensure_indexes
from cdrapi.store.calls import write_batch
from cdrapi.store.engine import connect
from cdrapi.store.schema import SECONDARY_INDEXES
from cdrapi.store.search import suspend_search_index
from tests.conftest import PostgresServer

ROOT = Path(__file__).parents[2]
NAMES = {str(index.name) for index in SECONDARY_INDEXES}

#: The statement shape of the ``is_recovered`` update for calls returned later.
CALLED_BACK = (
    "UPDATE calls SET is_recovered = 1 WHERE source = ? AND time >= ? AND time < ? "
    "AND direction = 'IN' AND is_recovered = 0"
)


def pbx_line(n: int) -> str:
    """Call ``n`` of a busy PBX day, as cdr_csv writes it (times 7 s apart)."""
    start = dt.datetime(2024, 3, 4, 8) + dt.timedelta(seconds=7 * n)
    number = f"07{(n * 7919) % 3000:08d}"
    ext = str(100 + n % 40)
    kind = n % 10
    if kind < 5:  # inbound from the trunk
        src, dst, context = number, ext, "from-pstn"
        channel, peer = f"PJSIP/trunk-{n:08x}", f"PJSIP/{ext}-{n + 1:08x}"
    elif kind < 8:
        src, dst, context = ext, number, "from-internal"
        channel, peer = f"PJSIP/{ext}-{n:08x}", f"PJSIP/trunk-{n + 1:08x}"
    else:
        src, dst, context = ext, str(100 + (n + 1) % 40), "from-internal"
        channel, peer = f"PJSIP/{ext}-{n:08x}", f"PJSIP/{dst}-{n + 1:08x}"
    answered = n % 3 != 0
    bill = 20 + n % 300 if answered else 0
    stamp = start.strftime("%Y-%m-%d %H:%M:%S")
    answer = f'"{(start + dt.timedelta(seconds=4)):%Y-%m-%d %H:%M:%S}"' if answered else ""
    end = f"{start + dt.timedelta(seconds=4 + bill):%Y-%m-%d %H:%M:%S}"
    status = "ANSWERED" if answered else "NO ANSWER"
    uid = f"1709539200.{n}"
    return (
        f'"","{src}","{dst}","{context}","""Caller {n}"" <{src}>","{channel}","{peer}",'
        f'"Dial","{peer.rsplit("-", 1)[0]},30","{stamp}",{answer},"{end}",{4 + bill},'
        f'{bill},"{status}","DOCUMENTATION","{uid}","","","{uid}",0\n'
    )


def write_lines(path: Path, numbers: range) -> None:
    path.write_text("".join(pbx_line(n) for n in numbers))


def cli(db: Path, *args: str) -> subprocess.Popen[bytes]:
    """``cdrapi ingest csv`` in its own process group (its parsing process dies with it)."""
    return subprocess.Popen(
        [sys.executable, "-c", "from cdrapi.cli import main; main()", "ingest", "csv",
         "--db", f"sqlite:///{db}", "--rejects", str(db.parent / "rejects.txt"), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])},
    )  # fmt: skip


def stored(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=10) as conn:
            return int(conn.execute("SELECT count(*) FROM calls").fetchone()[0])
    except sqlite3.OperationalError:  # not created yet
        return 0


def sqlite_indexes(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}


def analysed(db: Path) -> dict[str, str]:
    """``sqlite_stat1`` rows of the ``calls`` indexes: index name -> statistics."""
    with sqlite3.connect(db) as conn:
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").fetchone():
            return {}
        found = conn.execute("SELECT idx, stat FROM sqlite_stat1 WHERE tbl = 'calls'")
        return {str(name): str(stat) for name, stat in found}


def plan(db: Path, sql: str = CALLED_BACK) -> str:
    with sqlite3.connect(db) as conn:
        steps = conn.execute(f"EXPLAIN QUERY PLAN {sql}", ("0700000001", "a", "b")).fetchall()
    return " | ".join(str(step[-1]) for step in steps)


def test_the_run_after_a_killed_first_import_plans_with_statistics(tmp_path: Path) -> None:
    """The real thing: ``cdrapi ingest csv`` killed mid bulk load, then the next import."""
    total = 80_000
    first, second, db = tmp_path / "Master.csv", tmp_path / "Master-next.csv", tmp_path / "s.db"
    write_lines(first, range(total))
    killed = cli(db, str(first))
    deadline = time.monotonic() + 60
    while stored(db) == 0 and time.monotonic() < deadline and killed.poll() is None:
        time.sleep(0.005)
    os.killpg(killed.pid, signal.SIGKILL)
    killed.communicate(timeout=30)
    left = stored(db)
    assert 0 < left < total, left  # really killed half way through the bulk load
    assert not NAMES & sqlite_indexes(db) and not analysed(db)  # as it leaves the store

    write_lines(second, range(total, total + 5000))  # the next file: 5,000 more calls
    started = time.monotonic()
    run = cli(db, str(second))
    _, err = run.communicate(timeout=120)
    took = time.monotonic() - started
    assert run.returncode == 0, err.decode()
    assert stored(db) == left + 5000
    assert sqlite_indexes(db) >= NAMES
    assert set(analysed(db)) >= NAMES  # before: no sqlite_stat1 at all
    assert "ix_calls_source" in plan(db) and "ix_calls_direction" not in plan(db)
    assert took < 60, took  # about 2 s here; before, minutes on a big store


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return connect(f"sqlite:///{tmp_path / 'store.db'}")


def database_file(engine: Engine) -> Path:
    with engine.connect() as conn:
        return Path(conn.exec_driver_sql("PRAGMA database_list").all()[0][2])


COLUMNS = ("source_key", "uniqueid", "time", "source", "destination", "direction", "call_status")


def rows(numbers: range) -> list[tuple[Any, ...]]:
    """Calls as the ingestion writes them: most share a direction, sources vary."""
    return [
        (
            f"k{n}",
            f"1709539200.{n}",
            f"2024-03-04 {8 + n // 3600 % 12:02d}:{n // 60 % 60:02d}:{n % 60:02d}",
            f"07{(n * 7919) % 3000:08d}",
            "0312285000",
            "IN" if n % 10 < 7 else "OUT",
            "ANSWERED",
        )
        for n in numbers
    ]


def interrupt_bulk_load(engine: Engine, numbers: range) -> None:
    """What a bulk load killed half way leaves: its first step (indexes and statistics
    dropped, the search suspended, in one transaction as :func:`bulk_load` does), then
    committed batches, and never its end."""
    with engine.begin() as conn:
        for index in SECONDARY_INDEXES:
            index.drop(conn, checkfirst=True)
        suspend_search_index(conn)
    write_batch(engine, COLUMNS, rows(numbers))


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    """The SQL statements ``engine`` runs meanwhile."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        seen.append(sql)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_ensure_indexes_after_an_interrupted_bulk_load_gathers_statistics(
    engine: Engine,
) -> None:
    interrupt_bulk_load(engine, range(3000))
    db = database_file(engine)
    assert not NAMES & sqlite_indexes(db)
    ensure_indexes(engine)
    assert sqlite_indexes(db) >= NAMES and "calls_numbers_ai" in sqlite_indexes(db)
    assert set(analysed(db)) >= NAMES
    assert "ix_calls_source" in plan(db)


def test_ensure_indexes_heals_a_store_left_without_statistics(engine: Engine) -> None:
    """A store whose indexes an older version rebuilt without ``ANALYZE``."""
    interrupt_bulk_load(engine, range(3000))
    with engine.begin() as conn:  # the rebuild as it was: no statistics
        for index in SECONDARY_INDEXES:
            index.create(conn)
    db = database_file(engine)
    assert not analysed(db) and "ix_calls_direction" in plan(db)  # the slow plan
    ensure_indexes(engine)
    assert set(analysed(db)) >= NAMES
    assert "ix_calls_source" in plan(db)


def test_ensure_indexes_does_not_analyse_when_nothing_is_missing(engine: Engine) -> None:
    with bulk_load(engine):
        write_batch(engine, COLUMNS, rows(range(2000)))
    db = database_file(engine)
    before = analysed(db)
    assert set(before) >= NAMES
    write_batch(engine, COLUMNS, rows(range(2000, 6000)))  # grown threefold: still fine
    with statements(engine) as seen:
        ensure_indexes(engine)
    assert not [sql for sql in seen if "ANALYZE" in sql.upper() or "CREATE INDEX" in sql]
    assert analysed(db) == before
    write_batch(engine, COLUMNS, rows(range(6000, 25_000)))  # tenfold: taken again
    ensure_indexes(engine)
    assert analysed(db) != before and "ix_calls_source" in plan(db)


def test_ensure_indexes_on_an_empty_store_does_nothing(engine: Engine) -> None:
    with statements(engine) as seen:
        ensure_indexes(engine)
    assert not [sql for sql in seen if "ANALYZE" in sql.upper()]


def test_bulk_load_ends_with_statistics_even_when_it_fails(engine: Engine) -> None:
    with pytest.raises(RuntimeError), bulk_load(engine):
        write_batch(engine, COLUMNS, rows(range(3000)))
        raise RuntimeError("the parsing process died")
    db = database_file(engine)
    assert set(analysed(db)) >= NAMES and "ix_calls_source" in plan(db)


def pg_analysed(engine: Engine) -> bool:
    """Whether PostgreSQL has column statistics for ``calls``."""
    with engine.connect() as conn:
        found = conn.exec_driver_sql(
            "SELECT count(*) FROM pg_stats WHERE tablename = 'calls' AND attname = 'source'"
        ).scalar()
    return bool(found)


def test_ensure_indexes_on_postgresql(postgres: PostgresServer) -> None:
    engine = connect(postgres.new_database())
    try:
        interrupt_bulk_load(engine, range(3000))
        assert not pg_analysed(engine)
        ensure_indexes(engine)
        with engine.connect() as conn:
            names = {
                name
                for (name,) in conn.exec_driver_sql(
                    "SELECT indexname FROM pg_indexes WHERE tablename = 'calls'"
                )
            }
        assert NAMES | {"ix_calls_source_trgm", "ix_calls_destination_trgm"} <= names
        assert pg_analysed(engine)
        with statements(engine) as seen:  # now complete: only looks
            ensure_indexes(engine)
        assert not [sql for sql in seen if "ANALYZE" in sql.upper()]
    finally:
        engine.dispose()


def test_a_postgresql_store_never_analysed_is_analysed(postgres: PostgresServer) -> None:
    engine = connect(postgres.new_database())
    try:
        with engine.begin() as conn:  # so that only ensure_indexes can analyse it
            conn.exec_driver_sql("ALTER TABLE calls SET (autovacuum_enabled = false)")
        write_batch(engine, COLUMNS, rows(range(500)))
        assert not pg_analysed(engine)
        ensure_indexes(engine)
        assert pg_analysed(engine)
    finally:
        engine.dispose()
