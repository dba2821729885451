"""The reads of an export: every record of a search, newest first, a chunk at a time.

An export walks the legs the filters choose (the same :func:`where_clauses` as
``/api/cdr``) in the web call log's order, ``(time, id)`` descending, by key: each chunk
starts strictly after the last row of the one before it (:class:`Edge`), so memory stays
one chunk whatever the size of the search, each chunk costs what the first does, and a
call arriving meanwhile (newer, so above the walk) is neither shown nor makes another
row appear twice. Each chunk is its own short read: a long export never holds a
transaction open against the writers.

:meth:`ExportReader.chunk` gives rows holding :data:`~cdrapi.protocol.records.RECORD_COLUMNS`
in order (id first), as :class:`~cdrapi.store.pages.CallPages` gives them to
:func:`~cdrapi.protocol.records.record`. :meth:`ExportReader.csv_chunk` gives the same
records as CSV text written by the database itself (:func:`csv_line`), a whole chunk as one
string: a million records of 43 fields are 43 million Python values otherwise, and even a
line per record costs more than the rest of the export (bench/web_speed.py ``export``).

Choosing the plan: with many matches the walk follows ``ix_calls_time`` backwards and
stops at a chunk (SQLite is told so with ``INDEXED BY``: its planner would rather sort
every match found through a filter's index, for every chunk); with few, they are sorted
(PostgreSQL is kept off the index walk by ordering on an expression it does not hold).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Select,
    func,
    literal_column,
    select,
    tuple_,
)
from sqlalchemy.exc import SQLAlchemyError

from cdrapi.protocol.filters import CallFilters
from cdrapi.protocol.records import RECORD_COLUMNS, RECORD_KEYS
from cdrapi.store.engine import StoreError, driver_rows
from cdrapi.store.queries import where_clauses
from cdrapi.store.schema import calls

__all__ = ["CHUNK", "Edge", "ExportReader", "csv_line"]

#: Rows read at a time (about 5 MB of Python objects for 43 fields).
CHUNK = 5000
_WALK_FROM = 5000  # matches from which a chunk walks the time index
_SELECTED = [calls.c[column] for column in RECORD_COLUMNS]
_TIME = RECORD_COLUMNS.index("time")
_FROM_CALLS = re.compile(r"\bFROM calls\b(?!_)")
_DURATIONS = frozenset({"bill_duration", "duration", "ivr_duration", "hold_time", "ring_time"})
_BARE = frozenset({"id", "time", "time_end", "inbound_route_id", "is_recovered"})
#: A chunk's lines joined, in the walk's order (SQLite aggregates a subquery's rows in
#: its order; PostgreSQL is told), as UTF-8 bytes: the driver makes no ``str`` of them.
_JOINED = {
    "sqlite": "CAST(group_concat(walk.line, char(13, 10)) AS BLOB)",
    "postgresql": "convert_to(string_agg(walk.line, chr(13) || chr(10) "
    "ORDER BY walk.time DESC, walk.id DESC), 'UTF8')",
}
#: The walk's last row's key: its ``time`` and ``id`` padded to :data:`_KEY_ID` digits.
_LAST = {
    "sqlite": "min(walk.time || printf('%020d', walk.id))",
    "postgresql": "min((walk.time || lpad(walk.id::text, 20, '0')) COLLATE \"C\")",
}
_KEY_ID = 20


def csv_line(dialect: str) -> str:
    """The SQL expression of one record as a CSV line (no line end), for ``dialect``.

    The same values as :func:`~cdrapi.protocol.records.record`, ``null`` as an empty
    field: ids, times and numbers bare; durations ``HH:MM:SS`` (hours may pass 99);
    ``bill_minutes`` the billed minutes rounded up; every other field quoted, its quotes
    doubled (RFC 4180), so a field's start is always ``,"``: the export's neutralising
    of formulas finds it there.
    """
    parts = []
    for key, column in zip(RECORD_KEYS, RECORD_COLUMNS, strict=True):
        if dialect == "sqlite":
            parts.append(_sqlite_field(key, column))
        else:
            parts.append(_postgres_field(key, column))
    if dialect == "sqlite":  # one printf: a single allocation per line
        formats, arguments = zip(*parts, strict=True)
        return f"printf('{','.join(formats)}', {', '.join(arguments)})"
    return " || ',' || ".join(part for part, _ in parts)


def _sqlite_field(key: str, column: str) -> tuple[str, str]:
    """(printf format, its arguments) of one field on SQLite."""
    if key in _DURATIONS:
        seconds = f"ifnull({column}, 0)"
        return "%02d:%02d:%02d", f"{seconds} / 3600, {seconds} / 60 % 60, {seconds} % 60"
    if key == "bill_minutes":
        return "%d", f"(ifnull({column}, 0) + 59) / 60"
    if key in _BARE:
        return "%s", column  # NULL: nothing
    return '"%w"', f"ifnull({column}, '')"  # %w doubles double quotes


def _postgres_field(key: str, column: str) -> tuple[str, str]:
    """(SQL text of one field, "") on PostgreSQL."""
    if key in _DURATIONS:
        seconds = f"coalesce({column}, 0)"
        hours = f"({seconds} / 3600)"
        two = "lpad(mod({}{})::text, 2, '0')"
        return (
            f"(CASE WHEN {hours} < 10 THEN '0' ELSE '' END || {hours}::text || ':' || "
            f"{two.format(seconds, ' / 60, 60')} || ':' || {two.format(seconds, ', 60')})",
            "",
        )
    if key == "bill_minutes":
        return f"((coalesce({column}, 0) + 59) / 60)::text", ""
    if key in _BARE:
        return f"coalesce({column}::text, '')", ""
    return f"('\"' || replace(coalesce({column}, ''), '\"', '\"\"') || '\"')", ""


@dataclass(frozen=True, slots=True)
class Edge:
    """Where the walk stands: the last row read's ``(time, id)``."""

    time: str
    id: int

    @classmethod
    def of(cls, row: Sequence[Any]) -> Edge:
        return cls(row[_TIME], row[0])


