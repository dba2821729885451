"""A polled SQL table of PBX *events* (``queue_log``, ``cel``): what its readers share.

Asterisk's realtime ``queue_log`` and the ``cel`` table of cel_odbc/cel_pgsql/
cel_sqlite3 are both tables of events, one row each, with a time column and usually an
``id``. :class:`EventTable` finds the columns by name (the subclass says which, and
which are needed), reads the rows by time (then ``id``), gives each row its key (a
digest of its values: the table has no key a later poll could trust) and its place
(``row id 7``, or its time when the table has no ``id``), and turns what the subclass
cannot use into a reject whose line is the row's values as CSV. :func:`ingest_event_table`
is the run: the table read as the ``cdr`` table is (:func:`~cdrapi.ingest.sqlsource.poll_table`:
from the last position minus ``lookback``, each batch committed with its position; the
keys of the rows read in the lookback are kept in the checkpoint, so a row read again is
not a new line), its times local in the PBX's zone, or UTC with ``gmt``.

A subclass keeps only what differs: its columns (:attr:`EventTable.SOURCE` and the
class attributes beside it, :meth:`EventTable.locate`, :meth:`EventTable.id_columns`),
a row's event (:meth:`EventTable.event`), its reject line, what to do with a complete
batch (:meth:`EventTable.finish`) and the hook that stores the events
(:meth:`EventTable.after_rows`).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar

from sqlalchemy import Connection, Engine, column, inspect, select, table
from sqlalchemy.exc import SQLAlchemyError

from cdrapi.ingest.batch import AfterRows, Batch
from cdrapi.ingest.errors import Reject, SourceError
from cdrapi.ingest.run import IngestRun
from cdrapi.ingest.sqlsource import connect_source, poll_table, reason, safe_url
from cdrapi.ingest.summary import Summary
from cdrapi.ingest.watermark import Clock, column_kind
from cdrapi.store.writer import Writer

__all__ = ["INTERVAL", "LOOKBACK", "EventTable", "ingest_event_table", "text_of"]

#: How far behind the latest event a poll looks again: the PBX inserts each event as it
#: happens, so a short lookback is enough.
LOOKBACK = dt.timedelta(minutes=10)
#: Seconds between polls with ``follow``.
INTERVAL = 1.0

#: What :meth:`EventTable.read` hands to :meth:`EventTable.take`: the time column's
#: value, its position, where the row is (for a reject), its other values as text.
Item = tuple[Any, Any, str, list[str]]


def text_of(value: Any) -> str:
    """A column's value as text (``None``: empty; bytes decoded; spaces stripped)."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value).strip()


