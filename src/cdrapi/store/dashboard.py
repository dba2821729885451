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

Where the time goes: grouping legs into calls costs SQLite some microseconds a leg (a
year of a busy PBX is seconds). So a period of whole days is read day by day
(:mod:`cdrapi.store.dashboard_days`, :mod:`cdrapi.store.dashboard_parts`): each day's
figures of a search are kept in memory and saved in the store
(:mod:`cdrapi.store.dashboard_saved`: a start, or another worker, reads them), and
counted again only when the day's calls changed (:mod:`cdrapi.store.dashboard_marks`:
the database marks the days it writes, whatever writes), so that while calls arrive
only today is counted again; a call that crossed midnight is counted for each search
from its legs. A period with a time of day in its ends is read whole. The finished
figures are also kept per search and store version: a page seen again costs nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import heapq
import threading
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.exc import SQLAlchemyError

from cdrapi.protocol.filters import CallFilters
from cdrapi.protocol.values import CALL_STATUSES, DIRECTIONS
from cdrapi.store.dashboard_days import DAY_END, DAY_START, DayParts
from cdrapi.store.dashboard_figures import (
    HOURLY_DAYS,
    SERVICE_LEVEL_SECONDS,
    Dashboard,
    MissedCall,
    QueueFigures,
    UserFigures,
    average,
    buckets,
    percentile,
)
from cdrapi.store.dashboard_figures import (
    unit as unit_of,
)
from cdrapi.store.dashboard_marks import ensure_marks
from cdrapi.store.dashboard_parts import (
    MISSED_SHOWN,
    DayPart,
    Missed,
    add_counts,
    add_pairs,
    read_parts,
)
from cdrapi.store.dashboard_saved import ensure_saved
from cdrapi.store.dashboard_stop import Stop
from cdrapi.store.engine import StoreError, read_version, store_generation
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


def _whole_days(filters: CallFilters) -> bool:
    """Whether the period's ends (if any) are whole days."""
    start, end = filters.date_between or (None, None)
    return (start is None or start.endswith(DAY_START)) and (end is None or end.endswith(DAY_END))


