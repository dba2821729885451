"""The dashboard's figures of days, saved in the store: a start, a second worker, or another
server on the same database reads them instead of counting the calls again.

A day's figures of a search (:class:`~cdrapi.store.dashboard_parts.DayPart`) are a row of
``dashboard_days``, keyed by the day and the search, and saved only for the searches an
account opens the dashboard with (:func:`saved_search`: the period, and at most a project
scope; a search by number or queue is kept in memory only, so the table stays a few rows
a day). Each row holds the :class:`Stamp` it was counted at, and is good while that
stamp is the store's (:mod:`cdrapi.store.dashboard_marks`):

- ``changes``: the day's mark, and ``resets``: the mark :data:`~.dashboard_marks.RESET`
  (legs deleted), as read in the same snapshot as the calls counted. A write to the
  day's legs after that snapshot raises the mark (in the writing transaction), so the
  row no longer matches: a write between the reading of the marks and the saving of
  the figures never leaves a stale day that looks good. Nothing is cleared: a row is
  replaced when the day is counted again.
- ``top_id`` (SQLite, where inserts are not marked: ids are given in commit order): the
  highest id the snapshot held. :data:`WATERMARK` (a ``meta`` row) is the highest id
  seen when rows were last saved, and every saved row holds every leg of its day up to
  it: :func:`save_parts` (under the write lock) leaves out a day counted before a leg was
  added to it, and deletes the rows of days given legs since the watermark. A reader
  then needs only the days of the legs above the watermark
  (:func:`~.dashboard_marks.inserted_days`).

Saving takes SQLite's write lock for a moment: it waits at most :data:`SAVE_WAIT_MS`
behind an ingestion (otherwise the figures are saved with a later view). Two workers
saving the same day each store what they counted (equal figures); a row is only
replaced by one of the same or a later stamp. :data:`FORMAT` is in each row: rows of
another format (older code, whose counting may differ) are not read.

The figures are JSON: what every period adds up (the day's summary at the service level
it was saved with, talk times, users, missed calls, spanning calls) in ``figures``; the
hourly cells, the raw queue figures and the missed calls listed, needed for short
periods, another service level or the most recent days, in ``details``, decoded on use.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any, NamedTuple

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Integer,
    String,
    Table,
    Text,
    and_,
    func,
    insert,
    inspect,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from cdrapi.protocol.filters import CallFilters, filters_of
from cdrapi.store.dashboard_marks import RESET, inserted_days, read_marks
from cdrapi.store.dashboard_parts import DayPart, Summary
from cdrapi.store.schema import calls, meta, metadata

__all__ = [
    "FORMAT",
    "SAVE_WAIT_MS",
    "WATERMARK",
    "Stamp",
    "dashboard_days",
    "decode",
    "encode",
    "ensure_saved",
    "load_rows",
    "read_watermark",
    "save_parts",
    "saved_search",
]

#: The rows' format: raise it when the encoding or the counting of a day changes.
FORMAT = 1
#: The ``meta`` key of the highest id every saved row has counted (SQLite).
WATERMARK = "dashboard_days_top"
#: How long saving waits for SQLite's write lock, in ms.
SAVE_WAIT_MS = 200
_BUSY_MS = 10000  # the store's own busy timeout (engine.py's pragmas), set back after

dashboard_days = Table(
    "dashboard_days",
    metadata,
    Column("day", String(10), primary_key=True),
    Column("search", String(255), primary_key=True),
    Column("format", Integer, nullable=False),
    Column("changes", BigInteger, nullable=False),
    Column("resets", BigInteger, nullable=False),
    Column("top_id", BigInteger),
    Column("figures", Text, nullable=False),
    Column("details", Text, nullable=False),
)


class Stamp(NamedTuple):
    """What a day's figures were counted at: the day's mark, the reset mark, and (SQLite)
    the snapshot's highest id."""

    changes: int
    resets: int
    top: int | None


def saved_search(filters: CallFilters) -> str | None:
    """The name the figures of ``filters`` (without their period) are saved under, or None
    when they are not saved: only the period and a project scope may be set."""
    declared = filters_of(type(filters))
    scope: tuple[int, ...] = ()
    for field in dataclasses.fields(filters):
        value, spec = getattr(filters, field.name), declared.get(field.name)
        if spec is None:
            return None  # not a declared filter: its meaning is not the store's
        if field.name == "project_scope":
            scope = value
        elif field.name != "date_between" and value != spec.value.empty:
            return None
    if not scope:
        return "calls"
    return "project_scope=" + ",".join(str(n) for n in sorted(set(scope)))


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))  # (ASCII: a lone surrogate is escaped)


def encode(part: DayPart, service_level: int) -> tuple[str, str]:
    """``part``'s figures as the two texts saved: ``figures`` and ``details``."""
    part.details()
    summary = part.summary(service_level)
    figures = {
        "level": service_level,
        "daily": [[direction, status, n] for (direction, status), n in summary.daily.items()],
        "hours": summary.hours,
        "waits": [list(summary.waits), list(summary.waits.values())],
        "queues": [[name, *counts] for name, counts in summary.queues.items()],
        "talks": [list(part.talks), list(part.talks.values())],
        "users": [[user_id, name, n, talk] for (user_id, name), (n, talk) in part.users.items()],
        "missed": part.missed,
        "spanning": {linkedid: list(days) for linkedid, days in part.spanning.items()},
    }
    details = {
        "cells": [[*cell, n] for cell, n in part.cells.items()],
        "queues": [[name, wait, *counts] for (name, wait), counts in part.queues.items()],
        "recent": part.recent,
    }
    return _json(figures), _json(details)


