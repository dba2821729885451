"""The one write path into ``calls`` and the directory tables.

Every producer of call records (the demo generator, Asterisk ingestion) goes through
:func:`insert_calls` or its positional twin :func:`insert_call_rows`. Rows are written in
batches; each batch is one transaction that also bumps the store's version (so API
workers drop cached counts) and, on PostgreSQL, first takes a transaction-scoped advisory
lock. The lock serialises writers, so ids become visible in id order and a client that
syncs with ``from_id = last + 1`` never skips a row that was committed late.

:func:`bulk_load` (from :mod:`cdrapi.store.bulk`) is the fast path for filling an empty
``calls`` table; :func:`ensure_indexes` builds what an interrupted one left missing.

Ingestion writes through :func:`write_batch`: rows whose ``source_key`` is already stored
are skipped (``ON CONFLICT DO NOTHING``, so the same CDR read twice stays one record),
and the source's checkpoint is saved in the same transaction as the rows it covers, so a
crash at any point loses and doubles nothing. :func:`writing` is the transaction they
share: the advisory lock first, the version bump last.

A full disk met by any of these writes is raised as
:class:`~cdrapi.store.diskfull.DiskFull` (a ``StoreError``: one ``Error:`` line in the CLI)
saying which disk, doing what, and what to do; the failed transaction leaves nothing
behind. Every index build leaves the planner's statistics right
(:mod:`cdrapi.store.statistics`).

Importing this module registers a no-op sqlite3 adapter for ``None`` (see below): it
changes no value, only makes binding NULLs as cheap as binding text.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from itertools import islice
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Engine, Table, func, inspect, select, text
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect

from cdrapi.store.bulk import bulk_load
from cdrapi.store.diskfull import AGAIN, RESUMES, reporting_full_disk
from cdrapi.store.engine import bump_version
from cdrapi.store.schema import (
    SECONDARY_INDEXES,
    calls,
    checkpoints,
    create_search_index,
    inbound_routes,
    index_new_rows,
    projects,
    queues,
    trunks,
    users,
)
from cdrapi.store.statistics import refresh, refresh_if_missing

__all__ = [
    "CALL_COLUMNS",
    "WRITE_LOCK_KEY",
    "bulk_load",
    "ensure_indexes",
    "insert_call_rows",
    "insert_calls",
    "read_checkpoint",
    "replace_directory",
    "save_checkpoint",
    "upsert",
    "write_batch",
    "writing",
]

#: Key of the PostgreSQL advisory lock that every write transaction on ``calls`` takes.
WRITE_LOCK_KEY = 0x43445241  # "CDRA"

#: The columns a producer may give, in table order (everything but ``id``).
CALL_COLUMNS: tuple[str, ...] = tuple(c.name for c in calls.columns if c.name != "id")

_COLUMN_SET = frozenset(CALL_COLUMNS)

# Python's sqlite3 binds int, float and str directly but sends every other value, None
# included, through its adapter lookup, which costs three times a plain bind when no
# adapter is found: call records are half NULLs, so that lookup was the largest cost of an
# insert. A registered adapter is found at once; this one is a C function that takes one
# argument and returns None, so NULL is still bound as NULL, only faster.
sqlite3.register_adapter(type(None), set().discard)


def _default(name: str) -> Any:
    """Value for a column a mapping leaves out: its server default, else NULL."""
    default = calls.c[name].server_default
    if default is None:
        return None
    value = str(getattr(default, "arg", ""))
    return int(value) if value.isdigit() else value


_DEFAULTS: dict[str, Any] = {name: _default(name) for name in CALL_COLUMNS}


def _as_tuple(row: Mapping[str, Any], getter: itemgetter[Any]) -> tuple[Any, ...]:
    """``row``'s values in :data:`CALL_COLUMNS` order, defaults for missing keys."""
    try:
        values: tuple[Any, ...] = getter(row)
    except KeyError:
        values = ()
    if values and len(row) == len(CALL_COLUMNS):
        return values
    unknown = set(row) - _COLUMN_SET
    if unknown:
        raise ValueError(f"not columns of calls: {', '.join(sorted(map(str, unknown)))}")
    return tuple(row[name] if name in row else _DEFAULTS[name] for name in CALL_COLUMNS)


def insert_calls(
    engine: Engine, rows: Iterable[Mapping[str, Any]], *, batch_size: int = 5000
) -> int:
    """Insert call records keyed by ``calls`` column names; return how many.

    A key that is not a column (``id`` included) is an error; a column left out gets its
    default (``""``, ``0`` or NULL).
    """
    getter = itemgetter(*CALL_COLUMNS)
    tuples = (_as_tuple(row, getter) for row in rows)
    return insert_call_rows(engine, CALL_COLUMNS, tuples, batch_size=batch_size)


def insert_call_rows(
    engine: Engine,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    batch_size: int = 5000,
) -> int:
    """Insert call records given as tuples of ``columns``' values; return how many.

    This is the fast path under :func:`insert_calls` (no per-row dictionaries): each row
    is a tuple (or list) with one value per column, and columns not listed get their
    defaults.
    """
    columns = tuple(columns)
    bad = [name for name in columns if name not in _COLUMN_SET]
    if bad or len(set(columns)) != len(columns) or not columns:
        raise ValueError(f"bad column list for calls: {columns!r}")
    if batch_size < 1:
        raise ValueError("batch_size must be positive")
    sqlite = engine.dialect.name == "sqlite"
    sql = f"INSERT INTO calls ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    total = 0
    iterator: Iterator[Sequence[Any]] = iter(rows)
    while batch := list(islice(iterator, batch_size)):
        with reporting_full_disk(engine, "storing calls", AGAIN), engine.begin() as conn:
            if sqlite:  # straight to the driver's executemany: the fastest path there is
                first_id = _next_id(conn)
                conn.exec_driver_sql(sql, batch)
                index_new_rows(conn, first_id)
            else:
                if conn.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": WRITE_LOCK_KEY})
                dicts = [dict(zip(columns, row, strict=True)) for row in batch]
                conn.execute(calls.insert(), dicts)
            bump_version(conn)
        total += len(batch)
    return total


