"""The web dashboard's figures: SQL aggregates over the calls a search chooses.

The legs are chosen exactly as the call log chooses them (the API's
:func:`~cdrapi.store.queries.where_clauses`, an account's scope included), and counted
as the call log counts them: a *call* is the chosen legs sharing a ``linkedid`` (a leg
without one is a call of its own). Each call is summarised once, in SQL, as the call
log's rows are (:class:`~cdrapi.store.calllog.LogRow`):

- its time, direction and (unless answered) status are its first chosen leg's, by
  ``(time, id)``; it is *answered* when a chosen leg is ``ANSWERED``;
- its *wait* is the longest ``hold_time`` of its legs, its *talk* the sum of their
  ``billsec``; its queue the (greatest) ``qname`` of its legs.

From those: calls per hour (a period of up to :data:`HOURLY_DAYS` days) or per day, by
direction and by status; the answer rate; the average and 90th percentile (nearest
rank: the smallest value at least 90 % of the values do not exceed) of the wait of the
calls that were queued and of the talk of the answered calls, read from the exact
histogram of their values (the same on SQLite and PostgreSQL); a weekday x hour heat
map; per queue, the calls offered, answered, abandoned (not answered) and the service
level (answered within ``service_level`` seconds of waiting, of those offered).

Per user, the answered legs that name a user and their billed seconds (a call passed
from one agent to another counts for both). Missed calls not yet called back are the
calls whose chosen legs carry ``is_recovered`` and none of them 1 (issue 8 item 8: only
the legs of a call no leg answered carry it), each once, with how long it has waited:
``now`` (the PBX's local time) minus its time.

Two statements, in one read transaction: the calls' summary (one ``GROUP BY`` of the
chosen legs, streamed from the driver and counted here by hour, by queue and wait, by
talk: SQLite sorts the rows of every ``GROUP BY``, and three more over the summary cost
more than counting its rows), and one of the answered legs per user and the missed calls
not called back (a ``MATERIALIZED`` common table expression: their count and the
:data:`MISSED_SHOWN` most recent). The cost is that of the ``GROUP BY`` of the period's
legs: about 7 us a leg on SQLite (bench/web_speed.py).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Integer,
    String,
    case,
    cast,
    func,
    literal,
    null,
    select,
    union_all,
)

from cdrapi.protocol.filters import CallFilters
from cdrapi.protocol.values import CALL_STATUSES, DIRECTIONS
from cdrapi.store.queries import where_clauses
from cdrapi.store.schema import calls

__all__ = [
    "HOURLY_DAYS",
    "MISSED_SHOWN",
    "SERVICE_LEVEL_SECONDS",
    "Dashboard",
    "DashboardReader",
    "MissedCall",
    "QueueFigures",
    "UserFigures",
    "percentile",
]

#: Seconds of waiting within which an answered call meets the service level (until the
#: setting ``service_level_seconds`` exists).
SERVICE_LEVEL_SECONDS = 20
#: Periods of at most this many days are charted per hour; longer ones per day.
HOURLY_DAYS = 3
#: Missed calls not called back listed (the most recent); all of them are counted.
MISSED_SHOWN = 100
_FORMAT = "%Y-%m-%d %H:%M:%S"
_PREFIX = 19 + 19  # the first-leg key: time, then the id zero-padded to 19 digits


@dataclass(frozen=True, slots=True)
class QueueFigures:
    name: str
    offered: int
    answered: int
    within: int  # answered within the service level's seconds

    @property
    def abandoned(self) -> int:
        return self.offered - self.answered

    @property
    def service_level(self) -> float | None:
        return self.within / self.offered if self.offered else None


@dataclass(frozen=True, slots=True)
class UserFigures:
    user_id: int | None
    name: str
    answered: int  # answered legs
    talk: int  # their billed seconds


@dataclass(frozen=True, slots=True)
class MissedCall:
    key: str  # the call: its linkedid, or the leg's uniqueid without one
    time: str
    source: str
    queue: str
    legs: int
    waited: int  # seconds from the call to ``now``


@dataclass(slots=True)
class Dashboard:
    """The figures of one search. Series are aligned with :attr:`buckets`."""

    unit: str  # "hour" or "day"
    buckets: list[str] = field(default_factory=list)  # "YYYY-MM-DD HH" or "YYYY-MM-DD"
    by_direction: dict[str, list[int]] = field(default_factory=dict)
    by_status: dict[str, list[int]] = field(default_factory=dict)
    calls: int = 0
    answered: int = 0
    queued: int = 0  # calls with a queue (their wait is measured)
    wait_average: float | None = None
    wait_p90: int | None = None
    talk_average: float | None = None  # over answered calls
    talk_p90: int | None = None
    heat: list[list[int]] = field(
        default_factory=lambda: [[0] * 24 for _ in range(7)]
    )  # Monday first
    queues: list[QueueFigures] = field(default_factory=list)
    users: list[UserFigures] = field(default_factory=list)
    service_level_seconds: int = SERVICE_LEVEL_SECONDS
    missed: int = 0  # missed calls not called back
    missed_calls: list[MissedCall] = field(default_factory=list)  # the most recent

    @property
    def answer_rate(self) -> float | None:
        return self.answered / self.calls if self.calls else None


def percentile(histogram: Mapping[int, int], share: float) -> int | None:
    """The nearest-rank percentile of the values counted in ``histogram`` (value -> count):
    the smallest value that at least ``share`` of them do not exceed."""
    total = sum(histogram.values())
    if not total:
        return None
    rank, seen = max(1, math.ceil(share * total - 1e-9)), 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen >= rank:
            return value
    raise AssertionError("unreachable")


def _average(histogram: Mapping[int, int]) -> float | None:
    total = sum(histogram.values())
    return sum(value * n for value, n in histogram.items()) / total if total else None


def _unit(filters: CallFilters) -> str:
    ends = filters.date_between
    if ends and ends[0] and ends[1]:
        days = (dt.date.fromisoformat(ends[1][:10]) - dt.date.fromisoformat(ends[0][:10])).days
        if days < HOURLY_DAYS:
            return "hour"
    return "day"


def _buckets(unit: str, filters: CallFilters, found: Sequence[str]) -> list[str]:
    """Every bucket from the period's start to its end (open ends: the calls' first and
    last), so that a quiet hour or day shows as zero."""
    ends = filters.date_between or (None, None)
    first = ends[0] or (min(found) if found else None)
    last = ends[1] or (max(found) if found else None)
    if first is None or last is None:
        return []
    size = 13 if unit == "hour" else 10
    step = dt.timedelta(hours=1) if unit == "hour" else dt.timedelta(days=1)
    pattern = "%Y-%m-%d %H" if unit == "hour" else "%Y-%m-%d"
    at, end = (
        dt.datetime.strptime(first[:size], pattern),
        dt.datetime.strptime(last[:size], pattern),
    )
    buckets = []
    while at <= end:
        buckets.append(at.strftime(pattern))
        at += step
    return sorted(set(buckets) | set(found))


class DashboardReader:
    """Reads the dashboard's figures from one engine (thread-safe: no state)."""

    def __init__(self, engine: Engine, *, service_level: int = SERVICE_LEVEL_SECONDS) -> None:
        self.engine = engine
        self.service_level = service_level
        self._dialect = engine.dialect.name

    @contextlib.contextmanager
    def _read(self) -> Iterator[Connection]:
        """One read transaction: every figure from one snapshot."""
        connection = self.engine.connect()
        if self._dialect == "postgresql":
            connection = connection.execution_options(isolation_level="REPEATABLE READ")
        with connection as conn, conn.begin():
            yield conn

    def figures(self, filters: CallFilters, now: dt.datetime) -> Dashboard:
        """The dashboard of the calls ``filters`` choose; ``now`` is the PBX's local time
        (naive, or aware in the PBX's zone), from which missed calls have waited."""
        now = now.replace(tzinfo=None)
        unit = _unit(filters)
        where = where_clauses(filters, self._dialect)
        board = Dashboard(unit=unit, service_level_seconds=self.service_level)
        with self._read() as conn:
            rows = _counted(_driver_rows(conn, self._per_call(where)))
            rows.extend(conn.execute(self._statement(where)).all())
        waits: dict[int, int] = {}
        talks: dict[int, int] = {}
        cells: dict[tuple[str, str, str], int] = {}
        queues: dict[str, list[int]] = {}
        for kind, t1, t2, t3, t4, i1, n, v1 in rows:
            if kind == "b":  # t1: "YYYY-MM-DD HH", t2: the first leg's "direction:status"
                direction, status = t2.split(":", 1)
                status = "ANSWERED" if i1 else status
                bucket = t1 if unit == "hour" else t1[:10]
                cells[bucket, direction, status] = cells.get((bucket, direction, status), 0) + n
                board.calls += n
                board.answered += n if i1 else 0
                weekday = dt.date.fromisoformat(t1[:10]).weekday()
                board.heat[weekday][int(t1[11:13])] += n
            elif kind == "q":  # t1: queue, i1: wait, v1: answered of them
                waits[i1] = waits.get(i1, 0) + n
                figures = queues.setdefault(t1, [0, 0, 0])
                figures[0] += n
                figures[1] += v1
                figures[2] += v1 if i1 <= self.service_level else 0
            elif kind == "t":
                talks[i1] = n
            elif kind == "u":
                board.users.append(UserFigures(i1, t1, n, v1))
            elif kind == "m":
                board.missed = n
            else:  # "M": t1 key, t2 time, t3 source, t4 queue
                waited = now - dt.datetime.strptime(t2, _FORMAT)
                seconds = max(0, int(waited.total_seconds()))
                board.missed_calls.append(MissedCall(t1, t2, t3 or "", t4 or "", n, seconds))
        board.buckets = _buckets(unit, filters, sorted({cell[0] for cell in cells}))
        index = {bucket: i for i, bucket in enumerate(board.buckets)}
        for series, at, names in (
            (board.by_direction, 1, DIRECTIONS),
            (board.by_status, 2, CALL_STATUSES),
        ):
            for name in names:
                series[name] = [0] * len(board.buckets)
            for cell, n in cells.items():
                series.setdefault(cell[at], [0] * len(board.buckets))[index[cell[0]]] += n
        board.queued = sum(waits.values())
        board.wait_average, board.wait_p90 = _average(waits), percentile(waits, 0.9)
        board.talk_average, board.talk_p90 = _average(talks), percentile(talks, 0.9)
        board.queues = sorted(
            (QueueFigures(name, *figures) for name, figures in queues.items()),
            key=lambda queue: (-queue.offered, queue.name),
        )
        board.users.sort(key=lambda user: (-user.answered, -user.talk, user.name))
        board.missed_calls.sort(key=lambda call: (call.time, call.key), reverse=True)
        return board

    # -- the SQL -----------------------------------------------------------------------

    def _first_key(self) -> ColumnElement[str]:
        """``time``, the id zero-padded, ``direction:call_status``: its minimum over a
        call's legs names the first leg's direction and status."""
        if self._dialect == "postgresql":
            padded = func.lpad(cast(calls.c.id, String), 19, "0")
        else:
            padded = func.printf("%019d", calls.c.id)
        pieces = (padded, calls.c.direction, literal(":"), calls.c.call_status)
        key: ColumnElement[str] = calls.c.time
        for piece in pieces:
            key = key.concat(piece)
        return key

    def _per_call(self, where: list[ColumnElement[bool]]) -> Any:
        """One row per call: its hour (``YYYY-MM-DD HH``), first leg's
        ``direction:status``, answered (1/0), wait, talk and queue."""
        answered = case((calls.c.call_status == "ANSWERED", 1), else_=0)
        return (
            select(
                func.substr(func.min(calls.c.time), 1, 13),
                func.substr(func.min(self._first_key()), _PREFIX + 1),
                func.max(answered),
                func.max(calls.c.hold_time),
                func.sum(calls.c.billsec),
                func.max(func.coalesce(calls.c.qname, "")),
            )
            .where(*where)
            .group_by(calls.c.linkedid, _alone())
        )

    def _statement(self, where: list[ColumnElement[bool]]) -> Any:
        """The answered legs per user, and the missed calls not called back (their
        count and the most recent): rows of :func:`_row` tagged by kind."""
        alone = _alone()
        key = case((calls.c.linkedid == "", calls.c.uniqueid), else_=calls.c.linkedid)
        user = func.coalesce(calls.c.user_fullname, "")
        missed = (  # the calls of legs marked missed, none of them called back
            select(
                func.max(key).label("key"),
                func.min(calls.c.time).label("time"),
                func.min(calls.c.source).label("source"),
                func.max(func.coalesce(calls.c.qname, "")).label("queue"),
                func.count().label("legs"),
            )
            .where(*where, calls.c.is_recovered.is_not(None))
            .group_by(calls.c.linkedid, alone)
            .having(func.max(calls.c.is_recovered) == 0)
            .cte("missed")
            .prefix_with("MATERIALIZED")
        )
        m = missed.c
        recent = select(missed).order_by(m.time.desc(), m.key.desc()).limit(MISSED_SHOWN).subquery()
        r = recent.c
        return union_all(
            _row("u", t1=user, i1=calls.c.user_id, v1=func.sum(calls.c.billsec))
            # ``|| ''``: not through ix_calls_call_status (most legs are answered)
            .where(*where, calls.c.call_status.concat("") == "ANSWERED", user != "")
            .group_by(calls.c.user_id, user),
            _row("m").select_from(missed),
            _row("M", t1=r.key, t2=r.time, t3=r.source, t4=r.queue, n=r.legs),
        )


