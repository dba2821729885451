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

:class:`CelFields` is the hook of CEL sources; the CDR sources' hook
(:func:`cdrapi.ingest.queue_fields.queue_fields_for_new_calls`) gives new CDRs what CEL
said before them, through the same Writer.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from cdrapi.ingest.batch import Batch
from cdrapi.ingest.cel_events import (
    APP,
    CHANNEL,
    CONTEXT,
    DATA,
    EXTEN,
    TYPE,
    UNIQUEID,
    T,
    event_of,
    extra_of,
)
from cdrapi.ingest.channels import format_channel
from cdrapi.ingest.directory import Directory
from cdrapi.ingest.recordings import recording_url
from cdrapi.ingest.summary import Summary
from cdrapi.store.writer import Writer

__all__ = ["CelFields", "People", "Recordings", "summarize"]

_MENU_APPS = frozenset(("background", "waitexten", "read", "ivr"))
_KEYS = {"t": "timeout", "i": "invalid"}
_NOT_KEYS = frozenset(("h", "s", "T", "e"))


class Recordings:
    """Where MixMonitor files are served from: ``recordings_dir`` and ``public_url``."""

    def __init__(self, root: str | None, public_url: str) -> None:
        self.root = str(Path(root)) + "/" if root else None
        self.public_url = public_url

    def file_and_url(self, path: str) -> tuple[str, str | None]:
        """The file as shown (relative to the root when under it) and its URL, if the
        server can serve it."""
        if path.startswith("/"):
            if self.root is None or not path.startswith(self.root):
                return path, None
            path = path[len(self.root) :]
        if ".." in path.split("/"):
            return path, None
        return path, recording_url(self.public_url, path)


class People:
    """Who channels and extensions are, as the directory names them (remembered)."""

    def __init__(self, directory: Directory) -> None:
        self.directory = directory
        self._channels: dict[str, str] = {}
        self._numbers: dict[str, str] = {}

    def of_channel(self, channel: str) -> str:
        """Who a channel (or dial string) is: the directory's user, else its extension."""
        found = self._channels.get(channel)
        if found is None:
            found = self._channels[channel] = _person(channel, self.directory)
        return found

    def of_number(self, number: str) -> str:
        """Who an extension number is: the directory's user of it, else the number."""
        found = self._numbers.get(number)
        if found is None:
            user = self.directory.by_extension.get(number)
            found = f"{user.fullname} ({user.extension})" if user is not None else number
            self._numbers[number] = found
        return found


def _person(channel: str, directory: Directory) -> str:
    bare = format_channel(channel.strip())
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
        step = " ".join(part for part in (key, where) if part)
        if step:
            parts.append(step)
    if left is None:
        left = max(float(e[T]) for e in events if e[UNIQUEID] == caller)
    end = left
    return " > ".join(parts), max(0, round(end - first))


_TRANSFERS = frozenset(("BLINDTRANSFER", "ATTENDEDTRANSFER", "FORWARD", "PICKUP"))


def _transfers(events: Sequence[Any], people: People, zone: dt.tzinfo) -> str | None:
    found = []
    for index, event in enumerate(events):
        kind = event[TYPE]
        if kind not in _TRANSFERS:
            continue
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
        at = dt.datetime.fromtimestamp(float(event[T]), zone).strftime("%H:%M:%S")
        found.append(f"{name} {who} -> {whom} at {at}")
    return "; ".join(found) or None


def _monitors(events: Sequence[Any], where: Recordings) -> tuple[str | None, str | None]:
    files: dict[str, str | None] = {}
    for event in events:
        if event[TYPE] == "APP_START" and event[APP].lower() == "mixmonitor":
            path = event[DATA].split(",", 1)[0].strip()
            if path:
                file, url = where.file_and_url(path)
                files.setdefault(file, url)
    if not files:
        return None, None
    urls = [url for url in files.values() if url]
    return "; ".join(files), "; ".join(urls) or None


def _rings(events: Sequence[Any], linkedid: str) -> dict[str, int]:
    started: dict[str, float] = {}
    rang: dict[str, int] = {}
    for event in events:
        kind, channel = event[TYPE], event[CHANNEL]
        if kind == "CHAN_START" and event[UNIQUEID] != linkedid:
            started.setdefault(channel, float(event[T]))
        elif kind in ("ANSWER", "HANGUP") and channel in started and channel not in rang:
            rang[channel] = max(0, round(float(event[T]) - started[channel]))
    return rang


def summarize(
    linkedid: str,
    events: Sequence[Any],
    people: People,
    recordings: Recordings,
    zone: dt.tzinfo,
) -> dict[str, Any]:
    """The ``cel_calls`` fields of the call ``linkedid`` from its events (in time order)."""
    channels = {e[UNIQUEID] for e in events}
    caller = linkedid if linkedid in channels else (events[0][UNIQUEID] if events else "")
    ivr_log, ivr_duration = _ivr(events, caller)
    files, urls = _monitors(events, recordings)
    end = next((e[T] for e in reversed(events) if e[TYPE] == "LINKEDID_END"), None)
    ended = None
    if end is not None:
        ended = dt.datetime.fromtimestamp(float(end), zone).strftime("%Y-%m-%d %H:%M:%S")
    return {
        "ivr_uniqueid": caller if ivr_log else None,
        "ivr_log": ivr_log,
        "ivr_duration": ivr_duration,
        "transfers": _transfers(events, people, zone),
        "monitor_files": files,
        "monitor_urls": urls,
        "rings": _rings(events, linkedid),
        "ended": ended,
    }


class CelFields:
    """The hook of CEL sources: merges a batch's events into the stored calls' CEL,
    derives their fields and copies them onto the calls (counted as updated); an event
    already stored counts as already there."""

    def __init__(
        self,
        store: Writer,
        directory: Directory,
        summary: Summary,
        recordings: Recordings,
        zone: dt.tzinfo,
    ) -> None:
        self.store, self.people, self.summary = store, People(directory), summary
        self.recordings, self.zone = recordings, zone

    def __call__(self, conn: Connection, first_id: int, batch: Batch) -> None:
        if not batch.events:
            return
        by_call: dict[str, dict[str, None]] = {}
        for linkedid, event in batch.events:
            new = by_call.get(linkedid)
            if new is None:
                new = by_call[linkedid] = {}
            new[event] = None
        again = len(batch.events) - sum(map(len, by_call.values()))
        stored = self.store.read_cel_events(conn, by_call)
        values = []
        for linkedid, new in by_call.items():
            before = stored.get(linkedid)
            if before:
                known = dict.fromkeys(before)
                known.update(new)
                again += len(before) + len(new) - len(known)
                if len(known) == len(before):
                    continue  # nothing new of this call
                texts = list(known)
            else:
                texts = list(new)
            events = sorted(map(event_of, texts), key=_time)
            fields = summarize(linkedid, events, self.people, self.recordings, self.zone)
            values.append({"linkedid": linkedid, "events": texts, **fields})
        self.summary.duplicates += again
        self.store.save_cel_calls(conn, values)
        if values:
            linkedids = [value["linkedid"] for value in values]
            self.summary.updated += self.store.copy_cel_fields(conn, linkedids)


def _time(event: tuple[Any, ...]) -> float:
    return float(event[T])
