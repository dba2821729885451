"""How each filter's value is read (SPEC §4): checked, normalised, and named for the README.

A :class:`Value` pairs a parser with how the README's filter table names its values and
with the value meaning "not applied"; ``protocol/filters.py`` declares each filter with
one. A parser raises :class:`InvalidValue` saying why a value is wrong; the message that
names the filter and the value is written by the caller.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import orjson

__all__ = [
    "CALL_STATUS",
    "CALL_STATUSES",
    "DATES",
    "DIRECTION",
    "DIRECTIONS",
    "FLAG",
    "FROM_ID",
    "HOURS",
    "IDS",
    "MAX_ID",
    "MAX_LIST",
    "TEXT",
    "TEXTS",
    "InvalidValue",
    "Value",
    "is_empty",
    "read_page",
    "show",
]

MAX_LIST = 1000
MAX_ID = 2**63 - 1
DIRECTIONS = ("IN", "OUT", "INTERNAL")
CALL_STATUSES = ("ANSWERED", "NO ANSWER", "BUSY", "FAILED", "CONGESTION")

_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?: (\d{2}):(\d{2})(?::(\d{2}))?)?")
_HOUR = re.compile(r"(\d{2})(?::(\d{2})(?::(\d{2}))?)?")
_DIGITS = re.compile(r"[0-9]+")
_TRUE = ("1", "true", "yes")
_FALSE = ("0", "false", "no")
T = TypeVar("T")


class InvalidValue(ValueError):
    """One filter value is wrong; the text says why (may be empty)."""


@dataclass(frozen=True, slots=True)
class Value(Generic[T]):
    """How a filter's value is read: ``parse`` checks and normalises it (raising
    :class:`InvalidValue` with the reason), ``shown`` is how the README's filter table
    names it, ``empty`` means "not applied" (the filter's default)."""

    parse: Callable[[Any], T]
    shown: str
    empty: T | None = None


def show(value: Any, limit: int = 200) -> str:
    """A value as the message shows it: text as is, anything else as JSON, cut at ``limit``."""
    if isinstance(value, str):
        shown = value
    else:
        try:
            shown = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
        except TypeError:
            shown = repr(value)
    return shown if len(shown) <= limit else shown[:limit] + "..."


def is_empty(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, list | dict) and not value)


def _items(value: Any) -> list[Any]:
    """A PHP array (dict or list) as the list of its non-empty values; a scalar as one."""
    if isinstance(value, dict):
        value = list(value.values())
    elif not isinstance(value, list):
        return [value]
    if len(value) > MAX_LIST:
        raise InvalidValue(f"more than {MAX_LIST} values")
    return [item for item in value if not is_empty(item)]


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise InvalidValue("expected text")


def _ids(value: Any) -> tuple[int, ...]:
    ids = []
    for item in _items(value):
        if isinstance(item, bool):
            raise InvalidValue("expected an id or a list of ids")
        if isinstance(item, str) and _DIGITS.fullmatch(item):
            item = int(item)
        if not isinstance(item, int) or not 0 <= item <= MAX_ID:
            raise InvalidValue("expected an id or a list of ids")
        ids.append(item)
    return tuple(dict.fromkeys(ids))


def _choices(allowed: tuple[str, ...], aliases: Mapping[str, str]) -> Value[tuple[str, ...]]:
    def parse(value: Any) -> tuple[str, ...]:
        chosen = []
        for item in _items(value):
            word = _text(item).strip().upper()
            word = aliases.get(word, word)
            if word not in allowed:
                raise InvalidValue("expected one of " + ", ".join(allowed))
            chosen.append(word)
        return tuple(dict.fromkeys(chosen))

    return Value(parse, ", ".join(f"`{word}`" for word in allowed) + " or list", ())


def _texts(value: Any) -> tuple[str, ...]:
    return tuple(dict.fromkeys(_text(item) for item in _items(value)))


def _pair(value: Any, parse_end: Callable[[str, bool], str]) -> tuple[str | None, str | None]:
    # A PHP client's null end is dropped from a form body: [from] or {1: to} remain.
    if isinstance(value, list) and 1 <= len(value) <= 2:
        ends = [*value, None][:2]
    elif isinstance(value, dict) and value and set(value) <= {0, 1}:
        ends = [value.get(0), value.get(1)]
    else:
        raise InvalidValue("expected [from, to]")
    start, end = (None if is_empty(v) else parse_end(_text(v), i == 1) for i, v in enumerate(ends))
    return start, end


def _date_end(text: str, is_to: bool) -> str:
    match = _DATE.fullmatch(text.strip())
    if match is None:
        raise InvalidValue("expected YYYY-MM-DD, YYYY-MM-DD HH:MM or YYYY-MM-DD HH:MM:SS")
    year, month, day, hour, minute, second = match.groups()
    if not (
        1 <= int(month) <= 12 and 1 <= int(day) <= calendar.monthrange(int(year), int(month))[1]
    ):
        raise InvalidValue("no such date")
    fill = "59" if is_to else "00"
    hour = hour if hour is not None else ("23" if is_to else "00")
    minute = minute if minute is not None else fill
    second = second if second is not None else fill
    if int(hour) > 23 or int(minute) > 59 or int(second) > 59:
        raise InvalidValue("no such time")
    return f"{year}-{month}-{day} {hour}:{minute}:{second}"


def _hour_end(text: str, is_to: bool) -> str:
    match = _HOUR.fullmatch(text.strip())
    if match is None:
        raise InvalidValue("expected HH, HH:MM or HH:MM:SS")
    hour, minute, second = match.groups()
    fill = "59" if is_to else "00"
    minute = minute if minute is not None else fill
    second = second if second is not None else fill
    if int(hour) > 23 or int(minute) > 59 or int(second) > 59:
        raise InvalidValue("no such time")
    return f"{hour}:{minute}:{second}"


def _date_between(value: Any) -> tuple[str | None, str | None] | None:
    start, end = _pair(value, _date_end)
    if start is not None and end is not None and start > end:
        raise InvalidValue("from is after to")
    return None if start is None and end is None else (start, end)


def _hour_between(value: Any) -> tuple[str | None, str | None] | None:
    start, end = _pair(value, _hour_end)
    return None if start is None and end is None else (start, end)


def _from_id(value: Any) -> int:
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_ID:
        raise InvalidValue("expected an integer >= 0")
    return value


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    word = _text(value).strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise InvalidValue("expected 1/true/yes or 0/false/no")


DATES = Value(_date_between, "`[from, to]`")
HOURS = Value(_hour_between, "`[from, to]`")
IDS: Value[tuple[int, ...]] = Value(_ids, "id or list", ())
TEXT = Value(_text, "text")
TEXTS: Value[tuple[str, ...]] = Value(_texts, "text or list", ())
FROM_ID = Value(_from_id, "integer ≥ 0")
FLAG = Value(_flag, "/".join(f"`{w}`" for w in _TRUE) + ", " + "/".join(f"`{w}`" for w in _FALSE))
DIRECTION = _choices(DIRECTIONS, {})
CALL_STATUS = _choices(CALL_STATUSES, {"NO_ANSWER": "NO ANSWER", "NOANSWER": "NO ANSWER"})


def read_page(value: Any) -> int:
    """The request's ``page``: 1 when absent or empty."""
    if value is None or value == "":
        return 1
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ID:
        raise InvalidValue
    return value
