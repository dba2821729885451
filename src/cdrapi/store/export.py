"""The reads of an export: every record of a search, newest first, a chunk at a time.

An export walks the legs the filters choose (the same :func:`where_clauses` as
``/api/cdr``) in the web call log's order, ``(time, id)`` descending, by key, so memory
stays a few chunks whatever the size of the search, each chunk costs what the first does,
and a call arriving meanwhile (newer, so above the walk) is neither shown nor makes
another row appear twice. Each read is its own short one: a long export never holds a
transaction open against the writers.

:meth:`ExportReader.chunk` gives rows holding :data:`~cdrapi.protocol.records.RECORD_COLUMNS`
in order (id first), as :class:`~cdrapi.store.pages.CallPages` gives them to
:func:`~cdrapi.protocol.records.record`, each chunk starting strictly after the last row of
the one before it (:class:`Edge`). :meth:`ExportReader.csv_texts` gives the same records as
CSV text written by the database itself (:func:`csv_line`), a whole chunk as one string: a
million records of 43 fields are 43 million Python values otherwise, and even a line per
record costs more than the rest of the export (bench/web_speed.py ``export``). Its chunks
are ranges of keys: the walk first finds where the next chunk ends (:meth:`~ExportReader.boundary`,
the key ``size`` records on: a walk of the time index alone when nothing is filtered), so
:data:`BUILDERS` chunks are written at once, each on a thread and connection of its own
(SQLite writes one without the GIL: a core each), and sent in order. Every record lies in
exactly one range, whatever is written meanwhile.

Choosing the plan: with many matches the walk follows ``ix_calls_time`` backwards and
stops at a chunk (SQLite is told so with ``INDEXED BY``: its planner would rather sort
every match found through a filter's index, for every chunk); with few, they are sorted
(PostgreSQL is kept off the index walk by ordering on an expression it does not hold).
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from collections.abc import AsyncGenerator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Connection,
    Engine,
    Select,
    bindparam,
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

__all__ = ["BUILDERS", "CHUNK", "Edge", "ExportReader", "csv_line"]

#: Rows read at a time (about 5 MB of Python objects for 43 fields).
CHUNK = 5000
#: CSV chunks of one export written at once (a thread and a connection each); one more
#: waits its turn, so a thread is never idle while the last is sent.
BUILDERS = 2
_WALK_FROM = 5000  # matches from which a chunk walks the time index
_SELECTED = [calls.c[column] for column in RECORD_COLUMNS]
_TIME = RECORD_COLUMNS.index("time")
_FROM_CALLS = re.compile(r"\bFROM calls\b(?!_)")
_DURATIONS = frozenset({"bill_duration", "duration", "ivr_duration", "hold_time", "ring_time"})
_BARE = frozenset({"id", "time", "time_end", "inbound_route_id", "is_recovered"})
#: A chunk's lines joined by CRLF, in the walk's order (SQLite aggregates a subquery's
#: rows in its order; PostgreSQL is told), as UTF-8 bytes: the driver makes no ``str``
#: of them. No line: NULL.
_JOINED = {
    "sqlite": "CAST(group_concat(walk.line, char(13, 10)) AS BLOB)",
    "postgresql": "convert_to(string_agg(walk.line, chr(13) || chr(10) "
    "ORDER BY walk.time DESC, walk.id DESC), 'UTF8')",
}
_CRLF = b"\r\n"


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
        the walk is over. Raises :class:`~cdrapi.store.engine.StoreError` (as every read
        here does)."""
        return _Walk(self, filters, matches, size).rows("chunk", after, None)

    def boundary(
        self, filters: CallFilters, after: Edge | None, matches: int, size: int
    ) -> Edge | None:
        """The key of the ``size``-th record past ``after``, the last of a chunk of
        ``size``; ``None`` if fewer are left."""
        return _Walk(self, filters, matches, size).boundary(after)

    def csv_range(
        self, filters: CallFilters, after: Edge | None, until: Edge | None, matches: int
    ) -> bytes:
        """The records past ``after`` down to ``until`` included (``None``: from the newest,
        to the oldest) as CSV text in UTF-8 (:func:`csv_line`), the lines joined by CRLF
        (the last one's is not there: no copy of the whole to add two bytes); ``b""`` if
        there are none.

        One statement gives the whole range as ONE string: the lines of the ordered walk
        joined by the database (SQLite's ``group_concat``, PostgreSQL's ``string_agg``). So
        no Python value is made per record, and SQLite writes the chunk in one step,
        without the GIL."""
        return _Walk(self, filters, matches, CHUNK).csv_range(after, until)

    async def csv_texts(
        self,
        filters: CallFilters,
        matches: int,
        size: int = CHUNK,
        finish: Callable[[bytes], bytes] | None = None,
    ) -> AsyncGenerator[bytes, None]:
        """Every record of the search as CSV text (:meth:`csv_range`), ``size`` records a
        chunk, each followed by its last line's CRLF, in the walk's order; ``finish`` is
        applied to each chunk on the thread that read it. ``matches`` is :meth:`count`'s.

        :data:`BUILDERS` chunks are written at once on threads of this export's own (the
        store's page threads stay free for the call log), while one more thread finds where
        the next chunk ends (:meth:`boundary`: its range is known before the ones before
        it are written); at most ``BUILDERS + 1`` chunks are read ahead of the one being
        sent. No job waits for another. Closing the generator (the client went away)
        cancels those not started; the threads end once the ones started are done."""
        walk = _Walk(self, filters, matches, size)
        scout = ThreadPoolExecutor(1, "cdrapi-export-scout")  # finds where chunks end
        builders = ThreadPoolExecutor(BUILDERS, "cdrapi-export")

        def build(after: Edge | None, until: Edge | None) -> bytes:
            text = walk.csv_range(after, until)
            return finish(text) if finish is not None and text else text

        def end(after: Edge | None) -> asyncio.Future[Edge | None]:
            return asyncio.wrap_future(scout.submit(walk.boundary, after))

        built: deque[asyncio.Future[bytes]] = deque()
        upper: Edge | None = None
        ends: asyncio.Future[Edge | None] | None = end(None)  # None: past the last chunk
        try:
            while True:
                while ends is not None and len(built) <= BUILDERS:
                    lower = await ends  # found while the chunks before were written
                    built.append(asyncio.wrap_future(builders.submit(build, upper, lower)))
                    ends = None if lower is None else end(lower)
                    upper = lower
                if not built:
                    return
                text = await built.popleft()
                if text:
                    yield text
                    yield _CRLF
        finally:
            for pool in (scout, builders):
                pool.shutdown(wait=False, cancel_futures=True)
            for waiting in (*built, ends):
                if waiting is not None:
                    waiting.cancel()


