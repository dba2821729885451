"""SQL for the filters of SPEC §4: a :class:`CallFilters` becomes WHERE conditions.

Values are always bound parameters. Number searches (``telephone_like``, ``source``,
``destination``) follow the wildcard rule: without ``*``/``%`` the value is a substring;
with them the pattern is anchored and they match any run of characters. ``_`` and ``\\``
are always literal. On SQLite the trigram FTS5 table narrows the rows first and LIKE
confirms them; on PostgreSQL ILIKE uses the ``pg_trgm`` GIN indexes directly.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, Select, and_, func, literal_column, or_, select, table
from sqlalchemy.sql.elements import ColumnClause

from cdrapi.protocol.filters import CallFilters
from cdrapi.store.schema import calls

__all__ = ["like_pattern", "where_clauses"]

_ESCAPE = "\\"
_FTS = table("calls_numbers", literal_column("rowid"))


def like_pattern(value: str) -> tuple[str, list[str]]:
    """The LIKE pattern for a search value, and its literal pieces (for the trigram index)."""
    pieces = value.replace("*", "%").split("%")
    escaped = [piece.replace(_ESCAPE, _ESCAPE * 2).replace("_", _ESCAPE + "_") for piece in pieces]
    if len(pieces) == 1:
        return f"%{escaped[0]}%", pieces
    return "%".join(escaped), [piece for piece in pieces if piece]


def _fts_phrase(pieces: list[str], columns: str) -> str | None:
    """An FTS5 query that every matching row satisfies, or None if too short to help."""
    usable = [piece for piece in pieces if len(piece) >= 3]
    if not usable:
        return None
    phrases = " AND ".join('"' + piece.replace('"', '""') + '"' for piece in usable)
    return f"{{{columns}}} : ({phrases})"


def _search(
    value: str, columns: tuple[ColumnClause[str], ...], dialect: str
) -> ColumnElement[bool]:
    pattern, pieces = like_pattern(value)
    if dialect == "postgresql":
        return or_(*(column.ilike(pattern, escape=_ESCAPE) for column in columns))
    condition = or_(*(column.like(pattern, escape=_ESCAPE) for column in columns))
    phrase = _fts_phrase(pieces, " ".join(column.name for column in columns))
    if phrase is None:
        return condition
    matching: Select[tuple[int]] = (
        select(literal_column("rowid"))
        .select_from(_FTS)
        .where(literal_column("calls_numbers").op("MATCH")(phrase))
    )
    return and_(calls.c.id.in_(matching), condition)


def _present(column: ColumnClause[str], wanted: bool) -> ColumnElement[bool]:
    has = func.coalesce(column, "") != ""
    return has if wanted else ~has


def where_clauses(filters: CallFilters, dialect: str) -> list[ColumnElement[bool]]:
    """The conditions a call must meet; an empty list matches every call."""
    c = calls.c
    where: list[ColumnElement[bool]] = []
    if filters.date_between is not None:
        start, end = filters.date_between
        if start is not None:
            where.append(c.time >= start)
        if end is not None:
            where.append(c.time <= end)
    if filters.hour_between is not None:
        start, end = filters.hour_between
        clock = func.substr(c.time, 12, 8)
        if start is not None and end is not None and start > end:
            where.append(or_(clock >= start, clock <= end))
        else:
            if start is not None:
                where.append(clock >= start)
            if end is not None:
                where.append(clock <= end)
    for column, values in (
        (c.project_id, filters.project_id),
        (c.user_id, filters.user_id),
        (c.inbound_route_id, filters.inbound_route_id),
        (c.direction, filters.direction),
        (c.call_status, filters.call_status),
        (c.uniqueid, filters.uniqueid),
        (c.linkedid, filters.linkedid),
        (c.external_id, filters.external_id),
    ):
        if len(values) == 1:
            where.append(column == values[0])
        elif values:
            where.append(column.in_(values))
    if filters.telephone is not None:
        where.append(or_(c.source == filters.telephone, c.destination == filters.telephone))
    if filters.telephone_like is not None:
        where.append(_search(filters.telephone_like, (c.source, c.destination), dialect))
    if filters.source is not None:
        where.append(_search(filters.source, (c.source,), dialect))
    if filters.destination is not None:
        where.append(_search(filters.destination, (c.destination,), dialect))
    if filters.from_id is not None:
        where.append(c.id >= filters.from_id)
    for column, wanted in (
        (c.transcription_id, filters.has_transcription),
        (c.monitor_files, filters.has_monitor_file),
        (c.recording_file, filters.has_recording_file),
    ):
        if wanted is not None:
            where.append(_present(column, wanted))
    return where
