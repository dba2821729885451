"""Bulk loading: filling an empty ``calls`` table fast.

:func:`bulk_load` drops the secondary indexes, lets the caller insert, then builds them
once and gathers the planner's statistics (on SQLite, commits skip ``fsync`` meanwhile and
the index sorts use helper threads). The trigram search is filled a batch at a time
meanwhile, not a row at a time (:func:`~cdrapi.store.search.suspend_search_index`). On a
table that already has rows it does nothing, and inserts go through the indexes as usual.
An interrupted load leaves the indexes missing until :func:`ensure_indexes` (run at
the start of every ingestion) builds them.

:func:`long_import`, for any import read once to its end (into an empty store or not):
on SQLite, the write-ahead log is checkpointed by a thread of its own every
:data:`FOLD_EVERY` seconds (copied to the database file and synced while the writer
makes its next batch), by the writer itself only when the log reaches
:data:`LONG_IMPORT_PAGES` pages (not every 1,000, SQLite's default), then once at the
end. Each checkpoint syncs the database file: done by the writer at every 4 MB of a big
import, that took about a quarter of an import of CEL's time. Commits keep their
``synchronous`` level (in WAL mode, NORMAL syncs at checkpoints only): a power cut may
take back the last commits, with their saved positions, which the next run reads again;
a crash of the process loses nothing.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext, suppress
from typing import Any

from sqlalchemy import Connection, Engine, event, inspect, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import ConnectionPoolEntry

from cdrapi.store.diskfull import AGAIN, RESUMES, reporting_full_disk
from cdrapi.store.engine import StoreError, bump_version
from cdrapi.store.schema import SECONDARY_INDEXES, calls
from cdrapi.store.search import create_search_index, suspend_search_index
from cdrapi.store.statistics import refresh, refresh_if_missing
from cdrapi.store.transaction import writing

__all__ = ["LONG_IMPORT_PAGES", "bulk_load", "ensure_indexes", "long_import"]

#: Pages of write-ahead log between two checkpoints during :func:`long_import` (128 MB of
#: 4 KB pages: 1,000 pages (4 MB) took about 8.8 s for 1,000,000 CEL rows, 32,768 about 7.3).
LONG_IMPORT_PAGES = 32_768
#: Seconds between two checkpoints of the log by :func:`long_import`'s thread (1,000,000
#: CEL rows: 8.1-8.8 s stored without the thread, 7.5-7.6 with 0.05, 7.8-7.9 with 0.2).
FOLD_EVERY = 0.05
#: The checkpoint both run: it copies what is committed, never waiting for a writer.
_FOLD = "PRAGMA wal_checkpoint(PASSIVE)"


@contextmanager
def bulk_load(engine: Engine) -> Iterator[bool]:
    """Fast loading into an empty ``calls`` table; yields whether it is in effect.

    When the table is empty, the secondary indexes are dropped for the duration of the
    ``with`` block and built at its end (also when it raises), followed by ``ANALYZE``.
    The trigram search keeps covering exactly the committed rows: each batch indexes its
    own (on PostgreSQL it is dropped and built at the end too). On SQLite, commits
    meanwhile skip ``fsync``: a crash of the process loses nothing committed, a power
    cut may. A crash (or a full disk that leaves no room to build them) leaves the
    secondary indexes missing until the next ingestion builds them
    (:func:`ensure_indexes`); a failure of that build after the
    block raised is not reported over the block's own error. Use it to fill a fresh
    store, not a live one.
    When the table has rows, the block runs with indexes in place and nothing changes.
    """
    sqlite = engine.dialect.name == "sqlite"
    # Checked and the indexes dropped in one write transaction (bump_version first takes
    # the write lock), so another writer cannot slip rows in between.
    with reporting_full_disk(engine, "preparing a bulk load", AGAIN), engine.begin() as conn:
        bump_version(conn)
        empty = conn.execute(select(calls.c.id).limit(1)).first() is None
        if empty:
            for index in SECONDARY_INDEXES:
                index.drop(conn, checkfirst=True)
            suspend_search_index(conn)
    if not empty:
        yield False
        return
    with _pragma_while(engine, "synchronous", 0) if sqlite else nullcontext():  # 0: OFF
        try:
            yield True
        except BaseException:
            # the block's error is the one to tell; if the build fails too (the disk is
            # still full), the next ingestion builds the indexes
            with suppress(StoreError, SQLAlchemyError):
                _build_indexes(engine)
            raise
        _build_indexes(engine)


def _build_indexes(engine: Engine) -> None:
    """The end of a bulk load: every index and the search built, statistics gathered."""
    with (
        reporting_full_disk(engine, "building the indexes", _INDEXES_LATER),
        engine.connect() as conn,
        _parallel_sort(conn),
        conn.begin(),
    ):
        bump_version(conn)
        for index in SECONDARY_INDEXES:
            index.create(conn, checkfirst=True)
        create_search_index(conn)
        refresh(conn)


def ensure_indexes(engine: Engine) -> None:
    """Create any index a crashed bulk load left missing, with the planner's statistics.

    Run at the start of every ingestion: when nothing is missing, it only looks (a few
    catalogue lookups, no ``ANALYZE`` of a table of millions). When it built an index, or
    ``calls`` has rows but no statistics (see :mod:`cdrapi.store.statistics`), the
    statistics are gathered: without them SQLite may plan updates through the least
    selective index, about 1,000 times slower.
    """
    with writing(engine, "building the indexes", RESUMES) as conn:
        present = {found["name"] for found in inspect(conn).get_indexes("calls")}
        missing = [index for index in SECONDARY_INDEXES if index.name not in present]
        for index in missing:
            index.create(conn)
        create_search_index(conn)  # on SQLite: the per-row trigger a bulk load took away
        if missing:
            refresh(conn)
        else:
            refresh_if_missing(conn)


#: What to do when the indexes could not be built for lack of space (the calls are stored).
_INDEXES_LATER = (
    "the calls are stored; free space and run `cdrapi ingest` again: it builds the indexes"
)


@contextmanager
def _parallel_sort(conn: Connection) -> Iterator[None]:
    """On SQLite, let ``CREATE INDEX`` sort with helper threads on the other cores.

    SQLite's sorter uses worker threads only when ``PRAGMA threads`` allows them, temp
    data goes to files (``temp_store`` not MEMORY) and the keys outgrow the page cache,
    so all three are set for the index build, then restored (outside any transaction,
    as ``temp_store`` requires). On two cores this takes the index build from about 7 s
    to about 4.5 s per million calls.
    """
    if conn.dialect.name != "sqlite":
        yield
        return
    raw = conn.connection.dbapi_connection
    assert raw is not None
    names = ("threads", "temp_store", "cache_size")
    saved = [raw.execute(f"PRAGMA {name}").fetchone()[0] for name in names]
    helpers = min(4, max(0, (os.cpu_count() or 1) - 1))
    for name, value in zip(names, (helpers, 1, -2048), strict=True):  # 1: FILE, -2048: 2 MB
        raw.execute(f"PRAGMA {name}={int(value)}")
    try:
        yield
    finally:
        for name, old in zip(names, saved, strict=True):
            raw.execute(f"PRAGMA {name}={int(old)}")


@contextmanager
def long_import(engine: Engine) -> Iterator[None]:
    """Fewer checkpoints of SQLite's write-ahead log while an import is read once (see the
    module's docstring); nothing on PostgreSQL."""
    if engine.dialect.name != "sqlite":
        yield
        return
    try:
        with _pragma_while(engine, "wal_autocheckpoint", LONG_IMPORT_PAGES), _LogFolder(engine):
            yield
    finally:
        with suppress(SQLAlchemyError), engine.connect() as conn:  # the log folded back
            conn.exec_driver_sql(_FOLD)


