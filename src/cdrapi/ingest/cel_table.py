"""The ``cel`` table of the PBX's database into the store: the same events as cel_custom.

cel_odbc, cel_pgsql and cel_sqlite3 write one row per event with the columns ``id,
eventtype, eventtime, userdeftype, cid_name, cid_num, cid_ani, cid_rdnis, cid_dnid,
exten, context, channame, appname, appdata, amaflags, accountcode, peeraccount,
uniqueid, linkedid, userfield, peer, extra`` (FreePBX: MariaDB ``asteriskcdrdb.cel``);
the columns are found by name. ``eventtype`` is text (``CHAN_START``) or the number of
Asterisk's enum (cel_odbc/cel_pgsql into an integer column), ``eventtime`` a
``datetime``/``timestamp`` in the PBX's local time (UTC with the backend's
``usegmtime``: ``--gmt``), a ``timestamptz``, or text.

The table is polled as every event table is (:mod:`cdrapi.ingest.event_table`): by
time (then ``id``), from the last position minus ``lookback``, each batch committed with
its position; the keys of the rows read in the lookback are kept in the checkpoint, so a
row read again is not a new line. A batch's events are grouped by call and each call
summarized once (:mod:`cdrapi.ingest.cel_calls`) before the batch is committed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine

from cdrapi.ingest.batch import AfterRows, Batch
from cdrapi.ingest.cel_calls import CallEvents, CelCalls, CelFields
from cdrapi.ingest.cel_events import CEL_FIELDS, cel_columns, make_event
from cdrapi.ingest.cel_fields import Recordings
from cdrapi.ingest.directory import Directory
from cdrapi.ingest.event_table import (
    INTERVAL,
    LOOKBACK,
    EventTable,
    ingest_event_table,
    text_of,
)
from cdrapi.ingest.run import IngestRun
from cdrapi.ingest.summary import Summary
from cdrapi.store.writer import Writer

__all__ = ["ingest_cel_table"]


class _CelTable(EventTable):
    """A cel table's columns and how its rows become the events of calls."""

    SOURCE, WHAT, TIME, KEY_PREFIX, ID_IN_KEY = "cel", "CEL", "eventtime", "c:", True
    EXPECTED = "eventtype, eventtime, channame, uniqueid and linkedid (cel_odbc/cel_pgsql)"
    FIELDS = CEL_FIELDS

    def __init__(
        self, source: Engine, table_name: str, url: str, zone: dt.tzinfo, calls: CelCalls
    ) -> None:
        super().__init__(source, table_name, url, zone)
        self.calls = calls

    def locate(self, names: Sequence[str]) -> dict[str, int] | None:
        return cel_columns(names)

    def _seconds(self, value: Any, mark: Any) -> float | None:
        """Epoch seconds with the microseconds the column keeps."""
        if isinstance(value, dt.datetime):
            if value.tzinfo is not None:
                return value.timestamp()
            return value.replace(tzinfo=self.zone).timestamp()
        if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
            return float(value)
        text = text_of(value)
        if text.replace(".", "", 1).isdigit():
            return float(text)
        try:
            when = dt.datetime.fromisoformat(text)
        except ValueError:
            epoch = None if mark is None else self.clock.epoch(mark)
            return None if epoch is None else float(epoch)
        return (when if when.tzinfo else when.replace(tzinfo=self.zone)).timestamp()

    def event(self, value: Any, mark: Any, values: list[str]) -> tuple[Any, ...] | str | None:
        """``(linkedid, event)``, or why the row cannot be one."""
        seconds = None if mark is None else self._seconds(value, mark)
        if seconds is None:
            return "no eventtime"
        return make_event(seconds, dict(zip(self.fields, values, strict=True)))

    def after_rows(self, store: Writer, options: IngestRun, summary: Summary) -> AfterRows:
        return CelFields(store, self.calls, summary)

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
    lookback: dt.timedelta = LOOKBACK,
    interval: float = INTERVAL,
    gmt: bool = False,
) -> Summary:
    """Import the CEL table ``table_name`` of the database at ``url`` (times in the
    PBX's zone, or UTC with ``gmt``); with ``follow``, poll it until ``options.stop``
    is set."""

    def make(source: Engine, options: IngestRun, zone: dt.tzinfo) -> EventTable:
        settings = options.settings
        calls = CelCalls(options.directory or Directory(),
                         Recordings(settings.recordings_dir, settings.public_url),
                         options.zone())  # fmt: skip
        return _CelTable(source, table_name, url, zone, calls)

    return ingest_event_table(
        engine, url, options, make, follow=follow, lookback=lookback, interval=interval, gmt=gmt
    )
