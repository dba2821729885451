"""The queue fields of calls: what a queued call's events give its records, and merging
them into the store whichever comes first, the CDR or the queue_log line.

:func:`summarize` turns a call's events (:mod:`cdrapi.ingest.queue_events`) into
``qname``, ``hold_time``, ``ring_time``, ``agent_details``, ``queue_log``,
``transfers`` and, for calls that left the queue unanswered, ``call_codes``. The events
are kept per call in the store (``queue_calls``) and copied onto the ``calls`` rows with
that uniqueid: by :class:`QueueFields` when the queue_log line comes after the CDR (an
update), by :func:`queue_fields_for_new_calls` when the CDR comes after (as it is
stored). Every source depends on this module; none on another source.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection

from cdrapi.ingest.batch import AfterRows, Batch
from cdrapi.ingest.directory import Directory
from cdrapi.ingest.queue_events import Event
from cdrapi.ingest.summary import Summary
from cdrapi.store.writer import Writer

__all__ = ["QueueFields", "queue_fields_for_new_calls", "summarize"]


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


def queue_fields_for_new_calls(store: Writer) -> AfterRows:
    """The hook of CDR sources: after CDRs are stored, give the new rows what queue_log
    already said of them."""

    def after_rows(conn: Connection, first_id: int, _batch: Batch) -> None:
        store.queue_fields_for_new_calls(conn, first_id)

    return after_rows


class QueueFields:
    """The hook of queue_log sources: merges a batch's events into the stored queued
    calls and copies their fields onto the calls they concern (counted as updated)."""

    def __init__(self, store: Writer, directory: Directory, summary: Summary) -> None:
        self.store, self.directory, self.summary = store, directory, summary

    def __call__(self, conn: Connection, first_id: int, batch: Batch) -> None:
        if not batch.events:
            return
        by_call: dict[str, set[Event]] = {}
        for event in batch.events:
            by_call.setdefault(event[1], set()).add(event)
        for callid, known in self.store.read_queue_events(conn, by_call).items():
            by_call[callid].update((e[0], e[1], e[2], e[3], e[4], tuple(e[5])) for e in known)
        values = []
        for callid, events in by_call.items():
            ordered = sorted(events)
            values.append(
                {"callid": callid, "events": ordered, **summarize(ordered, self.directory)}
            )
        self.store.save_queue_calls(conn, values)
        self.summary.updated += self.store.copy_queue_fields(conn, by_call)
