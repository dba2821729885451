"""The dashboard's figures of days: what SQL counts of the calls of one day, to be added up.

A call is the chosen legs sharing a ``linkedid`` (a leg without one alone); its figures
(:mod:`cdrapi.store.dashboard` says which) belong to its first chosen leg's day. A call
whose legs lie on one day gives the same figures whatever period the search names, as
long as the period holds that day: such calls are counted into that day's
:class:`DayPart`, and the parts of a period's days add up to its figures. A call with
legs on more than one day (one that crossed midnight: a few in a thousand) is not: its
``linkedid`` is listed in the part of each day it spans (``spanning``) and the call is
counted for each search from its chosen legs in the period (:func:`read_parts` with
``only``). The answered legs per user are counted per leg, by the leg's own day.

:func:`read_parts` reads the parts of a run of days with two statements: one row per
call (``GROUP BY linkedid``: its time, first leg, answered, wait, talk, queue, last day,
whether its ``linkedid`` has legs outside the run, and its legs marked missed:
``is_recovered``), counted here; and the answered legs per day and user. A missed call
not called back is one whose marked legs are none of them 1; its time is the call's.

A spanning call is listed with the days of its legs the search chooses (all of them, in
and out of the run): a part kept from before the call came to span days is told by them
(:mod:`cdrapi.store.dashboard_days` checks the parts of a period against each other).
A part read back from the store (:mod:`cdrapi.store.dashboard_saved`) fills its hourly
cells, raw queue figures and missed calls only when they are asked for (:meth:`DayPart.details`).
"""

from __future__ import annotations

import datetime as dt
import heapq
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    Connection,
    String,
    and_,
    case,
    cast,
    exists,
    false,
    func,
    literal,
    or_,
    select,
)

from cdrapi.store.schema import calls

__all__ = [
    "MISSED_SHOWN",
    "DayPart",
    "Missed",
    "Spanning",
    "Summary",
    "add_counts",
    "add_pairs",
    "read_parts",
]

#: Missed calls not called back listed (the most recent); all of them are counted.
MISSED_SHOWN = 100
_PREFIX = 19 + 19  # the first-leg key: time, then the id zero-padded to 19 digits
_CHUNK = 500  # linkedids a statement names
K = TypeVar("K")