def _next_id(conn: Connection) -> int:
    """The lowest id rows inserted next in this (write) transaction can get."""
    return int(conn.execute(select(func.coalesce(func.max(calls.c.id), 0))).scalar_one()) + 1


_DIRECTORY: dict[str, Table] = {
    "projects": projects,
    "users": users,
    "queues": queues,
    "trunks": trunks,
    "inbound_routes": inbound_routes,
}


def replace_directory(
    engine: Engine,
    *,
    projects: Iterable[Mapping[str, Any]] | None = None,
    users: Iterable[Mapping[str, Any]] | None = None,
    queues: Iterable[Mapping[str, Any]] | None = None,
    trunks: Iterable[Mapping[str, Any]] | None = None,
    inbound_routes: Iterable[Mapping[str, Any]] | None = None,
) -> None:
    """Replace the contents of each directory table given (``None`` leaves it alone).

    All tables are written in one transaction. Call records keep the names they were
    stored with; the directory only serves lookups by id.
    """
    given = {
        "projects": projects,
        "users": users,
        "queues": queues,
        "trunks": trunks,
        "inbound_routes": inbound_routes,
    }
    with reporting_full_disk(engine, "storing the directory", AGAIN), engine.begin() as conn:
        for name, rows in given.items():
            if rows is None:
                continue
            table = _DIRECTORY[name]
            conn.execute(table.delete())
            values = [dict(row) for row in rows]
            if values:
                conn.execute(table.insert(), values)


@contextmanager
def writing(
    engine: Engine, doing: str = "writing to the store", then: str = AGAIN
) -> Iterator[Connection]:
    """One write transaction on ``calls``: serialised with every other writer (the
    PostgreSQL advisory lock, SQLite's write lock), version bumped, all or nothing.

    A full disk is raised as :class:`~cdrapi.store.diskfull.DiskFull`: "... while
    ``doing``; ``then``" (what to do next)."""
    with reporting_full_disk(engine, doing, then), engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": WRITE_LOCK_KEY})
        # First: on SQLite a write before any read takes the write lock, waiting for other
        # writers (busy_timeout) instead of failing on a stale read snapshot.
        bump_version(conn)
        yield conn


def upsert(conn: Connection, table: Table, keys: Sequence[str]) -> Any:
    """``INSERT ... ON CONFLICT (keys) DO UPDATE`` setting every other column."""
    dialect = pg_dialect if conn.dialect.name == "postgresql" else sqlite_dialect
    statement = dialect.insert(table)
    return statement.on_conflict_do_update(
        index_elements=[table.c[key] for key in keys],
        set_={c.name: statement.excluded[c.name] for c in table.columns if c.name not in keys},
    )


def save_checkpoint(conn: Connection, source: str, position: str) -> None:
    """Store ``position`` for ``source`` inside the caller's transaction."""
    dialect = pg_dialect if conn.dialect.name == "postgresql" else sqlite_dialect
    statement = dialect.insert(checkpoints).values(source=source, position=position)
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=[checkpoints.c.source], set_={"position": position}
        )
    )


def read_checkpoint(engine: Engine, source: str) -> str | None:
    """The position last saved for ``source``, or ``None``."""
    with engine.connect() as conn:
        found = conn.execute(
            select(checkpoints.c.position).where(checkpoints.c.source == source)
        ).scalar()
    return None if found is None else str(found)


def write_batch(
    engine: Engine,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    checkpoint: tuple[str, str] | None = None,
    then: Callable[[Connection, int], None] | None = None,
) -> int:
    """Insert ``rows`` (tuples of ``columns``) in one transaction; return how many are new.

    A row whose ``source_key`` is already stored is skipped. In the same transaction,
    ``then(conn, first_id)`` runs (``first_id``: the lowest id the new rows can have) and
    ``checkpoint`` (source, position) is saved, so both commit with the rows or not at all.
    """
    columns = tuple(columns)
    bad = [name for name in columns if name not in _COLUMN_SET]
    if bad or "source_key" not in columns:
        raise ValueError(f"bad column list for write_batch: {columns!r}")
    with writing(engine, "storing calls", RESUMES if checkpoint else AGAIN) as conn:
        first_id = _next_id(conn)
        inserted = 0
        if rows and conn.dialect.name == "sqlite":
            marks = ", ".join("?" * len(columns))
            result = conn.exec_driver_sql(
                f"INSERT INTO calls ({', '.join(columns)}) VALUES ({marks}) "
                "ON CONFLICT (source_key) DO NOTHING",
                list(rows),
            )
            inserted = result.rowcount  # the rows inserted (trigger writes not counted)
            index_new_rows(conn, first_id)
        elif rows:
            statement = (
                pg_dialect.insert(calls)
                .on_conflict_do_nothing(index_elements=[calls.c.source_key])
                .returning(calls.c.id)
            )
            dicts = [dict(zip(columns, row, strict=True)) for row in rows]
            inserted = len(conn.execute(statement, dicts).all())
        if then is not None:
            then(conn, first_id)
        if checkpoint is not None:
            save_checkpoint(conn, *checkpoint)
    return inserted


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
