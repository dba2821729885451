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
#: The columns of an event, in the order of :data:`~cdrapi.ingest.cel_events.Event`.
_EVENT = ("eventtime", "eventtype", "channame", "uniqueid", "appname", "appdata", "exten",
          "context", "cid_num", "peer", "extra")  # fmt: skip
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

    A line that is one record by itself in one of the two shapes cel_custom writes is
    split with ``str.split``, which gives what the csv module gives (in a fraction of the
    time): every field quoted (``"a","b",...``, the template's lines; quotes doubled in
    the last field only, as in ``${eventextra}``'s JSON), or no quote at all
    (``a,b,...``). Any other line is read by the csv module (a quote in an unquoted
    field, a carriage return, a quote left open that takes the next lines with it).
    With ``fast`` False every line is (what tests/ingest/test_cel_split.py compares the
    split with). What no line of a chunk has (NULL, the events' separators) is looked
    for once in the chunk, not in each line.
    """

    fast = True

    def __init__(self, name: str, zone: dt.tzinfo, layout: dict[str, int] | None = None) -> None:
        self.name, self.zone, self.layout = name, zone, layout
        self.columns: dict[str, int] | None = layout  # a header row's, else the given
        self.header = False
        self._getters: dict[int, _Columns] = {}

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
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = "\n".join([_decode(raw) for raw in data.split(b"\n")])
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        skip = first_line == 1 and self.header
        batch = Batch(lines=len(lines) - skip)
        rejects = batch.rejects
        calls = CallEvents()
        texts, again = calls.texts, calls.again
        getters, zone, types, fast = self._getters, self.zone, EVENT_TYPES, self.fast
        # what the chunk has nowhere is looked for in no line
        nulls = "NULL" in text or ("\\" in text and "\\N" in text)
        separators = FIELD in text or BETWEEN in text
        feed = _Feed(lines)
        reader = csv.reader(feed)
        width, get, linked, userdef, why = -1, None, 0, -1, ""
        resume = int(skip)  # the first line not read yet (a header row is no event)
        for at, line in enumerate(lines):
            if at < resume:
                continue  # a line the csv module took with the one before
            values: list[str] | None = None
            if not fast:
                pass
            elif len(line) > 1 and line[0] == '"' and line[-1] == '"':  # "a","b"
                values = line[1:-1].split('","')
                joined = "\n".join(values)
                if '"' in joined:  # a quote in a field
                    values = _quote_in_last(values, joined)
            elif '"' not in line and "\r" not in line and line:  # a,b
                values = line.split(",")
            if values is None:
                feed.at, before = at, reader.line_num
                number = first_line + at
                try:
                    values = next(reader)
                except csv.Error as exc:  # a carriage return inside a field...
                    resume = max(feed.at, at + 1)
                    took = "\n".join(lines[at:resume]).encode()
                    rejects.append(Reject(self.name, number, f"not a CSV line: {exc}", took))
                    continue
                resume = feed.at
                taken = reader.line_num - before
                if taken > 1:  # a quote left open took the next lines with it
                    why = f"a quote is not closed (lines {number}-{number + taken - 1})"
                    took = "\n".join(lines[at:resume]).encode()
                    rejects.append(Reject(self.name, number, why, took))
                    continue
                if not values:
                    continue
            raw = values
            if nulls and ("NULL" in values or "\\N" in values):
                values = ["" if value in _NULLS else value for value in values]
            if len(values) != width:
                width = len(values)
                columns = getters.get(width) or getters.setdefault(width, self._columns(width))
                get, linked, userdef, why = columns
            if get is not None:
                event: Event = get(values)
                when, kind, linkedid = event[0], event[1], values[linked] or event[3]
                try:
                    seconds = float(when)
                    plain = kind in types and len(when) == 17 and when[10] == "."
                except ValueError:
                    plain = False
                if plain and linkedid and not separators:
                    joined = FIELD.join(event)
                else:
                    got = _event(event, values[userdef] if userdef >= 0 else "", linkedid, zone)
                    if isinstance(got, str):
                        rejects.append(Reject(self.name, first_line + at, got, line.encode()))
                        continue
                    joined, seconds = got
                known = texts.get(linkedid)
                if known is None:
                    texts[linkedid] = {joined: seconds}
                elif joined in known:
                    again[linkedid] = again.get(linkedid, 0) + 1
                else:
                    known[joined] = seconds
            elif any(value.strip() for value in raw):  # else a blank line: skipped
                rejects.append(Reject(self.name, first_line + at, why, line.encode()))
        batch.events = calls.rows()
        return batch

    def _columns(self, width: int) -> _Columns:
        """How the fields of a line of ``width`` columns are taken: what takes those of
        its event (:func:`_event_getter`), the linkedid's and userdeftype's indexes (-1:
        none), and ``""``; or why such a line cannot be read."""
        columns = self.columns or _default(width)
        need = max(columns.values()) + 1
        if width < need:
            if self.columns is None:
                return None, 0, -1, (
                    f"expected {len(DEFAULT_LAYOUT)} columns (cel_custom.conf's template) or "
                    f"a header row, got {width}: give the layout with --columns"
                )  # fmt: skip
            return None, 0, -1, f"expected {need} columns, got {width}"
        get = _event_getter([columns.get(name, -1) for name in _EVENT])
        return get, columns["linkedid"], columns.get("userdeftype", -1), ""


#: How a line's fields are taken (:meth:`CelChunks._columns`).
_Columns = tuple[Callable[[list[str]], Event] | None, int, int, str]


def _event_getter(indexes: Sequence[int]) -> Callable[[list[str]], Event]:
    """What makes the event of a line's fields: the fields at ``indexes`` (``""`` for
    -1, a column the layout does not have), as a function of constant subscripts (a
    third of :func:`operator.itemgetter`'s cost on a list)."""
    items = ", ".join(f"v[{int(index)}]" if index >= 0 else '""' for index in indexes)
    getter: Callable[[list[str]], Event] = eval(f"lambda v: ({items},)")
    return getter


def _event(event: Event, userdef: str, linkedid: str, zone: dt.tzinfo) -> tuple[str, float] | str:
    """The text and time of an event whose time, type or fields are not as cel_custom's
    template writes them (a date and time, a number for its type, a separator in a
    field...), or why it cannot be one."""
    when, kind = event[0], event[1]
    try:
        seconds = float(when)
    except ValueError:
        try:
            seconds = seconds_of(when, zone)
        except (ValueError, OverflowError):
            return f"bad eventtime {when!r}"
    if not linkedid:
        return "no linkedid or uniqueid"
    if kind not in EVENT_TYPES:
        if not kind.strip():
            return "no event type"
        kind = event_name(kind, userdef)
    if len(when) != 17 or when[10] != ".":  # not <seconds>.<microseconds>
        when = f"{seconds:.6f}"
    event, joined = event_and_text((when, kind, *event[2:]))
    return joined, float(event[0])


def _quote_in_last(parts: list[str], joined: str) -> list[str] | None:
    """The fields of an all-quoted line split at its ``","`` (``parts``, joined by
    ``\n``), when a quote is in one: the last (``${eventextra}``'s JSON, its quotes
    doubled), which the split may have cut where its JSON has ``"",""``; else ``None``
    (the csv module reads the line).

    The parts with a quote at the end are one field when, joined again, each run of
    quotes in it is even (a ``","`` between two fields leaves an odd run on each side:
    a field's own quotes come in pairs), and no part before them has a quote.
    """
    last = parts[-1]
    if joined.find('"') >= len(joined) - len(last):  # the commonest: in the last alone
        if '"' in last.replace('""', ""):  # a quote alone
            return None
        parts[-1] = last.replace('""', '"')
        return parts
    first = len(parts) - 1
    while first and '"' in parts[first - 1]:
        first -= 1
    tail = parts[first:]
    if '"' in joined[: len(joined) - len("\n".join(tail))]:
        return None  # a quote in an earlier field too
    field = '","'.join(tail) if len(tail) > 1 else tail[0]
    if '"' in field.replace('""', ""):  # a quote alone
        return None
    parts[first:] = [field.replace('""', '"')]
    return parts


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