def _alone() -> ColumnElement[int]:
    """With ``linkedid``, what groups legs into calls: a leg without one is a call alone."""
    return case((calls.c.linkedid == "", calls.c.id), else_=0)


def _driver_rows(conn: Connection, statement: Any) -> Iterator[tuple[Any, ...]]:
    """The rows of ``statement`` as the driver gives them, a batch at a time (a year of
    calls is a million rows: no row objects, no list of them all)."""
    compiled = statement.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    params: Any = compiled.params
    if compiled.positional:
        params = tuple(compiled.params[name] for name in compiled.positiontup or ())
    cursor = conn.connection.cursor()
    try:
        cursor.execute(str(compiled), params)
        while batch := cursor.fetchmany(5000):
            yield from batch
    finally:
        cursor.close()


def _counted(per_call: Iterator[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The per-call rows counted as the figures need them, in :func:`_row`'s layout:
    ``b`` calls by hour, first leg and answered; ``q`` queued calls by queue and wait
    (``v1``: the answered); ``t`` answered calls by talk. (One GROUP BY, the calls', and
    counting here: SQLite sorts the rows of every GROUP BY, three more cost twice as much.)"""
    cells: Counter[tuple[str, str, int]] = Counter()
    queued: dict[tuple[str, int], list[int]] = {}
    talks: Counter[int] = Counter()
    for hour, first, answered, wait, talk, queue in per_call:
        cells[hour, first, answered] += 1
        if queue:
            counts = queued.setdefault((queue, wait), [0, 0])
            counts[0] += 1
            counts[1] += answered
        if answered:
            talks[talk] += 1
    rows: list[tuple[Any, ...]] = [
        ("b", hour, first, None, None, answered, n, None)
        for (hour, first, answered), n in cells.items()
    ]
    rows.extend(
        ("q", queue, None, None, None, wait, n, answered)
        for (queue, wait), (n, answered) in queued.items()
    )
    rows.extend(("t", None, None, None, None, talk, n, None) for talk, n in talks.items())
    return rows


def _row(kind: str, n: Any = None, **values: Any) -> Any:
    """A row of the statement's union: its kind, four texts, a number, a count (``n``:
    ``count(*)`` unless given) and a sum (``v1``); what a kind does not use is NULL."""
    texts = [cast(values.get(f"t{i}", null()), String) for i in range(1, 5)]
    number, total = (cast(values.get(name, null()), Integer) for name in ("i1", "v1"))
    return select(literal(kind), *texts, number, func.count() if n is None else n, total)
