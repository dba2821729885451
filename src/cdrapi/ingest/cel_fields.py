"""The fields a call's CEL events give its records, merged into the store whichever
comes first, the CDR or the CEL.

:func:`summarize` reads a call's events (:mod:`cdrapi.ingest.cel_events`) as a person
would:

- ``ivr_log``: the IVR path of the caller's channel. A *menu* is a context in which
  ``BackGround``, ``WaitExten``, ``Read`` or ``IVR`` ran; the key pressed is the
  extension the channel went to in that context (``1``; ``t`` reads ``timeout``, ``i``
  ``invalid``; a DTMF event's digit where Asterisk logs them), and where the call went
  after the last menu is its next application: ``queue <name>``, ``voicemail <box>``,
  ``dial <number>``, or ``hangup``. Written as the demo writes it: ``ivr-main > 1
  ivr-support > 2 queue support`` (a menu, then ``> key where`` for each step). The
  keys are seen when cel.conf's ``apps`` tracks the application the key's extension
  runs (FreePBX's IVR: ``Goto``), or ``apps=all``.
- ``ivr_duration``: from the first menu's application to leaving the last menu.
- ``transfers``: ``blind``, ``attended``, ``forward`` and ``pickup``, each ``<kind>
  <who> -> <whom> at HH:MM:SS`` (the PBX's local time), ``; `` between them; people
  as the directory names them (``Ana Pop (101)``), else by extension.
- ``monitor_files``: each MixMonitor file (``APP_START`` of ``MixMonitor``, its first
  argument), relative to ``recordings_dir`` when under it, and ``monitor_urls`` where
  the server serves them (:func:`cdrapi.ingest.recordings.recording_url`).
- ``rings``: the seconds each called channel rang: from its CHAN_START to its ANSWER
  (or, unanswered, its HANGUP); a leg's ``ring_time`` is its ``dstchannel``'s.
- ``ended``: the LINKEDID_END, when the last channel of the call was gone.

Each call of a batch is summarized once (:mod:`cdrapi.ingest.cel_calls`); the CDR
sources' hook (:func:`cdrapi.ingest.queue_fields.queue_fields_for_new_calls`) gives new
CDRs what CEL said before them, through the same Writer.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from operator import itemgetter
from pathlib import Path
from typing import Any

from cdrapi.ingest.cel_events import (
    APP,
    CHANNEL,
    CONTEXT,
    DATA,
    EXTEN,
    TYPE,
    UNIQUEID,
    T,
    extra_of,
)
from cdrapi.ingest.channels import format_channel
from cdrapi.ingest.directory import Directory
from cdrapi.ingest.recordings import recording_url

__all__ = ["People", "Recordings", "summarize"]

_MENU_APPS = frozenset(("background", "waitexten", "read", "ivr"))
_KEYS = {"t": "timeout", "i": "invalid"}
_NOT_KEYS = frozenset(("h", "s", "T", "e"))


class Recordings:
    """Where MixMonitor files are served from: ``recordings_dir`` and ``public_url``."""

    def __init__(self, root: str | None, public_url: str) -> None:
        self.root = str(Path(root)) + "/" if root else None
        self.public_url = public_url
        # a path of URL-safe characters is its own quoted form: its URL is the prefix
        # and the path (checked against recording_url, which stays the one definition)
        prefix = recording_url(public_url, "")
        self._prefix = (
            prefix if recording_url(public_url, "a/b-c_d.wav") == (prefix + "a/b-c_d.wav") else None
        )

    def file_and_url(self, path: str) -> tuple[str, str | None]:
        """The file as shown (relative to the root when under it) and its URL, if the
        server can serve it."""
        if path.startswith("/"):
            if self.root is None or not path.startswith(self.root):
                return path, None
            path = path[len(self.root) :]
        if ".." in path and ".." in path.split("/"):
            return path, None
        if self._prefix is not None and _URL_SAFE(path):
            return path, self._prefix + path
        return path, recording_url(self.public_url, path)


#: A path ``urllib.parse.quote`` leaves as it is (its always-safe characters and ``/``).
_URL_SAFE = re.compile(r"[A-Za-z0-9_.~/-]*").fullmatch


class People:
    """Who channels and extensions are, as the directory names them (remembered by the
    channel without its suffix, and by number: as many as the PBX has devices)."""

    def __init__(self, directory: Directory) -> None:
        self.directory = directory
        self._channels: dict[str, str] = {}
        self._numbers: dict[str, str] = {}

    def of_channel(self, channel: str) -> str:
        """Who a channel (or dial string) is: the directory's user, else its extension."""
        bare = format_channel(channel.strip())
        found = self._channels.get(bare)
        if found is None:
            found = self._channels[bare] = _person(bare, self.directory)
        return found

    def of_number(self, number: str) -> str:
        """Who an extension number is: the directory's user of it, else the number."""
        found = self._numbers.get(number)
        if found is None:
            user = self.directory.by_extension.get(number)
            found = f"{user.fullname} ({user.extension})" if user is not None else number
            self._numbers[number] = found
        return found