class EventTable:
    """An event table's columns, its rows' keys and rejects (a
    :class:`~cdrapi.ingest.sqlsource.TableRows`); a subclass makes a row's event."""

    keys_in_store = False  # events, not calls: the checkpoint keeps the window's keys

    #: The checkpoint (and reject) name's prefix: ``<SOURCE>:<url>#<table>``.
    SOURCE: ClassVar[str]
    #: What the table is, and the columns it needs, for the error of a table that is not.
    WHAT: ClassVar[str]
    EXPECTED: ClassVar[str]
    #: The time column's field; the other fields read, in order (those found).
    TIME: ClassVar[str]
    FIELDS: ClassVar[Sequence[str]]
    #: A row key's prefix, and whether the row's ``id`` is part of its key.
    KEY_PREFIX: ClassVar[str]
    ID_IN_KEY: ClassVar[bool]

    def __init__(self, source: Engine, table_name: str, url: str, zone: dt.tzinfo) -> None:
        self.name = f"{self.SOURCE}:{safe_url(url)}#{table_name}"[:255]
        try:
            found = inspect(source).get_columns(table_name)
        except SQLAlchemyError as exc:
            raise SourceError(
                f"cannot read table {table_name!r} of {safe_url(url)}: {reason(exc)}"
            ) from exc
        names = [str(c["name"]) for c in found]
        at = self.locate(names)
        if at is None:
            raise SourceError(
                f"table {table_name!r} is not a {self.WHAT} table: expected the columns "
                f"{self.EXPECTED}; it has {', '.join(names)}"
            )
        self.zone = zone
        self.clock = Clock(column_kind(found[at[self.TIME]]["type"], source.dialect.name), zone)
        self.fields = [f for f in self.FIELDS if f in at and f not in (self.TIME, "id")]
        ids = self.id_columns(names, at)
        self.columns: list[Any] = [column(names[at[self.TIME]])]
        self.columns += [column(names[at[f]]) for f in self.fields] + [column(n) for n in ids]
        self.table = table(table_name, *self.columns)
        self.has_id = bool(ids)

    # What a subclass says.

    def locate(self, names: Sequence[str]) -> dict[str, int] | None:
        """Field -> index of the table's column ``names``; ``None``: not such a table."""
        raise NotImplementedError

    def id_columns(self, names: Sequence[str], at: dict[str, int]) -> list[str]:
        """The table's ``id`` column, if it has one (a list of at most one)."""
        return [names[at["id"]]] if "id" in at else []

    def event(self, value: Any, mark: Any, values: list[str]) -> tuple[Any, ...] | str | None:
        """The event of a row (``value``: its time column's, ``mark``: its position, None
        when it has none; ``values``: :attr:`fields` as text); ``None``: a row to skip;
        a text: why the row is rejected."""
        raise NotImplementedError

    def reject_line(self, value: Any, values: list[str]) -> list[str]:
        """The fields of a rejected row's line in the reject file."""
        return [text_of(value), *values]

    def after_rows(self, store: Writer, options: IngestRun, summary: Summary) -> AfterRows:
        """The hook that stores a batch's events in its transaction."""
        raise NotImplementedError

    def finish(self, batch: Batch) -> None:
        """A batch is complete (before it is committed)."""

    # What poll_table asks.

    def select(self, bound: Any) -> Any:
        """The rows from ``bound`` (``None``: all) on, by time, then ``id``."""
        order = [self.columns[0], *self.columns[len(self.fields) + 1 :]]
        query = select(*self.columns).select_from(self.table).order_by(*order)
        if bound is not None:
            query = query.where(self.columns[0] >= bound)
        return query

    def read(self, row: Sequence[Any]) -> tuple[str, Any, Item]:
        """(key, position, item) of a row: the key a digest of its time and values."""
        values = [text_of(value) for value in row[1 : len(self.fields) + 1]]
        mark = self.clock.mark(row[0])
        when = self.clock.dumps(mark) if mark is not None else text_of(row[0])
        ident = text_of(row[-1]) if self.has_id else ""
        parts = [ident, when, *values] if self.ID_IN_KEY else [when, *values]
        digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=12)
        where = f"row id {ident}" if self.has_id else f"{self.TIME} {text_of(row[0])!r}"
        return self.KEY_PREFIX + digest.hexdigest(), mark, (row[0], mark, where, values)

    def take(self, item: Item, number: int, batch: Batch) -> bool:
        """The row's event into ``batch``; False: the row is rejected (with its place)."""
        value, mark, where, values = item
        made = self.event(value, mark, values)
        if not isinstance(made, str):
            if made is not None:
                batch.events.append(made)
            return True
        out = io.StringIO()
        csv.writer(out, lineterminator="").writerow(self.reject_line(value, values))
        batch.rejects.append(Reject(self.name, number, f"{where}: {made}", out.getvalue().encode()))
        return False

    def known(self, conn: Connection, since: str) -> Iterable[str]:
        """None: the store does not keep events' keys (see :attr:`keys_in_store`)."""
        return ()


def ingest_event_table(
    engine: Engine,
    url: str,
    options: IngestRun | None,
    make: Callable[[Engine, IngestRun, dt.tzinfo], EventTable],
    *,
    follow: bool,
    lookback: dt.timedelta,
    interval: float,
    gmt: bool,
) -> Summary:
    """Import the event table ``make(source, options, zone)`` gives of the database at
    ``url`` (times in the PBX's zone, or UTC with ``gmt``); with ``follow``, poll it
    until ``options.stop`` is set. The table is made (its columns checked) before the
    store is touched."""
    options = options or IngestRun()
    source = connect_source(url)
    rejects = options.reject_file()
    summary = Summary()
    try:
        zone = dt.UTC if gmt else options.zone()
        events = make(source, options, zone)
        store = options.prepare(engine)
        return poll_table(
            store, source, events, rejects=rejects, summary=summary,
            after_rows=events.after_rows(store, options, summary),
            from_start=options.from_start, follow=follow, lookback=lookback,
            interval=interval, stop=options.stop, progress=options.progress,
        )  # fmt: skip
    finally:
        rejects.close()
        source.dispose()
