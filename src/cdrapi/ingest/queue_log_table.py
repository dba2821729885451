"""A queue_log *table* into the store: the same events as the queue_log file.

Many PBXs keep queue_log in their database: Asterisk's realtime ``queue_log``
(``extconfig.conf``: ``queue_log => odbc,asterisk,queue_log``; contrib/realtime's table
``id, time, callid, queuename, agent, event, data1..data5``, or one ``data`` column
with the arguments joined by ``|`` without ``queue_adaptive_realtime``), FreePBX and
PBXware (``queue_log`` or ``queuelog``), QueueMetrics (``time_id, call_id, queue,
agent, verb, data1..``). The columns are found by name (:data:`QUEUE_COLUMNS`). The
``time`` column may be a ``datetime`` (Asterisk writes the PBX's local time, or UTC
with ``queue_log_realtime_use_gmt``: ``gmt``), a ``timestamptz``, or epoch seconds
(an integer, or digits as text).

The table is read as the ``cdr`` table is (:mod:`cdrapi.ingest.sqlsource`): by time,
from the last position minus ``lookback``, each batch committed with its position, so
nothing is skipped or read twice; its events are stored as the file's
(:class:`~cdrapi.ingest.queue_fields.QueueFields`). Asterisk inserts each event as it
happens, so the lookback can be short (default 10 minutes); the keys of the rows read
in it are kept in the checkpoint, so a row read again is not a new line.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, column, inspect, select, table
from sqlalchemy.exc import SQLAlchemyError

from cdrapi.ingest.batch import Batch
from cdrapi.ingest.directory import Directory
from cdrapi.ingest.errors import Reject, SourceError
from cdrapi.ingest.queue_events import call_event, event_data, queue_columns
from cdrapi.ingest.queue_fields import QueueFields
from cdrapi.ingest.run import IngestRun
from cdrapi.ingest.sqlsource import connect_source, poll_table, reason, safe_url
from cdrapi.ingest.summary import Summary
from cdrapi.ingest.watermark import Clock, column_kind

__all__ = ["ingest_queue_log_table"]

_FIELDS = ("callid", "queue", "agent", "event", "data", *(f"data{n}" for n in range(1, 6)))


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value).strip()


class _QueueTable:
    """A queue_log table's columns and how its rows become events (a
    :class:`~cdrapi.ingest.sqlsource.TableRows`)."""

    keys_in_store = False  # events, not calls: the checkpoint keeps the window's keys

    def __init__(self, source: Engine, table_name: str, url: str, zone: dt.tzinfo) -> None:
        self.name = f"queue_log:{safe_url(url)}#{table_name}"[:255]
        try:
            found = inspect(source).get_columns(table_name)
        except SQLAlchemyError as exc:
            raise SourceError(
                f"cannot read table {table_name!r} of {safe_url(url)}: {reason(exc)}"
            ) from exc
        names = [str(c["name"]) for c in found]
        at = queue_columns(names)
        if at is None:
            raise SourceError(
                f"table {table_name!r} is not a queue_log table: expected the columns time, "
                f"callid, queuename, agent, event and data1..data5 (or data); it has "
                f"{', '.join(names)}"
            )
        self.clock = Clock(column_kind(found[at["time"]]["type"], source.dialect.name), zone)
        fields = [f for f in _FIELDS if f in at]
        chosen = [names[at["time"]], *(names[at[f]] for f in fields)]
        ids = [n for n in names if n.lower() == "id"]
        self.columns: list[Any] = [column(name) for name in chosen + ids]
        self.table = table(table_name, *self.columns)
        self.at = {field: i for i, field in enumerate(fields)}  # in the values of read()
        self.has_id = bool(ids)

    def select(self, bound: Any) -> Any:
        query = select(*self.columns).order_by(*self.columns[:1], *self.columns[len(self.at) + 1 :])
        if bound is not None:
            query = query.where(self.columns[0] >= bound)
        return query

    def read(self, row: Sequence[Any]) -> tuple[str, Any, tuple[Any, list[str]]]:
        values = [_text(value) for value in row[1 : len(self.at) + 1]]
        mark = self.clock.mark(row[0])
        when = self.clock.dumps(mark) if mark is not None else _text(row[0])
        digest = hashlib.blake2b("\x1f".join([when, *values]).encode(), digest_size=12)
        where = f"row id {row[-1]}" if self.has_id else f"time {_text(row[0])!r}"
        return "q:" + digest.hexdigest(), mark, (mark, [where, *values])

    def take(self, item: tuple[Any, list[str]], number: int, batch: Batch) -> bool:
        mark, (where, *values) = item
        epoch = None if mark is None else self.clock.epoch(mark)
        at = self.at
        if epoch is None:
            why = f"{where}: no time"
        elif not values[at["event"]]:
            why = f"{where}: no event"
        else:
            found = call_event(
                epoch, values[at["callid"]], values[at["queue"]], values[at["agent"]],
                values[at["event"]], event_data(values, at),
            )  # fmt: skip
            if found is not None:
                batch.events.append(found)
            return True
        out = io.StringIO()
        csv.writer(out, lineterminator="").writerow(values)
        batch.rejects.append(Reject(self.name, number, why, out.getvalue().encode()))
        return False

    def known(self, conn: Connection, since: str) -> Iterable[str]:
        return ()

    def finish(self, batch: Batch) -> None:
        pass


def ingest_queue_log_table(
    engine: Engine,
    url: str,
    options: IngestRun | None = None,
    *,
    table_name: str = "queue_log",
    follow: bool = False,
    lookback: dt.timedelta = dt.timedelta(minutes=10),
    interval: float = 1.0,
    gmt: bool = False,
) -> Summary:
    """Import the queue_log table ``table_name`` of the database at ``url`` (times in
    the PBX's zone, or UTC with ``gmt``); with ``follow``, poll it until ``options.stop``
    is set."""
    options = options or IngestRun()
    source = connect_source(url)
    rejects = options.reject_file()
    summary = Summary()
    try:
        zone = dt.UTC if gmt else options.zone()
        queue = _QueueTable(source, table_name, url, zone)  # before the store is touched
        store = options.prepare(engine)
        return poll_table(
            store, source, queue, rejects=rejects, summary=summary,
            after_rows=QueueFields(store, options.directory or Directory(), summary),
            from_start=options.from_start, follow=follow, lookback=lookback,
            interval=interval, stop=options.stop, progress=options.progress,
        )  # fmt: skip
    finally:
        rejects.close()
        source.dispose()