@dataclass(frozen=True, slots=True)
class _Statement:
    """A compiled statement: its SQL, its parameters' values and their order."""

    sql: str
    params: dict[str, Any]
    order: tuple[str, ...] | None  # positional parameters (SQLite); None: by name

    def rows(self, conn: Connection, values: dict[str, Any]) -> list[tuple[Any, ...]]:
        params = {**self.params, **values}
        bound = params if self.order is None else tuple(params[name] for name in self.order)
        return driver_rows(conn, self.sql, bound)


class _Walk:
    """The statements of one search's walk, compiled once (an export runs them for every
    chunk), with the keys of each chunk as parameters."""

    def __init__(self, reader: ExportReader, filters: CallFilters, matches: int, size: int):
        self.reader, self.size = reader, size
        self.dialect = reader.engine.dialect
        self.where = where_clauses(filters, self.dialect.name)
        self.indexed = matches >= _WALK_FROM
        self.time: ColumnElement[str] = calls.c.time
        if not self.indexed and self.dialect.name == "postgresql":
            self.time = calls.c.time.concat("")
        self.compiled: dict[tuple[str, bool, bool], _Statement] = {}

    def boundary(self, after: Edge | None) -> Edge | None:
        found = self.rows("boundary", after, None)
        return Edge(found[0][0], found[0][1]) if found else None

    def csv_range(self, after: Edge | None, until: Edge | None) -> bytes:
        found = self.rows("csv", after, until)
        return bytes(found[0][0]) if found and found[0][0] is not None else b""

    def rows(self, kind: str, after: Edge | None, until: Edge | None) -> list[tuple[Any, ...]]:
        """The rows of statement ``kind`` for the keys past ``after`` down to ``until``."""
        key = (kind, after is not None, until is not None)
        statement = self.compiled.get(key)
        if statement is None:
            statement = self.compiled[key] = self._compile(*key)
        values: dict[str, Any] = {}
        if after is not None:
            values.update(after_time=after.time, after_id=after.id)
        if until is not None:
            values.update(until_time=until.time, until_id=until.id)
        reader = self.reader
        try:
            with reader.engine.connect() as conn:
                return statement.rows(conn, values)
        except (SQLAlchemyError, reader._driver_error) as exc:
            raise StoreError(f"database error: {exc.__class__.__name__}") from exc

    def _compile(self, kind: str, after: bool, until: bool) -> _Statement:
        if kind == "chunk":
            query = self._walk(select(*_SELECTED), after, until).limit(self.size)
        elif kind == "boundary":
            query = self._walk(select(calls.c.time, calls.c.id), after, until)
            query = query.limit(1).offset(self.size - 1)
        else:
            line: ColumnElement[str] = literal_column(csv_line(self.dialect.name)).label("line")
            walk = self._walk(select(line, calls.c.time, calls.c.id), after, until)
            joined: ColumnElement[Any] = literal_column(_JOINED[self.dialect.name])
            query = select(joined).select_from(walk.subquery("walk"))
        compiled = query.compile(dialect=self.dialect, compile_kwargs={"render_postcompile": True})
        sql = str(compiled)
        if self.indexed and self.dialect.name == "sqlite":
            sql, count = _FROM_CALLS.subn("FROM calls INDEXED BY ix_calls_time", sql, 1)
            assert count == 1, sql
        order = None if compiled.positiontup is None else tuple(compiled.positiontup)
        return _Statement(sql, dict(compiled.params), order)

    def _walk(self, columns: Select[Any], after: bool, until: bool) -> Select[Any]:
        """``columns`` of the matches past the key ``after_*`` down to ``until_*``, in the
        walk's order."""
        query = columns.where(*self.where)
        key = tuple_(calls.c.time, calls.c.id)
        if after:
            query = query.where(key < tuple_(_time_at("after_time"), _id_at("after_id")))
        if until:
            query = query.where(key >= tuple_(_time_at("until_time"), _id_at("until_id")))
        return query.order_by(self.time.desc(), calls.c.id.desc())


def _time_at(name: str) -> BindParameter[str]:
    return bindparam(name, "", type_=calls.c.time.type)  # a value to compile with


def _id_at(name: str) -> BindParameter[int]:
    return bindparam(name, 0, type_=calls.c.id.type)
