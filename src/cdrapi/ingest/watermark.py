"""Where a SQL table source stopped, in the table's own terms, and the rows read near it.

A table (the ``cdr`` table by ``calldate``, a ``queue_log`` table by ``time``) is read
from the latest time read, the *watermark*, minus a lookback: rows can commit late, so
the window behind the watermark is read again on every poll. A :class:`Clock` keeps the
watermark and the bound of the next read in the column's own terms, so that the
database compares like with like:

``instant``
    A zone-aware column (PostgreSQL ``timestamptz``): an instant, saved as ISO with its
    offset. The bound is exact whatever the zones of the PBX, the database session and
    this host.
``local``
    A naive ``datetime``/``timestamp`` column (MariaDB, PostgreSQL ``timestamp``): the
    column's own local time, the PBX's (the ``timezone`` setting). Local times go back
    when daylight saving time ends (01:30 comes twice), so the bound is the earliest
    local time of any instant from the watermark minus the lookback on: before a
    fall-back, an hour earlier, and the second 01:30 is not behind it.
``text``
    A text column (SQLite, ``cdr_sqlite3_custom``): compared as text, the bound formatted
    ``YYYY-MM-DD HH:MM:SS`` (local time, as ``local``), or as digits for epoch text.
``epoch``
    An integer column of seconds since 1970 (a queue_log ``time_id``).

A :class:`Window` holds the keys of the rows read in that window and how many times the
table holds each, so a row read again is not a new line, a second identical row is one
(counted as already there), and a row rejected once is not rejected again on the next
poll. The saved position (:meth:`Clock.dumps`) carries the watermark and the window's
keys the store cannot tell (rejected rows, identical copies).

Checkpoints written before (``{"watermark": "YYYY-MM-DD HH:MM:SS"}``: the PBX's local
time whatever the column) are read as local time in the PBX's zone.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy.types import Date, DateTime, Integer, Numeric, TypeEngine

__all__ = [
    "AGAIN", "COPY", "NEW", "Clock", "Window", "column_kind", "dumps_position", "loads_position",
]  # fmt: skip

Kind = Literal["instant", "local", "text", "epoch"]
_UTC = dt.UTC
_PLAIN = "%Y-%m-%d %H:%M:%S"
#: Longer than any daylight saving change: the look-ahead for a fall-back (see _floor).
_AHEAD = dt.timedelta(hours=3)

#: What :meth:`Window.take` says of a row: not read before, an identical copy of a row
#: read before in this pass (the table holds it twice), read again (in the lookback).
NEW, COPY, AGAIN = 0, 1, 2


def column_kind(sql_type: TypeEngine[Any], dialect: str) -> Kind:
    """How a time column of ``sql_type`` (as reflected) is compared."""
    if isinstance(sql_type, Integer | Numeric):
        return "epoch"
    if dialect == "sqlite":  # any declared type: the driver hands back the text
        return "text"
    if isinstance(sql_type, DateTime) and getattr(sql_type, "timezone", False):
        return "instant"
    if isinstance(sql_type, DateTime | Date):
        return "local"
    return "text"


class Clock:
    """Positions in a time column of ``kind`` whose local times are in ``zone``."""

    def __init__(self, kind: Kind, zone: dt.tzinfo) -> None:
        self.kind, self.zone = kind, zone

    def mark(self, value: Any) -> Any:
        """The sortable position of a column value, or ``None`` (no time)."""
        kind = self.kind
        if kind == "instant":
            if isinstance(value, dt.datetime):
                return value.astimezone(_UTC) if value.tzinfo else self._instant(value)
            return None
        if kind == "local":
            if isinstance(value, dt.datetime):
                return value.astimezone(self.zone).replace(tzinfo=None) if value.tzinfo else value
            if isinstance(value, dt.date):
                return dt.datetime(value.year, value.month, value.day)
            return None
        if kind == "epoch":
            return (  # int, float or a DECIMAL column's Decimal
                int(value)
                if isinstance(value, int | float | Decimal) and not isinstance(value, bool)
                else None
            )
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if isinstance(value, dt.datetime):  # a driver that parses text after all
            value = value.strftime(_PLAIN)
        return value if isinstance(value, str) and value.strip() else None

    def bound(self, mark: Any, lookback: dt.timedelta) -> Any:
        """The lowest column value a row committed from ``mark - lookback`` on can have."""
        kind = self.kind
        if kind == "instant":
            return mark - lookback
        if kind == "epoch":
            return mark - int(lookback.total_seconds())
        if kind == "local":
            return self._floor(self._instant(mark) - lookback)
        text = mark.strip()
        if text.replace(".", "", 1).isdigit():  # epoch seconds as text, compared as text
            whole = text.split(".", 1)[0]
            return str(max(0, int(whole) - int(lookback.total_seconds()))).zfill(len(whole))
        try:
            when = dt.datetime.fromisoformat(text)
        except ValueError:
            return mark  # not a time: read from the watermark itself
        start = when.astimezone(_UTC) if when.tzinfo else self._instant(when)
        return self._floor(start - lookback).strftime(_PLAIN)

    def store_since(self, bound: Any) -> str | None:
        """``bound`` as the store's ``time`` text (the PBX's local time), or ``None``."""
        if self.kind == "instant":
            return self._floor(bound).strftime(_PLAIN)
        if self.kind == "local":
            return str(bound.strftime(_PLAIN))
        if self.kind == "epoch":
            return self._floor(dt.datetime.fromtimestamp(bound, _UTC)).strftime(_PLAIN)
        text = str(bound)
        if text.replace(".", "", 1).isdigit():
            return self._floor(dt.datetime.fromtimestamp(float(text), _UTC)).strftime(_PLAIN)
        return text[:19].replace("T", " ")

    def epoch(self, mark: Any) -> int | None:
        """The Unix time of a position (``None``: not a time)."""
        try:
            if self.kind == "instant":
                return int(mark.timestamp())
            if self.kind == "local":
                return int(self._instant(mark).timestamp())
            if self.kind == "epoch":
                return int(mark)
            text = mark.strip()
            if text.replace(".", "", 1).isdigit():
                return int(float(text))
            when = dt.datetime.fromisoformat(text)
        except (AttributeError, TypeError, ValueError, OverflowError):
            return None
        return int((when if when.tzinfo else self._instant(when)).timestamp())

    def dumps(self, mark: Any) -> str:
        if self.kind == "instant":
            return str(mark.isoformat())
        if self.kind == "local":
            return str(mark.isoformat(" "))
        return str(mark)

    def loads(self, text: str, kind: str | None) -> Any:
        """A position saved by :meth:`dumps` for a column of ``kind`` (``None``: a
        checkpoint from before kinds, the PBX's local time); ``None`` if unusable."""
        if kind == self.kind and self.kind in ("text", "epoch"):
            return int(text) if self.kind == "epoch" else text
        try:
            when = dt.datetime.fromisoformat(text)
        except (TypeError, ValueError):
            return None
        if self.kind == "instant":
            return when.astimezone(_UTC) if when.tzinfo else self._instant(when)
        local = when.astimezone(self.zone).replace(tzinfo=None) if when.tzinfo else when
        if self.kind == "local":
            return local
        if self.kind == "epoch":
            return self.epoch(local)
        return local.strftime(_PLAIN)

    def _instant(self, local: dt.datetime) -> dt.datetime:
        """The earliest instant a local time can be (01:30 on a fall-back day: the first)."""
        zone = self.zone
        return min(
            local.replace(tzinfo=zone, fold=0).astimezone(_UTC),
            local.replace(tzinfo=zone, fold=1).astimezone(_UTC),
        )

    def _floor(self, start: dt.datetime) -> dt.datetime:
        """The earliest local time of any instant from ``start`` on: its own, unless the
        clocks go back within :data:`_AHEAD` (then the local time just after)."""
        zone = self.zone
        before = start.astimezone(zone).utcoffset()
        local = start.astimezone(zone).replace(tzinfo=None)
        if before is None or (start + _AHEAD).astimezone(zone).utcoffset() == before:
            return local
        low = int(start.timestamp())  # the change is in (low, high]: to the second
        high = low + int(_AHEAD.total_seconds())
        while high - low > 1:
            middle = (low + high) // 2
            if dt.datetime.fromtimestamp(middle, zone).utcoffset() == before:
                low = middle
            else:
                high = middle
        after = dt.datetime.fromtimestamp(high, zone)
        if after.utcoffset() is not None and after.utcoffset() < before:  # type: ignore[operator]
            return min(local, after.replace(tzinfo=None))
        return local


class Window:
    """The rows read from the lookback window on: key -> [position, copies in the table,
    pass that last read it, copies read in that pass]."""

    def __init__(self) -> None:
        self.rows: dict[str, list[Any]] = {}
        self.held: set[str] = set()  # rejected: not in the store, yet read
        self.passes = 0

    def begin(self) -> None:
        """A new read of the table starts."""
        self.passes += 1

    def know(self, key: str, mark: Any, copies: int = 1, held: bool = False) -> None:
        """``key`` was read before (by an earlier run: found in the store or checkpoint)."""
        self.rows[key] = [mark, copies, 0, 0]
        if held:
            self.held.add(key)

    def take(self, key: str, mark: Any) -> int:
        """:data:`NEW`, :data:`COPY` or :data:`AGAIN` for a row read now."""
        entry = self.rows.get(key)
        if entry is None:
            self.rows[key] = [mark, 1, self.passes, 1]
            return NEW
        entry[0] = mark  # known from the store: its own position from now on
        if entry[2] != self.passes:
            entry[2], entry[3] = self.passes, 1
        else:
            entry[3] += 1
        if entry[3] <= entry[1]:
            return AGAIN
        entry[1] = entry[3]
        return COPY

    def hold(self, key: str) -> None:
        """The row of ``key`` is not in the store (rejected): remember it in the checkpoint."""
        self.held.add(key)

    def prune(self, bound: Any) -> None:
        """Forget the rows before ``bound``: no read from it on sees them again."""
        gone = [key for key, entry in self.rows.items() if entry[0] is None or entry[0] < bound]
        for key in gone:
            del self.rows[key]
            self.held.discard(key)

    def kept(self) -> Iterator[tuple[str, Any, int]]:
        """(key, position, copies) of the rows the store cannot tell of."""
        for key, (mark, copies, _pass, _read) in self.rows.items():
            if copies > 1 or key in self.held:
                yield key, mark, copies


def dumps_position(clock: Clock, watermark: Any, window: Window) -> str:
    """The checkpoint text: the watermark and the window's rows the store cannot tell."""
    kept = [[key, clock.dumps(mark), copies, int(key in window.held)]
            for key, mark, copies in window.kept()]  # fmt: skip
    return json.dumps(
        {"watermark": clock.dumps(watermark), "kind": clock.kind, "window": kept},
        separators=(",", ":"),
    )


def loads_position(clock: Clock, text: str | None, window: Window) -> Any:
    """The watermark saved in ``text`` (``None``: none, or unusable); its window's rows
    go into ``window``."""
    if not text:
        return None
    try:
        data = json.loads(text)
        kind = data.get("kind")
        watermark = clock.loads(str(data["watermark"]), kind)
        for key, mark, copies, held in data.get("window", ()):
            window.know(str(key), clock.loads(str(mark), kind), int(copies), bool(held))
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
    return watermark
