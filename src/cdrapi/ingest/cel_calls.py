"""A batch's CEL events as one row per call, and the hook that stores and summarizes them
whichever comes first, the CDR or the CEL.

A source groups the events it reads by call (:class:`CallEvents`: the parser of a
cel_custom file, in the producer process of a big import; a cel table's batch once it is
complete): each call's events once, in time order, joined as they are stored
(:data:`CelCall`). That is the part of the work done where the lines are parsed; the
rest is the writer's, so that on two cores the two processes share it about evenly.

:class:`CelFields`, the hook run in the batch's transaction, looks the batch's calls up
in ``cel_calls``. A call the store holds nothing of (nearly every call of a big import:
a call's events are close together in a file) is summarized from its events in the
batch (:class:`CelCalls`, :func:`~cdrapi.ingest.cel_fields.summarize`). A call with
events stored before (by an earlier batch or run) is merged with them (an event already
stored counts as already there) and summarized from all of them: the same fields as if
all its events had come in one batch. Then the calls' fields are copied onto their
records (counted as updated).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Sequence
from itertools import repeat
from typing import Any

from sqlalchemy import Connection

from cdrapi.ingest.batch import Batch
from cdrapi.ingest.cel_events import BETWEEN, FIELD, Event, T, event_and_text, event_of
from cdrapi.ingest.cel_fields import People, Recordings, summarize
from cdrapi.ingest.directory import Directory
from cdrapi.ingest.summary import Summary
from cdrapi.store.writer import Writer

__all__ = ["CallEvents", "CelCall", "CelCalls", "CelFields"]

#: A call's CEL as a batch carries it: (linkedid, its events' texts once each, in time
#: order, joined by :data:`~cdrapi.ingest.cel_events.BETWEEN`, how many more of its events
#: the batch read again).
CelCall = tuple[str, str, int]

_COMPACT = json.JSONEncoder(separators=(",", ":"))


class CallEvents:
    """The events of a batch by call (linkedid): each event's text once, with its time
    (epoch seconds), in the order read; and the events read again, by call."""

    __slots__ = ("again", "texts")

    def __init__(self) -> None:
        self.texts: dict[str, dict[str, float]] = {}
        self.again: dict[str, int] = {}

    def add(self, linkedid: str, event: Event) -> None:
        """One event of the call ``linkedid``."""
        event, text = event_and_text(event)
        texts = self.texts.get(linkedid)
        if texts is None:
            self.texts[linkedid] = {text: float(event[T])}
        elif text in texts:
            self.again[linkedid] = self.again.get(linkedid, 0) + 1
        else:
            texts[text] = float(event[T])

    def rows(self) -> list[CelCall]:
        """A row for each call (its events sorted by time; as read where equal)."""
        again = self.again
        return [
            (linkedid, BETWEEN.join(sorted(texts, key=texts.__getitem__)), again.get(linkedid, 0))
            for linkedid, texts in self.texts.items()
        ]


class CelCalls:
    """Summarizes calls into ``cel_calls`` rows (the columns of
    :meth:`cdrapi.store.writer.Writer.write_cel_calls`): people as the directory names
    them, MixMonitor files as the server serves them, times in the PBX's ``zone``."""

    def __init__(self, directory: Directory, recordings: Recordings, zone: dt.tzinfo) -> None:
        self.people, self.recordings, self.zone = People(directory), recordings, zone

    def row(self, linkedid: str, events: Sequence[Sequence[str]], joined: str) -> tuple[Any, ...]:
        """The row of the call ``linkedid`` with ``events`` (in time order), stored as
        ``joined``."""
        got = summarize(linkedid, events, self.people, self.recordings, self.zone)
        return (
            linkedid, joined, got["ivr_uniqueid"], got["ivr_log"], got["ivr_duration"],
            got["transfers"], got["monitor_files"], got["monitor_urls"],
            _rings_json(got["rings"]), got["ended"],
        )  # fmt: skip


class CelFields:
    """The hook of CEL sources: stores a batch's calls (:data:`CelCall` rows in
    ``batch.events``), merged with what the store holds of them, summarized, and copies
    their fields onto their records."""

    def __init__(self, store: Writer, calls: CelCalls, summary: Summary) -> None:
        self.store, self.calls, self.summary = store, calls, summary

    def __call__(self, conn: Connection, first_id: int, batch: Batch) -> None:
        found: list[CelCall] = batch.events
        if not found:
            return
        stored = self.store.read_cel_events(conn, [call[0] for call in found])
        again = 0
        rows = []
        row = self.calls.row
        for linkedid, joined, twice in found:
            again += twice
            before = stored.get(linkedid) if stored else None
            if not before:
                texts = joined.split(BETWEEN)
                events = list(map(str.split, texts, repeat(FIELD, len(texts))))
                rows.append(row(linkedid, events, joined))
                continue
            known = dict.fromkeys(before)
            new = joined.split(BETWEEN)
            known.update(dict.fromkeys(new))
            again += len(before) + len(new) - len(known)
            if len(known) == len(before):
                continue  # nothing new of this call
            texts = list(known)
            merged = sorted(map(event_of, texts), key=_time)
            rows.append(row(linkedid, merged, BETWEEN.join(texts)))
        self.summary.duplicates += again
        if rows:
            self.store.write_cel_calls(conn, rows)
            self.summary.updated += self.store.copy_cel_fields(conn, [row[0] for row in rows])


#: A channel name JSON writes as it is (``ensure_ascii``: printable ASCII, no ``"`` or ``\\``).
_PLAIN = re.compile(r"[ !#-\[\]-~]*").fullmatch


def _rings_json(rings: dict[str, int]) -> str:
    """``rings`` as compact JSON, as :mod:`json` writes it (written here when every name
    needs no escaping: :mod:`json`'s own call costs more than the rest of a call's row)."""
    if len(rings) == 1:  # the commonest: one called channel
        ((name, seconds),) = rings.items()
        if _PLAIN(name):
            return f'{{"{name}":{seconds:d}}}'
    elif _PLAIN("".join(rings)):
        return "{" + ",".join([f'"{name}":{seconds:d}' for name, seconds in rings.items()]) + "}"
    return _COMPACT.encode(rings)


def _time(event: Event) -> float:
    return float(event[T])
