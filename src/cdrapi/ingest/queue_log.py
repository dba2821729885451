"""Asterisk's ``queue_log``: ``epoch|callid|queue|agent|event|data1|data2|...``.

The events of a queued call (``callid`` is the caller channel's uniqueid) give its
records ``qname``, ``hold_time``, ``ring_time``, ``agent_details``, ``queue_log``,
``transfers``, ``code = queue`` and, for calls that left the queue unanswered,
``call_codes``. They are kept per call in ``queue_calls`` and copied onto the ``calls``
rows with that uniqueid: when the queue_log line comes after the CDR (an update), and
when the CDR comes after (as it is stored). Events understood:

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
(:mod:`cdrapi.ingest.queue_log_table`). :data:`QUEUE_COLUMNS` names the columns each
field may have (FreePBX/PBXware, Asterisk's realtime ``queue_log``, QueueMetrics).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, case, exists, select, update

from cdrapi.ingest.batch import Batch
from cdrapi.ingest.directory import Directory
from cdrapi.ingest.errors import Reject
from cdrapi.ingest.files import FileSource, run_files
from cdrapi.ingest.options import Options
from cdrapi.ingest.summary import Summary
from cdrapi.store.schema import calls, queue_calls
from cdrapi.store.writer import upsert

__all__ = [
    "QUEUE_COLUMNS", "QueueChunks", "QueueStore", "call_event", "epoch_of", "event_data",
    "ingest_queue_log", "queue_columns", "queue_fields_for_new_calls", "summarize",
]  # fmt: skip

Event = tuple[int, str, str, str, str, tuple[str, ...]]
_CALL_EVENTS = frozenset(
    "ENTERQUEUE CONNECT COMPLETECALLER COMPLETEAGENT ABANDON EXITWITHTIMEOUT EXITWITHKEY "
    "EXITEMPTY RINGNOANSWER RINGCANCELED BLINDTRANSFER ATTENDEDTRANSFER TRANSFER".split()
)

#: The column names of each field in queue_log tables and their CSV exports (lower case):
#: Asterisk's realtime table and FreePBX/PBXware (``time, callid, queuename, agent,
#: event, data1..data5`` or one ``data`` joined by ``|``), QueueMetrics (``time_id,
#: call_id, queue, agent, verb``).
QUEUE_COLUMNS: dict[str, tuple[str, ...]] = {
    "time": ("time", "time_id", "timestamp", "eventtime", "event_time"),
    "callid": ("callid", "call_id", "uniqueid"),
    "queue": ("queuename", "queue", "qname", "queue_name"),
    "agent": ("agent", "membername", "member"),
    "event": ("event", "verb", "action"),
    "data": ("data",),
    **{f"data{n}": (f"data{n}",) for n in range(1, 6)},
}
_NULLS = frozenset(("NULL", "\\N"))
_SEPARATORS = (",", ";", "\t")


def queue_columns(names: Sequence[str]) -> dict[str, int] | None:
    """Field -> position for a queue_log table's (or export's) column ``names``, or
    ``None`` when they are not one (no time, callid, event or data columns)."""
    found: dict[str, int] = {}
    lowered = [name.strip().strip('"').strip().lower() for name in names]
    for field, aliases in QUEUE_COLUMNS.items():
        for alias in aliases:
            if alias in lowered:
                found[field] = lowered.index(alias)
                break
    needed = {"time", "callid", "queue", "agent", "event"}
    if not needed <= found.keys() or not ({"data", "data1"} & found.keys()):
        return None
    return found


def call_event(
    epoch: int, callid: str, queue: str, agent: str, event: str, data: Sequence[str]
) -> Event | None:
    """The event of a queued call (``None``: another event, or no call)."""
    if event not in _CALL_EVENTS or callid in ("", "NONE"):
        return None
    return (epoch, callid, queue, agent, event, tuple(data))


def event_data(values: Sequence[str], columns: dict[str, int]) -> list[str]:
    """The event's data fields: ``data1``..``data5`` (trailing empty ones dropped) or
    the one ``data`` column split at ``|``."""
    if "data1" in columns:
        data = [values[columns[f"data{n}"]] if f"data{n}" in columns else "" for n in range(1, 6)]
        while data and not data[-1]:
            data.pop()
        return data
    joined = values[columns["data"]]
    return joined.split("|") if joined else []


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


def _int(data: Sequence[str], index: int) -> int:
    try:
        return max(0, int(data[index]))
    except (IndexError, ValueError):
        return 0


def _agent(agent: str, directory: Directory) -> str:
    user = directory.user_of_channel(agent) or directory.by_extension.get(agent.rsplit("/", 1)[-1])
    if user is None:
        user = next((u for u in directory.users if u.fullname == agent), None)
    return f"{user.fullname} ({user.extension})" if user and user.extension else agent


def summarize(events: Sequence[Event], directory: Directory) -> dict[str, Any]:
    """The call fields that a call's queue events give."""
    hold = ring_ms = ring = 0
    name: str | None = None
    steps: list[str] = []
    agents: dict[str, list[str]] = {}
    transfers: list[str] = []
    codes: str | None = None
    ring_known = False
    for _epoch, _callid, queue, agent, event, data in sorted(events, key=lambda e: e[0]):
        who = _agent(agent, directory) if agent and agent != "NONE" else ""
        if queue and queue != "NONE" and name is None:
            name = queue
        if event == "ENTERQUEUE":
            steps.append(f"ENTERQUEUE {queue}")
        elif event == "RINGNOANSWER":
            ms = _int(data, 0)
            ring_ms += ms
            ring_known = True
            steps.append(f"RINGNOANSWER {who} {round(ms / 1000)}s")
            agents.setdefault(who, []).append(f"RINGNOANSWER {round(ms / 1000)}s")
        elif event == "CONNECT":
            hold, ring, ring_known = _int(data, 0), _int(data, 2), True
            steps.append(f"CONNECT {who} after {hold}s")
            agents.setdefault(who, []).append("CONNECT")
        elif event in ("COMPLETECALLER", "COMPLETEAGENT"):
            hold = hold or _int(data, 0)
            steps.append(f"{event} {who} talk {_int(data, 1)}s")
        elif event in ("ABANDON", "EXITWITHTIMEOUT", "EXITEMPTY"):
            hold = _int(data, 2)
            steps.append(f"{event} after {hold}s")
            codes = {"ABANDON": "queue abandoned", "EXITWITHTIMEOUT": "queue timeout",
                     "EXITEMPTY": "queue exit empty"}[event]  # fmt: skip
        elif event == "EXITWITHKEY":
            hold = _int(data, 3)
            key = data[0] if data else ""
            steps.append(f"EXITWITHKEY {key} after {hold}s")
            codes = f"queue exit key {key}"
        elif event in ("BLINDTRANSFER", "TRANSFER"):
            target = "@".join(part for part in data[:2] if part)
            steps.append(f"{event} {who} -> {target}")
            transfers.append(f"blind {who} -> {target}")
        elif event == "ATTENDEDTRANSFER":
            target = data[1] if len(data) > 1 else ""
            steps.append(f"ATTENDEDTRANSFER {who} -> {target}")
            transfers.append(f"attended {who} -> {target}")
    details = "; ".join(f"{who}: {', '.join(what)}" for who, what in agents.items() if who)
    return {
        "qname": name,
        "hold_time": hold,
        "ring_time": ring + round(ring_ms / 1000) if ring_known else 0,
        "agent_details": details or None,
        "queue_log": "; ".join(steps) or None,
        "transfers": "; ".join(transfers) or None,
        "call_codes": codes,
    }


