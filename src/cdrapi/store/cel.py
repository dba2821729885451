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
    "CEL_COLUMNS",
    "EVENT",
    "call_ended",
    "copy_cel_fields",
    "has_cel_calls",
    "read_cel_events",
    "save_cel_calls",
    "write_cel_calls",
]

_COMPACT = json.JSONEncoder(separators=(",", ":"))

#: The calls columns CEL sets, in the order of :func:`_values`.
_SET = ("ivr_log", "ivr_duration", "transfers", "monitor_files", "monitor_urls", "ring_time")


def has_cel_calls(conn: Connection) -> bool:
    """Whether CEL said anything of any call yet."""
    return bool(conn.execute(select(exists().select_from(cel_calls))).scalar())


#: Between events in ``cel_calls.events``.
EVENT = "\x1e"

#: The ``cel_calls`` columns, in the order of the rows :func:`write_cel_calls` takes.
CEL_COLUMNS = ("linkedid", "events", "ivr_uniqueid", "ivr_log", "ivr_duration", "transfers",
               "monitor_files", "monitor_urls", "rings", "ended")  # fmt: skip
#: SQLite's bound parameters, in chunks (999 in older builds).
_CHUNK = 900


def read_cel_events(conn: Connection, linkedids: Collection[str]) -> dict[str, list[str]]:
    """The events stored for each of ``linkedids`` that has some (as saved)."""
    found: dict[str, list[str]] = {}
    wanted = list(linkedids)
    sqlite = conn.dialect.name == "sqlite"
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        if sqlite:  # the driver's own statement: no SQLAlchemy work per key
            marks = ",".join("?" * len(chunk))
            result: Any = conn.exec_driver_sql(
                f"SELECT linkedid, events FROM cel_calls WHERE linkedid IN ({marks})",
                tuple(chunk),
            )
        else:
            result = conn.execute(
                select(cel_calls.c.linkedid, cel_calls.c.events).where(
                    cel_calls.c.linkedid.in_(chunk)
                )
            )
        for linkedid, text in result:
            found[linkedid] = text.split(EVENT) if text else []
    return found


def write_cel_calls(conn: Connection, rows: Sequence[Sequence[Any]]) -> None:
    """Insert or replace the ``cel_calls`` rows given as tuples of :data:`CEL_COLUMNS`
    (``events`` joined by :data:`EVENT`, ``rings`` JSON text): on SQLite one
    ``executemany`` of the driver's own statement."""
    if not rows:
        return
    if conn.dialect.name == "sqlite":
        names = ", ".join(CEL_COLUMNS)
        marks = ", ".join("?" * len(CEL_COLUMNS))
        sets = ", ".join(f"{name} = excluded.{name}" for name in CEL_COLUMNS[1:])
        conn.exec_driver_sql(
            f"INSERT INTO cel_calls ({names}) VALUES ({marks}) "
            f"ON CONFLICT (linkedid) DO UPDATE SET {sets}",
            list(rows),
        )
        return
    values = [dict(zip(CEL_COLUMNS, row, strict=True)) for row in rows]
    conn.execute(upsert(conn, cel_calls, ["linkedid"]), values)


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
    given) all; return how many rows changed.

    On SQLite the driver's own statements run (the rows read and written as tuples):
    SQLAlchemy's work per row was most of the cost of a CEL pass on CDR ingestion."""
    chunks: list[Any] = [None]
    keys = list(linkedids) if linkedids is not None else None
    if keys is None and uniqueids is not None:
        keys = list(uniqueids)
    if keys is not None and from_id is None:
        chunks = [keys[start : start + _CHUNK] for start in range(0, len(keys), _CHUNK)]
    sqlite = conn.dialect.name == "sqlite"
    changed: list[tuple[Any, ...]] = []
    for chunk in chunks:
        if sqlite:
            rows: Any = conn.exec_driver_sql(*_select_sqlite(from_id, linkedids, chunk))
        else:
            rows = conn.execute(*_select(from_id, linkedids, chunk))
        for row in rows:
            new = _values(row)
            if new != tuple(row[3:9]):
                changed.append((*new, row[0]))
    if not changed:
        return len(changed)
    if sqlite:
        sets = ", ".join(f"{name} = ?" for name in _SET)
        conn.exec_driver_sql(f"UPDATE calls SET {sets} WHERE id = ?", changed)
    else:
        statement = (
            update(calls)
            .where(calls.c.id == bindparam("row_id"))
            .values({name: bindparam(name) for name in _SET})
        )
        names = (*_SET, "row_id")
        conn.execute(statement, [dict(zip(names, row, strict=True)) for row in changed])
    return len(changed)


#: The calls columns read, then cel_calls', in the order of :func:`_values`.
_READ = ("c.id", "c.uniqueid", "c.dstchannel", *(f"c.{name}" for name in _SET),
         "k.ivr_uniqueid", "k.ivr_log", "k.ivr_duration", "k.transfers", "k.monitor_files",
         "k.monitor_urls", "k.rings")  # fmt: skip


def _select_sqlite(
    from_id: int | None, linkedids: Collection[str] | None, chunk: list[str] | None
) -> tuple[str, tuple[Any, ...]]:
    """The SQL and parameters of the joined rows :func:`copy_cel_fields` reads."""
    query = (
        f"SELECT {', '.join(_READ)} FROM calls AS c JOIN cel_calls AS k ON k.linkedid = c.linkedid"
    )
    if from_id is not None:
        return f"{query} WHERE c.id >= ?", (from_id,)
    if chunk is None:
        return query, ()
    marks = ",".join("?" * len(chunk))
    if linkedids is not None:
        return f"{query} WHERE c.linkedid IN ({marks})", tuple(chunk)
    of_calls = f"SELECT linkedid FROM calls WHERE uniqueid IN ({marks})"
    return f"{query} WHERE c.linkedid IN ({of_calls})", tuple(chunk)


def _select(
    from_id: int | None, linkedids: Collection[str] | None, chunk: list[str] | None
) -> tuple[Any, dict[str, Any]]:
    """:func:`_select_sqlite` in SQLAlchemy's terms (the other backends)."""
    c, k = calls.c, cel_calls.c
    query = select(
        c.id, c.uniqueid, c.dstchannel, *(c[name] for name in _SET),
        k.ivr_uniqueid, k.ivr_log, k.ivr_duration, k.transfers, k.monitor_files,
        k.monitor_urls, k.rings,
    ).join(cel_calls, k.linkedid == c.linkedid)  # fmt: skip
    if from_id is not None:
        return query.where(c.id >= from_id), {}
    if chunk is None:
        return query, {}
    keys: Any = bindparam("keys", expanding=True)
    if linkedids is not None:
        return query.where(c.linkedid.in_(keys)), {"keys": chunk}
    of_calls = select(calls.c.linkedid).where(calls.c.uniqueid.in_(keys))
    return query.where(c.linkedid.in_(of_calls.scalar_subquery())), {"keys": chunk}


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
