"""The demo's calls dealt between processes, and their records handed out day by day,
in time order, marked recovered.

:class:`Deal` says which calls a process makes (its share of the run's chunks of
:data:`~cdrapi.demo.shape.SHARE_CALLS` calls), and cuts its rows of each day into chunks.

:func:`in_order` takes the rows one or more processes made
(:func:`cdrapi.demo.records.made`: each its chunks of every day, then the day's
midnight) and hands out the records: the chunks of a day put back in the order the
calls were made, the day tracked by :class:`~cdrapi.ingest.recovery.Recovery` as a
batch of ``ingest csv`` is (whether its missed calls were recovered depends on the next
24 hours, so a day is handed out once the next one is made), sorted by time, and its
legs that started after midnight moved to the next day.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from operator import itemgetter
from typing import Any

from cdrapi.demo.derivation import EXTRA_COLUMNS
from cdrapi.demo.shape import SHARE_CALLS
from cdrapi.ingest.recovery import Recovery
from cdrapi.ingest.row import KEY, RECOVERED, ROW_FIELDS

__all__ = ["DEMO_COLUMNS", "DayEnd", "Deal", "Row", "in_order"]

Row = tuple[Any, ...]
#: The end of a day's rows: the midnight that ends the day (``"YYYY-MM-DD "``) and the
#: calls of the run made by then.
DayEnd = tuple[str, int]

#: The columns of a record's tuple: the derived row's but ``source_key`` (demo calls are
#: not ingested ones: ``cdrapi ingest`` never matches them), then the queue_log's, the
#: CEL's and what no PBX log holds (:data:`cdrapi.demo.derivation.EXTRA_COLUMNS`).
DEMO_COLUMNS = (*ROW_FIELDS[1:], *EXTRA_COLUMNS)
_TIME = itemgetter(ROW_FIELDS.index("time"))


def in_order(made: Sequence[Iterable[list[Row] | DayEnd]]) -> Iterator[Row]:
    """The records (tuples of :data:`DEMO_COLUMNS`) of the rows ``made`` by each share
    (see the module's docstring): the run's chunk ``n`` (its calls from ``n *
    SHARE_CALLS`` on) is share ``n % len(made)``'s."""
    streams = [iter(stream) for stream in made]
    try:
        yield from _days(streams)
    finally:  # stopped early: the shares' producer processes stop too
        for stream in streams:
            close = getattr(stream, "close", None)
            if close is not None:
                close()


def _days(streams: list[Iterator[list[Row] | DayEnd]]) -> Iterator[Row]:
    """:func:`in_order`'s records of the shares' ``streams``."""
    item: list[Row] | DayEnd | None
    recovery = Recovery(24, in_store=False)
    previous: list[Row] | None = None
    midnight = ""  # where the previous day ends
    chunk = 0
    while True:
        out: list[Row] = []  # the day's rows, in the order they were made
        while isinstance(item := next(streams[chunk % len(streams)], None), list):
            out.extend(item)
            chunk += 1
        if item is None:  # no more days
            break
        for n, stream in enumerate(streams):
            if n != chunk % len(streams) and next(stream, None) != item:
                raise AssertionError("the shares' days are not the same")
        ends, calls = item
        chunk = calls // SHARE_CALLS  # the next day's first call's (a chunk may go on)
        if previous is not None:  # the previous day is complete now that this one exists
            _recover(recovery, previous, out)
            out.extend(_after(previous, midnight))  # legs that started after midnight
            yield from _stored(previous)
        else:
            _recover(recovery, [], out)
        previous, midnight = out, ends
    if previous is not None:
        _recover(recovery, previous, [])
        after = _after(previous, midnight)
        yield from _stored(previous)
        yield from _stored(after)


def _stored(rows: list[Row]) -> Iterator[Row]:
    """The records of derived rows: without their ``source_key``."""
    for row in rows:
        yield row[1:]


def _recover(recovery: Recovery, previous: list[Row], rows: list[Row]) -> None:
    """Track a day's ``rows`` as ingestion tracks a batch (in place), and mark the
    ``previous`` day's legs they recovered or found to be legs of an answered call."""
    cleared: list[str] = []
    found = recovery.track(rows, None, cleared)
    if not found and not cleared:
        return
    where = {row[KEY]: i for i, row in enumerate(previous) if row[RECOVERED] == 0}
    for key in found:
        i = where.get(key)
        if i is not None:
            row = previous[i]
            previous[i] = (*row[:RECOVERED], 1, *row[RECOVERED + 1 :])
    if cleared:
        raise AssertionError("a call's legs are all made the same day")


def _after(rows: list[Row], midnight: str) -> list[Row]:
    """Sort a day's ``rows`` by time, and cut off and return those from ``midnight`` on."""
    rows.sort(key=_TIME)
    cut = bisect_left(rows, midnight, key=_TIME)
    after = rows[cut:]
    del rows[cut:]
    return after


class Deal:
    """Which calls a share makes: the run's calls in chunks of :data:`SHARE_CALLS`,
    dealt in turn (see :func:`cdrapi.demo.records.made`); each day, the share's rows
    chunk by chunk (a chunk that goes on past a day's end is a part of each day)."""

    def __init__(self, share: int, shares: int) -> None:
        if not 0 <= share < shares:
            raise ValueError("share must be in 0 .. shares - 1")
        self.share, self.shares = share, shares
        self.calls = 0  # calls made (or drawn) so far in the run
        self.out: list[Row] = []  # this share's rows of the day
        self.starts: list[int] = []  # where its chunks start in them
        self.started = -1  # the last chunk of the day started in them

    def day(self, out: list[Row]) -> None:
        """A new day, whose rows go to ``out``."""
        self.out, self.starts, self.started = out, [], -1

    def mine(self) -> bool:
        """Whether the call about to be made is this share's (asked once a call)."""
        chunk = self.calls // SHARE_CALLS
        self.calls += 1
        if chunk % self.shares != self.share:
            return False
        if chunk != self.started:
            self.starts.append(len(self.out))
            self.started = chunk
        return True

    def chunks(self) -> Iterator[list[Row]]:
        """The day's rows of this share, chunk by chunk (when the day is made)."""
        out, starts = self.out, self.starts
        for n, start in enumerate(starts):
            yield out[start : starts[n + 1] if n + 1 < len(starts) else len(out)]
