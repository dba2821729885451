"""Asterisk's ``queue_log``: ``epoch|callid|queue|agent|event|data1|data2|...``.

The events of a queued call (``callid`` is the caller channel's uniqueid) give its
records ``qname``, ``hold_time``, ``ring_time``, ``agent_details``, ``queue_log``,
``transfers``, ``code = queue`` and, for calls that left the queue unanswered,
``call_codes`` (:mod:`cdrapi.ingest.queue_fields`, which every source shares). They are
kept per call in the store and copied onto the calls with that uniqueid: when the
queue_log line comes after the CDR (an update), and when the CDR comes after (as it is
stored). Events understood (:mod:`cdrapi.ingest.queue_events`):

=================  ==================================================================
ENTERQUEUE         url|callerid|position
CONNECT            holdtime|bridged uniqueid|ringtime
COMPLETECALLER/    holdtime|calltime|position
COMPLETEAGENT
ABANDON            position|original position|waittime -> ``queue abandoned``
EXITWITHTIMEOUT    position|original position|waittime -> ``queue timeout``
EXITWITHKEY        key|position|original position|waittime -> ``queue exit key <key>``
EXITEMPTY          position|original position|waittime -> ``queue exit empty``
RINGNOANSWER       ringtime in *milliseconds*
BLINDTRANSFER      extension|context|holdtime|calltime|position
ATTENDEDTRANSFER   method|target|holdtime|calltime|position
TRANSFER           extension|context|holdtime|calltime (before Asterisk 12)
=================  ==================================================================

Other events (and lines of no call, callid ``NONE``) are read and skipped.

The same events come from where PBXs keep them: the pipe file, a CSV export of a
queue_log table (found by its header row: ``time,callid,queuename,agent,event,data1,...``
or ``...,data``, comma or semicolon separated, ``time`` a date and time in the PBX's
zone or epoch seconds, ``NULL``/``\\N`` for nothing), and the table itself
(:mod:`cdrapi.ingest.queue_log_table`).
:data:`~cdrapi.ingest.queue_events.QUEUE_COLUMNS` names the columns each field may have
(FreePBX/PBXware, Asterisk's realtime ``queue_log``, QueueMetrics).
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

from sqlalchemy import Engine

from cdrapi.ingest.batch import Batch
from cdrapi.ingest.directory import Directory
from cdrapi.ingest.errors import Reject
from cdrapi.ingest.files import FileSource, run_files
from cdrapi.ingest.queue_events import call_event, event_data, queue_columns
from cdrapi.ingest.queue_fields import QueueFields
from cdrapi.ingest.run import IngestRun
from cdrapi.ingest.summary import Summary

__all__ = ["QueueChunks", "epoch_of", "ingest_queue_log"]

_NULLS = frozenset(("NULL", "\\N"))
_SEPARATORS = (",", ";", "\t")


def epoch_of(value: str, zone: dt.tzinfo) -> int:
    """Epoch seconds of a queue_log time: epoch digits, or a date and time (with an
    offset, or local in ``zone``); raises ValueError."""
    text = value.strip()
    if text.replace(".", "", 1).isdigit():
        return int(float(text))
    when = dt.datetime.fromisoformat(text)
    if when.tzinfo is None:
        when = when.replace(tzinfo=zone)
    return int(when.timestamp())


class QueueChunks:
    """Parses chunks of a queue_log file (the pipe file, or a CSV export of a queue_log
    table: see :func:`start_file`) into batches of events."""

    def __init__(self, name: str, zone: dt.tzinfo = dt.UTC) -> None:
        self.name, self.zone = name, zone
        self.columns: dict[str, int] | None = None  # a CSV export's, from its header
        self.separator, self._width = ",", 0

    def start_file(self, first_line: bytes, path: str) -> None:
        """A CSV export is known by its header row; a pipe file has none."""
        self.columns = None
        header = first_line.decode("utf-8", "replace").lstrip("\ufeff").rstrip("\r\n")
        if "|" in header.split(",", 1)[0]:
            return
        for separator in _SEPARATORS:
            names = next(csv.reader([header], delimiter=separator), [])
            columns = queue_columns(names)
            if columns is not None:
                self.columns, self.separator = columns, separator
                self._width = max(columns.values()) + 1  # the columns a line needs
                return

    def parse(self, data: bytes, first_line: int) -> Batch:
        chunk = data.split(b"\n")
        if chunk[-1] == b"":
            chunk.pop()
        header = first_line == 1 and self.columns is not None
        batch = Batch(lines=len(chunk) - header)  # a header row is no line of events
        for number, raw in enumerate(chunk, first_line):
            try:
                line = raw.decode("utf-8").rstrip("\r")
            except UnicodeDecodeError:
                line = raw.decode("cp1252", "replace").rstrip("\r")
            if not line.strip() or (number == 1 and self.columns is not None):
                continue  # an empty line, the header
            if self.columns is not None:
                why = self._csv_line(line, batch)
            else:
                why = self._pipe_line(line, batch)
            if why:
                batch.rejects.append(Reject(self.name, number, why, raw))
        return batch

    def _pipe_line(self, line: str, batch: Batch) -> str | None:
        parts = line.split("|")
        if len(parts) < 5 or not parts[0].strip().isdigit():
            return "expected epoch|callid|queue|agent|event|data..."
        epoch, callid, queue, agent, event, *rest = parts
        found = call_event(int(epoch), callid, queue, agent, event, rest)
        if found is not None:
            batch.events.append(found)
        return None

    def _csv_line(self, line: str, batch: Batch) -> str | None:
        columns = self.columns
        assert columns is not None
        values = next(csv.reader([line], delimiter=self.separator), [])
        if len(values) < self._width:
            return f"expected {self._width} columns (as the header), got {len(values)}"
        values = ["" if value in _NULLS else value for value in values]
        try:
            epoch = epoch_of(values[columns["time"]], self.zone)
        except ValueError:
            return f"bad time {values[columns['time']]!r}"
        found = call_event(
            epoch, values[columns["callid"]], values[columns["queue"]],
            values[columns["agent"]], values[columns["event"]], event_data(values, columns),
        )  # fmt: skip
        if found is not None:
            batch.events.append(found)
        return None


def ingest_queue_log(
    engine: Engine, path: str | Path, options: IngestRun | None = None, *, follow: bool = False
) -> Summary:
    """Import an Asterisk ``queue_log`` file or a CSV export of a queue_log table
    (following it with ``follow``)."""
    options = options or IngestRun()
    store = options.prepare(engine)
    summary = Summary()
    rejects = options.reject_file()
    source = FileSource(Path(path), "queue_log", QueueChunks(str(path), options.zone()))
    try:
        return run_files(
            store,
            [source],
            follow=follow,
            rejects=rejects,
            summary=summary,
            after_rows=QueueFields(store, options.directory or Directory(), summary),
            from_start=options.from_start,
            stop=options.stop,
            on_batch=options.progress,
        )
    finally:
        rejects.close()
