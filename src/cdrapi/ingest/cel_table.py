"""The ``cel`` table of the PBX's database into the store: the same events as cel_custom.

cel_odbc, cel_pgsql and cel_sqlite3 write one row per event with the columns ``id,
eventtype, eventtime, userdeftype, cid_name, cid_num, cid_ani, cid_rdnis, cid_dnid,
exten, context, channame, appname, appdata, amaflags, accountcode, peeraccount,
uniqueid, linkedid, userfield, peer, extra`` (FreePBX: MariaDB ``asteriskcdrdb.cel``);
the columns are found by name. ``eventtype`` is text (``CHAN_START``) or the number of
Asterisk's enum (cel_odbc/cel_pgsql into an integer column), ``eventtime`` a
``datetime``/``timestamp`` in the PBX's local time (UTC with the backend's
``usegmtime``: ``--gmt``), a ``timestamptz``, or text.

The table is read as the ``cdr`` table is (:mod:`cdrapi.ingest.sqlsource`): by time
(then ``id``), from the last position minus ``lookback``, each batch committed with its
position; the keys of the rows read in the lookback are kept in the checkpoint, so a
row read again is not a new line. A batch's events are grouped by call and each call
summarized once (:mod:`cdrapi.ingest.cel_calls`) before the batch is committed.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, column, inspect, select, table
from sqlalchemy.exc import SQLAlchemyError

from cdrapi.ingest.batch import Batch
from cdrapi.ingest.cel_calls import CallEvents, CelCalls, CelFields
from cdrapi.ingest.cel_events import CEL_FIELDS, cel_columns, make_event
from cdrapi.ingest.cel_fields import Recordings
from cdrapi.ingest.directory import Directory
from cdrapi.ingest.errors import Reject, SourceError
from cdrapi.ingest.run import IngestRun
from cdrapi.ingest.sqlsource import connect_source, poll_table, reason, safe_url
from cdrapi.ingest.summary import Summary
from cdrapi.ingest.watermark import Clock, column_kind

__all__ = ["ingest_cel_table"]

_UTC = dt.UTC


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value).strip()


class _CelTable:
    """A cel table's columns and how its rows become events (a
    :class:`~cdrapi.ingest.sqlsource.TableRows`)."""

    keys_in_store = False  # events, not calls: the checkpoint keeps the window's keys

    def __init__(self, source: Engine, table_name: str, url: str, zone: dt.tzinfo) -> None:
        self.name = f"cel:{safe_url(url)}#{table_name}"[:255]
        try:
            found = inspect(source).get_columns(table_name)
        except SQLAlchemyError as exc:
            raise SourceError(
                f"cannot read table {table_name!r} of {safe_url(url)}: {reason(exc)}"
            ) from exc
        names = [str(c["name"]) for c in found]
        at = cel_columns(names)
        if at is None:
            raise SourceError(
                f"table {table_name!r} is not a CEL table: expected the columns eventtype, "
                f"eventtime, channame, uniqueid and linkedid (cel_odbc/cel_pgsql); it has "
                f"{', '.join(names)}"
            )
        self.zone = zone
        self.clock = Clock(column_kind(found[at["eventtime"]]["type"], source.dialect.name), zone)
        self.fields = [f for f in CEL_FIELDS if f in at and f not in ("id", "eventtime")]
        ids = [names[at["id"]]] if "id" in at else []
        self.columns: list[Any] = [column(names[at["eventtime"]])]
        self.columns += [column(names[at[f]]) for f in self.fields] + [column(n) for n in ids]
        self.table = table(table_name, *self.columns)
        self.has_id = bool(ids)

    def select(self, bound: Any) -> Any:
        order = [self.columns[0], *self.columns[len(self.fields) + 1 :]]
        query = select(*self.columns).select_from(self.table).order_by(*order)
        if bound is not None:
            query = query.where(self.columns[0] >= bound)
        return query

    def read(self, row: Sequence[Any]) -> tuple[str, Any, tuple[Any, Any, list[str]]]:
        values = [_text(value) for value in row[1 : len(self.fields) + 1]]
        mark = self.clock.mark(row[0])
        when = self.clock.dumps(mark) if mark is not None else _text(row[0])
        ident = _text(row[-1]) if self.has_id else ""
        digest = hashlib.blake2b("\x1f".join([ident, when, *values]).encode(), digest_size=12)
        where = f"row id {ident}" if self.has_id else f"eventtime {_text(row[0])!r}"
        return "c:" + digest.hexdigest(), mark, (row[0], mark, [where, *values])

    def _seconds(self, value: Any, mark: Any) -> float | None:
        """Epoch seconds with the microseconds the column keeps."""
        if isinstance(value, dt.datetime):
            if value.tzinfo is not None:
                return value.timestamp()
            return value.replace(tzinfo=self.zone).timestamp()
        if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
            return float(value)
        text = _text(value)
        if text.replace(".", "", 1).isdigit():
            return float(text)
        try:
            when = dt.datetime.fromisoformat(text)
        except ValueError:
            epoch = None if mark is None else self.clock.epoch(mark)
            return None if epoch is None else float(epoch)
        return (when if when.tzinfo else when.replace(tzinfo=self.zone)).timestamp()

    def take(self, item: tuple[Any, Any, list[str]], number: int, batch: Batch) -> bool:
        value, mark, (where, *values) = item
        seconds = None if mark is None else self._seconds(value, mark)
        fields = dict(zip(self.fields, values, strict=True))
        made: tuple[str, Any] | str = f"{where}: no eventtime"
        if seconds is not None:
            made = make_event(seconds, fields)
            if isinstance(made, str):
                made = f"{where}: {made}"
        if not isinstance(made, str):
            batch.events.append(made)
            return True
        out = io.StringIO()
        csv.writer(out, lineterminator="").writerow([_text(value), *values])
        batch.rejects.append(Reject(self.name, number, made, out.getvalue().encode()))
        return False

    def known(self, conn: Connection, since: str) -> Iterable[str]:
        return ()

    def finish(self, batch: Batch) -> None:
        """The batch's events (``(linkedid, event)``) as its calls' rows."""
        calls = CallEvents()
        for linkedid, event in batch.events:
            calls.add(linkedid, event)
        batch.events = calls.rows()


def ingest_cel_table(
    engine: Engine,
    url: str,
    options: IngestRun | None = None,
    *,
    table_name: str = "cel",
    follow: bool = False,
    lookback: dt.timedelta = dt.timedelta(minutes=10),
    interval: float = 1.0,
    gmt: bool = False,
) -> Summary:
    """Import the CEL table ``table_name`` of the database at ``url`` (times in the
    PBX's zone, or UTC with ``gmt``); with ``follow``, poll it until ``options.stop``
    is set."""
    options = options or IngestRun()
    source = connect_source(url)
    rejects = options.reject_file()
    summary = Summary()
    try:
        zone = _UTC if gmt else options.zone()
        settings = options.settings
        calls = CelCalls(options.directory or Directory(),
                         Recordings(settings.recordings_dir, settings.public_url),
                         options.zone())  # fmt: skip
        cel = _CelTable(source, table_name, url, zone)  # before the store is touched
        store = options.prepare(engine)
        hook = CelFields(store, calls, summary)
        return poll_table(
            store, source, cel, rejects=rejects, summary=summary, after_rows=hook,
            from_start=options.from_start, follow=follow, lookback=lookback,
            interval=interval, stop=options.stop, progress=options.progress,
        )  # fmt: skip
    finally:
        rejects.close()
        source.dispose()