class _LogFolder:
    """A thread that checkpoints the write-ahead log every :data:`FOLD_EVERY` seconds, on
    its own connection, while an import runs (``with``): each batch's pages are copied to
    the database file, and synced, while the writer makes the next batch.

    A PASSIVE checkpoint never waits for the writer and takes only what is committed.
    When the log is all copied, the writer's next commit starts it from the beginning,
    so it stays the size of a batch or two. Should a checkpoint fail (a full disk), the
    thread stops and the writer's own checkpoints (every :data:`LONG_IMPORT_PAGES`) go on.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._fold, name="cdrapi-log-folder", daemon=True)

    def __enter__(self) -> None:
        self._thread.start()

    def __exit__(self, *_exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _fold(self) -> None:
        with suppress(SQLAlchemyError, sqlite3.Error):
            raw = self._engine.raw_connection()
            try:  # the driver's connection: no transaction around the checkpoint
                driver: Any = raw.driver_connection
                while not self._done.wait(FOLD_EVERY):
                    driver.execute(_FOLD).fetchall()
            finally:
                raw.close()


@contextmanager
def _pragma_while(engine: Engine, name: str, value: int) -> Iterator[None]:
    """SQLite: each connection taken from the pool meanwhile has ``PRAGMA name=value``, and
    gets its own value back when returned (noted at its first checkout)."""

    def taken(dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        cursor = dbapi_connection.cursor()
        if name not in record.info:
            record.info[name] = cursor.execute(f"PRAGMA {name}").fetchone()[0]
        cursor.execute(f"PRAGMA {name}={int(value)}")
        cursor.close()

    def returned(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        if name in record.info and dbapi_connection is not None:
            dbapi_connection.execute(f"PRAGMA {name}={int(record.info.pop(name))}")

    event.listen(engine, "checkout", taken)
    event.listen(engine, "checkin", returned)
    try:
        yield
    finally:
        event.remove(engine, "checkout", taken)
        event.remove(engine, "checkin", returned)
