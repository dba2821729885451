"""Rows of ``calls``: inserting them, the keys already stored, and derived fields rewritten.

Every producer of call records (the demo generator, Asterisk ingestion) inserts through
:func:`insert_calls` or its positional twin :func:`insert_call_rows`. Rows are written in
batches; each batch is one transaction that also bumps the store's version (so API
workers drop cached counts) and, on PostgreSQL, first takes the writers' advisory lock
(:mod:`cdrapi.store.transaction`).

Ingestion writes through :func:`write_batch`: rows whose ``source_key`` is already stored
are skipped (``ON CONFLICT DO NOTHING``, so the same CDR read twice stays one record),
and the source's checkpoint is saved in the same transaction as the rows it covers, so a
crash at any point loses and doubles nothing. :func:`ingested_calls` and
:func:`rewrite_derived` serve deriving stored calls again (never over an annotation:
:mod:`cdrapi.store.annotations`).

A full disk met by any of these writes is raised as
:class:`~cdrapi.store.diskfull.DiskFull` (a ``StoreError``: one ``Error:`` line in the CLI)
saying which disk, doing what, and what to do; the failed transaction leaves nothing
behind.

Importing this module registers a no-op sqlite3 adapter for ``None`` (see below): it
changes no value, only makes binding NULLs as cheap as binding text.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import islice
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Engine, Row, and_, bindparam, func, or_, select, update
from sqlalchemy.dialects import postgresql as pg_dialect

from cdrapi.store.annotations import keep_annotated
from cdrapi.store.checkpoints import save_checkpoint
from cdrapi.store.diskfull import AGAIN, RESUMES, reporting_full_disk
from cdrapi.store.engine import bump_version
from cdrapi.store.schema import calls
from cdrapi.store.search import index_new_rows
from cdrapi.store.transaction import lock_writers, writing

__all__ = [
    "STORED_COLUMNS",
    "ingested_calls",
    "insert_call_rows",
    "insert_calls",
    "keys_since",
    "next_id",
    "rewrite_derived",
    "write_batch",
]

#: The stored columns of ``calls``: those a producer may give, in table order (all but ``id``).
STORED_COLUMNS: tuple[str, ...] = tuple(c.name for c in calls.columns if c.name != "id")

_COLUMN_SET = frozenset(STORED_COLUMNS)

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


_DEFAULTS: dict[str, Any] = {name: _default(name) for name in STORED_COLUMNS}

#: Columns whose value, left out of an INSERT, is NULL (no server default).
_NULL_BY_DEFAULT = frozenset(name for name, value in _DEFAULTS.items() if value is None)


def _sqlite_insert(
    conn: Connection, columns: Sequence[str], rows: Sequence[Sequence[Any]], conflict: str = ""
) -> int:
    """Insert ``rows`` (tuples of ``columns``) with the driver's own ``executemany``; return
    the rows inserted.

    A column that is NULL in every row and NULL by default is left out of the statement:
    each NULL bound costs the sqlite3 module an adapter look-up (about 900 instructions,
    the adapter above included), and a batch of call records often has a dozen such
    columns (no recordings, no users, no routes...): 11,000 instructions a row, about a
    twelfth of storing one. Only a column NULL in the first row can be one; each such
    column is taken out of the rows and compared with NULLs (the comparison stops at its
    first value), and the rows are made again without the NULL columns, one getter call
    a row. Turning the batch into columns and back (``zip(*rows)``) cost four times as
    much: a zip of one iterator per row.
    """
    if len(rows) > 1:
        first = rows[0]
        maybe = [
            i for i, name in enumerate(columns) if first[i] is None and name in _NULL_BY_DEFAULT
        ]
        # (rows of another width are left to the driver's error)
        if maybe and {*map(len, rows)} == {len(columns)}:
            nulls = [None] * len(rows)
            empty = {i for i in maybe if list(map(itemgetter(i), rows)) == nulls}
            if empty and len(columns) - len(empty) > 1:  # (a getter of one gives no tuple)
                keep = [i for i in range(len(columns)) if i not in empty]
                columns = [columns[i] for i in keep]
                rows = list(map(itemgetter(*keep), rows))
    marks = ", ".join("?" * len(columns))
    sql = f"INSERT INTO calls ({', '.join(columns)}) VALUES ({marks}){conflict}"
    return int(conn.exec_driver_sql(sql, list(rows)).rowcount)


def _as_tuple(row: Mapping[str, Any], getter: itemgetter[Any]) -> tuple[Any, ...]:
    """``row``'s values in :data:`STORED_COLUMNS` order, defaults for missing keys."""
    try:
        values: tuple[Any, ...] = getter(row)
    except KeyError:
        values = ()
    if values and len(row) == len(STORED_COLUMNS):
        return values
    unknown = set(row) - _COLUMN_SET
    if unknown:
        raise ValueError(f"not columns of calls: {', '.join(sorted(map(str, unknown)))}")
    return tuple(row[name] if name in row else _DEFAULTS[name] for name in STORED_COLUMNS)