def _person(bare: str, directory: Directory) -> str:
    """Who the channel ``bare`` (without its suffix) is."""
    user = directory.user_of_channel(bare)
    if user is not None:
        return f"{user.fullname} ({user.extension})" if user.extension else user.fullname
    rest = bare.split("/", 1)[-1]
    return rest.split("@", 1)[0] or bare


def _where(event: Sequence[Any]) -> str | None:
    """Where a call goes when this application starts, or ``None`` (not a destination)."""
    app = event[APP].lower()
    first = event[DATA].split(",", 1)[0].strip()
    if app == "queue":
        return f"queue {first}"
    if app in ("voicemail", "vm"):
        return f"voicemail {first.split('@', 1)[0].lstrip('usbU')}"
    if app == "dial":
        target = first.split("&", 1)[0]
        return f"dial {target.split('/', 1)[-1].split('@', 1)[0]}" if target else "dial"
    if app == "hangup":
        return "hangup"
    return None


def _ivr(events: Sequence[Any], caller: str) -> tuple[str | None, int]:
    """``(ivr_log, ivr_duration)`` of the channel with uniqueid ``caller``."""
    menus: list[list[str]] = []  # [context, entry exten, key, where next]
    contexts: set[str] = set()
    first = left = None
    for event in events:
        if event[UNIQUEID] != caller:
            continue
        kind, context, exten = event[TYPE], event[CONTEXT], event[EXTEN]
        current = menus[-1] if menus else None
        if kind == "APP_START" and event[APP].lower() in _MENU_APPS:
            if current is None or context != current[0]:
                if current is not None and not current[3]:
                    current[3] = context
                menus.append([context, exten, "", ""])
                contexts.add(context)
            if first is None:
                first = float(event[T])
            left = None
            continue
        if current is None or (current[3] and current[3] not in contexts):
            continue  # before the IVR, or after its destination
        if kind == "DTMF":
            digit = str(extra_of(event).get("digit", ""))
            if context == current[0] and digit:
                current[2] += digit
            continue
        if context == current[0]:
            if exten != current[1] and exten not in _NOT_KEYS and kind == "APP_START":
                current[2] = _KEYS.get(exten, exten)
            if kind == "HANGUP":
                current[3], left = "hangup", float(event[T])
            continue
        if left is None:
            left = float(event[T])  # the first event out of the last menu
        if kind == "HANGUP":
            current[3] = current[3] or "hangup"
        elif kind == "APP_START":
            where = _where(event)
            if where is not None:
                current[3] = where
    if not menus or first is None:
        return None, 0
    parts = [menus[0][0]]
    for _context, _entry, key, where in menus:
        step = f"{key} {where}" if key and where else key or where
        if step:
            parts.append(step)
    if left is None:
        left = max(float(e[T]) for e in events if e[UNIQUEID] == caller)
    end = left
    return " > ".join(parts), max(0, round(end - first))


_TRANSFERS = frozenset(("BLINDTRANSFER", "ATTENDEDTRANSFER", "FORWARD", "PICKUP"))


def _transfers(
    events: Sequence[Any], found_at: Sequence[int], people: People, zone: dt.tzinfo
) -> str | None:
    """The transfers of the events at ``found_at`` (the indexes of :data:`_TRANSFERS`)."""
    found = []
    for index in found_at:
        event = events[index]
        kind = event[TYPE]
        extra = extra_of(event)
        who = people.of_channel(event[CHANNEL])
        whom = ""
        if kind == "BLINDTRANSFER":
            whom = people.of_number(str(extra.get("extension", "")))
            name = "blind"
        elif kind == "ATTENDEDTRANSFER":
            target = str(extra.get("transfer_target_channel_name", ""))
            whom = people.of_channel(target) if target and target != "N/A" else ""
            whom = whom or str(extra.get("app", ""))
            name = "attended"
        elif kind == "FORWARD":
            who = people.of_number(event[EXTEN]) if event[EXTEN] else who
            target = str(extra.get("forward", ""))
            whom = people.of_channel(target) if target else ""
            name = "forward"
        else:
            target = str(extra.get("pickup_channel", ""))
            whom = people.of_channel(target) if target else ""
            name = "pickup"
        if not whom:  # no extra (cel_custom's template): the next channel of the call
            later = (e for e in events[index + 1 :] if e[TYPE] == "CHAN_START")
            nxt = next(later, None)
            whom = people.of_channel(nxt[CHANNEL]) if nxt is not None else "?"
        when = dt.datetime.fromtimestamp(float(event[T]), zone)
        found.append(
            f"{name} {who} -> {whom} at {_TWO[when.hour]}:{_TWO[when.minute]}:{_TWO[when.second]}"
        )
    return "; ".join(found) or None


