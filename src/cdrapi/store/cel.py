"""What CEL says of each call (``cel_calls``) and its copy onto the call's ``calls`` rows.

A call's CEL events are kept per ``linkedid`` (each event a text the caller makes, without
``\x1e``; the events joined by ``\x1e``: far cheaper than JSON to write and read), with
the fields they give its records: ``ivr_log`` and ``ivr_duration`` (on the legs of the
channel that went through
the IVR, ``ivr_uniqueid``), ``transfers``, ``monitor_files`` and ``monitor_urls`` (on
every leg of the call), and the seconds each channel rang (``rings``: a leg's
``ring_time`` is that of its ``dstchannel``). They are copied onto the calls whichever
comes first: the CEL line (:func:`copy_cel_fields` by linkedid, after
:func:`save_cel_calls`) or the CDR (by id, for the rows a batch just stored); and again
after queue_log fields are copied (by uniqueid), so the CEL's more exact values win
whatever the order. A field CEL says nothing of keeps the row's own value.

Every function runs inside the caller's transaction (``conn``).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, exists, select, update

from cdrapi.store.queue_calls import upsert
from cdrapi.store.schema import calls, cel_calls

__all__ = [
    "EVENT",
    "call_ended",
    "copy_cel_fields",
    "has_cel_calls",
    "read_cel_events",
    "save_cel_calls",
]

_COMPACT = json.JSONEncoder(separators=(",", ":"))

#: The calls columns CEL sets, in the order of :func:`_values`.
_SET = ("ivr_log", "ivr_duration", "transfers", "monitor_files", "monitor_urls", "ring_time")


def has_cel_calls(conn: Connection) -> bool:
    """Whether CEL said anything of any call yet."""
    return bool(conn.execute(select(exists().select_from(cel_calls))).scalar())


#: Between events in ``cel_calls.events``.
EVENT = "\x1e"


def read_cel_events(conn: Connection, linkedids: Collection[str]) -> dict[str, list[str]]:
    """The events stored for each of ``linkedids`` that has some (as saved)."""
    found: dict[str, list[str]] = {}
    wanted = list(linkedids)
    for start in range(0, len(wanted), 900):  # SQLite's bound parameters, in chunks
        query = select(cel_calls.c.linkedid, cel_calls.c.events).where(
            cel_calls.c.linkedid.in_(wanted[start : start + 900])
        )
        for linkedid, text in conn.execute(query):
            found[linkedid] = text.split(EVENT) if text else []
    return found


def save_cel_calls(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert or replace the ``cel_calls`` rows given (``events`` texts without ``\x1e``,
    ``rings`` a mapping)."""
    if not rows:
        return
    dumps = _COMPACT.encode
    values = [
        {**row, "events": EVENT.join(row["events"]), "rings": dumps(row["rings"])} for row in rows
    ]
    conn.execute(upsert(conn, cel_calls, ["linkedid"]), values)


def call_ended(conn: Connection, linkedid: str) -> str | None:
    """When the call ``linkedid`` really ended (its LINKEDID_END, local time), if known."""
    query = select(cel_calls.c.ended).where(cel_calls.c.linkedid == linkedid)
    value = conn.execute(query).scalar()
    return None if value is None else str(value)


def copy_cel_fields(
    conn: Connection,
    *,
    from_id: int | None = None,
    linkedids: Collection[str] | None = None,
    uniqueids: Collection[str] | None = None,
) -> int:
    """Copy the ``cel_calls`` fields onto the calls rows of their linkedids: those with
    ids from ``from_id`` on, of ``linkedids``, of the calls of ``uniqueids``, or (none
    given) all; return how many rows changed."""
    c, k = calls.c, cel_calls.c
    query = select(
        c.id, c.uniqueid, c.dstchannel, *(c[name] for name in _SET),
        k.ivr_uniqueid, k.ivr_log, k.ivr_duration, k.transfers, k.monitor_files,
        k.monitor_urls, k.rings,
    ).join(cel_calls, k.linkedid == c.linkedid)  # fmt: skip
    chunks: list[Any] = [None]
    if from_id is not None:
        query = query.where(c.id >= from_id)
    elif linkedids is not None:
        query, chunks = (
            query.where(c.linkedid.in_(bindparam("keys", expanding=True))),
            [list(linkedids)],
        )
    elif uniqueids is not None:
        of_calls = select(calls.c.linkedid).where(
            calls.c.uniqueid.in_(bindparam("keys", expanding=True))
        )
        query, chunks = query.where(c.linkedid.in_(of_calls.scalar_subquery())), [list(uniqueids)]
    if chunks[0] is not None:
        keys = chunks[0]
        chunks = [keys[start : start + 900] for start in range(0, len(keys), 900)]
    changed: list[dict[str, Any]] = []
    for chunk in chunks:
        if chunk is not None and not chunk:
            continue
        result = conn.execute(query, {"keys": chunk} if chunk is not None else {})
        for row in result:
            now = tuple(row[3:9])
            new = _values(row)
            if new != now:
                changed.append({"row_id": row[0], **dict(zip(_SET, new, strict=True))})
    if changed:
        statement = (
            update(calls)
            .where(calls.c.id == bindparam("row_id"))
            .values({name: bindparam(name) for name in _SET})
        )
        conn.execute(statement, changed)
    return len(changed)


def _values(row: Any) -> tuple[Any, ...]:
    """The new values of :data:`_SET` for a joined row (calls columns, then cel_calls')."""
    (_id, uniqueid, dstchannel, ivr_log, ivr_duration, transfers, files, urls, ring,
     ivr_uniqueid, cel_ivr, cel_ivr_duration, cel_transfers, cel_files, cel_urls,
     rings) = row  # fmt: skip
    if cel_ivr and uniqueid == ivr_uniqueid:
        ivr_log, ivr_duration = cel_ivr, cel_ivr_duration
    if cel_transfers:
        transfers = cel_transfers
    if cel_files:
        files, urls = cel_files, cel_urls
    if dstchannel and rings and rings != "{}":
        ring = json.loads(rings).get(dstchannel, ring)
    return ivr_log, ivr_duration, transfers, files, urls, ring