def insert_calls(
    engine: Engine, rows: Iterable[Mapping[str, Any]], *, batch_size: int = 5000
) -> int:
    """Insert call records keyed by ``calls`` column names; return how many.

    A key that is not a column (``id`` included) is an error; a column left out gets its
    default (``""``, ``0`` or NULL).
    """
    getter = itemgetter(*STORED_COLUMNS)
    tuples = (_as_tuple(row, getter) for row in rows)
    return insert_call_rows(engine, STORED_COLUMNS, tuples, batch_size=batch_size)


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
    total = 0
    iterator: Iterator[Sequence[Any]] = iter(rows)
    while batch := list(islice(iterator, batch_size)):
        with reporting_full_disk(engine, "storing calls", AGAIN), engine.begin() as conn:
            if sqlite:  # straight to the driver's executemany: the fastest path there is
                first_id = next_id(conn)
                _sqlite_insert(conn, columns, batch)
                index_new_rows(conn, first_id)
            else:
                lock_writers(conn)
                dicts = [dict(zip(columns, row, strict=True)) for row in batch]
                conn.execute(calls.insert(), dicts)
            bump_version(conn)
        total += len(batch)
    return total


def next_id(conn: Connection) -> int:
    """The lowest id rows inserted next in this (write) transaction can get."""
    return int(conn.execute(select(func.coalesce(func.max(calls.c.id), 0))).scalar_one()) + 1


def write_batch(
    engine: Engine,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    checkpoint: tuple[str, str] | None = None,
    after_rows: Callable[[Connection, int], None] | None = None,
) -> int:
    """Insert ``rows`` (tuples of ``columns``) in one transaction; return how many are new.

    A row whose ``source_key`` is already stored is skipped. In the same transaction,
    ``after_rows(conn, first_id)`` runs (``first_id``: the lowest id the new rows can have) and
    ``checkpoint`` (source, position) is saved, so both commit with the rows or not at all.
    """
    columns = tuple(columns)
    bad = [name for name in columns if name not in _COLUMN_SET]
    if bad or "source_key" not in columns:
        raise ValueError(f"bad column list for write_batch: {columns!r}")
    with writing(engine, "storing calls", RESUMES if checkpoint else AGAIN) as conn:
        first_id = next_id(conn)
        inserted = 0
        if rows and conn.dialect.name == "sqlite":
            # the rows inserted (trigger writes not counted)
            inserted = _sqlite_insert(conn, columns, rows, " ON CONFLICT (source_key) DO NOTHING")
            index_new_rows(conn, first_id)
        elif rows:
            statement = (
                pg_dialect.insert(calls)
                .on_conflict_do_nothing(index_elements=[calls.c.source_key])
                .returning(calls.c.id)
            )
            dicts = [dict(zip(columns, row, strict=True)) for row in rows]
            inserted = len(conn.execute(statement, dicts).all())
        if after_rows is not None:
            after_rows(conn, first_id)
        if checkpoint is not None:
            save_checkpoint(conn, *checkpoint)
    return inserted


def keys_since(conn: Connection, since: str) -> list[str]:
    """The ``source_key`` of every stored call from ``since`` (``time`` text) on."""
    query = select(calls.c.source_key).where(calls.c.time >= since)
    return [str(key) for key in conn.execute(query).scalars() if key]


def ingested_calls(
    engine: Engine, columns: Sequence[str], after: tuple[str, int] | None, limit: int
) -> list[Row[Any]]:
    """Up to ``limit`` ingested calls (those with a ``source_key``) in (time, id) order
    after ``after`` (``None``: from the first): their ``columns`` and ``source_key``."""
    query = select(*(calls.c[name] for name in columns), calls.c.source_key).where(
        calls.c.source_key.is_not(None)
    )
    if after is not None:
        query = query.where(
            or_(calls.c.time > after[0], and_(calls.c.time == after[0], calls.c.id > after[1]))
        )
    with engine.connect() as conn:
        return list(conn.execute(query.order_by(calls.c.time, calls.c.id).limit(limit)))


def rewrite_derived(
    conn: Connection, columns: Sequence[str], rows: Iterable[tuple[int, Sequence[Any]]]
) -> None:
    """Set ``columns`` of each call (id, values in ``columns`` order) in ``rows``; a field
    the call was annotated with keeps its value (:func:`.annotations.keep_annotated`)."""
    statement = (
        update(calls)
        .where(calls.c.id == bindparam("_id"))
        .values({name: keep_annotated(name, bindparam(name)) for name in columns})
    )
    conn.execute(
        statement,
        [{"_id": id_, **dict(zip(columns, values, strict=True))} for id_, values in rows],
    )
