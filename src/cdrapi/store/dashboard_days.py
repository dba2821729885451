"""The dashboard's figures of a period of whole days, day by day: each day's figures of a
search (:class:`~cdrapi.store.dashboard_parts.DayPart`) are taken, in this order, from

1. memory (this process counted or read them, and the day has not changed since);
2. the store (:mod:`cdrapi.store.dashboard_saved`: another worker, or this server before
   its start, counted them, and the day has not changed since);
3. the calls: the runs of days left are counted (:func:`~.dashboard_parts.read_parts`),
   kept in memory and, at the end of the view, saved (:meth:`DayParts.save`).

Whether a day changed is the store's to say (:mod:`cdrapi.store.dashboard_marks`): each
part holds the :class:`~.dashboard_saved.Stamp` it was counted at, and is good while the
day's mark and the reset mark are the same, and (SQLite, where inserts are not marked)
no leg of that day has an id above the stamp's (the days of the legs with ids above the
last seen are noted as they come, :func:`~.dashboard_marks.inserted_days`).

Two threads never count a day of a search at once: a thread claims the days it is to
count (:meth:`DayParts.counting` tells them), and another that needs them counts the
rest, waits for the claim to end and takes them from memory (the server's warm-up,
:mod:`cdrapi.web.dashboard`, and a view of the same period share the work that way).

A call whose legs lie on several days is in no day's figures: each part lists it with
the days of its chosen legs, and it is counted whole for each period. A part counted
before a call came to span days (a leg added on another day, which marks that day, not
this one) still counts it: the parts of a period are checked against each other
(:func:`_stale`), and a part that does not list a call another part says it has chosen
legs on is counted again.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.exc import SQLAlchemyError

from cdrapi.protocol.filters import CallFilters
from cdrapi.store.dashboard_marks import RESET, inserted_days, read_marks
from cdrapi.store.dashboard_parts import DayPart, read_parts
from cdrapi.store.dashboard_saved import (
    Stamp,
    decode,
    load_rows,
    read_watermark,
    save_parts,
    saved_search,
)
from cdrapi.store.queries import where_clauses
from cdrapi.store.schema import calls

__all__ = ["DAY_END", "DAY_START", "DayParts", "days_of"]

DAY_START, DAY_END = " 00:00:00", " 23:59:59"
_TRIES = 4  # reads of the days found stale, before a period is read whole
_log = logging.getLogger(__name__)


def days_of(first: str, last: str) -> list[str]:
    """The days ``first`` to ``last`` (``YYYY-MM-DD``), both included."""
    at, end = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
    return [(at + dt.timedelta(days=n)).isoformat() for n in range((end - at).days + 1)]


def _runs(days: Sequence[str]) -> Iterator[tuple[str, str]]:
    """The runs of consecutive days in ``days`` (sorted): (first, last) of each."""
    start = previous = None
    for day in days:
        if previous is not None and dt.date.fromisoformat(day) - dt.date.fromisoformat(
            previous
        ) != dt.timedelta(days=1):
            yield start or previous, previous
            start = None
        start, previous = start or day, day
    if previous is not None:
        yield start or previous, previous


def _on(filters: CallFilters, first: str, last: str) -> CallFilters:
    return dataclasses.replace(filters, date_between=(first + DAY_START, last + DAY_END))


def _end(conn: Connection, end: Any) -> str:
    """The first (``func.min``) or last (``func.max``) time stored, or ``""``."""
    return str(conn.execute(select(end(calls.c.time))).scalar_one() or "")


def _stale(parts: dict[str, DayPart], fresh: set[str]) -> set[str]:
    """The days among ``parts`` (not counted in this snapshot: ``fresh``) whose part counts
    a call another day's part lists as spanning days, with chosen legs on that day."""
    found = set()
    for day, part in parts.items():
        for linkedid, chosen in part.spanning.items():
            for other_day in chosen:
                if other_day == day or other_day in fresh:
                    continue
                other = parts.get(other_day)
                if other is not None and linkedid not in other.spanning:
                    found.add(other_day)
    return found


