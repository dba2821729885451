"""CEL (Channel Event Logging) events as every CEL source reads them.

Asterisk writes one CEL row per event of a channel: its type (``eventtype``), time, the
channel's caller id, dialplan position (``exten``, ``context``), ``channame``, the
application running (``appname``, ``appdata``), ``uniqueid`` and ``linkedid`` (the
call), ``peer`` and, since Asterisk 12, an ``extra`` JSON object (BLINDTRANSFER:
``extension``, ``context``, ``transferee_channel_name``...; ATTENDEDTRANSFER:
``transfer_target_channel_name``...; PICKUP: ``pickup_channel``; FORWARD: ``forward``;
HANGUP: ``hangupcause``, ``dialstatus``).

The SQL backends (cel_odbc, cel_pgsql) may store ``eventtype`` as the number of
``enum ast_cel_event_type`` (include/asterisk/cel.h, Asterisk 12 and later):
:data:`EVENT_NAMES` maps it back. A number it does not know is kept as ``EVENT_<n>``.

An event is kept as a short tuple (:data:`Event`; the indexes ``T``, ``TYPE``...) under
its call's linkedid, and is stored as its fields joined by ``\x1f`` (:func:`event_text`,
:func:`event_of`), a call's events joined by ``\x1e`` (:data:`BETWEEN`); the same event
read twice is the same text, so it is stored once.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "APP",
    "BETWEEN",
    "CEL_FIELDS",
    "CHANNEL",
    "CONTEXT",
    "DATA",
    "DEFAULT_LAYOUT",
    "EVENT_NAMES",
    "EXTEN",
    "EXTRA",
    "FIELD",
    "NUMBER",
    "PEER",
    "REQUIRED",
    "TYPE",
    "UNIQUEID",
    "Event",
    "T",
    "cel_columns",
    "event_and_text",
    "event_name",
    "event_of",
    "event_text",
    "extra_of",
    "make_event",
    "seconds_of",
]

#: ``enum ast_cel_event_type`` of Asterisk 12+ (include/asterisk/cel.h).
EVENT_NAMES: dict[int, str] = {
    1: "CHAN_START", 2: "CHAN_END", 3: "HANGUP", 4: "ANSWER", 5: "APP_START", 6: "APP_END",
    7: "BRIDGE_ENTER", 8: "BRIDGE_EXIT", 9: "PARK_START", 10: "PARK_END",
    11: "BLINDTRANSFER", 12: "ATTENDEDTRANSFER", 13: "USER_DEFINED", 14: "LINKEDID_END",
    15: "PICKUP", 16: "FORWARD", 17: "LOCAL_OPTIMIZE", 18: "LOCAL_OPTIMIZE_BEGIN",
}  # fmt: skip

#: The columns of the ``cel`` table of cel_odbc / cel_pgsql / cel_sqlite3 (and of a
#: cel_custom layout given by name). ``eventextra`` is cel_custom's name for ``extra``.
CEL_FIELDS = (
    "id", "eventtype", "eventtime", "userdeftype", "cid_name", "cid_num", "cid_ani",
    "cid_rdnis", "cid_dnid", "exten", "context", "channame", "appname", "appdata",
    "amaflags", "accountcode", "peeraccount", "uniqueid", "linkedid", "userfield", "peer",
    "extra",
)  # fmt: skip
_ALIASES = {"eventextra": "extra", "amaflag": "amaflags", "channel": "channame",
            "eventenum": "eventtype", "time": "eventtime"}  # fmt: skip

#: The columns an event needs.
REQUIRED = ("eventtype", "eventtime", "channame", "uniqueid", "linkedid")

#: cel_custom.conf's sample template (Master.csv), column by column: no ``extra``.
DEFAULT_LAYOUT = (
    "eventtype", "eventtime", "cid_name", "cid_num", "cid_ani", "cid_rdnis", "cid_dnid",
    "exten", "context", "channame", "appname", "appdata", "amaflags", "accountcode",
    "uniqueid", "linkedid", "peer", "userfield",
)  # fmt: skip

#: An event: (time in epoch seconds as ``%.6f`` text, type, channame, uniqueid, appname,
#: appdata, exten, context, cid_num, peer, extra JSON text): all text, so the same event
#: read twice is the same tuple, and a call's events are stored as joined text.
Event = tuple[str, str, str, str, str, str, str, str, str, str, str]
T, TYPE, CHANNEL, UNIQUEID, APP, DATA, EXTEN, CONTEXT, NUMBER, PEER, EXTRA = range(11)


def cel_columns(names: Sequence[str]) -> dict[str, int] | None:
    """Field -> index of the CEL columns among ``names`` (a table's, a header row's, a
    ``--columns`` layout), or ``None`` if a required one is missing."""
    found: dict[str, int] = {}
    for index, name in enumerate(names):
        key = name.strip().strip('"').lower()
        key = _ALIASES.get(key, key)
        if key in CEL_FIELDS and key not in found:
            found[key] = index
    return found if all(name in found for name in REQUIRED) else None


def event_name(value: str, userdeftype: str = "") -> str:
    """The event type's name: a number of the enum mapped (:data:`EVENT_NAMES`), a
    user-defined event by its own name."""
    text = value.strip()
    number = text.isascii() and text.isdigit()
    name = EVENT_NAMES.get(int(text), f"EVENT_{text}") if number else text.upper()
    if name == "USER_DEFINED" and userdeftype.strip():
        return userdeftype.strip()
    return name


def seconds_of(value: str, zone: dt.tzinfo) -> float:
    """Epoch seconds of a CEL time: ``<seconds>.<microseconds>`` (the default), or a date
    and time (cel.conf ``dateformat = %F %T``, a table's text) local in ``zone`` unless
    it has an offset; raises ValueError."""
    text = value.strip()
    if text.replace(".", "", 1).isdigit():
        return float(text)
    when = dt.datetime.fromisoformat(text)
    if when.tzinfo is None:
        when = when.replace(tzinfo=zone)
    return when.timestamp()


#: Between an event's fields in its text.
FIELD = "\x1f"
_SEPARATORS = str.maketrans({"\x1e": " ", "\x1f": " "})
#: Between a call's events in ``cel_calls.events`` (as :mod:`cdrapi.store.cel` splits them).
BETWEEN = "\x1e"


def event_text(event: Sequence[str]) -> str:
    """An event as it travels and is stored: its fields joined by ``\x1f`` (the
    separators replaced by spaces in the rare field that has one)."""
    text = FIELD.join(event)
    if text.count(FIELD) != len(event) - 1 or "\x1e" in text:
        text = FIELD.join(field.translate(_SEPARATORS) for field in event)
    return text


def event_and_text(event: Event) -> tuple[Event, str]:
    """The event as :func:`event_of` reads its :func:`event_text` back, and that text."""
    text = FIELD.join(event)
    if text.count(FIELD) != len(event) - 1 or BETWEEN in text:
        text = FIELD.join(field.translate(_SEPARATORS) for field in event)
        return event_of(text), text
    return event, text


def event_of(text: str) -> Event:
    """The event of an :func:`event_text`."""
    return tuple(text.split(FIELD))  # type: ignore[return-value]


def make_event(seconds: float, values: Mapping[str, str]) -> tuple[str, Event] | str:
    """``(linkedid, event)`` of a row's values by field, or why it cannot be used."""
    linkedid = values.get("linkedid", "") or values.get("uniqueid", "")
    if not linkedid:
        return "no linkedid or uniqueid"
    kind = values.get("eventtype", "")
    if not kind.strip():
        return "no event type"
    get = values.get
    event: Event = (
        f"{seconds:.6f}", event_name(kind, get("userdeftype", "")), get("channame", ""),
        get("uniqueid", ""), get("appname", ""), get("appdata", ""), get("exten", ""),
        get("context", ""), get("cid_num", ""), get("peer", ""), get("extra", ""),
    )  # fmt: skip
    return linkedid, event


def extra_of(event: Sequence[Any]) -> dict[str, Any]:
    """The event's ``extra`` JSON object (``{}`` when empty or not JSON): what
    :func:`json.loads` reads (the decoder's own step, without its wrapping: the text
    starts with ``{``, and only JSON's whitespace may follow the object)."""
    text = event[EXTRA]
    if not text or text[0] != "{":
        return {}
    try:
        found, end = _DECODE(text)
    except ValueError:
        return {}
    if end != len(text) and text[end:].strip(" \t\n\r"):
        return {}  # more after the object: not JSON
    return found if isinstance(found, dict) else {}


_DECODE = json.JSONDecoder().raw_decode
