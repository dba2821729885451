"""The statements that keep ``is_recovered`` right on calls stored before a batch.

Ingestion decides (see :mod:`cdrapi.ingest.recovery`); these statements apply its
decisions to stored rows, inside the batch's transaction:

- ``mark``: earlier missed calls recovered, by key (``is_recovered`` 0 -> 1);
- ``called_back``: missed calls from a number stored by earlier runs, in the window
  before an answer;
- ``clear``: earlier rows that are legs of an answered call, by key: not missed calls
  (``is_recovered`` NULL, ``call_codes`` as the run's ``elsewhere`` mapping says);
- ``answered_now``: legs stored earlier of the calls that a batch's rows (ids from
  ``first`` on) answered; ``answered_before``: a batch's unanswered legs of calls that a
  leg stored earlier answered.

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
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, text

__all__ = ["PARAMETERS", "recovery_sql", "run_recovery"]

# Someone answered the leg (the calls row named {t}).
_ANSWERED = "~{t}.call_status = 'ANSWERED' AND ({t}.dstchannel <> '' OR {t}.channel = '')"
# ~column: a column no index may be used for (see the module's docstring); {rowid}: on
# SQLite "NOT INDEXED", so that new rows are found by rowid, not by a skip-scan of
# ix_calls_time (time, id) that the statistics of a store with few distinct times suggest.
# {not_missed}: the SET clause of a leg of an answered call.
_SQL = {
    "mark": "UPDATE calls SET is_recovered = 1 WHERE source_key = {key} AND is_recovered = 0",
    "called_back": "UPDATE calls SET is_recovered = 1 WHERE source = {number} "
    "AND ~time >= {since} AND ~time < {until} AND ~direction = 'IN' AND is_recovered = 0",
    "clear": "UPDATE calls SET {not_missed} WHERE source_key = {key} AND is_recovered IS NOT NULL",
    "answered_now": "UPDATE calls SET {not_missed} WHERE is_recovered IS NOT NULL "
    "AND linkedid IN (SELECT n.linkedid FROM calls AS n {rowid} WHERE n.id >= {first} "
    f"AND n.linkedid <> '' AND {_ANSWERED.format(t='n')})",
    "answered_before": "UPDATE calls {rowid} SET {not_missed} WHERE id >= {first} "
    "AND is_recovered IS NOT NULL AND linkedid <> '' AND EXISTS (SELECT 1 FROM calls AS a "
    f"WHERE a.linkedid = calls.linkedid AND {_ANSWERED.format(t='a')})",
}
#: The parameters of each statement, in order.
PARAMETERS: dict[str, tuple[str, ...]] = {
    "mark": ("key",), "called_back": ("number", "since", "until"), "clear": ("key",),
    "answered_now": ("first",), "answered_before": ("first",),
}  # fmt: skip
_NAMES = ("key", "number", "since", "until", "first")
_UNINDEXED = re.compile(r"~([\w.]+)")


def _not_missed(elsewhere: Mapping[str, str]) -> str:
    """The SET clause of a leg of an answered call: no longer missed, its codes mapped."""
    return (
        "is_recovered = NULL, call_codes = CASE call_codes "
        + " ".join(f"WHEN '{codes}' THEN '{other}'" for codes, other in elsewhere.items())
        + " ELSE call_codes END"
    )


def _dialect_sql(sql: str, sqlite: bool) -> str:
    if sqlite:  # unary +: the same value, not the column for the planner
        sql = _UNINDEXED.sub(r"+\1", sql)
        return sql.format(rowid="NOT INDEXED", **dict.fromkeys(_NAMES, "?"))
    sql = _UNINDEXED.sub(r"(\1 || '')", sql)  # PostgreSQL has no unary + for text
    return sql.format(rowid="", **{name: f":{name}" for name in _NAMES})


@lru_cache(maxsize=8)
def _cached(elsewhere: tuple[tuple[str, str], ...]) -> dict[str, dict[str, str]]:
    not_missed = _not_missed(dict(elsewhere))
    sql = {name: one.replace("{not_missed}", not_missed) for name, one in _SQL.items()}
    return {
        "sqlite": {name: _dialect_sql(one, True) for name, one in sql.items()},
        "postgresql": {name: _dialect_sql(one, False) for name, one in sql.items()},
    }


def recovery_sql(elsewhere: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """The statements by dialect and name, ``call_codes`` of legs of answered calls
    mapped by ``elsewhere`` (unanswered codes -> answered-elsewhere codes; codes given
    as literals: they are the run's own constants, never input). SQLite's take ``?``
    parameters, straight to the driver (its executemany: SQLAlchemy's parameter handling
    cost 0.2 s for the 60,000 earlier calls a million calls recover); PostgreSQL's
    ``:name`` ones."""
    return _cached(tuple(elsewhere.items()))


def run_recovery(
    conn: Connection,
    statements: Mapping[str, Mapping[str, str]],
    name: str,
    params: Sequence[tuple[Any, ...]],
) -> None:
    """Statement ``name`` of ``statements`` (:func:`recovery_sql`) once for each parameter
    tuple (in the order of the statement's parameters); nothing for none."""
    if not params:
        return
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(statements["sqlite"][name], list(params))
        return
    names = PARAMETERS[name]
    conn.execute(
        text(statements["postgresql"][name]),
        [dict(zip(names, values, strict=True)) for values in params],
    )