class DashboardReader:
    """Reads the dashboard's figures from one engine (thread-safe). Days' figures are
    kept per search in memory (at most ``cache_days`` of them, the least recently used
    dropped: a busy day's are some 200 KB, so the default is a year and a month of one
    search) and saved in the store (:mod:`~cdrapi.store.dashboard_saved`), at the end of
    the view that counted them; finished figures are kept per search and store version
    (at most ``cache_boards``)."""

    def __init__(
        self,
        engine: Engine,
        *,
        service_level: int = SERVICE_LEVEL_SECONDS,
        cache_days: int = 400,
        cache_boards: int = 64,
    ) -> None:
        self.engine = engine
        self.service_level = service_level
        self._dialect = engine.dialect.name
        self._lock = threading.Lock()
        self._cache_boards = cache_boards
        self._days = DayParts(self._dialect, service_level, cache_days)
        self._boards: OrderedDict[tuple[CallFilters, int, int], Dashboard] = OrderedDict()
        self._generation: int | None = None

    @property
    def read_days(self) -> int:
        """How many days' figures this reader has counted from the calls (not from memory
        or from the figures saved in the store)."""
        return self._days.read_days

    @contextlib.contextmanager
    def _read(self, stop: Stop | None = None) -> Iterator[Connection]:
        """One read transaction: every figure from one snapshot (ended by ``stop``)."""
        connection = self.engine.connect()
        if self._dialect == "postgresql":
            connection = connection.execution_options(isolation_level="REPEATABLE READ")
        with connection as conn, conn.begin():
            if stop is None:
                yield conn
            else:
                with stop.watching(conn):
                    yield conn

    def _generation_now(self) -> int:
        """The store's generation, what was known of an earlier one dropped."""
        generation = store_generation(self.engine)
        if generation != self._generation:
            ensure_marks(self.engine)
            self._days.saving = ensure_saved(self.engine)
            with self._lock:
                self._days.forget()
                self._boards.clear()
                self._generation = generation
        return generation

    def count(self, filters: CallFilters, *, stop: Stop | None = None) -> bool:
        """Count the days of ``filters``' period (whole days) not known yet, kept in memory
        and saved, without making its figures: the server's warm-up does so a step of
        days at a time. Whether they were all saved (SQLite's write lock held past
        :data:`~.dashboard_saved.SAVE_WAIT_MS`: not yet). Raises
        :class:`~.dashboard_stop.Stopped` (``stop`` set), and
        :class:`~cdrapi.store.engine.StoreError` when the store cannot be read."""
        start, end = filters.date_between or ("", "")
        if not (start and end and _whole_days(filters)):
            raise ValueError(f"only a period of whole days is counted ahead: {start!r}, {end!r}")
        try:
            self._generation_now()
            with self._read(stop) as conn:
                self._days.collect(conn, filters, start[:10], end[:10])
        except (SQLAlchemyError, self.engine.dialect.loaded_dbapi.Error) as exc:
            raise StoreError(f"the dashboard's days cannot be counted: {exc}") from exc
        return self._days.save(self.engine)

    def save(self) -> bool:
        """Save the days counted and not saved yet; whether they are (:meth:`count`)."""
        return self._days.save(self.engine)

    def counting(self, filters: CallFilters) -> list[threading.Event]:
        """The events of the threads counting days of ``filters``' period now (each set
        when that thread is done): a view can wait for them without holding a store
        thread."""
        start, end = filters.date_between or ("", "")
        if not (start and end and _whole_days(filters)):
            return []
        return self._days.counting(filters, start[:10], end[:10])

    def figures(self, filters: CallFilters, now: dt.datetime) -> Dashboard:
        """The dashboard of the calls ``filters`` choose; ``now`` is the PBX's local time
        (naive, or aware in the PBX's zone), from which missed calls have waited."""
        now = now.replace(tzinfo=None)
        generation = self._generation_now()
        with self._read() as conn:
            version = read_version(conn)
            with self._lock:
                board = self._boards.get((filters, version, generation))
            if board is None:
                board = self._figures(conn, filters)
                with self._lock:
                    self._boards[filters, version, generation] = board
                    while len(self._boards) > self._cache_boards:
                        self._boards.popitem(last=False)
        self._days.save(self.engine)
        missed = [
            dataclasses.replace(call, waited=_waited(now, call.time)) for call in board.missed_calls
        ]
        return dataclasses.replace(board, missed_calls=missed)

    def _figures(self, conn: Connection, filters: CallFilters) -> Dashboard:
        start, end = filters.date_between or (None, None)
        where = where_clauses(filters, self._dialect)
        if not _whole_days(filters):
            return self._board(list(read_parts(conn, where).items()), filters)
        start = start or _end(conn, where, func.min)
        end = end or _end(conn, where, func.max)
        parts = self._days.collect(conn, filters, start[:10], end[:10]) if start and end else []
        return self._board(parts, filters)

    def _board(self, parts: list[tuple[str, DayPart]], filters: CallFilters) -> Dashboard:
        """The figures from the parts of the period's days (and of its calls read whole)."""
        unit = unit_of(filters)
        board = Dashboard(unit=unit, service_level_seconds=self.service_level)
        cells: dict[tuple[str, str, str], int] = {}
        waits: dict[int, int] = {}
        talks: dict[int, int] = {}
        queues: dict[str, list[int]] = {}
        users: dict[tuple[int | None, str], list[int]] = {}
        for day, part in parts:
            summary = part.summary(self.service_level)
            if unit == "hour":
                add_counts(cells, part.details().cells)
            else:
                for (direction, status), n in summary.daily.items():
                    cell = (day, direction, status)
                    cells[cell] = cells.get(cell, 0) + n
            heat = board.heat[dt.date.fromisoformat(day).weekday()]
            for hour, n in enumerate(summary.hours):
                heat[hour] += n
            add_counts(waits, summary.waits)
            add_counts(talks, part.talks)
            for name, (offered, answered, within) in summary.queues.items():
                figures = queues.setdefault(name, [0, 0, 0])
                figures[0] += offered
                figures[1] += answered
                figures[2] += within
            add_pairs(users, part.users)
            board.missed += part.missed
        for (_, _, status), n in cells.items():
            board.calls += n
            board.answered += n if status == "ANSWERED" else 0
        board.buckets = buckets(unit, filters, sorted({cell[0] for cell in cells}))
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
        board.wait_average, board.wait_p90 = average(waits), percentile(waits, 0.9)
        board.talk_average, board.talk_p90 = average(talks), percentile(talks, 0.9)
        board.queues = sorted(
            (QueueFigures(name, *figures) for name, figures in queues.items()),
            key=lambda queue: (-queue.offered, queue.name),
        )
        board.users = sorted(
            (UserFigures(user_id, name, n, talk) for (user_id, name), (n, talk) in users.items()),
            key=lambda user: (-user.answered, -user.talk, user.name),
        )
        board.missed_calls = [
            MissedCall(key, time, source, queue, legs, 0)
            for time, key, source, queue, legs in _most_recent(parts)
        ]
        return board


def _most_recent(parts: list[tuple[str, DayPart]]) -> list[Missed]:
    """The :data:`MISSED_SHOWN` most recent missed calls of ``parts``, newest first: from
    the last days only (a part's missed calls are of its day)."""
    recent: list[Missed] = []
    enough = None  # the day the list became long enough: no earlier day can add to it
    for day, part in sorted(parts, key=lambda item: item[0], reverse=True):
        if enough is not None and day < enough:
            break
        if part.missed:
            recent.extend(part.details().recent)
        if enough is None and len(recent) >= MISSED_SHOWN:
            enough = day
    return heapq.nlargest(MISSED_SHOWN, recent)


def _end(conn: Connection, where: list[Any], end: Any) -> str:
    """The first (``func.min``) or last (``func.max``) time of the legs ``where`` chooses,
    or ``""`` (one statement each: SQLite reads an end of ix_calls_time only for one)."""
    return str(conn.execute(select(end(calls.c.time)).where(*where)).scalar_one() or "")


def _waited(now: dt.datetime, time: str) -> int:
    waited = now - dt.datetime.strptime(time, "%Y-%m-%d %H:%M:%S")
    return max(0, int(waited.total_seconds()))