def decode(figures: str, details: str) -> DayPart:
    """The part saved as ``figures`` and ``details`` (:func:`encode`); the details are
    decoded when first asked for (:meth:`DayPart.details`)."""
    data = json.loads(figures)
    part = DayPart(
        talks=dict(zip(*data["talks"], strict=True)),
        users={(user_id, name): [n, talk] for user_id, name, n, talk in data["users"]},
        missed=data["missed"],
        spanning={linkedid: tuple(days) for linkedid, days in data["spanning"].items()},
    )
    part.summaries[data["level"]] = Summary(
        daily={(direction, status): n for direction, status, n in data["daily"]},
        hours=data["hours"],
        waits=dict(zip(*data["waits"], strict=True)),
        queues={name: counts for name, *counts in data["queues"]},
    )

    def fill(part: DayPart) -> None:
        more = json.loads(details)
        part.cells = {(hour, direction, status): n for hour, direction, status, n in more["cells"]}
        part.queues = {(name, wait): [n, answered] for name, wait, n, answered in more["queues"]}
        part.recent = [tuple(missed) for missed in more["recent"]]

    part.unread = fill
    return part


def ensure_saved(engine: Engine) -> bool:
    """Create ``dashboard_days`` if the store has not got it (a store opened without its
    schema made); whether the figures can be saved there."""
    try:
        if inspect(engine).has_table(dashboard_days.name):
            return True
        with engine.begin() as conn:
            dashboard_days.create(conn, checkfirst=True)
    except SQLAlchemyError:
        return False
    return True


def read_watermark(conn: Connection) -> int | None:
    """The highest id every saved row has counted (SQLite), or None before any."""
    value = conn.execute(select(meta.c.value).where(meta.c.key == WATERMARK)).scalar()
    return None if value is None else int(value)


def load_rows(
    conn: Connection, search: str, first: str, last: str
) -> dict[str, tuple[Stamp, str, str]]:
    """The saved rows of ``search`` from day ``first`` to ``last``: day -> (stamp,
    figures, details)."""
    d = dashboard_days.c
    rows = conn.execute(
        select(d.day, d.changes, d.resets, d.top_id, d.figures, d.details).where(
            d.search == search, d.day.between(first, last), d.format == FORMAT
        )
    )
    return {
        str(day): (Stamp(int(changes), int(resets), top), str(figures), str(details))
        for day, changes, resets, top, figures, details in rows
    }


def save_parts(
    engine: Engine, parts: Mapping[tuple[str, str], DayPart], service_level: int
) -> None:
    """Save ``parts`` ((search, day) -> part, each with its :class:`Stamp`) in one
    transaction, leaving out those the store changed since they were counted. Raises
    the driver's error (SQLite: the database is locked after :data:`SAVE_WAIT_MS`)."""
    if not parts:
        return
    sqlite_store = engine.dialect.name == "sqlite"
    with engine.connect() as conn:
        if sqlite_store:
            _busy_timeout(conn, SAVE_WAIT_MS)
        try:
            with conn.begin():
                _save(conn, parts, service_level, sqlite_store)
        finally:
            if sqlite_store:
                _busy_timeout(conn, _BUSY_MS)


def _busy_timeout(conn: Connection, ms: int) -> None:
    cursor = conn.connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {int(ms)}")
    finally:
        cursor.close()


def _save(
    conn: Connection,
    parts: Mapping[tuple[str, str], DayPart],
    service_level: int,
    sqlite_store: bool,
) -> None:
    d = dashboard_days.c
    days = sorted(day for _, day in parts)
    inserted: dict[str, int] = {}
    if sqlite_store:
        # a write first: the write lock, so that what is read below stays so until commit
        conn.execute(update(meta).where(meta.c.key == WATERMARK).values(value=meta.c.value))
        seen = read_watermark(conn)
        top = int(conn.execute(select(func.coalesce(func.max(calls.c.id), 0))).scalar_one())
        tops = [part.stamp.top for part in parts.values()]
        low = min([top, *tops] if seen is None else [seen, *tops])
        inserted = inserted_days(conn, low) if low < top else {}
        for day, highest in inserted.items():  # rows counted before their day got legs
            conn.execute(dashboard_days.delete().where(d.day == day, d.top_id < highest))
        if seen is None:
            conn.execute(insert(meta).values(key=WATERMARK, value=top))
        else:
            conn.execute(update(meta).where(meta.c.key == WATERMARK).values(value=top))
    marks = read_marks(conn, days[0], days[-1])
    resets = marks.get(RESET, 0)
    conn.execute(dashboard_days.delete().where(d.resets < resets))
    rows = []
    for (search, day), part in parts.items():
        stamp: Stamp = part.stamp
        if stamp.changes != marks.get(day, 0) or stamp.resets != resets:
            continue  # changed since it was counted
        if stamp.top is not None and stamp.top < inserted.get(day, 0):
            continue  # legs added since
        figures, details = encode(part, service_level)
        rows.append({
            "day": day, "search": search, "format": FORMAT, "changes": stamp.changes,
            "resets": stamp.resets, "top_id": stamp.top, "figures": figures, "details": details,
        })  # fmt: skip
    if not rows:
        return
    rows.sort(key=lambda row: (row["day"], row["search"]))  # (two workers: one lock order)
    dialect: Any = sqlite if sqlite_store else postgresql
    statement = dialect.insert(dashboard_days)
    later = or_(
        statement.excluded.resets > d.resets,
        and_(statement.excluded.resets == d.resets, statement.excluded.changes >= d.changes),
    )
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=[d.day, d.search],
            set_={
                name: statement.excluded[name]
                for name in ("format", "changes", "resets", "top_id", "figures", "details")
            },
            where=later,
        ),
        rows,
    )
