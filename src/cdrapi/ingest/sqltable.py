"""Asterisk's SQL ``cdr`` table (cdr_mysql/cdr_adaptive_odbc on MariaDB/MySQL, FreePBX's
``asteriskcdrdb.cdr``, cdr_pgsql, cdr_sqlite3_custom) into the store.

The table's columns are looked up, so any of those schemas works: ``calldate`` (or
``start``), the classic columns, and when present ``end``, ``answer``, ``uniqueid``,
``linkedid``, ``sequence``, ``peeraccount``, ``userfield``, and FreePBX's ``did``,
``recordingfile``, ``cnum``, ``cnam``. ``disposition`` and ``amaflags`` may be text or
Asterisk's integers. Without an ``end`` column, the end is left to derivation (start
plus duration). A ``timestamptz`` calldate is stored as the PBX's local time (the
``timezone`` setting), as Asterisk writes it elsewhere.

Incremental reading (:mod:`cdrapi.ingest.sqlsource`): rows are read by ``calldate``
from the last watermark (the latest call start read, in the column's own terms: an
instant for ``timestamptz``, the local time for ``datetime``) minus ``lookback``. A CDR
is inserted when its call *ends*, possibly by a transaction that commits late, so a row
can appear behind the watermark; the lookback window (default 3 hours: longer than the
longest call plus any commit delay) is read again on every poll, and rows already read
are recognised by their key (uniqueid and sequence, or the whole row), so nothing is
skipped or doubled, and a row read again is not counted again.

With ``[fields]`` (:mod:`cdrapi.ingest.crm_fields`), the table's columns it names that are
no raw CDR field (``customer_id``, ``crm_note``...: the extra columns cdr_adaptive_odbc
fills from the CDR variables of the same name) are read too, matched case-insensitively
as the others, and their values follow the raw CDR; a named column the table lacks is
said once (a warning) and its fields stay empty.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, column, inspect, select, table
from sqlalchemy.exc import SQLAlchemyError

from cdrapi.ingest.batch import Batch
from cdrapi.ingest.cdr import CDR_FIELDS, CDR_INDEX, source_key
from cdrapi.ingest.crm_fields import FieldMap
from cdrapi.ingest.derive import Deriver
from cdrapi.ingest.errors import Reject, SourceError
from cdrapi.ingest.queue_fields import queue_fields_for_new_calls
from cdrapi.ingest.recovery import Recovery
from cdrapi.ingest.run import IngestRun
from cdrapi.ingest.sqlsource import connect_source, poll_table, reason, safe_url, source_url
from cdrapi.ingest.summary import Summary
from cdrapi.ingest.watermark import Clock, column_kind
from cdrapi.store.writer import Writer

__all__ = ["connect_source", "ingest_db", "source_url"]

_START_NAMES = ("calldate", "start", "starttime")


def _text(value: Any, zone: dt.tzinfo | None = None) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:  # timestamptz: shown in the PBX's zone
            value = value.astimezone(zone).replace(tzinfo=None)
        return str(value.strftime("%Y-%m-%d %H:%M:%S"))
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value.decode("cp1252", "replace")
    return str(value)


class _Table:
    """The PBX table's columns, how to read raw CDRs from it, and what to do with them
    (a :class:`~cdrapi.ingest.sqlsource.TableRows`)."""

    keys_in_store = True
    deriver: Deriver  # set once the store's directory is known
    recovery: Recovery
    store: Writer

    def __init__(self, source: Engine, table_name: str, url: str, zone: dt.tzinfo) -> None:
        self.zone = zone
        self.name = f"db:{safe_url(url)}#{table_name}"[:255]
        try:
            found = {c["name"].lower(): c for c in inspect(source).get_columns(table_name)}
        except SQLAlchemyError as exc:
            raise SourceError(
                f"cannot read table {table_name!r} of {safe_url(url)}: {reason(exc)}"
            ) from exc
        start = next((n for n in _START_NAMES if n in found), None)
        if start is None:
            raise SourceError(
                f"table {table_name!r} has no calldate column: is it an Asterisk cdr table?"
            )
        self.clock = Clock(column_kind(found[start]["type"], source.dialect.name), self.zone)
        #: The table's columns: lower-case name -> name
        self.names = names = {n: found[n]["name"] for n in found}
        wanted = [n for n in CDR_FIELDS if n in names and n != "start"]
        self.fields = [CDR_INDEX["start"], *(CDR_INDEX[n] for n in wanted)]
        self.columns: list[Any] = [column(names[start]), *(column(names[n]) for n in wanted)]
        self.table = table(table_name, *self.columns)
        self.missing: list[Reject] = []  # said with the first batch

    def select(self, bound: Any) -> Any:
        query = select(*self.columns).order_by(self.columns[0])
        if bound is not None:
            query = query.where(self.columns[0] >= bound)
        return query

    def read(self, row: Sequence[Any]) -> tuple[str, Any, list[str]]:
        values = [""] * len(CDR_FIELDS)
        zone = self.zone
        for index, value in zip(self.fields, row, strict=True):
            values[index] = _text(value, zone)
        return source_key(values), self.clock.mark(row[0]), values

    def take(self, cdr: list[str], number: int, batch: Batch) -> bool:
        try:
            batch.rows.append(self.deriver.row(cdr))
        except ValueError as exc:
            why = f"uniqueid {cdr[CDR_INDEX['uniqueid']]!r}: {exc}"
            batch.rejects.append(Reject(self.name, number, why, _csv_line(cdr)))
            return False
        return True

    def known(self, conn: Connection, since: str) -> Iterable[str]:
        return self.store.keys_since(conn, since)

    def finish(self, batch: Batch) -> None:
        self.recovery.track_batch(batch)
        batch.directions = self.deriver.take_signs()


class _MappedTable(_Table):
    """The table with ``[fields]``: its raw CDRs end with the values of the extra columns
    the map names (``""`` for one the table lacks)."""

    def __init__(
        self, source: Engine, table_name: str, url: str, zone: dt.tzinfo, fields: FieldMap
    ) -> None:
        super().__init__(source, table_name, url, zone)
        self.columns = [column(c.name) for c in self.columns]  # for a table of their own
        self.width = len(self.columns)
        self.slots: list[int | None] = []  # per extra column: its place after the others
        for name in fields.extra_columns:
            real = self.names.get(name.lower())
            if real is None:
                self.slots.append(None)
                named = ", ".join(fields.fields_of(name))
                self.missing.append(Reject(self.name, 0, (
                    f"[fields] {named}: table {table_name!r} has no column {name!r}; "
                    "left empty"
                ), b""))  # fmt: skip
                continue
            self.slots.append(len(self.columns) - self.width)
            self.columns.append(column(real))
        self.table = table(table_name, *self.columns)

    def read(self, row: Sequence[Any]) -> tuple[str, Any, list[str]]:
        key, mark, values = super().read(row[: self.width])
        zone, extra = self.zone, row[self.width :]
        values += ["" if slot is None else _text(extra[slot], zone) for slot in self.slots]
        return key, mark, values

    def finish(self, batch: Batch) -> None:
        if self.missing:
            batch.warnings[:0], self.missing = self.missing, []
        super().finish(batch)


def _csv_line(cdr: Sequence[str]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(cdr)
    return out.getvalue().encode()


def ingest_db(
    engine: Engine,
    url: str,
    options: IngestRun | None = None,
    *,
    table_name: str = "cdr",
    follow: bool = False,
    lookback: dt.timedelta = dt.timedelta(hours=3),
    interval: float = 1.0,
) -> Summary:
    """Import the Asterisk ``cdr`` table at ``url``; with ``follow``, poll it until
    ``options.stop`` is set."""
    options = options or IngestRun()
    source = connect_source(url)
    rejects = options.reject_file()
    try:
        zone, fields = options.zone(), options.fields()  # the table before the store
        pbx = (
            _Table(source, table_name, url, zone)
            if fields is None
            else _MappedTable(source, table_name, url, zone, fields)
        )
        pbx.store = options.prepare(engine)
        pbx.deriver, pbx.recovery = options.deriver(), options.recovery()
        return poll_table(
            pbx.store, source, pbx, rejects=rejects, summary=Summary(),
            after_rows=queue_fields_for_new_calls(pbx.store), from_start=options.from_start,
            follow=follow, lookback=lookback, interval=interval, stop=options.stop,
            progress=options.progress,
        )  # fmt: skip
    finally:
        rejects.close()
        source.dispose()
