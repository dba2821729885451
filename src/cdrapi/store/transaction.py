"""The write transaction: every write to ``calls`` (and what commits with it) runs in one.

:func:`writing` takes, on PostgreSQL, a transaction-scoped advisory lock first (it
serialises writers, so ids become visible in id order and a client that syncs with
``from_id = last + 1`` never skips a row that was committed late), then bumps the store's
version (so API workers drop cached counts; on SQLite, that first write takes the write
lock). All or nothing; a full disk is raised as :class:`~cdrapi.store.diskfull.DiskFull`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, text

from cdrapi.store.diskfull import AGAIN, reporting_full_disk
from cdrapi.store.engine import bump_version

__all__ = ["WRITE_LOCK_KEY", "lock_writers", "writing"]

#: Key of the PostgreSQL advisory lock that every write transaction on ``calls`` takes.
WRITE_LOCK_KEY = 0x43445241  # "CDRA"


def lock_writers(conn: Connection) -> None:
    """On PostgreSQL, wait for the other writers' transactions (the advisory lock)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": WRITE_LOCK_KEY})


@contextmanager
def writing(
    engine: Engine, doing: str = "writing to the store", then: str = AGAIN
) -> Iterator[Connection]:
    """One write transaction on ``calls``: serialised with every other writer (the
    PostgreSQL advisory lock, SQLite's write lock), version bumped, all or nothing.

    A full disk is raised as :class:`~cdrapi.store.diskfull.DiskFull`: "... while
    ``doing``; ``then``" (what to do next)."""
    with reporting_full_disk(engine, doing, then), engine.begin() as conn:
        lock_writers(conn)
        # First: on SQLite a write before any read takes the write lock, waiting for other
        # writers (busy_timeout) instead of failing on a stale read snapshot.
        bump_version(conn)
        yield conn