def _copy_queue_fields(conn: Connection, where: Any) -> int:
    """Copy ``queue_calls`` fields onto the calls rows matching ``where``."""
    q = queue_calls.c
    statement = (
        update(calls)
        .where(calls.c.uniqueid == q.callid, where)
        .values(
            qname=q.qname, hold_time=q.hold_time, code="queue",
            ring_time=case((q.ring_time > 0, q.ring_time), else_=calls.c.ring_time),
            agent_details=q.agent_details, queue_log=q.queue_log, transfers=q.transfers,
            call_codes=case((q.call_codes.is_not(None), q.call_codes), else_=calls.c.call_codes),
        )
    )  # fmt: skip
    return int(conn.execute(statement).rowcount or 0)


def queue_fields_for_new_calls(conn: Connection, first_id: int, _batch: Batch) -> None:
    """After CDRs are stored: give the new rows what queue_log already said of them."""
    if conn.execute(select(exists().select_from(queue_calls))).scalar():
        _copy_queue_fields(conn, calls.c.id >= first_id)


class QueueStore:
    """Merges a batch's events into ``queue_calls`` and onto the calls they concern."""

    def __init__(self, directory: Directory, summary: Summary) -> None:
        self.directory, self.summary = directory, summary

    def __call__(self, conn: Connection, first_id: int, batch: Batch) -> None:
        if not batch.events:
            return
        by_call: dict[str, set[Event]] = {}
        for event in batch.events:
            by_call.setdefault(event[1], set()).add(event)
        known = conn.execute(
            select(queue_calls.c.callid, queue_calls.c.events).where(
                queue_calls.c.callid.in_(list(by_call))
            )
        ).all()
        for callid, text in known:
            by_call[callid].update(
                (e[0], e[1], e[2], e[3], e[4], tuple(e[5])) for e in json.loads(text)
            )
        values = []
        for callid, events in by_call.items():
            ordered = sorted(events)
            values.append(
                {
                    "callid": callid,
                    "events": json.dumps(ordered),
                    **summarize(ordered, self.directory),
                }
            )
        conn.execute(upsert(conn, queue_calls, ["callid"]), values)
        self.summary.updated += _copy_queue_fields(conn, queue_calls.c.callid.in_(list(by_call)))


def ingest_queue_log(
    engine: Engine, path: str | Path, options: Options | None = None, *, follow: bool = False
) -> Summary:
    """Import an Asterisk ``queue_log`` file or a CSV export of a queue_log table
    (following it with ``follow``)."""
    options = options or Options()
    options.prepare(engine)
    summary = Summary()
    rejects = options.reject_file()
    source = FileSource(Path(path), "queue_log", QueueChunks(str(path), options.zone()))
    try:
        return run_files(
            engine,
            [source],
            follow=follow,
            rejects=rejects,
            summary=summary,
            after=QueueStore(options.directory or Directory(), summary),
            from_start=options.from_start,
            stop=options.stop,
            on_batch=options.progress,
        )
    finally:
        rejects.close()
