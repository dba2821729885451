"""The request's ``page`` and its 18 ``filters`` (SPEC §4), each filter declared once.

A filter is one field of :class:`CallFilters`, written with :func:`declare`: the field
gives its name and type, a :class:`Value` says how its value is read and checked, and a
:class:`Clause` says, in plain terms (a kind and the columns of ``calls`` it applies to),
which condition it puts on a call; ``store/queries.py`` turns each kind into SQL. The
validation (:func:`parse_request`), the SQL and the README's filter table (checked by a
test) all come from these declarations, so a new filter, or a token's scope, is one more
field here and nothing else.

Parameters arrive as PHP would see them: form requests give strings and PHP arrays
(dicts with int or str keys), JSON requests give any JSON value. Either way a PHP array
is read as the list of its values. Every problem in a request becomes one message; all of
them are reported together in one :class:`InvalidRequest`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal, TypeVar, cast, get_args

from cdrapi.protocol.errors import InvalidRequest
from cdrapi.protocol.values import (
    CALL_STATUS,
    DATES,
    DIRECTION,
    FLAG,
    FROM_ID,
    HOURS,
    IDS,
    TEXT,
    TEXTS,
    InvalidValue,
    Value,
    is_empty,
    read_page,
    show,
)

__all__ = [
    "CLAUSE_KINDS",
    "FILTER_NAMES",
    "CallFilters",
    "CdrRequest",
    "Clause",
    "ClauseKind",
    "Filter",
    "ScopedCallFilters",
    "declare",
    "filters_of",
    "narrow",
    "parse_filters",
    "parse_request",
]

T = TypeVar("T")
Q = TypeVar("Q", bound="CallFilters")

#: The conditions a filter can put on a call. ``between``: the column within ``(from, to)``,
#: inclusive, a ``None`` end open. ``time_of_day``: the ``HH:MM:SS`` of a
#: ``YYYY-MM-DD HH:MM:SS`` column within ``(from, to)``; ``from > to`` wraps past midnight.
#: ``any_of``: the column equals one of the values. ``equals``: one of the columns equals
#: the value. ``like``: one of the columns matches the search (the wildcard rule of
#: ``store/queries.py``). ``at_least``: the column >= the value. ``present``: the column
#: holds a non-empty value (``True``) or does not (``False``). ``extension``: one of the
#: columns holds one of the values, a ``user_id`` column standing for the extension of
#: the directory's user it names (``users.extension``).
ClauseKind = Literal[
    "between", "time_of_day", "any_of", "equals", "like", "at_least", "present", "extension"
]
CLAUSE_KINDS: tuple[ClauseKind, ...] = get_args(ClauseKind)
_MANY_COLUMNS = frozenset({"equals", "like", "extension"})
_DECLARED = "cdrapi.filter"


@dataclass(frozen=True, slots=True)
class Clause:
    """The condition a filter puts on a call: a :data:`ClauseKind` on columns of ``calls``."""

    kind: ClauseKind
    columns: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.kind not in CLAUSE_KINDS:
            raise ValueError(f"no such kind of clause: {self.kind!r}")
        if not self.columns or (len(self.columns) > 1 and self.kind not in _MANY_COLUMNS):
            raise ValueError(f"a {self.kind} clause takes one column, not {self.columns!r}")


@dataclass(frozen=True, slots=True)
class Filter:
    """One declared filter, as :func:`filters_of` reads it back from its field."""

    name: str
    value: Value[Any]
    clause: Clause
    requested: bool  # a request may name it; False: only the server sets it (a scope)


def declare(value: Value[T], kind: ClauseKind, *columns: str, requested: bool = True) -> T:
    """A filter, as the default of a :class:`CallFilters` field (whose name and type it takes).

    ``requested=False`` declares a filter that a request may not name (it stays
    ``Invalid filter: <name>``) and that only the server sets, with :func:`narrow`.
    """
    spec = (value, Clause(kind, columns), requested)
    return cast(T, dataclasses.field(default=value.empty, metadata={_DECLARED: spec}))


@dataclass(frozen=True, slots=True)
class CallFilters:
    """A validated set of filters; hashable, so it can key caches. Each field is one filter.

    Times are normalised to ``YYYY-MM-DD HH:MM:SS`` / ``HH:MM:SS`` with ``to`` ends
    widened to cover everything they name; empty tuples and ``None`` mean "not applied".
    Fields are in the README table's order; the SQL writes them by kind (see queries.py).
    """

    date_between: tuple[str | None, str | None] | None = declare(DATES, "between", "time")
    hour_between: tuple[str | None, str | None] | None = declare(HOURS, "time_of_day", "time")
    project_id: tuple[int, ...] = declare(IDS, "any_of", "project_id")
    user_id: tuple[int, ...] = declare(IDS, "any_of", "user_id")
    inbound_route_id: tuple[int, ...] = declare(IDS, "any_of", "inbound_route_id")
    direction: tuple[str, ...] = declare(DIRECTION, "any_of", "direction")
    call_status: tuple[str, ...] = declare(CALL_STATUS, "any_of", "call_status")
    telephone_like: str | None = declare(TEXT, "like", "source", "destination")
    telephone: str | None = declare(TEXT, "equals", "source", "destination")
    source: str | None = declare(TEXT, "like", "source")
    destination: str | None = declare(TEXT, "like", "destination")
    from_id: int | None = declare(FROM_ID, "at_least", "id")
    uniqueid: tuple[str, ...] = declare(TEXTS, "any_of", "uniqueid")
    linkedid: tuple[str, ...] = declare(TEXTS, "any_of", "linkedid")
    external_id: tuple[str, ...] = declare(TEXTS, "any_of", "external_id")
    has_transcription: bool | None = declare(FLAG, "present", "transcription_id")
    has_monitor_file: bool | None = declare(FLAG, "present", "monitor_files")
    has_recording_file: bool | None = declare(FLAG, "present", "recording_file")


@dataclass(frozen=True, slots=True)
class ScopedCallFilters(CallFilters):
    """:class:`CallFilters` plus the scopes only the server sets (:func:`narrow`): what a
    web account or a scoped API token may see. A request can neither name nor lift them.

    ``project_scope``: the call's project is one of these. ``extension_scope``: the call
    involves one of these extensions: its ``source`` or ``destination`` is one, or its
    user (``user_id``) has one as extension in the directory. Both set: both must hold.
    Subclass this, not :class:`CallFilters`, for filters of your own that can be scoped.
    """

    project_scope: tuple[int, ...] = declare(IDS, "any_of", "project_id", requested=False)
    extension_scope: tuple[str, ...] = declare(
        TEXTS, "extension", "user_id", "source", "destination", requested=False
    )

    @classmethod
    def of(cls, filters: CallFilters) -> ScopedCallFilters:
        """``filters`` (a plain :class:`CallFilters`) as scopable filters, no scope set yet."""
        if type(filters) is not CallFilters:
            raise TypeError(f"{type(filters).__name__} is not CallFilters: subclass {cls.__name__}")
        return cls(
            **{field.name: getattr(filters, field.name) for field in dataclasses.fields(filters)}
        )


def filters_of(query: type[CallFilters]) -> Mapping[str, Filter]:
    """The filters declared by ``query`` (:class:`CallFilters` or a subclass), by name, in
    the order of its fields."""
    known = _DECLARATIONS.get(query)
    if known is None:
        declared = {}
        for field in dataclasses.fields(query):
            if _DECLARED not in field.metadata:
                raise TypeError(f"{query.__name__}.{field.name} is not declared with declare()")
            value, clause, requested = field.metadata[_DECLARED]
            declared[field.name] = Filter(field.name, value, clause, requested)
        known = _DECLARATIONS[query] = MappingProxyType(declared)
        _REQUESTED[query] = MappingProxyType({n: f for n, f in declared.items() if f.requested})
    return known


def _requested(query: type[CallFilters]) -> Mapping[str, Filter]:
    """The filters of ``query`` that a request may name."""
    known = _REQUESTED.get(query)
    if known is None:
        filters_of(query)
        known = _REQUESTED[query]
    return known


_DECLARATIONS: dict[type[CallFilters], Mapping[str, Filter]] = {}
_REQUESTED: dict[type[CallFilters], Mapping[str, Filter]] = {}
FILTER_NAMES = tuple(_requested(CallFilters))


@dataclass(frozen=True, slots=True)
class CdrRequest:
    page: int
    filters: CallFilters


def _invalid(name: str, value: Any, exc: InvalidValue) -> str:
    reason = f" ({exc})" if str(exc) else ""
    return f"Invalid {name}: {show(value)}{reason}"


def _filters(raw: Any, query: type[Q], messages: list[str]) -> Q:
    """``raw`` (a request's ``filters``) read into ``query``; each problem added to ``messages``."""
    declared = _requested(query)
    values: dict[str, Any] = {}
    if isinstance(raw, list) and not raw:
        raw = None
    if raw is not None and raw != "" and not isinstance(raw, dict):
        messages.append(f"Invalid filters: {show(raw)} (expected a map of filter names to values)")
    elif isinstance(raw, dict):
        for key, value in raw.items():
            spec = declared.get(key) if isinstance(key, str) else None
            if spec is None:
                messages.append(f"Invalid filter: {key}")
                continue
            if is_empty(value):
                continue
            try:
                values[key] = spec.value.parse(value)
            except InvalidValue as exc:
                messages.append(_invalid(key, value, exc))
    return query(**values)


def parse_filters(raw: Any, query: type[Q]) -> Q:
    """A map of filter names to values (a request's ``filters``, a web form's) read into
    ``query``; raise :class:`InvalidRequest` listing every problem."""
    messages: list[str] = []
    filters = _filters(raw, query, messages)
    if messages:
        raise InvalidRequest(messages)
    return filters


def parse_request(params: Mapping[Any, Any]) -> CdrRequest:
    """Validate ``page`` and ``filters``; raise :class:`InvalidRequest` listing every problem."""
    messages: list[str] = []
    page = 1
    try:
        page = read_page(params.get("page"))
    except InvalidValue:
        messages.append(f"Invalid page: {show(params.get('page'))}")
    filters = _filters(params.get("filters"), CallFilters, messages)
    if messages:
        raise InvalidRequest(messages)
    return CdrRequest(page=page, filters=filters)


def narrow(filters: Q, **values: Any) -> Q:
    """``filters`` with the server's own filters set (a token's scope), each value checked
    by its declaration as a request's would be.

    Only filters declared ``requested=False`` and not yet set can be given, and an empty
    value is refused: a narrowing that silently narrows nothing would show every call.
    Raises :class:`ValueError` naming each problem (a server's configuration, not a request).
    """
    declared = filters_of(type(filters))
    messages, parsed = [], {}
    for name, value in values.items():
        spec = declared.get(name)
        if spec is None or spec.requested:
            messages.append(f"Not a filter the server sets: {name}")
        elif getattr(filters, name) != spec.value.empty:
            messages.append(f"Already set: {name}")
        else:
            try:
                parsed[name] = spec.value.empty if is_empty(value) else spec.value.parse(value)
                if parsed[name] == spec.value.empty:
                    raise InvalidValue("empty: it would narrow nothing")
            except InvalidValue as exc:
                messages.append(_invalid(name, value, exc))
    if messages:
        raise ValueError("; ".join(messages))
    return dataclasses.replace(filters, **parsed)