class ExportReader:
    """Reads a search's records for an export from one engine (thread-safe: each call
    uses a connection of its own)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._dialect = engine.dialect.name
        self._driver_error: type[Exception] = engine.dialect.loaded_dbapi.Error

    def count(self, filters: CallFilters) -> int:
        """How many records the search holds now (``/api/cdr``'s ``row_count``)."""
        where = where_clauses(filters, self._dialect)
        try:
            with self.engine.connect() as conn:
                found = conn.execute(select(func.count()).select_from(calls).where(*where))
                return int(found.scalar_one())
        except (SQLAlchemyError, self._driver_error) as exc:
            raise StoreError(f"database error: {exc.__class__.__name__}") from exc

    def chunk(
        self, filters: CallFilters, after: Edge | None, matches: int, size: int = CHUNK
    ) -> list[tuple[Any, ...]]:
        """Up to ``size`` records past ``after`` (``None``: from the newest), newest first;
        ``matches`` is :meth:`count`'s answer (it chooses the plan). Fewer than ``size``:
        the walk is over. Raises :class:`~cdrapi.store.engine.StoreError`."""
        where = where_clauses(filters, self._dialect)
        time: ColumnElement[str] = calls.c.time
        if matches < _WALK_FROM and self._dialect == "postgresql":
            time = calls.c.time.concat("")
        query = select(*_SELECTED).where(*where)
        if after is not None:
            query = query.where(tuple_(calls.c.time, calls.c.id) < tuple_(after.time, after.id))
        query = query.order_by(time.desc(), calls.c.id.desc()).limit(size)
        try:
            with self.engine.connect() as conn:
                return _run(conn, query, indexed=matches >= _WALK_FROM)
        except (SQLAlchemyError, self._driver_error) as exc:
            raise StoreError(f"database error: {exc.__class__.__name__}") from exc

    def csv_chunk(
        self, filters: CallFilters, after: Edge | None, matches: int, size: int = CHUNK
    ) -> tuple[bytes, Edge | None]:
        """:meth:`chunk`'s records as CSV text in UTF-8 (:func:`csv_line`, each line ended
        by CRLF), and the edge of the last (``None``: there were none, the text is empty).

        One statement gives the whole chunk as ONE string: the lines of the ordered walk
        joined by the database (SQLite's ``group_concat``, PostgreSQL's ``string_agg``), and
        the last row's key as the least ``time`` + zero-padded ``id``. So no Python value
        is made per record, and SQLite writes the chunk in one step, without the GIL: the
        next chunk is written while the last is sent."""
        where = where_clauses(filters, self._dialect)
        line: ColumnElement[str] = literal_column(csv_line(self._dialect)).label("line")
        time: ColumnElement[str] = calls.c.time
        if matches < _WALK_FROM and self._dialect == "postgresql":
            time = calls.c.time.concat("")
        walk = select(line, calls.c.time, calls.c.id).where(*where)
        if after is not None:
            walk = walk.where(tuple_(calls.c.time, calls.c.id) < tuple_(after.time, after.id))
        walk = walk.order_by(time.desc(), calls.c.id.desc()).limit(size)
        rows = walk.subquery("walk")
        joined: ColumnElement[Any] = literal_column(_JOINED[self._dialect])
        last_key: ColumnElement[Any] = literal_column(_LAST[self._dialect])
        query: Select[Any] = select(joined, last_key).select_from(rows)
        try:
            with self.engine.connect() as conn:
                found = _run(conn, query, indexed=matches >= _WALK_FROM)
        except (SQLAlchemyError, self._driver_error) as exc:
            raise StoreError(f"database error: {exc.__class__.__name__}") from exc
        text, last = found[0] if found else (None, None)
        if text is None or last is None:
            return b"", None
        return bytes(text) + b"\r\n", Edge(last[:-_KEY_ID], int(last[-_KEY_ID:]))


def _run(conn: Connection, query: Select[Any], *, indexed: bool) -> list[tuple[Any, ...]]:
    """``query``'s rows as the driver gives them (plain tuples: no per-row objects of
    SQLAlchemy's), on SQLite through ``ix_calls_time`` when ``indexed``."""
    compiled = query.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    sql = str(compiled)
    if indexed and conn.dialect.name == "sqlite":
        sql, count = _FROM_CALLS.subn("FROM calls INDEXED BY ix_calls_time", sql, 1)
        assert count == 1, sql
    params: Any
    if compiled.positiontup is not None:
        params = tuple(compiled.params[name] for name in compiled.positiontup)
    else:
        params = compiled.params
    return driver_rows(conn, sql, params)
