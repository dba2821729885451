"""Annotations: the CRM fields of a call set through ``POST /api/cdr/annotate``, and their
audit trail.

An annotation sets some of :data:`FIELDS` (``customer_id``, ``external_id``,
``external_info``, ``comments``) on every record of one call (one ``id``, ``uniqueid`` or
``linkedid``). The value goes into the call's own column, so ``/api/cdr`` serves it with no
join; each field of each record written gets a row in :data:`call_annotations`: who (the token's
name in the configuration, never the token), when (UTC), which call, which field, the old
value and the new one. A row is written even when the value did not change: the field is
then the annotator's, and it stays so.

**An annotation wins over a derived value.** A field with a row here is never overwritten
by deriving the call again: every statement that writes derived values onto stored calls
sets these columns through :func:`keep_annotated` (:func:`cdrapi.store.calls.rewrite_derived`
does), which keeps the stored value of an annotated field. A CDR ingested again (``ingest
--from-start``) is skipped by its ``source_key``, so it clears nothing either.

Limits (characters, as PostgreSQL's ``varchar(n)`` counts them): ``customer_id`` 80 and
``external_id`` 150 (their columns' sizes), ``external_info`` 2,000 and ``comments`` 4,000
(``TEXT`` columns, bounded here so a request stays small). Control characters are refused
(``NUL`` to ``U+001F``, ``DEL``, ``U+0080``-``U+009F``, and the line and paragraph
separators); ``comments`` and ``external_info`` are free text and may hold tab, line feed
and carriage return. An empty value clears the field (stored as ``NULL``, shown ``null``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Engine,
    Index,
    Integer,
    String,
    Table,
    Text,
    case,
    exists,
    select,
    update,
)
from sqlalchemy.exc import SQLAlchemyError

from cdrapi.protocol.filters import CallFilters
from cdrapi.protocol.records import RECORD_COLUMNS
from cdrapi.store.engine import StoreError
from cdrapi.store.queries import where_clauses
from cdrapi.store.schema import calls, metadata
from cdrapi.store.transaction import writing

__all__ = [
    "FIELDS",
    "LIMITS",
    "MAX_RECORDS",
    "SELECTORS",
    "Annotation",
    "InvalidValue",
    "annotate",
    "audit_trail",
    "call_annotations",
    "check_value",
    "keep_annotated",
]

#: The fields an annotation may set, in record order.
FIELDS = ("customer_id", "external_id", "external_info", "comments")
#: The longest value of each field, in characters.
LIMITS = {"customer_id": 80, "external_id": 150, "external_info": 2000, "comments": 4000}
#: What names the call: the store's id, or Asterisk's uniqueid or linkedid.
SELECTORS = ("id", "uniqueid", "linkedid")
#: The most records one annotation may change (one page of /api/cdr).
MAX_RECORDS = 100

_FREE_TEXT = frozenset({"external_info", "comments"})
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_FREE_TEXT_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")

# One row per field of a record an annotation wrote. Append-only: the audit trail, and
# what marks a field as the annotator's (keep_annotated). Times are UTC.
call_annotations = Table(
    "call_annotations",
    metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    Column("call_id", BigInteger().with_variant(Integer(), "sqlite"), nullable=False),
    Column("field", String(20), nullable=False),
    Column("old_value", Text),
    Column("new_value", Text),
    Column("annotated_by", String(100), nullable=False),
    Column("annotated_at", String(19), nullable=False),
    Index("ix_call_annotations_call_field", "call_id", "field"),
    sqlite_autoincrement=True,
)


class InvalidValue(ValueError):
    """A value an annotation may not store; the message says why."""


def check_value(name: str, value: str) -> str | None:
    """``value`` as field ``name`` stores it (``""`` clears: ``None``), or raise
    :class:`InvalidValue` (too long, or a control character)."""
    limit = LIMITS[name]
    if len(value) > limit:
        raise InvalidValue(f"longer than {limit} characters ({len(value)})")
    pattern = _FREE_TEXT_CONTROL if name in _FREE_TEXT else _CONTROL
    found = pattern.search(value)
    if found:
        raise InvalidValue(
            f"control character U+{ord(found.group()):04X} at position {found.start() + 1}"
        )
    return value or None


def keep_annotated(name: str, value: Any) -> Any:
    """What a statement that derives column ``name`` of ``calls`` again sets it to:
    ``value``, unless the field is an annotated one of the call, which keeps its value.
    Columns that cannot be annotated get ``value`` itself (no cost)."""
    if name not in LIMITS:
        return value
    annotated = exists().where(
        call_annotations.c.call_id == calls.c.id, call_annotations.c.field == name
    )
    return case((annotated, calls.c[name]), else_=value)


@dataclass(frozen=True, slots=True)
class Annotation:
    """What :func:`annotate` did: how many records matched and, when it wrote them, their
    rows (:data:`~cdrapi.protocol.records.RECORD_COLUMNS`, after the change, in id order)."""

    matched: int
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    changed: int = 0
    """How many fields of those records now hold another value than before."""


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


def annotate(
    engine: Engine,
    selector: str,
    key: str | int,
    values: Mapping[str, str | None],
    who: str,
    scope: CallFilters | None = None,
) -> Annotation:
    """Set ``values`` (field -> value, checked by :func:`check_value`: ``""`` or ``None`` clears) on
    every record whose ``selector`` column equals ``key`` and that ``scope`` (filters a
    scoped token's answers are narrowed with) keeps, audited as ``who``; one transaction.

    Nothing is written when no record or more than :data:`MAX_RECORDS` match. The records
    are looked for in a read first, so a call that is not there (or not in ``scope``) is
    answered without waiting for the write lock; the write then finds them again in its
    own transaction, so a call deleted or changed in between is annotated as it is then
    (or not at all). Raises :class:`InvalidValue` for a value :func:`check_value`
    refuses, :class:`StoreError` when the database fails.
    """
    if selector not in SELECTORS or not values or set(values) - set(FIELDS):
        raise ValueError(f"bad annotation: {selector!r}, {sorted(values)!r}")
    names = [name for name in FIELDS if name in values]
    values = {name: None if values[name] is None else check_value(name, values[name] or "")
              for name in names}  # fmt: skip
    where: list[ColumnElement[bool]] = [calls.c[selector] == key]
    if scope is not None:
        where += where_clauses(scope, engine.dialect.name)
    try:
        with engine.connect() as conn:  # a read: no write lock for a call that is not there
            seen = len(conn.execute(select(calls.c.id).where(*where).limit(MAX_RECORDS + 1)).all())
        if not seen or seen > MAX_RECORDS:
            return Annotation(seen)
        with writing(engine, "annotating calls") as conn:
            found = conn.execute(  # again: the call may have changed since the read
                select(calls.c.id, *(calls.c[name] for name in names))
                .where(*where)
                .order_by(calls.c.id)
                .limit(MAX_RECORDS + 1)
            ).all()
            if not found or len(found) > MAX_RECORDS:
                return Annotation(len(found))
            ids = [row[0] for row in found]
            conn.execute(update(calls).where(calls.c.id.in_(ids)).values(dict(values)))
            at = _now()
            audit = [
                {
                    "call_id": row[0],
                    "field": name,
                    "old_value": old,
                    "new_value": values[name],
                    "annotated_by": who,
                    "annotated_at": at,
                }
                for row in found
                for name, old in zip(names, row[1:], strict=True)
            ]
            conn.execute(call_annotations.insert(), audit)
            columns = [calls.c[column] for column in RECORD_COLUMNS]
            rows = conn.execute(select(*columns).where(calls.c.id.in_(ids)).order_by(calls.c.id))
            changed = sum(entry["old_value"] != entry["new_value"] for entry in audit)
            return Annotation(len(found), [tuple(row) for row in rows], changed)
    except SQLAlchemyError as exc:
        raise StoreError(f"database error: {exc.__class__.__name__}") from exc


def audit_trail(engine: Engine, call_ids: Sequence[int]) -> list[dict[str, Any]]:
    """The audit rows of ``call_ids``, oldest first (for tests and tools)."""
    query = select(call_annotations).where(call_annotations.c.call_id.in_(list(call_ids)))
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query.order_by(call_annotations.c.id))]
