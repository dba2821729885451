"""The events of queued calls, as every queue_log source reads them.

A queue_log line (the pipe file, a CSV export of a queue_log table, a row of the table
itself) is ``time, callid, queue, agent, event, data...``. :func:`call_event` keeps the
events of a queued call (:data:`CALL_EVENTS`) as an :data:`Event` tuple;
:data:`QUEUE_COLUMNS` names the columns each field may have in tables and exports
(FreePBX/PBXware, Asterisk's realtime ``queue_log``, QueueMetrics), :func:`queue_columns`
finds them in a header, :func:`event_data` gathers an event's data fields.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["CALL_EVENTS", "QUEUE_COLUMNS", "Event", "call_event", "event_data", "queue_columns"]

#: (epoch seconds, callid, queue, agent, event, data fields).
Event = tuple[int, str, str, str, str, tuple[str, ...]]

#: The events that say something of a queued call; others are read and skipped.
CALL_EVENTS = frozenset(
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
    if event not in CALL_EVENTS or callid in ("", "NONE"):
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