def _monitors(monitors: Sequence[Any], where: Recordings) -> tuple[str | None, str | None]:
    """Each MixMonitor file of the ``APP_START`` events of MixMonitor ``monitors``."""
    if len(monitors) == 1:  # the commonest: one file
        path = monitors[0][DATA].split(",", 1)[0].strip()
        if not path:
            return None, None
        file, url = where.file_and_url(path)
        return file, url or None
    files: dict[str, str | None] = {}
    for event in monitors:
        path = event[DATA].split(",", 1)[0].strip()
        if path:
            file, url = where.file_and_url(path)
            files.setdefault(file, url)
    if not files:
        return None, None
    urls = [url for url in files.values() if url]
    return "; ".join(files), "; ".join(urls) or None


#: ``00`` to ``59``: a time's parts written without a format call (``isoformat``'s own
#: cost more than the rest of a call's transfers).
_TWO = [f"{number:02d}" for number in range(60)]


def _local(seconds: float, zone: dt.tzinfo) -> str:
    """``YYYY-MM-DD HH:MM:SS`` in ``zone`` (as ``strftime`` writes it)."""
    when = dt.datetime.fromtimestamp(seconds, zone)
    if when.year < 1000:
        return when.strftime("%Y-%m-%d %H:%M:%S")
    two = _TWO
    return (
        f"{when.year}-{two[when.month]}-{two[when.day]} "
        f"{two[when.hour]}:{two[when.minute]}:{two[when.second]}"
    )


#: An event's uniqueid.
_UNIQUEID_OF = itemgetter(UNIQUEID)


def summarize(
    linkedid: str,
    events: Sequence[Any],
    people: People,
    recordings: Recordings,
    zone: dt.tzinfo,
) -> dict[str, Any]:
    """The ``cel_calls`` fields of the call ``linkedid`` from its events (in time order).

    One pass sorts the events out (the work of each field is done only for a call
    with events of its kind): the caller's channel, which channels ran an IVR menu, the
    transfers, the MixMonitor starts, each called channel's ring (from its CHAN_START
    to its ANSWER or, unanswered, its HANGUP), the last LINKEDID_END.
    """
    menus: set[str] = set()  # uniqueids whose channel ran a menu application
    moved: list[int] = []  # indexes of the transfers
    monitors = []
    started: dict[str, str] = {}  # channel -> the time of its CHAN_START
    rings: dict[str, int] = {}
    end = None
    caller_seen = linkedid in map(_UNIQUEID_OF, events)
    for index, event in enumerate(events):
        kind = event[TYPE]
        if kind == "APP_START":
            app = event[APP].lower()
            if app in _MENU_APPS:
                menus.add(event[UNIQUEID])
            elif app == "mixmonitor":
                monitors.append(event)
        elif kind == "CHAN_START":
            channel = event[CHANNEL]
            if channel not in started and event[UNIQUEID] != linkedid:
                started[channel] = event[T]
        elif kind == "ANSWER" or kind == "HANGUP":
            channel = event[CHANNEL]
            if channel in started and channel not in rings:
                rang = round(float(event[T]) - float(started[channel]))
                rings[channel] = rang if rang > 0 else 0
        elif kind in _TRANSFERS:
            moved.append(index)
        elif kind == "LINKEDID_END":
            end = event[T]
    caller = linkedid if caller_seen else (events[0][UNIQUEID] if events else "")
    ivr_log, ivr_duration = _ivr(events, caller) if caller in menus else (None, 0)
    files, urls = _monitors(monitors, recordings) if monitors else (None, None)
    return {
        "ivr_uniqueid": caller if ivr_log else None,
        "ivr_log": ivr_log,
        "ivr_duration": ivr_duration,
        "transfers": _transfers(events, moved, people, zone) if moved else None,
        "monitor_files": files,
        "monitor_urls": urls,
        "rings": rings,
        "ended": None if end is None else _local(float(end), zone),
    }