#: A missed call not called back: (time, key, source, queue, legs), ordered by (time, key).
Missed = tuple[str, str, str, str, int]
#: The calls of a part that span days: linkedid -> the days of its legs the search chooses.
Spanning = dict[str, tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class Summary:
    """A day's figures, summed as days add up (:meth:`DayPart.summary`)."""

    daily: dict[tuple[str, str], int]  # (direction, status) -> calls
    hours: list[int]  # calls by hour of the day
    waits: dict[int, int]  # queued calls by wait
    queues: dict[str, list[int]]  # name -> [offered, answered, within the service level]


@dataclass(slots=True)
class DayPart:
    """What one day adds to the figures (or, for ``only``, what the calls named add)."""

    # ("YYYY-MM-DD HH", direction, status: ANSWERED when any leg was) -> calls
    cells: dict[tuple[str, str, str], int] = field(default_factory=dict)
    queues: dict[tuple[str, int], list[int]] = field(default_factory=dict)  # -> [calls, answered]
    talks: dict[int, int] = field(default_factory=dict)  # answered calls by talk
    users: dict[tuple[int | None, str], list[int]] = field(default_factory=dict)  # legs, talk
    missed: int = 0
    recent: list[Missed] = field(default_factory=list)  # the most recent, newest first
    spanning: Spanning = field(default_factory=dict)
    stamp: Any = None  # the reader's: what the part was read at
    summaries: dict[int, Summary] = field(default_factory=dict)  # by service level
    # a saved part's: fills ``cells``, ``queues`` and ``recent`` when first asked for
    unread: Callable[[DayPart], None] | None = None

    def details(self) -> DayPart:
        """This part, its ``cells``, ``queues`` and ``recent`` filled (a saved part's are
        decoded on first use: a period of days adds up most parts from their summaries)."""
        fill = self.unread
        if fill is not None:
            self.unread = None
            fill(self)
        return self

    def add(self, other: DayPart) -> None:
        """Add ``other``'s figures to these (not its ``spanning`` calls)."""
        self.details()
        other.details()
        add_counts(self.cells, other.cells)
        add_counts(self.talks, other.talks)
        add_pairs(self.queues, other.queues)
        add_pairs(self.users, other.users)
        self.missed += other.missed
        self.recent.extend(other.recent)
        if len(self.recent) > 8 * MISSED_SHOWN:
            self.trim()
        self.summaries.clear()

    def summary(self, service_level: int) -> Summary:
        """The day's figures as a period of days adds them up (kept: a part is added up
        in many periods): calls by (direction, status), by hour, queued calls by wait,
        per queue (offered, answered, answered within ``service_level`` seconds)."""
        found = self.summaries.get(service_level)
        if found is None:
            self.details()
            daily: dict[tuple[str, str], int] = {}
            hours = [0] * 24
            for (hour, direction, status), n in self.cells.items():
                daily[direction, status] = daily.get((direction, status), 0) + n
                hours[int(hour[11:13])] += n
            waits: dict[int, int] = {}
            queues: dict[str, list[int]] = {}
            for (name, wait), (n, answered) in self.queues.items():
                waits[wait] = waits.get(wait, 0) + n
                figures = queues.setdefault(name, [0, 0, 0])
                figures[0] += n
                figures[1] += answered
                figures[2] += answered if wait <= service_level else 0
            found = self.summaries[service_level] = Summary(daily, hours, waits, queues)
        return found

    def trim(self) -> None:
        """Keep only the :data:`MISSED_SHOWN` most recent missed calls, newest first."""
        self.recent = heapq.nlargest(MISSED_SHOWN, self.recent)


def add_counts(mine: dict[K, int], theirs: dict[K, int]) -> None:
    """Add the counts ``theirs`` to ``mine``."""
    get = mine.get
    for key, n in theirs.items():
        mine[key] = get(key, 0) + n


def add_pairs(mine: dict[K, list[int]], theirs: dict[K, list[int]]) -> None:
    """Add the pairs of counts ``theirs`` to ``mine``."""
    for key, (n, m) in theirs.items():
        found = mine.get(key)
        if found is None:
            mine[key] = [n, m]
        else:
            found[0] += n
            found[1] += m


def _first_key(dialect: str) -> ColumnElement[str]:
    """``time``, the id zero-padded, ``direction:call_status``: its minimum over a call's
    legs names the first leg's direction and status."""
    if dialect == "postgresql":
        padded = func.lpad(cast(calls.c.id, String), 19, "0")
    else:
        padded = func.printf("%019d", calls.c.id)
    key: ColumnElement[str] = calls.c.time
    for piece in (padded, calls.c.direction, literal(":"), calls.c.call_status):
        key = key.concat(piece)
    return key


def _alone() -> ColumnElement[int]:
    """With ``linkedid``, what groups legs into calls: a leg without one is a call alone."""
    return case((calls.c.linkedid == "", calls.c.id), else_=0)


def _outside(run: tuple[str, str] | None, bounds: tuple[str, str]) -> ColumnElement[Any]:
    """Whether the call's ``linkedid`` has legs outside the ``run`` of days (its first and
    last time); ``bounds`` are the first and last time stored (no side beyond them)."""
    if run is None:
        return false()
    other = calls.alias("other")
    sides = []
    if run[0] > bounds[0]:
        sides.append(other.c.time < run[0])
    if run[1] < bounds[1]:
        sides.append(other.c.time > run[1])
    if not sides:
        return false()
    return and_(
        calls.c.linkedid != "",
        exists().where(other.c.linkedid == calls.c.linkedid, or_(*sides)),
    )


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


def read_parts(
    conn: Connection,
    where: list[ColumnElement[bool]],
    *,
    run: tuple[str, str] | None = None,
    bounds: tuple[str, str] = ("", ""),
    chosen: Sequence[ColumnElement[bool]] = (),
    only: Sequence[str] | None = None,
) -> dict[str, DayPart]:
    """The parts of the days the legs ``where`` chooses lie on, by day.

    With ``run`` (the first and last time of a run of whole days that ``where`` holds),
    calls spanning days or leaving the run are left out of the parts and listed in their
    ``spanning``, with the days of their legs ``chosen`` chooses (the search without its
    period); ``bounds``: the store's first and last time, see :func:`_outside`.
    With ``only`` (linkedids), just those calls are counted, whole, without users;
    with neither, every call is counted whole (a period of part days).
    """
    if only is not None:
        parts: dict[str, DayPart] = {}
        for start in range(0, len(only), _CHUNK):
            chunk = [*where, calls.c.linkedid.in_(only[start : start + _CHUNK])]
            found = _read(conn, chunk, None, bounds, chosen, users=False, hint=True)
            for day, part in found.items():
                parts.setdefault(day, DayPart()).add(part)
        return parts
    return _read(conn, where, run, bounds, chosen, users=True, hint=False)


def _read(
    conn: Connection,
    where: list[ColumnElement[bool]],
    run: tuple[str, str] | None,
    bounds: tuple[str, str],
    chosen: Sequence[ColumnElement[bool]],
    *,
    users: bool,
    hint: bool,
) -> dict[str, DayPart]:
    parts: dict[str, DayPart] = {}
    spanning: set[str] = set()
    answered = case((calls.c.call_status == "ANSWERED", 1), else_=0)
    marked = calls.c.is_recovered.is_not(None)
    per_call = (
        select(
            func.min(calls.c.time),
            func.substr(func.min(_first_key(conn.dialect.name)), _PREFIX + 1),
            func.max(answered),
            func.max(calls.c.hold_time),
            func.sum(calls.c.billsec),
            func.max(func.coalesce(calls.c.qname, "")),
            func.substr(func.max(calls.c.time), 1, 10),
            calls.c.linkedid,
            _outside(run, bounds),
            # the legs marked missed (is_recovered): how many, whether one was called back,
            # the least source, the greatest queue, the leg's uniqueid
            func.count(calls.c.is_recovered),
            func.max(calls.c.is_recovered),
            func.min(case((marked, calls.c.source))),
            func.max(case((marked, func.coalesce(calls.c.qname, "")))),
            func.max(case((marked, calls.c.uniqueid))),
        )
        .where(*where)
        .group_by(calls.c.linkedid, _alone())
    )
    if hint and conn.dialect.name == "sqlite":
        per_call = per_call.with_hint(calls, "INDEXED BY ix_calls_linkedid")
    for row in _driver_rows(conn, per_call):
        time, first, took, wait, talk, queue, last_day, linkedid, outside = row[:9]
        hour, day = time[:13], time[:10]
        if run is not None and linkedid and (outside or last_day != day):
            spanning.add(linkedid)
            continue
        part = parts.get(day)
        if part is None:
            part = parts[day] = DayPart()
        direction, status = first.split(":", 1)
        cell = (hour, direction, "ANSWERED" if took else status)
        part.cells[cell] = part.cells.get(cell, 0) + 1
        if queue:
            counts = part.queues.get((queue, wait))
            if counts is None:
                counts = part.queues[queue, wait] = [0, 0]
            counts[0] += 1
            counts[1] += took
        if took:
            part.talks[talk] = part.talks.get(talk, 0) + 1
        legs, recovered = row[9], row[10]
        if legs and recovered == 0:  # missed, not called back
            source, missed_queue, uniqueid = row[11:]
            part.missed += 1
            part.recent.append((time, linkedid or uniqueid, source or "", missed_queue, legs))
            if len(part.recent) > 8 * MISSED_SHOWN:
                part.trim()
    if run is not None:
        for linkedid, (days, chosen_days) in _spans(conn, sorted(spanning), chosen).items():
            for day in days:  # (from its first leg's day to its last's: each lists it)
                if run[0][:10] <= day <= run[1][:10]:
                    parts.setdefault(day, DayPart()).spanning[linkedid] = chosen_days
    for part in parts.values():
        part.trim()
    if users:
        _read_users(conn, where, parts)
    return parts


def _spans(
    conn: Connection, linkedids: Sequence[str], chosen: Sequence[ColumnElement[bool]]
) -> dict[str, tuple[list[str], tuple[str, ...]]]:
    """linkedid -> the days from its first leg's to its last's (every leg, chosen or
    not), and the days of its legs ``chosen`` chooses."""
    found: dict[str, tuple[list[str], tuple[str, ...]]] = {}
    day = func.substr(calls.c.time, 1, 10)
    picked = case((and_(*chosen), 1), else_=0) if chosen else literal(1)
    for start in range(0, len(linkedids), _CHUNK):
        rows = conn.execute(
            select(calls.c.linkedid, day, func.max(picked))
            .where(calls.c.linkedid.in_(linkedids[start : start + _CHUNK]))
            .group_by(calls.c.linkedid, day)
        )
        days: dict[str, list[tuple[str, int]]] = {}
        for linkedid, on, took in rows:
            days.setdefault(str(linkedid), []).append((str(on), int(took)))
        for linkedid, its in days.items():
            its.sort()
            first, last = its[0][0], its[-1][0]
            every = [first]
            while every[-1] < last:
                every.append(_next_day(every[-1]))
            found[linkedid] = (every, tuple(on for on, took in its if took))
    return found


def _next_day(day: str) -> str:
    return (dt.date.fromisoformat(day) + dt.timedelta(days=1)).isoformat()


def _read_users(
    conn: Connection, where: list[ColumnElement[bool]], parts: dict[str, DayPart]
) -> None:
    """The answered legs that name a user, per day and user: their number and billsec."""
    user = func.coalesce(calls.c.user_fullname, "")
    day = func.substr(calls.c.time, 1, 10)
    rows = conn.execute(
        select(day, calls.c.user_id, user, func.count(), func.sum(calls.c.billsec))
        # ``|| ''``: not through ix_calls_call_status (most legs are answered)
        .where(*where, calls.c.call_status.concat("") == "ANSWERED", user != "")
        .group_by(day, calls.c.user_id, user)
    )
    for found, user_id, name, n, talk in rows:
        part = parts.setdefault(str(found), DayPart())
        part.users[user_id, str(name)] = [int(n), int(talk or 0)]
