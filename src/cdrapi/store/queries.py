"""SQL for the filters of SPEC §4: each declared filter's clause becomes WHERE conditions.

``protocol/filters.py`` declares every filter with a kind of clause and the columns it
applies to; this module owns what each kind means in SQL (:data:`_KINDS`) and writes the
conditions of a :class:`CallFilters` generically, kind by kind in the order of
:data:`_KINDS` (ranges, sets of values, searches, flags), and within a kind in the order
the filters are declared.

Values are always bound parameters. Number searches (``telephone_like``, ``source``,
``destination``) follow the wildcard rule: without ``*``/``%`` the value is a substring;
with them the pattern is anchored and they match any run of characters. ``_`` and ``\\``
are always literal. On SQLite the trigram search (:mod:`cdrapi.store.search`) narrows
the rows first and LIKE confirms them; on PostgreSQL ILIKE uses its ``pg_trgm`` GIN
indexes directly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.sql.elements import ColumnClause

from cdrapi.protocol.filters import CallFilters, ClauseKind, ScopedCallFilters, filters_of
from cdrapi.store.schema import calls, users
from cdrapi.store.search import matching_rows

__all__ = ["like_pattern", "where_clauses"]

_ESCAPE = "\\"

_Columns = tuple[ColumnClause[Any], ...]
#: A kind of clause in SQL: (the filter's value, its columns, the dialect) -> conditions.
_Render = Callable[[Any, _Columns, str], Sequence[ColumnElement[bool]]]


def like_pattern(value: str) -> tuple[str, list[str]]:
    """The LIKE pattern for a search value, and its literal pieces (for the trigram index)."""
    pieces = value.replace("*", "%").split("%")
    escaped = [piece.replace(_ESCAPE, _ESCAPE * 2).replace("_", _ESCAPE + "_") for piece in pieces]
    if len(pieces) == 1:
        return f"%{escaped[0]}%", pieces
    return "%".join(escaped), [piece for piece in pieces if piece]


def _ends(expression: ColumnElement[Any], start: str | None, end: str | None) -> list[Any]:
    """``expression`` within both ends, inclusive; a ``None`` end is open."""
    where = []
    if start is not None:
        where.append(expression >= start)
    if end is not None:
        where.append(expression <= end)
    return where


def _between(value: tuple[str | None, str | None], columns: _Columns, _: str) -> list[Any]:
    (column,) = columns
    return _ends(column, *value)


def _time_of_day(value: tuple[str | None, str | None], columns: _Columns, _: str) -> list[Any]:
    (column,) = columns
    start, end = value
    clock = func.substr(column, 12, 8)  # HH:MM:SS of YYYY-MM-DD HH:MM:SS
    if start is not None and end is not None and start > end:
        return [or_(clock >= start, clock <= end)]
    return _ends(clock, start, end)


def _any_of(values: tuple[Any, ...], columns: _Columns, _: str) -> list[Any]:
    (column,) = columns
    return [column == values[0] if len(values) == 1 else column.in_(values)]


def _extension(values: tuple[str, ...], columns: _Columns, _: str) -> list[Any]:
    """One of the columns holds one of the extensions; ``user_id`` holds the id of a
    directory user whose extension is one of them."""
    held = [
        column.in_(select(users.c.id).where(users.c.extension.in_(values)))
        if column.name == "user_id"
        else column.in_(values)
        for column in columns
    ]
    return [or_(*held)]


def _equals(value: Any, columns: _Columns, _: str) -> list[Any]:
    return [or_(*(column == value for column in columns))]


def _like(value: str, columns: _Columns, dialect: str) -> list[Any]:
    pattern, pieces = like_pattern(value)
    if dialect == "postgresql":
        return [or_(*(column.ilike(pattern, escape=_ESCAPE) for column in columns))]
    condition = or_(*(column.like(pattern, escape=_ESCAPE) for column in columns))
    matching = matching_rows(pieces, " ".join(column.name for column in columns))
    if matching is None:
        return [condition]
    return [and_(calls.c.id.in_(matching), condition)]


def _at_least(value: Any, columns: _Columns, _: str) -> list[Any]:
    (column,) = columns
    return [column >= value]


def _present(wanted: bool, columns: _Columns, _: str) -> list[Any]:
    (column,) = columns
    has = func.coalesce(column, "") != ""
    return [has if wanted else ~has]


#: Each kind of clause in SQL, in the order the conditions are written.
_KINDS: dict[ClauseKind, _Render] = {
    "between": _between,
    "time_of_day": _time_of_day,
    "any_of": _any_of,
    "extension": _extension,
    "equals": _equals,
    "like": _like,
    "at_least": _at_least,
    "present": _present,
}


_Plan = tuple[tuple[str, Any, _Render, _Columns], ...]
_PLANS: dict[type[CallFilters], _Plan] = {}


def _plan(query: type[CallFilters]) -> _Plan:
    """For each filter of ``query``, in writing order: name, "not applied" value, its
    kind's SQL and its columns. Raises KeyError for an unknown kind or column."""
    known = _PLANS.get(query)
    if known is None:
        order = list(_KINDS)
        declared = sorted(filters_of(query).values(), key=lambda f: order.index(f.clause.kind))
        known = _PLANS[query] = tuple(
            (
                spec.name,
                spec.value.empty,
                _KINDS[spec.clause.kind],
                tuple(calls.c[column] for column in spec.clause.columns),
            )
            for spec in declared
        )
    return known


# A declaration naming no column of calls fails here, at import.
_plan(CallFilters)
_plan(ScopedCallFilters)


def where_clauses(filters: CallFilters, dialect: str) -> list[ColumnElement[bool]]:
    """The conditions a call must meet; an empty list matches every call."""
    where: list[ColumnElement[bool]] = []
    for name, empty, render, columns in _plan(type(filters)):
        value = getattr(filters, name)
        if value != empty:
            where.extend(render(value, columns, dialect))
    return where
