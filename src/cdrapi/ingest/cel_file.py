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
with its checkpoint; the events go to :class:`~cdrapi.ingest.cel_fields.CelFields`.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import Engine

from cdrapi.ingest.batch import Batch
from cdrapi.ingest.cel_events import (
    CEL_FIELDS,
    DEFAULT_LAYOUT,
    EVENT_NAMES,
    cel_columns,
    event_name,
    event_text,
    seconds_of,
)
from cdrapi.ingest.cel_fields import CelFields, Recordings
from cdrapi.ingest.directory import Directory
from cdrapi.ingest.errors import LayoutError, Reject
from cdrapi.ingest.files import FileSource, run_files
from cdrapi.ingest.run import IngestRun
from cdrapi.ingest.summary import Summary

__all__ = ["CelChunks", "cel_layout", "ingest_cel"]

_NULLS = frozenset(("NULL", "\\N"))
#: The columns an event is made of, in the order of :data:`~cdrapi.ingest.cel_events.Event`
#: after its time, type and the userdeftype, then the linkedid.
_USED = ("eventtime", "eventtype", "userdeftype", "channame", "uniqueid", "appname",
         "appdata", "exten", "context", "cid_num", "peer", "extra", "linkedid")  # fmt: skip
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


class CelChunks:
    """Parses chunks of a cel_custom file into batches of events (``(linkedid, event)``)."""

    def __init__(self, name: str, zone: dt.tzinfo, layout: dict[str, int] | None = None) -> None:
        self.name, self.zone, self.layout = name, zone, layout
        self.columns: dict[str, int] | None = layout  # a header row's, else the given
        self.header = False
        self._indexes: dict[int, tuple[int, ...] | str] = {}  # by a line's width

    def start_file(self, first_line: bytes, path: str) -> None:
        """A header row names the columns; else the given layout or the template's."""
        self.columns, self.header, self._indexes = self.layout, False, {}
        text = first_line.decode("utf-8", "replace").lstrip("\ufeff").rstrip("\r\n")
        names = next(csv.reader([text]), [])
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
        rejects, events = batch.rejects, batch.events
        reader = csv.reader(lines)
        at = 0  # lines the reader took so far
        for values in reader:
            number, taken = first_line + at, reader.line_num - at
            at = reader.line_num
            if taken > 1:  # a quote left open took the next lines with it
                raw = "\n".join(lines[number - first_line : at]).encode()
                rejects.append(Reject(self.name, number, f"a quote is not closed "
                                      f"(lines {number}-{number + taken - 1})", raw))  # fmt: skip
                continue
            if not values or (skip and number == 1) or not any(v.strip() for v in values):
                continue
            why = self._event(values, events)
            if why:
                rejects.append(Reject(self.name, number, why, lines[number - first_line].encode()))
        return batch

    def _event(self, values: list[str], events: list[tuple[object, ...]]) -> str | None:
        width = len(values)
        index = self._indexes.get(width)
        if index is None:
            index = self._indexes[width] = self._index_for(width)
        if isinstance(index, str):
            return index
        if "NULL" in values or "\\N" in values:
            values = ["" if value in _NULLS else value for value in values]
        values.append("")  # what a column the layout does not have reads (index -1)
        when, kind, userdeftype, *rest, linkedid = [values[i] for i in index]
        try:
            seconds = float(when)
        except ValueError:
            try:
                seconds = seconds_of(when, self.zone)
            except (ValueError, OverflowError):
                return f"bad eventtime {when!r}"
        linkedid = linkedid or rest[2]
        if not linkedid:
            return "no linkedid or uniqueid"
        if kind not in EVENT_TYPES:
            if not kind.strip():
                return "no event type"
            kind = event_name(kind, userdeftype)
        if len(when) != 17 or when[10] != ".":  # not already <seconds>.<microseconds>
            when = f"{seconds:.6f}"
        events.append((linkedid, event_text((when, kind, *rest))))
        return None

    def _index_for(self, width: int) -> tuple[int, ...] | str:
        """Where each of :data:`_USED` is in a line of ``width`` columns (-1: none), or
        why such a line cannot be read."""
        columns = self.columns or _default(width)
        need = max(columns.values()) + 1
        if width < need:
            if self.columns is None:
                return (
                    f"expected {len(DEFAULT_LAYOUT)} columns (cel_custom.conf's template) or "
                    f"a header row, got {width}: give the layout with --columns"
                )
            return f"expected {need} columns, got {width}"
        return tuple(columns.get(name, -1) for name in _USED)


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
    hook = CelFields(store, options.directory or Directory(), summary,
                     Recordings(settings.recordings_dir, settings.public_url), zone)  # fmt: skip
    sources = [FileSource(Path(p), "cel", CelChunks(str(p), zone, layout)) for p in paths]
    try:
        return run_files(
            store, sources, follow=follow, rejects=rejects, summary=summary, after_rows=hook,
            from_start=options.from_start, stop=options.stop, on_batch=options.progress,
            producer=True,
        )  # fmt: skip
    finally:
        rejects.close()
