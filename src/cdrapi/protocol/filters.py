"""The request's ``page`` and its 18 ``filters`` (SPEC §4), validated into one typed query.

Parameters arrive as PHP would see them: form requests give strings and PHP arrays
(dicts with int or str keys), JSON requests give any JSON value. Either way a PHP array
is read as the list of its values. Every problem in a request becomes one message; all of
them are reported together in one :class:`InvalidRequest`.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from cdrapi.protocol.errors import InvalidRequest

__all__ = [
    "CALL_STATUSES",
    "DIRECTIONS",
    "FILTER_NAMES",
    "MAX_LIST",
    "CallFilters",
    "CdrRequest",
    "parse_request",
]

MAX_LIST = 1000
MAX_ID = 2**63 - 1
DIRECTIONS = ("IN", "OUT", "INTERNAL")
CALL_STATUSES = ("ANSWERED", "NO ANSWER", "BUSY", "FAILED", "CONGESTION")

_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?: (\d{2}):(\d{2})(?::(\d{2}))?)?")
_HOUR = re.compile(r"(\d{2})(?::(\d{2})(?::(\d{2}))?)?")
_DIGITS = re.compile(r"[0-9]+")
_TRUE = frozenset({"1", "true", "yes"})
_FALSE = frozenset({"0", "false", "no"})


@dataclass(frozen=True, slots=True)
class CallFilters:
    """A validated set of filters; hashable, so it can key caches.

    Times are normalised to ``YYYY-MM-DD HH:MM:SS`` / ``HH:MM:SS`` with ``to`` ends
    widened to cover everything they name; empty tuples and ``None`` mean "not applied".
    """

    date_between: tuple[str | None, str | None] | None = None
    hour_between: tuple[str | None, str | None] | None = None
    project_id: tuple[int, ...] = ()
    user_id: tuple[int, ...] = ()
    inbound_route_id: tuple[int, ...] = ()
    direction: tuple[str, ...] = ()
    call_status: tuple[str, ...] = ()
    telephone_like: str | None = None
    telephone: str | None = None
    source: str | None = None
    destination: str | None = None
    from_id: int | None = None
    uniqueid: tuple[str, ...] = ()
    linkedid: tuple[str, ...] = ()
    external_id: tuple[str, ...] = ()
    has_transcription: bool | None = None
    has_monitor_file: bool | None = None
    has_recording_file: bool | None = None


@dataclass(frozen=True, slots=True)
class CdrRequest:
    page: int
    filters: CallFilters


class _Invalid(ValueError):
    """One filter value is wrong; the text says why (may be empty)."""


def _show(value: Any, limit: int = 200) -> str:
    """A value as the message shows it: text as is, anything else as JSON, cut at ``limit``."""
    if isinstance(value, str):
        shown = value
    else:
        try:
            shown = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
        except TypeError:
            shown = repr(value)
    return shown if len(shown) <= limit else shown[:limit] + "..."


def _is_empty(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, list | dict) and not value)


def _items(value: Any) -> list[Any]:
    """A PHP array (dict or list) as the list of its non-empty values; a scalar as one."""
    if isinstance(value, dict):
        value = list(value.values())
    elif not isinstance(value, list):
        return [value]
    if len(value) > MAX_LIST:
        raise _Invalid(f"more than {MAX_LIST} values")
    return [item for item in value if not _is_empty(item)]


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise _Invalid("expected text")


def _ids(value: Any) -> tuple[int, ...]:
    ids = []
    for item in _items(value):
        if isinstance(item, bool):
            raise _Invalid("expected an id or a list of ids")
        if isinstance(item, str) and _DIGITS.fullmatch(item):
            item = int(item)
        if not isinstance(item, int) or not 0 <= item <= MAX_ID:
            raise _Invalid("expected an id or a list of ids")
        ids.append(item)
    return tuple(dict.fromkeys(ids))


def _choices(
    allowed: tuple[str, ...], aliases: Mapping[str, str]
) -> Callable[[Any], tuple[str, ...]]:
    def parse(value: Any) -> tuple[str, ...]:
        chosen = []
        for item in _items(value):
            word = _text(item).strip().upper()
            word = aliases.get(word, word)
            if word not in allowed:
                raise _Invalid("expected one of " + ", ".join(allowed))
            chosen.append(word)
        return tuple(dict.fromkeys(chosen))

    return parse


def _texts(value: Any) -> tuple[str, ...]:
    return tuple(dict.fromkeys(_text(item) for item in _items(value)))


def _pair(value: Any, parse_end: Callable[[str, bool], str]) -> tuple[str | None, str | None]:
    # A PHP client's null end is dropped from a form body: [from] or {1: to} remain.
    if isinstance(value, list) and 1 <= len(value) <= 2:
        ends = [*value, None][:2]
    elif isinstance(value, dict) and value and set(value) <= {0, 1}:
        ends = [value.get(0), value.get(1)]
    else:
        raise _Invalid("expected [from, to]")
    start, end = (None if _is_empty(v) else parse_end(_text(v), i == 1) for i, v in enumerate(ends))
    return start, end


def _date_end(text: str, is_to: bool) -> str:
    match = _DATE.fullmatch(text.strip())
    if match is None:
        raise _Invalid("expected YYYY-MM-DD, YYYY-MM-DD HH:MM or YYYY-MM-DD HH:MM:SS")
    year, month, day, hour, minute, second = match.groups()
    if not (
        1 <= int(month) <= 12 and 1 <= int(day) <= calendar.monthrange(int(year), int(month))[1]
    ):
        raise _Invalid("no such date")
    fill = "59" if is_to else "00"
    hour = hour if hour is not None else ("23" if is_to else "00")
    minute = minute if minute is not None else fill
    second = second if second is not None else fill
    if int(hour) > 23 or int(minute) > 59 or int(second) > 59:
        raise _Invalid("no such time")
    return f"{year}-{month}-{day} {hour}:{minute}:{second}"


def _hour_end(text: str, is_to: bool) -> str:
    match = _HOUR.fullmatch(text.strip())
    if match is None:
        raise _Invalid("expected HH, HH:MM or HH:MM:SS")
    hour, minute, second = match.groups()
    fill = "59" if is_to else "00"
    minute = minute if minute is not None else fill
    second = second if second is not None else fill
    if int(hour) > 23 or int(minute) > 59 or int(second) > 59:
        raise _Invalid("no such time")
    return f"{hour}:{minute}:{second}"


def _date_between(value: Any) -> tuple[str | None, str | None] | None:
    start, end = _pair(value, _date_end)
    if start is not None and end is not None and start > end:
        raise _Invalid("from is after to")
    return None if start is None and end is None else (start, end)


def _hour_between(value: Any) -> tuple[str | None, str | None] | None:
    start, end = _pair(value, _hour_end)
    return None if start is None and end is None else (start, end)


def _search(value: Any) -> str:
    return _text(value)


def _from_id(value: Any) -> int:
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_ID:
        raise _Invalid("expected an integer >= 0")
    return value


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    word = _text(value).strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise _Invalid("expected 1/true/yes or 0/false/no")


_PARSERS: dict[str, Callable[[Any], Any]] = {
    "date_between": _date_between,
    "project_id": _ids,
    "user_id": _ids,
    "inbound_route_id": _ids,
    "direction": _choices(DIRECTIONS, {}),
    "call_status": _choices(CALL_STATUSES, {"NO_ANSWER": "NO ANSWER", "NOANSWER": "NO ANSWER"}),
    "telephone_like": _search,
    "telephone": _search,
    "source": _search,
    "destination": _search,
    "hour_between": _hour_between,
    "from_id": _from_id,
    "uniqueid": _texts,
    "linkedid": _texts,
    "external_id": _texts,
    "has_transcription": _flag,
    "has_monitor_file": _flag,
    "has_recording_file": _flag,
}

FILTER_NAMES = tuple(_PARSERS)


def _page(value: Any) -> int:
    if value is None or value == "":
        return 1
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ID:
        raise _Invalid
    return value


def parse_request(params: Mapping[Any, Any]) -> CdrRequest:
    """Validate ``page`` and ``filters``; raise :class:`InvalidRequest` listing every problem."""
    messages: list[str] = []
    page = 1
    try:
        page = _page(params.get("page"))
    except _Invalid:
        messages.append(f"Invalid page: {_show(params.get('page'))}")

    raw = params.get("filters")
    values: dict[str, Any] = {}
    if isinstance(raw, list) and not raw:
        raw = None
    if raw is not None and raw != "" and not isinstance(raw, dict):
        messages.append(f"Invalid filters: {_show(raw)} (expected a map of filter names to values)")
    elif isinstance(raw, dict):
        for key, value in raw.items():
            parser = _PARSERS.get(key) if isinstance(key, str) else None
            if parser is None:
                messages.append(f"Invalid filter: {key}")
                continue
            if _is_empty(value):
                continue
            try:
                values[key] = parser(value)
            except _Invalid as exc:
                reason = f" ({exc})" if str(exc) else ""
                messages.append(f"Invalid {key}: {_show(value)}{reason}")
    if messages:
        raise InvalidRequest(messages)
    return CdrRequest(page=page, filters=CallFilters(**values))