class DayParts:
    """The days' figures of one engine's searches (thread-safe): at most ``cache_days``
    kept in memory, the least recently used dropped; those counted from the calls saved
    in the store (``saving``) for the searches :func:`~.dashboard_saved.saved_search`
    names. ``read_days`` counts the days counted from the calls."""

    def __init__(self, dialect: str, service_level: int, cache_days: int) -> None:
        self._dialect, self._service_level = dialect, service_level
        self._cache_days = cache_days
        self._lock = threading.Lock()
        self._parts: OrderedDict[tuple[CallFilters, str], DayPart] = OrderedDict()
        self._pending: OrderedDict[tuple[str, str], DayPart] = OrderedDict()
        # (search, day) -> the event set when the thread counting it is done
        self._counting: dict[tuple[CallFilters, str], threading.Event] = {}
        self._reset = 0
        self.saving = True
        self.read_days = 0
        self.forget()

    def forget(self) -> None:
        """Drop everything known (the store's file was replaced)."""
        with self._lock:
            self._parts.clear()
            self._pending.clear()
            # SQLite: the highest id whose leg's day is known; the ids above ``_base``
            # noted in ``_inserted`` (day -> its highest); parts counted below ``_floor``
            # (an older snapshot) are not kept
            self._seen: int | None = None
            self._base = self._floor = 0
            self._inserted: dict[str, int] = {}

    def _observe(self, conn: Connection) -> tuple[int | None, int | None]:
        """SQLite: the snapshot's highest id and the saved rows' watermark, the days of the
        legs added since last seen noted (ids are given in commit order there; PostgreSQL
        marks inserts)."""
        if self._dialect != "sqlite":
            return None, None
        top = int(conn.execute(select(func.coalesce(func.max(calls.c.id), 0))).scalar_one())
        watermark = read_watermark(conn) if self.saving else None
        with self._lock:
            seen = self._seen
        if seen is None or top < seen:  # first seen, or ids back (legs deleted)
            base = watermark if watermark is not None and watermark <= top else top
            added = inserted_days(conn, base) if base < top else {}
            with self._lock:
                if self._seen is None or top < self._seen:
                    if self._seen is not None:
                        self._parts.clear()
                    self._seen, self._base, self._floor = top, base, base
                    self._inserted = added
            return top, watermark
        if top > seen:
            added = inserted_days(conn, seen)
            with self._lock:
                for day, highest in added.items():
                    self._inserted[day] = max(self._inserted.get(day, 0), highest)
                self._seen = max(self._seen or 0, top)
        return top, watermark

    def _good(self, stamp: Stamp, day: str, marks: dict[str, int]) -> bool:
        """Whether figures counted at ``stamp`` are the day's now (under the lock)."""
        return bool(
            stamp.changes == marks.get(day, 0)
            and stamp.resets == marks.get(RESET, 0)
            and (stamp.top is None or self._inserted.get(day, 0) <= stamp.top)
        )

    def collect(
        self, conn: Connection, filters: CallFilters, first: str, last: str
    ) -> list[tuple[str, DayPart]]:
        """The figures of the whole days ``first`` to ``last`` of ``filters``: the days'
        parts and the calls that span days, counted whole (the parts of one day add up)."""
        key = dataclasses.replace(filters, date_between=None)
        search = saved_search(filters) if self.saving else None
        top, watermark = self._observe(conn)
        marks = read_marks(conn, first, last)
        with self._lock:
            if marks.get(RESET, 0) != self._reset:
                self._parts.clear()
                self._reset = marks.get(RESET, 0)
        bounds = (_end(conn, func.min), _end(conn, func.max))
        chosen = where_clauses(key, self._dialect)
        days = days_of(first, last)
        parts: dict[str, DayPart] = {}
        fresh: set[str] = set()
        recount: set[str] = set()  # found stale: counted from the calls

        def count(todo: list[str]) -> None:
            for run_first, run_last in _runs(todo):
                run = (run_first + DAY_START, run_last + DAY_END)
                where = where_clauses(_on(filters, run_first, run_last), self._dialect)
                found = read_parts(conn, where, run=run, bounds=bounds, chosen=chosen)
                for day in days_of(run_first, run_last):
                    part = found.get(day) or DayPart()
                    part.stamp = Stamp(marks.get(day, 0), marks.get(RESET, 0), top)
                    parts[day] = part
                    fresh.add(day)
                    self._keep(key, day, part, counted=True, search=search)

        for _ in range(_TRIES):
            self._remembered(key, days, marks, parts, recount)
            missing = [day for day in days if day not in parts and day not in recount]
            if missing and search is not None and self._trusted(top, watermark):
                self._load(conn, key, search, missing, marks, top, parts)
            mine, theirs = self._claim(key, [day for day in days if day not in parts])
            try:
                count(mine)
            finally:
                self._release(key, mine)
            if theirs:  # counted by another thread: in memory once it is done
                for event in theirs:
                    event.wait()
                self._remembered(key, days, marks, parts, recount)
                count([day for day in days if day not in parts])  # (changed since)
            stale = _stale(parts, fresh)
            if not stale:
                break
            with self._lock:
                for day in stale:
                    del parts[day]
                    self._parts.pop((key, day), None)
            recount |= stale
        else:  # (still changing: read the period whole)
            where = where_clauses(_on(filters, first, last), self._dialect)
            return list(read_parts(conn, where).items())
        merged = [(day, parts[day]) for day in days]
        spanning = sorted({linkedid for part in parts.values() for linkedid in part.spanning})
        if spanning:
            where = where_clauses(_on(filters, first, last), self._dialect)
            merged.extend(read_parts(conn, where, only=spanning).items())
        return merged

    def _remembered(
        self,
        key: CallFilters,
        days: list[str],
        marks: dict[str, int],
        parts: dict[str, DayPart],
        recount: set[str],
    ) -> None:
        """The parts in memory that are the days' now, into ``parts`` (not ``recount``'s)."""
        with self._lock:
            for day in days:
                part = self._parts.get((key, day))
                if day in parts or day in recount or part is None:
                    continue
                if self._good(part.stamp, day, marks):
                    parts[day] = part
                    self._parts.move_to_end((key, day))

    def _claim(self, key: CallFilters, days: list[str]) -> tuple[list[str], list[threading.Event]]:
        """Of ``days``, those this thread is to count (claimed now), and the events of the
        threads counting the others."""
        mine: list[str] = []
        theirs: list[threading.Event] = []
        claim = threading.Event()
        with self._lock:
            for day in days:
                event = self._counting.setdefault((key, day), claim)
                if event is claim:
                    mine.append(day)
                elif event not in theirs:
                    theirs.append(event)
        return mine, theirs

    def _release(self, key: CallFilters, days: list[str]) -> None:
        """End this thread's claim of ``days`` (counted, or not: its waiters count them)."""
        with self._lock:
            for day in days:
                event = self._counting.pop((key, day))
        if days:
            event.set()  # (one event for the days of a claim)

    def counting(self, filters: CallFilters, first: str, last: str) -> list[threading.Event]:
        """The events of the threads counting days ``first`` to ``last`` of ``filters``
        now (set when each is done)."""
        key = dataclasses.replace(filters, date_between=None)
        found: dict[int, threading.Event] = {}
        with self._lock:
            for (search, day), event in self._counting.items():
                if search == key and first <= day <= last:
                    found[id(event)] = event
        return list(found.values())

    def _trusted(self, top: int | None, watermark: int | None) -> bool:
        """Whether saved rows can be checked against the ids noted (SQLite: every leg up
        to the watermark is in them, those above it are noted here)."""
        if self._dialect != "sqlite":
            return True
        with self._lock:
            return watermark is not None and top is not None and self._base <= watermark <= top

    def _load(
        self,
        conn: Connection,
        key: CallFilters,
        search: str,
        missing: list[str],
        marks: dict[str, int],
        top: int | None,
        parts: dict[str, DayPart],
    ) -> None:
        """The saved parts of the ``missing`` days that are the days' now, into ``parts``."""
        rows = load_rows(conn, search, missing[0], missing[-1])
        for day in missing:
            row = rows.get(day)
            if row is None:
                continue
            stamp, figures, details = row
            with self._lock:
                good = self._good(stamp, day, marks)
            if not good:
                continue
            try:
                part = decode(figures, details)
            except (ValueError, KeyError, TypeError):  # (not what this code saves)
                continue
            # every leg of the day up to ``top`` is in it (as checked): stamped so
            part.stamp = Stamp(stamp.changes, stamp.resets, top)
            parts[day] = part
            self._keep(key, day, part, counted=False, search=None)

    def _keep(
        self, key: CallFilters, day: str, part: DayPart, *, counted: bool, search: str | None
    ) -> None:
        """Keep ``part`` in memory; one ``counted`` from the calls is saved under ``search``."""
        with self._lock:
            self.read_days += counted
            if counted and search is not None:
                self._pending[search, day] = part
                self._pending.move_to_end((search, day))
                while len(self._pending) > self._cache_days:
                    self._pending.popitem(last=False)
            top = part.stamp.top
            if top is not None and top < self._floor:
                return
            self._parts[key, day] = part
            self._parts.move_to_end((key, day))
            while len(self._parts) > self._cache_days:
                self._parts.popitem(last=False)

    def save(self, engine: Engine) -> bool:
        """Save the days counted from the calls since the last save; whether they were (on
        failure, such as SQLite's write lock held past :data:`~.dashboard_saved.SAVE_WAIT_MS`
        by an ingestion, they are saved with a later view)."""
        with self._lock:
            pending, self._pending = self._pending, OrderedDict()
        if not pending:
            return True
        try:
            save_parts(engine, pending, self._service_level)
        except SQLAlchemyError as exc:
            _log.debug("dashboard figures not saved: %s", exc)
            with self._lock:
                for name, part in pending.items():
                    self._pending.setdefault(name, part)
                while len(self._pending) > self._cache_days:
                    self._pending.popitem(last=False)
            return False
        return True
