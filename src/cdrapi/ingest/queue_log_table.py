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

The table is polled as every event table is (:mod:`cdrapi.ingest.event_table`): by
time, from the last position minus ``lookback``, each batch committed with its
position, so nothing is skipped or read twice; its events are stored as the file's
(:class:`~cdrapi.ingest.queue_fields.QueueFields`). Asterisk inserts each event as it
happens, so the lookback can be short (default 10 minutes); the keys of the rows read
in it are kept in the checkpoint, so a row read again is not a new line.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine

from cdrapi.ingest.batch import AfterRows
from cdrapi.ingest.directory import Directory
from cdrapi.ingest.event_table import INTERVAL, LOOKBACK, EventTable, ingest_event_table
from cdrapi.ingest.queue_events import call_event, event_data, queue_columns
from cdrapi.ingest.queue_fields import QueueFields
from cdrapi.ingest.run import IngestRun
from cdrapi.ingest.summary import Summary
from cdrapi.store.writer import Writer

__all__ = ["ingest_queue_log_table"]


class _QueueTable(EventTable):
    """A queue_log table's columns and how its rows become queue events."""

    SOURCE, WHAT, TIME, KEY_PREFIX, ID_IN_KEY = "queue_log", "queue_log", "time", "q:", False
    EXPECTED = "time, callid, queuename, agent, event and data1..data5 (or data)"
    FIELDS = ("callid", "queue", "agent", "event", "data", *(f"data{n}" for n in range(1, 6)))

    def __init__(self, source: Engine, table_name: str, url: str, zone: dt.tzinfo) -> None:
        super().__init__(source, table_name, url, zone)
        self.at = {field: i for i, field in enumerate(self.fields)}  # in the row's values

    def locate(self, names: Sequence[str]) -> dict[str, int] | None:
        return queue_columns(names)

    def id_columns(self, names: Sequence[str], at: dict[str, int]) -> list[str]:
        return [n for n in names if n.lower() == "id"]

    def event(self, value: Any, mark: Any, values: list[str]) -> tuple[Any, ...] | str | None:
        epoch = None if mark is None else self.clock.epoch(mark)
        at = self.at
        if epoch is None:
            return "no time"
        if not values[at["event"]]:
            return "no event"
        return call_event(
            epoch, values[at["callid"]], values[at["queue"]], values[at["agent"]],
            values[at["event"]], event_data(values, at),
        )  # fmt: skip

    def reject_line(self, value: Any, values: list[str]) -> list[str]:
        return values  # the time is not in the line (as it always was)

    def after_rows(self, store: Writer, options: IngestRun, summary: Summary) -> AfterRows:
        return QueueFields(store, options.directory or Directory(), summary)


def ingest_queue_log_table(
    engine: Engine,
    url: str,
    options: IngestRun | None = None,
    *,
    table_name: str = "queue_log",
    follow: bool = False,
    lookback: dt.timedelta = LOOKBACK,
    interval: float = INTERVAL,
    gmt: bool = False,
) -> Summary:
    """Import the queue_log table ``table_name`` of the database at ``url`` (times in
    the PBX's zone, or UTC with ``gmt``); with ``follow``, poll it until ``options.stop``
    is set."""

    def make(source: Engine, options: IngestRun, zone: dt.tzinfo) -> EventTable:
        return _QueueTable(source, table_name, url, zone)

    return ingest_event_table(
        engine, url, options, make, follow=follow, lookback=lookback, interval=interval, gmt=gmt
    )
