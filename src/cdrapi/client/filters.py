"""Filters as Python values, turned into the protocol's (SPEC §4).

``client.page(direction=["IN", "OUT"], date_between=(date(2024, 1, 1), None))``:

- ``datetime`` → ``YYYY-MM-DD HH:MM:SS`` (the PBX's local time; an aware datetime is
  written as its own wall-clock time). A ``date`` at the *from* end of ``date_between`` is
  the start of that day, at the *to* end the whole day (``23:59:59``).
- ``time`` → ``HH:MM:SS`` (``hour_between``).
- ``bool`` → ``1``/``0``; ``int`` and ``str`` as they are.
- list, tuple, set or frozenset → a list (sets sorted).
- ``None`` or an empty list: the filter is not sent (the server would ignore it anyway).

Names are not checked here: the server answers an unknown one with HTTP 400
``Invalid filter: <name>`` (an :class:`~cdrapi.client.errors.InvalidRequestError`), so a
server that knows more filters than this client can be used with them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

__all__ = ["PAIR_FILTERS", "encode_filters", "encode_value"]

PAIR_FILTERS = ("date_between", "hour_between")
_DATE_TIME = "%Y-%m-%d %H:%M:%S"


def _scalar(value: Any, *, is_to: bool = False) -> str | int | float:
    if isinstance(value, bool):
        return 1 if value else 0
    if isinstance(value, str | int | float):
        return value
    if isinstance(value, dt.datetime):
        return value.strftime(_DATE_TIME)
    if isinstance(value, dt.date):
        return f"{value.isoformat()} {'23:59:59' if is_to else '00:00:00'}"
    if isinstance(value, dt.time):
        return value.strftime("%H:%M:%S")
    raise TypeError(f"unsupported filter value {value!r} ({type(value).__name__})")


def encode_value(name: str, value: Any) -> Any:
    """One filter's value as sent; ``None`` when the filter is not to be sent."""
    if value is None:
        return None
    if name in PAIR_FILTERS:
        if isinstance(value, str | bytes) or not isinstance(value, list | tuple):
            raise TypeError(f"{name} takes a (from, to) pair, not {value!r}")
        if len(value) != 2:
            raise ValueError(f"{name} takes a (from, to) pair, not {len(value)} values")
        ends = [None if end is None else _scalar(end, is_to=i == 1) for i, end in enumerate(value)]
        return None if ends == [None, None] else ends
    if isinstance(value, set | frozenset):
        value = sorted(value)
    if isinstance(value, list | tuple):
        items = [_scalar(item) for item in value if item is not None]
        return items or None
    return _scalar(value)


def encode_filters(filters: Mapping[str, Any]) -> dict[str, Any]:
    """The ``filters`` map of a request, in the order given, without unset filters."""
    encoded = {}
    for name, value in filters.items():
        wire = encode_value(name, value)
        if wire is not None:
            encoded[name] = wire
    return encoded
