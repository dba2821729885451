"""What queue_log says of each queued call (``queue_calls``) and its copy onto ``calls``.

A queued call's events are kept per call (``callid``: the caller channel's uniqueid), as
JSON, with the fields they give its records (``qname``, ``hold_time``...). The fields are
copied onto the ``calls`` rows of that uniqueid whichever comes first: the queue_log
line (:func:`copy_queue_fields` by callid, after :func:`save_queue_calls`) or the CDR
(by id, for the rows a batch just stored). Every function runs inside the caller's
transaction (``conn``).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, Table, case, exists, select, true, update
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect

from cdrapi.store.schema import calls, queue_calls

__all__ = [
    "copy_queue_fields",
    "has_queue_calls",
    "read_queue_events",
    "save_queue_calls",
    "upsert",
]


def upsert(conn: Connection, table: Table, keys: Sequence[str]) -> Any:
    """``INSERT ... ON CONFLICT (keys) DO UPDATE`` setting every other column."""
    dialect = pg_dialect if conn.dialect.name == "postgresql" else sqlite_dialect
    statement = dialect.insert(table)
    return statement.on_conflict_do_update(
        index_elements=[table.c[key] for key in keys],
        set_={c.name: statement.excluded[c.name] for c in table.columns if c.name not in keys},
    )


def has_queue_calls(conn: Connection) -> bool:
    """Whether queue_log said anything of any call yet."""
    return bool(conn.execute(select(exists().select_from(queue_calls))).scalar())


def read_queue_events(conn: Connection, callids: Collection[str]) -> dict[str, list[Any]]:
    """The events stored for each of ``callids`` that has some (as saved, JSON-decoded)."""
    found = conn.execute(
        select(queue_calls.c.callid, queue_calls.c.events).where(
            queue_calls.c.callid.in_(list(callids))
        )
    ).all()
    return {callid: json.loads(text) for callid, text in found}


def save_queue_calls(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert or replace the ``queue_calls`` rows given (``events``: a JSON-able list)."""
    values = [{**row, "events": json.dumps(row["events"])} for row in rows]
    conn.execute(upsert(conn, queue_calls, ["callid"]), values)


def copy_queue_fields(
    conn: Connection, *, from_id: int | None = None, callids: Collection[str] | None = None
) -> int:
    """Copy the ``queue_calls`` fields onto the calls rows of their uniqueids: those with
    ids from ``from_id`` on, or of ``callids``, or (neither given) all; return how many.

    ``ring_time`` and ``call_codes`` are kept when queue_log says nothing of them.
    """
    q = queue_calls.c
    where: ColumnElement[bool] = true()
    if from_id is not None:
        where = calls.c.id >= from_id
    elif callids is not None:
        where = q.callid.in_(list(callids))
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
