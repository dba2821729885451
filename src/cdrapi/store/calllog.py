"""The web call log's reads: pages of calls newest first, one row per call, and a call's legs.

The filters choose legs exactly as ``/api/cdr`` does (the same :func:`where_clauses`); a
*call* is the legs sharing a ``linkedid`` (a leg without one is a call of its own). By
default a page holds calls: each call that has a chosen leg appears once, at its first
chosen leg (lowest ``(time, id)``), summarised over its chosen legs (:class:`LogRow`);
with ``grouped=False`` it holds the chosen legs themselves. Either way rows come newest
first, by ``(time, id)`` descending (the API's id order is untouched).

Paging is by key: a page starts strictly after the last row of the page before it
(``after``) or ends strictly before the first row of the page after it (``before``), so
page 10,000 costs what page 2 does, and a call is never lost or shown twice while new
calls arrive at the top. The first :data:`NUMBERED` pages can also be reached by number
(a small ``OFFSET``) and the last one by reading the order backwards. A call is found at
its first chosen leg by walking ``ix_calls_time`` backwards and asking ``ix_calls_linkedid``
whether an earlier chosen leg of the same call exists.

Counts are exact (``count(*)`` of the legs, ``count(DISTINCT linkedid)`` of the calls),
remembered per filter set and store version, as ``store/pages.py`` does for the API.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import re
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Row,
    Select,
    and_,
    case,
    func,
    select,
    tuple_,
)

from cdrapi.protocol.filters import CallFilters
from cdrapi.store.directory import read_directory
from cdrapi.store.engine import read_version
from cdrapi.store.queries import where_clauses
from cdrapi.store.queue_calls import read_queue_events
from cdrapi.store.schema import calls

__all__ = ["NUMBERED", "PAGE_SIZE", "CallLegs", "CallLog", "Key", "LogPage", "LogRow"]

T = TypeVar("T")
PAGE_SIZE = 50
NUMBERED = 10  # pages reachable by number, by OFFSET; beyond, pages go by key
_WALK_FROM = 5000  # matching legs from which a page walks the time index (see _ordered)
_BATCH_MAX = 4000  # legs read at a time while looking for a page's calls
_KEY = re.compile(r"(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})-(\d{1,19})")

#: The columns a row of the log is made from.
_LEG = (
    "id", "time", "linkedid", "uniqueid", "direction", "source", "destination", "caller_id",
    "user_fullname", "qname", "call_status", "hold_time", "ring_time", "billsec", "duration",
    "recording_file", "monitor_files", "transcription_id", "project",
)  # fmt: skip
_LEG_COLUMNS = [calls.c[name] for name in _LEG]


@dataclass(frozen=True, slots=True, order=True)
class Key:
    """Where a row sits in the order: its ``(time, id)``; in a URL ``YYYYMMDDHHMMSS-id``."""

    time: str
    id: int

    def __str__(self) -> str:
        digits = self.time.replace("-", "").replace(" ", "").replace(":", "")
        return f"{digits}-{self.id}"

    @classmethod
    def parse(cls, text: str) -> Key | None:
        """The key ``text`` names, or ``None`` if it names none."""
        match = _KEY.fullmatch(text.strip())
        if match is None:
            return None
        y, mo, d, h, mi, s, ident = match.groups()
        return cls(f"{y}-{mo}-{d} {h}:{mi}:{s}", int(ident))


@dataclass(frozen=True, slots=True)
class LogRow:
    """One row of the log: a call summarised over its chosen legs, or one leg.

    ``status`` is ``ANSWERED`` if any leg was answered, else the first leg's; ``wait``
    and ``ring`` are the longest of the legs' (a queue's wait is copied onto each leg
    of the caller's channel), ``talk`` the sum of their billed seconds; ``user`` is the
    answering leg's user (else the first named one); ``queue`` the first leg's that has one.
    """

    key: str  # the call: its linkedid, or the leg's uniqueid when it has none
    id: int  # the first leg's
    time: str
    direction: str
    source: str
    destination: str
    caller_id: str
    user: str
    queue: str
    status: str
    wait: int
    ring: int
    talk: int
    recorded: bool
    transcribed: bool
    legs: int
    project: str


@dataclass(frozen=True, slots=True)
class LogPage:
    """A page of the log, with the exact counts of the whole search."""

    rows: Sequence[LogRow]
    calls: int  # calls with a chosen leg (in legs mode: 0, not counted)
    legs: int  # chosen legs: /api/cdr's row_count for the same filters
    number: int  # this page's number (1 = newest)
    pages: int
    first: Key | None  # the first row's key (for "previous")
    last: Key | None  # the last row's key (for "next")

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.pages


@dataclass(frozen=True, slots=True)
class CallLegs:
    """What the store knows of one call: every field of its legs, its queue_log events."""

    key: str
    legs: Sequence[dict[str, Any]]  # every column of ``calls``, by (time, id)
    queue_events: dict[str, list[Any]]  # uniqueid -> [epoch, callid, queue, agent, event, data]


def _has(value: Any) -> bool:
    return value is not None and value != ""


def _call_key(leg: dict[str, Any]) -> str:
    return str(leg["linkedid"] or leg["uniqueid"])


def _summary(legs: Sequence[dict[str, Any]]) -> LogRow:
    """The row of a call from its chosen legs, in (time, id) order."""
    first = legs[0]
    answered = [leg for leg in legs if leg["call_status"] == "ANSWERED"]
    named = [leg for leg in answered + list(legs) if _has(leg["user_fullname"])]
    queued = [leg for leg in legs if _has(leg["qname"])]
    return LogRow(
        key=_call_key(first),
        id=first["id"],
        time=first["time"],
        direction=first["direction"],
        source=first["source"],
        destination=first["destination"],
        caller_id=first["caller_id"],
        user=named[0]["user_fullname"] if named else "",
        queue=queued[0]["qname"] if queued else "",
        status="ANSWERED" if answered else first["call_status"],
        wait=max(leg["hold_time"] or 0 for leg in legs),
        ring=max(leg["ring_time"] or 0 for leg in legs),
        talk=sum(leg["billsec"] or 0 for leg in legs),
        recorded=any(_has(leg["recording_file"]) or _has(leg["monitor_files"]) for leg in legs),
        transcribed=any(_has(leg["transcription_id"]) for leg in legs),
        legs=len(legs),
        project=first["project"] or "",
    )


@dataclass(slots=True)
class _Counts:
    legs: int
    calls: int | None = None


class CallLog:
    """Reads the web's call log from one engine (thread-safe; counts cached per version)."""

    def __init__(self, engine: Engine, *, cache_size: int = 256) -> None:
        self.engine = engine
        self._dialect = engine.dialect.name
        self._counts: OrderedDict[tuple[CallFilters, int], _Counts] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    # -- pages -----------------------------------------------------------------------

    def page(
        self,
        filters: CallFilters,
        *,
        grouped: bool = True,
        number: int = 1,
        after: Key | None = None,
        before: Key | None = None,
        last: bool = False,
    ) -> LogPage:
        """A page: by number (1 to :data:`NUMBERED`, or ``last``), or the one after the
        key ``after``, or before the key ``before`` (``number`` is then the number it
        gets). A page past the end is the last page; before the start, the first."""
        where = where_clauses(filters, self._dialect)
        with self._read() as conn:
            counts = self._count(conn, filters, where, grouped)
            total = counts.calls if grouped and counts.calls is not None else counts.legs
            pages = max(1, -(-total // PAGE_SIZE))
            number = min(max(number, 1), pages)
            keys: list[int] = []
            read = functools.partial(self._keys, conn, where, counts.legs, grouped)
            if last or (after is None and before is None and number > NUMBERED):
                number, keys = pages, read(ascending=True)
                keys = keys[: total - (pages - 1) * PAGE_SIZE][::-1]
            elif before is not None:
                keys = read(ascending=True, bound=before)[::-1]
                if len(keys) < PAGE_SIZE:  # back at the start: the first page as it is now
                    number, keys = 1, read()
            elif after is not None:
                keys = read(bound=after)
                if not keys and total:  # past the end: the last page
                    number, keys = pages, read(ascending=True)
                    keys = keys[: total - (pages - 1) * PAGE_SIZE][::-1]
            else:
                keys = read(skip=(number - 1) * PAGE_SIZE)
            rows = self._rows(conn, where, grouped, keys)
        return LogPage(
            rows=rows,
            calls=counts.calls or 0,
            legs=counts.legs,
            number=number,
            pages=pages,
            first=Key(rows[0].time, rows[0].id) if rows else None,
            last=Key(rows[-1].time, rows[-1].id) if rows else None,
        )

    @contextlib.contextmanager
    def _read(self) -> Iterator[Connection]:
        """A connection in one read transaction: counts and rows from one snapshot."""
        connection = self.engine.connect()
        if self._dialect == "postgresql":
            connection = connection.execution_options(isolation_level="REPEATABLE READ")
        with connection as conn, conn.begin():
            yield conn

    def _count(
        self,
        conn: Connection,
        filters: CallFilters,
        where: list[ColumnElement[bool]],
        grouped: bool,
    ) -> _Counts:
        key = (filters, read_version(conn))
        with self._lock:
            known = self._counts.get(key)
            if known is not None:
                self._counts.move_to_end(key)
        if known is None:
            if grouped:
                legs, calls_count = conn.execute(
                    select(func.count(), _call_count()).select_from(calls).where(*where)
                ).one()
                known = _Counts(int(legs), int(calls_count or 0))
            else:
                count = conn.execute(select(func.count()).select_from(calls).where(*where))
                known = _Counts(int(count.scalar_one()))
        elif grouped and known.calls is None:
            found = conn.execute(select(_call_count()).select_from(calls).where(*where))
            known = dataclasses.replace(known, calls=int(found.scalar_one() or 0))
        with self._lock:
            self._counts[key] = known
            self._counts.move_to_end(key)
            while len(self._counts) > self._cache_size:
                self._counts.popitem(last=False)
        return known

    def _keys(
        self,
        conn: Connection,
        where: list[ColumnElement[bool]],
        matches: int,
        grouped: bool,
        *,
        ascending: bool = False,
        bound: Key | None = None,
        skip: int = 0,
    ) -> list[int]:
        """The ids of a page's rows in the order asked, after ``skip`` rows: legs, or the
        first chosen leg of each call (candidates read in batches in the order, each
        kept if no chosen leg of its call comes before it)."""
        wanted, found = skip + PAGE_SIZE, list[int]()
        size = wanted if not grouped else wanted + PAGE_SIZE
        while len(found) < wanted:
            batch = self._ordered(conn, where, matches, ascending, bound, size)
            if not batch:
                break
            bound = Key(batch[-1].time, batch[-1].id)
            kept = batch
            if grouped:
                firsts = self._firsts(conn, where, batch)
                kept = [row for row in batch if row.id in firsts]
            found.extend(row.id for row in kept)
            if len(batch) < size:  # the end of the order
                break
            size = min(size * 2, _BATCH_MAX)
        return found[skip:wanted]

    def _ordered(
        self,
        conn: Connection,
        where: list[ColumnElement[bool]],
        matches: int,
        ascending: bool,
        bound: Key | None,
        size: int,
    ) -> Sequence[Any]:
        """Chosen legs (id, time, linkedid) in (time, id) order past ``bound``.

        Many matches: walk ``ix_calls_time`` in the order and stop at ``size`` (SQLite's
        planner would rather sort every match found through a filter's index: 1.8 s for
        half a million inbound calls). Few: sort them (a walk would pass over the whole
        table to find them; PostgreSQL's planner walks unless told, by ordering on an
        expression the index does not hold).
        """
        time: ColumnElement[str] = calls.c.time
        if matches < _WALK_FROM and self._dialect == "postgresql":
            time = calls.c.time.concat("")
        query = select(calls.c.id, calls.c.time, calls.c.linkedid).where(*where)
        if bound is not None:
            edge = tuple_(bound.time, bound.id)
            position = tuple_(calls.c.time, calls.c.id)
            query = query.where(position > edge if ascending else position < edge)
        order = (time, calls.c.id) if ascending else (time.desc(), calls.c.id.desc())
        query = query.order_by(*order).limit(size)
        if matches >= _WALK_FROM and self._dialect == "sqlite":
            return _indexed_by_time(conn, query)
        return conn.execute(query).all()

    @staticmethod
    def _firsts(
        conn: Connection, where: list[ColumnElement[bool]], batch: Sequence[Row[Any]]
    ) -> set[int]:
        """The ids of the rows of ``batch`` that are the first chosen leg of their call.

        A row is unless a leg of its call comes before it and is chosen too: the legs of
        the batch's calls are read by ``linkedid`` alone (most calls have one leg, or
        this one first), and only the earlier legs are then checked against the filters.
        """
        linked = sorted({row.linkedid for row in batch if row.linkedid})
        legs: dict[str, list[tuple[str, int]]] = {}
        for chunk in _chunks(linked, 500):
            found = conn.execute(
                select(calls.c.linkedid, calls.c.time, calls.c.id).where(
                    calls.c.linkedid.in_(chunk)
                )
            )
            for linkedid, time, ident in found:
                legs.setdefault(linkedid, []).append((time, ident))
        earlier: dict[int, list[int]] = {}
        for row in batch:
            if row.linkedid:
                position = (row.time, row.id)
                before = [
                    ident for time, ident in legs.get(row.linkedid, ()) if (time, ident) < position
                ]
                if before:
                    earlier[row.id] = before
        chosen: set[int] = set()
        wanted = sorted({ident for idents in earlier.values() for ident in idents})
        for part in _chunks(wanted, 500):
            chosen.update(
                conn.execute(select(calls.c.id).where(*where, calls.c.id.in_(part))).scalars()
            )
        return {row.id for row in batch if not chosen.intersection(earlier.get(row.id, ()))}

    def _rows(
        self, conn: Connection, where: list[ColumnElement[bool]], grouped: bool, ids: list[int]
    ) -> list[LogRow]:
        if not ids:
            return []
        found = conn.execute(select(*_LEG_COLUMNS).where(calls.c.id.in_(ids)))
        firsts = {row["id"]: dict(row) for row in found.mappings()}
        if not grouped:
            return [_summary([firsts[ident]]) for ident in ids if ident in firsts]
        linked = sorted({leg["linkedid"] for leg in firsts.values() if leg["linkedid"]})
        legs: dict[str, list[dict[str, Any]]] = {}
        if linked:
            others = conn.execute(
                select(*_LEG_COLUMNS)
                .where(*where, calls.c.linkedid.in_(linked))
                .order_by(calls.c.time, calls.c.id)
            )
            for leg in others.mappings():
                legs.setdefault(leg["linkedid"], []).append(dict(leg))
        rows = []
        for ident in ids:
            first = firsts.get(ident)
            if first is not None:
                rows.append(_summary(legs.get(first["linkedid"]) or [first]))
        return rows

    # -- one call --------------------------------------------------------------------

    def call(self, filters: CallFilters, key: str) -> CallLegs | None:
        """Every leg of the call ``key`` (a linkedid, or the uniqueid of a leg without
        one) that ``filters`` (an account's scope) let through; ``None`` if there is none."""
        where = where_clauses(filters, self._dialect)
        with self._read() as conn:
            legs = self._legs(conn, where, calls.c.linkedid == key)
            if not legs:
                legs = self._legs(
                    conn, where, and_(calls.c.linkedid == "", calls.c.uniqueid == key)
                )
            if not legs:
                return None
            events = read_queue_events(conn, {leg["uniqueid"] for leg in legs if leg["uniqueid"]})
        return CallLegs(key, legs, events)

    @staticmethod
    def _legs(
        conn: Connection, where: list[ColumnElement[bool]], which: ColumnElement[bool]
    ) -> list[dict[str, Any]]:
        found = conn.execute(select(calls).where(*where, which).order_by(calls.c.time, calls.c.id))
        return [dict(row) for row in found.mappings()]

    # -- the directory ---------------------------------------------------------------

    def directory(self) -> dict[str, list[dict[str, Any]]]:
        """The directory's tables (projects, users, queues, trunks, inbound routes)."""
        return read_directory(self.engine)


def _call_count() -> ColumnElement[int]:
    """How many calls the chosen legs make (each leg without a linkedid is one)."""
    linked = func.count(func.distinct(case((calls.c.linkedid != "", calls.c.linkedid))))
    alone = func.count(case((calls.c.linkedid == "", 1)))
    return linked + alone


def _chunks(values: list[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


_FROM_CALLS = re.compile(r"\bFROM calls\b(?!_)")


def _indexed_by_time(conn: Connection, query: Select[tuple[int, str, str]]) -> Sequence[Any]:
    """``query`` run on SQLite reading ``calls`` through ``ix_calls_time`` (``INDEXED BY``:
    SQLAlchemy writes no table hint for SQLite)."""
    compiled = query.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    sql, count = _FROM_CALLS.subn("FROM calls INDEXED BY ix_calls_time", str(compiled), 1)
    assert count == 1, sql
    names = compiled.positiontup or []
    result = conn.exec_driver_sql(sql, tuple(compiled.params[name] for name in names))
    return result.all()
