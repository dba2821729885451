"""A batch: rows read from a source, what to change with them, and where the source is
after them; :func:`commit` stores it in one transaction.

With the rows go the changes :mod:`cdrapi.ingest.recovery` found for calls stored
before: earlier rows recovered (``is_recovered`` 1), earlier rows that are legs of an
answered call (``is_recovered`` NULL, ``call_codes`` as
:data:`~cdrapi.ingest.recovery.ELSEWHERE`), and, when the store held calls before the
run, the look-ups of the batch's numbers and linkedids among them.

Item 11 of issue 8: SQLite plans with the statistics ``ANALYZE`` left, or without any
after an interrupted bulk load; planned through ``ix_calls_direction`` or
``ix_calls_call_status``, an UPDATE per answered call scans most of the table. So the
statements leave only the fitting index usable: a unary ``+`` before a column
(``+direction``) keeps SQLite from looking it up in an index, whatever the statistics
say. PostgreSQL, which has no unary ``+`` for text, plans a table never analysed the same
way (through ``ix_calls_direction``): there ``(direction || '')`` does the same.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, text

from cdrapi.ingest.derive import ROW_COLUMNS
from cdrapi.ingest.errors import Reject
from cdrapi.ingest.recovery import ELSEWHERE
from cdrapi.ingest.rejects import RejectFile
from cdrapi.ingest.summary import Summary
from cdrapi.store.writer import write_batch

__all__ = ["RECOVERY_SQL", "Batch", "Summary", "clear_missed", "commit", "mark_recovered"]


@dataclass
class Batch:
    """Rows (tuples of ``ROW_COLUMNS``) and rejects of some lines, earlier rows found
    recovered or not missed, and the checkpoint (source, position) after the lines."""

    rows: list[tuple[Any, ...]] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)
    # keys of earlier rows that are legs of an answered call: not missed calls
    cleared: list[str] = field(default_factory=list)
    # whether legs of the rows' calls may be stored by earlier runs (look them up)
    look_in_store: bool = False
    checkpoint: tuple[str, str] | None = None
    lines: int = 0
    events: list[tuple[Any, ...]] = field(default_factory=list)  # queue_log events
    # (number, window start, time) of answered calls, for missed calls stored earlier
    callbacks: list[tuple[str, str, str]] = field(default_factory=list)
    # lines stored but worth a look (broken quoting in a caller id...), reported like rejects
    warnings: list[Reject] = field(default_factory=list)
    # how the direction of each row was decided: sign -> rows (Deriver.take_signs)
    directions: dict[str, int] = field(default_factory=dict)


# A leg of an answered call is not a missed call (cdrapi.ingest.recovery).
_NOT_MISSED = (
    "is_recovered = NULL, call_codes = CASE call_codes "
    + " ".join(f"WHEN '{codes}' THEN '{elsewhere}'" for codes, elsewhere in ELSEWHERE.items())
    + " ELSE call_codes END"
)
# Someone answered the leg (the calls row named {t}).
_ANSWERED = "~{t}.call_status = 'ANSWERED' AND ({t}.dstchannel <> '' OR {t}.channel = '')"
# ~column: a column no index may be used for (see the module's docstring); {rowid}: on
# SQLite "NOT INDEXED", so that new rows are found by rowid, not by a skip-scan of
# ix_calls_time (time, id) that the statistics of a store with few distinct times suggest.
_SQL = {
    # earlier rows recovered, by key
    "mark": "UPDATE calls SET is_recovered = 1 WHERE source_key = {key} AND is_recovered = 0",
    # missed calls from a number stored by earlier runs, in the window before an answer
    "called_back": "UPDATE calls SET is_recovered = 1 WHERE source = {number} "
    "AND ~time >= {since} AND ~time < {until} AND ~direction = 'IN' AND is_recovered = 0",
    # earlier rows not missed, by key
    "clear": f"UPDATE calls SET {_NOT_MISSED} WHERE source_key = {{key}} "
    "AND is_recovered IS NOT NULL",
    # legs stored earlier of the calls that the batch's rows (ids from {first} on) answered
    "answered_now": f"UPDATE calls SET {_NOT_MISSED} WHERE is_recovered IS NOT NULL "
    "AND linkedid IN (SELECT n.linkedid FROM calls AS n {rowid} WHERE n.id >= {first} "
    f"AND n.linkedid <> '' AND {_ANSWERED.format(t='n')})",
    # the batch's unanswered legs of calls that a leg stored earlier answered
    "answered_before": f"UPDATE calls {{rowid}} SET {_NOT_MISSED} WHERE id >= {{first}} "
    "AND is_recovered IS NOT NULL AND linkedid <> '' AND EXISTS (SELECT 1 FROM calls AS a "
    f"WHERE a.linkedid = calls.linkedid AND {_ANSWERED.format(t='a')})",
}
# the parameters of each, in order
_PARAMETERS = {
    "mark": ("key",), "called_back": ("number", "since", "until"), "clear": ("key",),
    "answered_now": ("first",), "answered_before": ("first",),
}  # fmt: skip
_NAMES = ("key", "number", "since", "until", "first")
_UNINDEXED = re.compile(r"~([\w.]+)")


def _dialect_sql(sql: str, sqlite: bool) -> str:
    if sqlite:  # unary +: the same value, not the column for the planner
        sql = _UNINDEXED.sub(r"+\1", sql)
        return sql.format(rowid="NOT INDEXED", **dict.fromkeys(_NAMES, "?"))
    sql = _UNINDEXED.sub(r"(\1 || '')", sql)  # PostgreSQL has no unary + for text
    return sql.format(rowid="", **{name: f":{name}" for name in _NAMES})


#: The recovery statements by dialect and name. SQLite's take ``?`` parameters, straight
#: to the driver (its executemany: SQLAlchemy's parameter handling cost 0.2 s for the
#: 60,000 earlier calls a million calls recover); PostgreSQL's ``:name`` ones.
RECOVERY_SQL: dict[str, dict[str, str]] = {
    "sqlite": {name: _dialect_sql(sql, True) for name, sql in _SQL.items()},
    "postgresql": {name: _dialect_sql(sql, False) for name, sql in _SQL.items()},
}


def _run(conn: Connection, name: str, params: list[tuple[Any, ...]]) -> None:
    """Statement ``name`` of :data:`RECOVERY_SQL` once for each parameter tuple (in the
    order of the statement's parameters)."""
    if not params:
        return
    dialect = conn.dialect.name
    if dialect == "sqlite":
        conn.exec_driver_sql(RECOVERY_SQL["sqlite"][name], params)
        return
    names = _PARAMETERS[name]
    conn.execute(
        text(RECOVERY_SQL["postgresql"][name]),
        [dict(zip(names, values, strict=True)) for values in params],
    )


def mark_recovered(conn: Connection, keys: list[str]) -> None:
    """Mark the stored missed calls with ``keys`` recovered (``is_recovered`` 0 -> 1)."""
    _run(conn, "mark", [(key,) for key in keys])


def clear_missed(conn: Connection, keys: list[str]) -> None:
    """Mark the stored rows with ``keys`` as legs of an answered call, not missed calls."""
    _run(conn, "clear", [(key,) for key in keys])


def commit(
    engine: Engine,
    batch: Batch,
    rejects: RejectFile,
    after: Callable[[Connection, int, Batch], None] | None = None,
) -> int:
    """Write ``batch``'s rejects, then its rows, recoveries and checkpoint in one
    transaction (``after(conn, first_id, batch)`` runs in it too); return the new rows.

    In the transaction, in this order: earlier rows recovered, missed calls stored by
    earlier runs called back, earlier rows not missed (all by the batch's lists), then,
    with ``look_in_store``, the legs stored by earlier runs of calls a new row answered
    and the new unanswered legs of calls answered before (:data:`RECOVERY_SQL`):
    NULL wins over 1, whichever came first.
    """
    rejects.write(batch.rejects)

    def then(conn: Connection, first_id: int) -> None:
        mark_recovered(conn, batch.recovered)
        _run(conn, "called_back", list(set(batch.callbacks)))
        _run(conn, "clear", [(key,) for key in batch.cleared])
        if batch.look_in_store and batch.rows:
            _run(conn, "answered_now", [(first_id,)])
            _run(conn, "answered_before", [(first_id,)])
        if after is not None:
            after(conn, first_id, batch)

    return write_batch(engine, ROW_COLUMNS, batch.rows, checkpoint=batch.checkpoint, then=then)
