"""cel_custom's CSV files (``/var/log/asterisk/cel-custom/Master.csv``) into the store.

Each line is one CEL event, in the columns of the file's template: cel_custom.conf's
sample (:data:`~cdrapi.ingest.cel_events.DEFAULT_LAYOUT`: ``eventtype, eventtime,
CALLERID(name), ..., uniqueid, linkedid, peer, userfield``; a 19th column is taken as
``${eventextra}``), a header row naming the columns (a CSV export of a ``cel`` table),
or the layout given with ``--columns`` (``eventtype,eventtime,...,extra``, the names of
:data:`~cdrapi.ingest.cel_events.CEL_FIELDS`; ``-`` or an empty name for a column to
skip). ``eventtime`` is epoch seconds with microseconds (the default) or a local date
and time (cel.conf ``dateformat``).

The files are read as the CDR CSV files are (:mod:`cdrapi.ingest.files`): from the saved
position, following rotation (renamed, compressed) and truncation, each batch committed
with its checkpoint. A big file is parsed in a producer process, which also groups each
chunk's events by call (:class:`CelChunks`); the writer summarizes each call once and
stores it (:class:`~cdrapi.ingest.cel_calls.CelFields`).
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Callable, Sequence
from operator import itemgetter
from pathlib import Path

from sqlalchemy import Engine

from cdrapi.ingest.batch import Batch
from cdrapi.ingest.cel_calls import CallEvents, CelCalls, CelFields
from cdrapi.ingest.cel_events import (
    BETWEEN,
    CEL_FIELDS,
    DEFAULT_LAYOUT,
    EVENT_NAMES,
    FIELD,
    Event,
    cel_columns,
    event_and_text,
    event_name,
    seconds_of,
)
from cdrapi.ingest.cel_fields import Recordings
from cdrapi.ingest.directory import Directory
from cdrapi.ingest.errors import LayoutError, Reject
from cdrapi.ingest.files import FileSource, run_files
from cdrapi.ingest.run import IngestRun
from cdrapi.ingest.summary import Summary

__all__ = ["CelChunks", "cel_layout", "ingest_cel"]

_NULLS = frozenset(("NULL", "\\N"))
#: The columns read, in the order of :data:`~cdrapi.ingest.cel_events.Event` (so the
#: first 11 of a line are its event as they are), then the userdeftype and the linkedid.
_USED = ("eventtime", "eventtype", "channame", "uniqueid", "appname", "appdata", "exten",
         "context", "cid_num", "peer", "extra", "userdeftype", "linkedid")  # fmt: skip
#: Event types read as they are (the names cel.c writes).
EVENT_TYPES = frozenset((*EVENT_NAMES.values(), "STREAM_BEGIN", "STREAM_END", "DTMF"))


def cel_layout(text: str | None) -> dict[str, int] | None:
    """The layout ``--columns`` gives (field -> column), or ``None`` (not given); raises
    LayoutError naming what is wrong."""
    if text is None or not text.strip():
        return None
    names = [name.strip().lower() for name in text.split(",")]
    unknown = [n for n in names if n and n != "-" and n not in CEL_FIELDS and n != "eventextra"]
    if unknown:
        raise LayoutError(
            f"--columns: not CEL columns: {', '.join(unknown)} (known: {', '.join(CEL_FIELDS)})"
        )
    found = cel_columns(names)
    if found is None:
        raise LayoutError("--columns: a CEL layout needs eventtype, eventtime, channame, "
                          "uniqueid and linkedid")  # fmt: skip
    return found


def _default(width: int) -> dict[str, int]:
    layout = {name: index for index, name in enumerate(DEFAULT_LAYOUT)}
    if width == len(DEFAULT_LAYOUT) + 1:
        layout["extra"] = len(DEFAULT_LAYOUT)
    return layout


class _Feed:
    """The lines of a chunk from ``at`` on, for a csv reader that takes a line of them
    (or, an open quote, more) when asked."""

    __slots__ = ("at", "lines")

    def __init__(self, lines: list[str]) -> None:
        self.lines, self.at = lines, 0

    def __iter__(self) -> _Feed:
        return self

    def __next__(self) -> str:
        at = self.at
        if at >= len(self.lines):
            raise StopIteration
        self.at = at + 1
        return self.lines[at]


class CelChunks:
    """Parses chunks of a cel_custom file into batches of calls (in the producer process
    of a big import): their events grouped by call, once each, in time order
    (``batch.events``: :data:`~cdrapi.ingest.cel_calls.CelCall` rows).

    A line whose fields are all quoted and hold no quote (``"a","b",...``, most lines of
    the template) is split at its quotes, which gives what the csv module gives (in half
    the time); any other line is read by the csv module (a quote doubled in
    ``${eventextra}``'s JSON, a field without quotes, a quote left open that takes the
    next lines with it).
    """

    def __init__(self, name: str, zone: dt.tzinfo, layout: dict[str, int] | None = None) -> None:
        self.name, self.zone, self.layout = name, zone, layout
        self.columns: dict[str, int] | None = layout  # a header row's, else the given
        self.header = False
        self._getters: dict[int, Callable[[list[str]], tuple[str, ...]] | str] = {}

    def start_file(self, first_line: bytes, path: str) -> None:
        """A header row names the columns; else the given layout or the template's."""
        self.columns, self.header, self._getters = self.layout, False, {}
        text = first_line.decode("utf-8", "replace").lstrip("\ufeff").rstrip("\r\n")
        try:
            names = next(csv.reader([text]), [])
        except csv.Error:  # not a header row (its line is rejected when parsed)
            names = []
        found = cel_columns(names)
        if found is not None:
            self.columns, self.header = found, True

    def parse(self, data: bytes, first_line: int) -> Batch:
        try:
            lines = data.decode("utf-8").split("\n")
        except UnicodeDecodeError:
            lines = [_decode(raw) for raw in data.split(b"\n")]
        if lines and lines[-1] == "":
            lines.pop()
        skip = first_line == 1 and self.header
        batch = Batch(lines=len(lines) - skip)
        rejects = batch.rejects
        calls = CallEvents()
        texts, again = calls.texts, calls.again
        getters, zone, types = self._getters, self.zone, EVENT_TYPES
        feed = _Feed(lines)
        reader = csv.reader(feed)
        count = len(lines)
        why: str | None
        while feed.at < count:
            at = feed.at
            line = lines[at]
            values: list[str] | None = None
            parts = line.split('"')  # "a","b": '', 'a', ',', 'b', '' (1-char parts are shared)
            odd = len(parts) & 1 and len(parts) > 1  # a quote closes each field opened
            if odd and parts[0] == "" and parts[-1] == "" and not (skip and at == 0):
                commas = parts[2:-1:2]
                if commas.count(",") == len(commas):  # else a quote in a field...
                    values = raw = parts[1::2]
                    if "NULL" in line or "\\N" in line:
                        values = ["" if value in _NULLS else value for value in values]
                    feed.at = at + 1
            if values is None:
                feed.at, before = at, reader.line_num
                try:
                    values = raw = next(reader)
                except csv.Error as exc:  # a carriage return inside a field...
                    why = f"not a CSV line: {exc}"
                    took = "\n".join(lines[at : max(feed.at, at + 1)]).encode()
                    rejects.append(Reject(self.name, first_line + at, why, took))
                    feed.at = max(feed.at, at + 1)
                    continue
                taken = reader.line_num - before
                if taken > 1:  # a quote left open took the next lines with it
                    number = first_line + at
                    why = f"a quote is not closed (lines {number}-{number + taken - 1})"
                    took = "\n".join(lines[at : feed.at]).encode()
                    rejects.append(Reject(self.name, number, why, took))
                    continue
                if not values or (skip and at == 0):
                    continue
                if "NULL" in values or "\\N" in values:
                    values = ["" if value in _NULLS else value for value in values]
            get = getters.get(len(values))
            if get is None:
                get = getters[len(values)] = self._getter_for(len(values))
            if isinstance(get, str):
                why = get
            else:
                values.append("")  # what a column the layout does not have reads (-1)
                fields = get(values)
                when, kind, linkedid = fields[0], fields[1], fields[12] or fields[3]
                why = None
                try:
                    seconds = float(when)
                except ValueError:
                    try:
                        seconds = seconds_of(when, zone)
                    except (ValueError, OverflowError):
                        why = f"bad eventtime {when!r}"
                if why is None and not linkedid:
                    why = "no linkedid or uniqueid"
                if why is None and kind not in types:
                    if not kind.strip():
                        why = "no event type"
                    else:
                        kind = event_name(kind, fields[11])
                if why is None:
                    event: Event = fields[:11]  # type: ignore[assignment]
                    if len(when) != 17 or when[10] != ".":  # not <seconds>.<microseconds>
                        when = f"{seconds:.6f}"
                        seconds = float(when)
                        event = (when, kind, *event[2:])
                    elif kind is not fields[1]:
                        event = (when, kind, *event[2:])
                    if FIELD in line or BETWEEN in line:  # a separator in a field
                        text = event_and_text(event)[1]
                        seconds = float(text.split(FIELD, 1)[0])
                    else:
                        text = FIELD.join(event)
                    known = texts.get(linkedid)
                    if known is None:
                        texts[linkedid] = {text: seconds}
                    elif text in known:
                        again[linkedid] = again.get(linkedid, 0) + 1
                    else:
                        known[text] = seconds
                    continue
            if any(value.strip() for value in raw):  # else a blank line: skipped
                rejects.append(Reject(self.name, first_line + at, why, line.encode()))
        batch.events = calls.rows()
        return batch

    def _getter_for(self, width: int) -> Callable[[list[str]], tuple[str, ...]] | str:
        """What takes each of :data:`_USED` from a line of ``width`` columns (the last
        one, ``""``, for a column the layout does not have), or why such a line cannot
        be read."""
        columns = self.columns or _default(width)
        need = max(columns.values()) + 1
        if width < need:
            if self.columns is None:
                return (
                    f"expected {len(DEFAULT_LAYOUT)} columns (cel_custom.conf's template) or "
                    f"a header row, got {width}: give the layout with --columns"
                )
            return f"expected {need} columns, got {width}"
        return itemgetter(*(columns.get(name, -1) for name in _USED))


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", "replace")


def ingest_cel(
    engine: Engine,
    paths: Sequence[str | Path],
    options: IngestRun | None = None,
    *,
    follow: bool = False,
    columns: str | None = None,
) -> Summary:
    """Import cel_custom CSV files (following them with ``follow``); ``columns`` gives
    their layout (see :func:`cel_layout`) when it is not the template's."""
    layout = cel_layout(columns)  # before the store is touched
    options = options or IngestRun()
    store = options.prepare(engine)
    zone = options.zone()
    summary = Summary()
    rejects = options.reject_file()
    settings = options.settings
    calls = CelCalls(options.directory or Directory(),
                     Recordings(settings.recordings_dir, settings.public_url), zone)  # fmt: skip
    hook = CelFields(store, calls, summary)
    sources = [FileSource(Path(p), "cel", CelChunks(str(p), zone, layout)) for p in paths]
    try:
        return run_files(
            store, sources, follow=follow, rejects=rejects, summary=summary, after_rows=hook,
            from_start=options.from_start, stop=options.stop, on_batch=options.progress,
            producer=True,
        )  # fmt: skip
    finally:
        rejects.close()
