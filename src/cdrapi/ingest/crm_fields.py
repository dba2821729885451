"""The CRM fields of a record, filled from the PBX's own records as ``[fields]`` says.

The integrator's dialplan puts what the CRM knows of a call in the CDR
(``Set(CDR(external_id)=${EXTERNAL_ID})``), and the CDR backend writes it as a column: a
cdr_custom column, an extra column of the SQL ``cdr`` table, or inside ``userfield`` /
``accountcode``. The config file's ``[fields]`` table (the setting ``crm_fields``) names,
for each of :data:`CRM_COLUMNS`, the column it is in and optionally a pattern whose group
is the value (:class:`~cdrapi.settings.FieldSource`); a :class:`FieldMap` is that table
made ready for ingestion.

How the values travel, at no cost when no ``[fields]`` is configured:

- the *extended CDR*: a source whose records have columns beyond the raw CDR's (a header
  CSV, a ``--columns`` layout, the SQL table) appends the values of
  :attr:`FieldMap.extra_columns` to the raw CDR (:data:`~cdrapi.ingest.cdr.CDR_FIELDS`
  first, then those, ``""`` where the source has no such column); a raw CDR field
  (``userfield``...) is read where it already is;
- :class:`MappedDeriver` derives the row from the raw CDR as every run does (the same
  ``source_key``: the extra values are no part of it) and appends the five fields' values,
  in :data:`CRM_COLUMNS` order (``None`` for a field not mapped or without a value);
- :func:`cdrapi.ingest.batch.commit` writes such rows with those five columns too.

A value is the column's, white space stripped (empty: ``None``); with a pattern, its group
in the first match (or the whole match for a pattern without a group; no match:
``None``). ``accounting_value`` is a number, kept as text as the API shows it
(``"12.50"``; a decimal comma is read as a point). A value longer than its column holds
(``customer_id`` 80 characters, ``external_id`` 150, ``accounting_value`` 255), or an
``accounting_value`` that is no number, rejects the line with a reason naming the field:
nothing is cut or dropped silently.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cdrapi.ingest.cdr import CDR_FIELDS, CDR_INDEX
from cdrapi.ingest.derive import Deriver
from cdrapi.settings import CRM_FIELDS, FieldSource

__all__ = ["CRM_COLUMNS", "FieldMap", "MappedDeriver"]

#: The fields ``[fields]`` fills, in the order a mapped row ends with them.
CRM_COLUMNS: tuple[str, ...] = CRM_FIELDS
#: The most characters each column holds (its ``varchar`` size); the others are ``TEXT``.
LIMITS = {"customer_id": 80, "external_id": 150, "accounting_value": 255}
_WIDTH = len(CDR_FIELDS)
_NUMBER = re.compile(r"[+-]?(?:\d+(?:[.,]\d*)?|[.,]\d+)")


@dataclass(frozen=True, slots=True)
class _Target:
    """One mapped field: where its value is in the extended CDR, and how it is read."""

    name: str
    position: int  # in CRM_COLUMNS
    column: str
    index: int  # in the extended CDR
    pattern: re.Pattern[str] | None
    limit: int


class FieldMap:
    """``[fields]`` ready for ingestion: which columns a source must hand on
    (:attr:`extra_columns`) and the fields' values from an extended CDR (:meth:`values`)."""

    def __init__(self, fields: Mapping[str, FieldSource]) -> None:
        extra: list[str] = []
        targets = []
        for position, name in enumerate(CRM_COLUMNS):
            source = fields.get(name)
            if source is None:
                continue
            column = source.column
            if column in CDR_INDEX:
                index = CDR_INDEX[column]
            else:
                if column not in extra:
                    extra.append(column)
                index = _WIDTH + extra.index(column)
            pattern = re.compile(source.pattern) if source.pattern is not None else None
            limit = LIMITS.get(name, 0)
            targets.append(_Target(name, position, column, index, pattern, limit))
        #: The columns, beyond the raw CDR's fields, whose values a source appends to the
        #: raw CDR (in this order).
        self.extra_columns: tuple[str, ...] = tuple(extra)
        self._targets = tuple(targets)

    @classmethod
    def of(cls, fields: Mapping[str, FieldSource]) -> FieldMap | None:
        """The map of ``fields`` (the ``crm_fields`` setting), or ``None`` for none."""
        return cls(fields) if fields else None

    @property
    def names(self) -> tuple[str, ...]:
        """The fields mapped, in :data:`CRM_COLUMNS` order."""
        return tuple(target.name for target in self._targets)

    def fields_of(self, column: str) -> list[str]:
        """The fields whose value is in ``column``."""
        return [target.name for target in self._targets if target.column == column]

    def from_columns(self, columns: Iterable[str]) -> tuple[str, ...]:
        """The fields whose value is in one of the raw CDR fields ``columns``."""
        kept = set(columns)
        return tuple(t.name for t in self._targets if t.column in kept)

    def value(self, name: str, cdr: Sequence[str]) -> str | None:
        """Field ``name``'s value in the extended ``cdr`` (``None`` when not mapped);
        raises ValueError as :meth:`values` does."""
        for target in self._targets:
            if target.name == name:
                raw = cdr[target.index] if target.index < len(cdr) else ""
                return _value(target, raw) if raw else None
        return None

    def values(self, cdr: Sequence[str]) -> tuple[str | None, ...]:
        """The five fields' values (:data:`CRM_COLUMNS` order) in the extended ``cdr``;
        raises ValueError naming the field whose value cannot be stored."""
        out: list[str | None] = [None] * len(CRM_COLUMNS)
        width = len(cdr)
        for target in self._targets:
            raw = cdr[target.index] if target.index < width else ""
            if raw:
                out[target.position] = _value(target, raw)
        return tuple(out)


def _value(target: _Target, raw: str) -> str | None:
    value: str | None = raw.strip()
    if value and target.pattern is not None:
        found = target.pattern.search(value)
        value = None if found is None else found.group(1 if target.pattern.groups else 0)
        value = value.strip() if value else None
    if not value:
        return None
    if target.name == "accounting_value":
        if not _NUMBER.fullmatch(value):
            raise ValueError(
                f"[fields] accounting_value: {value[:40]!r} (column {target.column!r}) is "
                "not a number"
            )
        value = value.replace(",", ".")
    if target.limit and len(value) > target.limit:
        raise ValueError(
            f"[fields] {target.name}: the value in column {target.column!r} has "
            f"{len(value)} characters, more than the {target.limit} the field holds"
        )
    return value


class MappedDeriver(Deriver):
    """A :class:`~cdrapi.ingest.derive.Deriver` whose rows end with the CRM fields of
    ``fields`` (:data:`CRM_COLUMNS` order), taken from extended CDRs (see above)."""

    def __init__(self, fields: FieldMap, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields = fields
        self._values = fields.values

    def row(self, cdr: Sequence[str]) -> tuple[Any, ...]:
        base = super().row(cdr if len(cdr) == _WIDTH else cdr[:_WIDTH])
        return base + self._values(cdr)
