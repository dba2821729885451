"""The record's 43 fields (SPEC §6) with types, for the typed outputs (Parquet, databases).

On the wire every field is text except ``bill_minutes``; typed outputs store:

=====================  ==========================  ===============================
fields                 Parquet                     database
=====================  ==========================  ===============================
id, inbound_route_id,  int64                       BIGINT
bill_minutes
time, time_end         timestamp[ms] (PBX local)   TIMESTAMP (PBX local, naive)
bill_duration,         duration[s]                 INTEGER, seconds
duration,
ivr_duration,
hold_time, ring_time
is_recovered           bool                        BOOLEAN
everything else        string                      TEXT
=====================  ==========================  ===============================

``null`` stays null; so do an empty string in a typed field and MySQL's
``0000-00-00 00:00:00``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from cdrapi.client.errors import ResponseError
from cdrapi.protocol.records import RECORD_KEYS

__all__ = [
    "BOOLEAN",
    "DURATION",
    "INTEGER",
    "KINDS",
    "TIMESTAMP",
    "ZERO_TIME",
    "seconds",
    "sql_row",
]

INTEGER = ("id", "inbound_route_id", "bill_minutes")
TIMESTAMP = ("time", "time_end")
DURATION = ("bill_duration", "duration", "ivr_duration", "hold_time", "ring_time")
BOOLEAN = ("is_recovered",)

KINDS: dict[str, str] = {
    key: "int"
    if key in INTEGER
    else "timestamp"
    if key in TIMESTAMP
    else "duration"
    if key in DURATION
    else "bool"
    if key in BOOLEAN
    else "text"
    for key in RECORD_KEYS
}
"""Each record key's kind: ``int``, ``timestamp``, ``duration``, ``bool`` or ``text``."""

ZERO_TIME = "0000-00-00"


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        raise ValueError("a boolean")
    return int(value)


def _timestamp(value: Any) -> dt.datetime | None:
    if isinstance(value, str) and value.startswith(ZERO_TIME):
        return None
    return dt.datetime.fromisoformat(value)


_SECONDS: dict[str, int] = {}


def seconds(value: Any) -> int | None:
    """``HH:MM:SS`` (hours may pass 24) as seconds; ``None`` and ``""`` are ``None``."""
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    seconds = _SECONDS.get(value)
    if seconds is None:
        hours, minutes, secs = value.split(":")
        seconds = int(hours) * 3600 + int(minutes) * 60 + int(secs)
        if len(_SECONDS) < 100_000:
            _SECONDS[value] = seconds
    return seconds


_TRUE = frozenset({"1", "true", 1})  # 1 == True
_FALSE = frozenset({"0", "false", 0})  # 0 == False


def _bool(value: Any) -> bool | None:
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError("not a boolean")


_TO_PYTHON: dict[str, Callable[[Any], Any]] = {
    "int": _int,
    "timestamp": _timestamp,
    "duration": seconds,
    "bool": _bool,
}
_CONVERT = tuple((key, _TO_PYTHON.get(KINDS[key])) for key in RECORD_KEYS)


def sql_row(record: Mapping[str, Any]) -> dict[str, Any]:
    """The record with typed values, for a database row."""
    row: dict[str, Any] = {}
    for key, convert in _CONVERT:
        value = record.get(key)
        if value is None:
            row[key] = None
            continue
        if convert is None:
            row[key] = value if isinstance(value, str) else str(value)
            continue
        if value == "":
            row[key] = None
            continue
        try:
            row[key] = convert(value)
        except (TypeError, ValueError, AttributeError) as exc:
            raise ResponseError(
                f"record {record.get('id')!r}: {key} = {value!r} is not a valid {KINDS[key]}"
            ) from exc
    return row
