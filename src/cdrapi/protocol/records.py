"""The 43-field call record of SPEC §6, in the vendor's order and with its types.

The store selects :data:`RECORD_COLUMNS` (one per record key, in key order); :func:`record`
turns such a row into the JSON object: ids as strings, durations as ``HH:MM:SS``,
``bill_minutes`` as a number, unknowns as ``null``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["RECORD_COLUMNS", "RECORD_KEYS", "duration_text", "record"]

# (record key, store column). Durations are stored in seconds.
_FIELDS = (
    ("id", "id"),
    ("uniqueid", "uniqueid"),
    ("linkedid", "linkedid"),
    ("time", "time"),
    ("time_end", "time_end"),
    ("caller_id", "caller_id"),
    ("source", "source"),
    ("destination", "destination"),
    ("direction", "direction"),
    ("channel_formatted", "channel_formatted"),
    ("dstchannel_formatted", "dstchannel_formatted"),
    ("customer_id", "customer_id"),
    ("user_fullname", "user_fullname"),
    ("qname", "qname"),
    ("code", "code"),
    ("call_status", "call_status"),
    ("call_status_info", "call_status_info"),
    ("call_codes", "call_codes"),
    ("accounting_code", "accounting_code"),
    ("accounting_value", "accounting_value"),
    ("comments", "comments"),
    ("monitor_files", "monitor_files"),
    ("monitor_urls", "monitor_urls"),
    ("recording_file", "recording_file"),
    ("recording_url", "recording_url"),
    ("transfers", "transfers"),
    ("project", "project"),
    ("inbound_route", "inbound_route"),
    ("inbound_route_id", "inbound_route_id"),
    ("queue_log", "queue_log"),
    ("ivr_log", "ivr_log"),
    ("external_id", "external_id"),
    ("external_info", "external_info"),
    ("agent_details", "agent_details"),
    ("is_recovered", "is_recovered"),
    ("transcription_id", "transcription_id"),
    ("transcription_text", "transcription_text"),
    ("bill_duration", "billsec"),
    ("duration", "duration"),
    ("bill_minutes", "billsec"),
    ("ivr_duration", "ivr_duration"),
    ("hold_time", "hold_time"),
    ("ring_time", "ring_time"),
)

RECORD_KEYS = tuple(key for key, _ in _FIELDS)
#: The column of ``calls`` behind each record key, in key order.
RECORD_COLUMNS = tuple(column for _, column in _FIELDS)

_ID = RECORD_KEYS.index("id")
_ROUTE_ID = RECORD_KEYS.index("inbound_route_id")
_RECOVERED = RECORD_KEYS.index("is_recovered")
_MINUTES = RECORD_KEYS.index("bill_minutes")
_DURATIONS = tuple(
    RECORD_KEYS.index(key)
    for key in ("bill_duration", "duration", "ivr_duration", "hold_time", "ring_time")
)


_DURATION_TEXT: dict[int, str] = {}


def duration_text(seconds: int | None) -> str:
    """Seconds as ``HH:MM:SS``; hours may pass 24 (``100:00:00``)."""
    seconds = seconds or 0
    text = _DURATION_TEXT.get(seconds)
    if text is None:
        hours, rest = divmod(seconds, 3600)
        text = f"{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"
        if seconds < 86400:  # remembered: a page formats five durations per record
            _DURATION_TEXT[seconds] = text
    return text


def record(row: Sequence[Any]) -> dict[str, Any]:
    """One record from a row holding :data:`RECORD_COLUMNS` in order."""
    values = list(row)
    values[_ID] = str(values[_ID])
    route = values[_ROUTE_ID]
    values[_ROUTE_ID] = None if route is None else str(route)
    recovered = values[_RECOVERED]
    values[_RECOVERED] = None if recovered is None else str(recovered)
    values[_MINUTES] = -(-(values[_MINUTES] or 0) // 60)
    for index in _DURATIONS:
        values[index] = duration_text(values[index])
    return dict(zip(RECORD_KEYS, values, strict=True))
