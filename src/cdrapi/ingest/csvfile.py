"""Asterisk CSV files: which layout a line has, and its fields as a raw CDR.

Three families, told apart by the data itself:

- **cdr_csv** ``Master.csv``: ``accountcode, src, dst, dcontext, clid, channel,
  dstchannel, lastapp, lastdata, start, answer, end, duration, billsec, disposition,
  amaflags`` (16 columns), then ``uniqueid`` and ``userfield`` when logged, then
  ``peeraccount, linkedid, sequence`` with ``newcdrcolumns``: 16 to 21 columns. Start
  time is column 10.
- **cdr_custom** default template: ``clid, src, dst, dcontext, channel, dstchannel,
  lastapp, lastdata, start, answer, end, duration, billsec, disposition, amaflags,
  accountcode, uniqueid, userfield, sequence``, everything quoted (start is column 9).
- **header** CSV exports: a first row of column names (FreePBX's ``calldate, clid,
  src...`` or a vendor export's, see :mod:`cdrapi.ingest.headers`); ``--columns``
  renames any other header (``"Ora=start,Numar=src"``, ``"Cost="`` ignores a column) or
  gives the layout of a headerless file (``clid,src,dst,...``).

Lines are physical lines. Bytes that are not UTF-8 are decoded per field as cp1252
(latin-1 where cp1252 has no character), so a caller name keeps its letters. A UTF-8
byte order mark starting a file is not part of its first field. In a header CSV (and a
``--columns`` layout), as in SQL exports, an unquoted ``NULL`` or ``\\N`` is an empty
value; a quoted ``"NULL"`` stays text. A caller id whose quotes do not pair
(``"Maria <101>``) is stored as written and reported as a warning. A rejected line that
looks like another source's (queue_log, CEL) says which command reads it.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path

from sqlalchemy import Engine

from cdrapi.ingest.batch import Batch
from cdrapi.ingest.cdr import FIELDS, INDEX, is_datetime, looks_like_uniqueid
from cdrapi.ingest.derive import Deriver
from cdrapi.ingest.errors import LayoutError, Reject
from cdrapi.ingest.files import CHUNK, FileSource, run_files
from cdrapi.ingest.headers import (
    HeaderLayout,
    Layout,
    column_layout,
    header_layout,
    unquoted_nulls,
)  # fmt: skip
from cdrapi.ingest.logfile import LogFile
from cdrapi.ingest.lookalikes import other_source
from cdrapi.ingest.options import Options
from cdrapi.ingest.queue_fields import queue_fields_for_new_calls
from cdrapi.ingest.recovery import Recovery
from cdrapi.ingest.summary import Summary

__all__ = [
    "CsvChunks",
    "Layout",
    "LineParser",
    "decode_fields",
    "header_layout",
    "ingest_csv",
    "parse_columns_option",
]

_BASE = (
    "accountcode", "src", "dst", "dcontext", "clid", "channel", "dstchannel", "lastapp",
    "lastdata", "start", "answer", "end", "duration", "billsec", "disposition", "amaflags",
)  # fmt: skip
_NEW = ("peeraccount", "linkedid", "sequence")
CUSTOM = (
    "clid", "src", "dst", "dcontext", "channel", "dstchannel", "lastapp", "lastdata",
    "start", "answer", "end", "duration", "billsec", "disposition", "amaflags",
    "accountcode", "uniqueid", "userfield", "sequence",
)  # fmt: skip

_layout = column_layout

_CSV = {n: _layout(_BASE[:16] + tail) for n, tail in (
    (16, ()), (18, ("uniqueid", "userfield")), (19, _NEW),
    (21, ("uniqueid", "userfield", *_NEW)),
)}  # fmt: skip
_CSV_UID = {17: _layout((*_BASE, "uniqueid")), 20: _layout((*_BASE, "uniqueid", *_NEW))}
_CSV_USERFIELD = {17: _layout((*_BASE, "userfield")), 20: _layout((*_BASE, "userfield", *_NEW))}
_CUSTOM = {n: _layout(CUSTOM[:n]) for n in range(15, 20)}


def parse_columns_option(value: str | None) -> tuple[dict[str, str], tuple[str, ...] | None]:
    """``--columns``: ``"Header=field,..."`` renames, or ``"field,field,..."`` a layout."""
    if not value:
        return {}, None
    items = [item.strip() for item in value.split(",")]
    if all("=" in item for item in items):
        renames = {}
        for item in items:
            header, _, name = item.partition("=")
            if name.strip() and name.strip() not in INDEX:  # "Header=": ignore it
                raise LayoutError(f"--columns: unknown field {name.strip()!r} (known: {_known()})")
            renames[header.strip()] = name.strip()
        return renames, None
    if any("=" in item for item in items):
        raise LayoutError("--columns: give either Header=field pairs or a list of fields")
    unknown = [item for item in items if item and item not in INDEX]
    if unknown or "start" not in items:
        raise LayoutError(
            f"--columns: unknown field(s) {', '.join(unknown)} (known: {_known()})"
            if unknown
            else "--columns: the layout needs a start column"
        )
    return {}, tuple(items)


def _known() -> str:
    return ", ".join(FIELDS)


def _cp1252(data: bytes) -> str:
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def decode_fields(fields: list[str]) -> list[str]:
    """Fields decoded with ``surrogateescape``: those with undecodable bytes redone as
    cp1252 (latin-1 where cp1252 has no character)."""
    out = []
    for value in fields:
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                value = _cp1252(value.encode("utf-8", "surrogateescape"))
        out.append(value)
    return out


class LineParser:
    """Turns physical lines of one file into raw CDR tuples or reasons for rejecting them."""

    def __init__(self, renames: dict[str, str] | None = None, layout: Sequence[str] | None = None):
        self.renames = renames or {}
        self.fixed: Layout | None = _layout(layout) if layout else None
        self.width = len(layout) if layout else 0
        self.header: Layout | None = None
        self.header_width = 0
        self._width, self._make = -1, _CUSTOM[15]  # the last line's layout

    def read_header(self, first: str) -> bool:
        """Take ``first`` (the file's first line) as its header if it is one."""
        if self.fixed is not None:
            return False
        names = _split(first)
        if names is None:
            return False
        layout = header_layout(names, self.renames)
        if layout is not None:
            self.header, self.header_width = layout, len(names)
            return True
        if self.renames:
            raise LayoutError("--columns renames header names, but the file has no header row")
        return False

    def forget(self) -> None:
        """A new file starts: detect its layout again."""
        self.header, self._width = None, -1

    def cdr(self, fields: list[str]) -> Sequence[str] | str:
        """The raw CDR in ``fields``, or why they are not one."""
        make = self.layout(fields)
        return make if isinstance(make, str) else make(fields)

    def layout(self, fields: list[str]) -> Layout | str:
        """The layout of ``fields``, or why they are not a CDR (see :meth:`cdr`)."""
        n = len(fields)
        if n == self._width:  # as the line before (derivation checks the values)
            return self._make
        found = self._detect(fields)
        if not isinstance(found, str):
            self._width, self._make = n, found
        return found

    def _detect(self, fields: list[str]) -> Layout | str:
        n = len(fields)
        if self.fixed is not None or self.header is not None:
            width = self.width or self.header_width
            make = self.fixed or self.header
            assert make is not None
            if n != width:
                return f"expected {width} columns, found {n}"
            return make
        if n >= 16 and is_datetime(fields[9]) and is_datetime(fields[11]):
            make = _CSV.get(n)
            if make is None:
                table = _CSV_UID if looks_like_uniqueid(fields[16]) else _CSV_USERFIELD
                make = table.get(n)
            if make is not None:
                return make
        if 15 <= n <= 19 and is_datetime(fields[8]) and is_datetime(fields[10]):
            return _CUSTOM[n]
        if n < 15:
            return f"not an Asterisk CDR line: {n} columns"
        return (
            "not an Asterisk CDR line: no start and end times where cdr_csv or cdr_custom "
            f"has them ({n} columns)"
        )


def _split(line: str) -> list[str] | None:
    try:
        return next(csv.reader([line]), [])
    except csv.Error:
        return None


def split_line(line: str) -> list[str] | str:
    """One physical line's fields, or why it is not CSV."""
    try:
        rows = list(csv.reader([line], strict=True))
    except csv.Error as exc:
        return f"bad CSV: {exc}"
    return rows[0] if rows else []


_CLID = INDEX["clid"]


def _learn_date_order(header: HeaderLayout, path: str) -> None:
    """Take the day/month order of a layout's slashed dates from the whole file, before
    any line is read: one order for all its lines (a first chunk of early days only would
    otherwise be read month first, the rest day first)."""
    if not header.needs_date_order():
        return
    file = LogFile.open(Path(path))
    if file is None:
        return
    try:
        while header.needs_date_order() and (data := file.read(CHUNK)):
            header.learn(data.decode("utf-8", "replace"))
    finally:
        file.close()


class CsvChunks:
    """Parses chunks of an Asterisk CSV file into batches (see :mod:`cdrapi.ingest.files`)."""

    def __init__(self, name: str, lines: LineParser, deriver: Deriver, recovery: Recovery) -> None:
        self.name, self.lines, self.deriver, self.recovery = name, lines, deriver, recovery
        self._skip_first = False
        self._warned_dates = False

    def start_file(self, first_line: bytes, path: str) -> None:
        self.lines.forget()
        self._warned_dates = False
        text = first_line.decode("utf-8", "replace").rstrip("\r\n").lstrip("\ufeff")
        self._skip_first = self.lines.read_header(text)
        header = self.lines.header
        if isinstance(header, HeaderLayout):
            _learn_date_order(header, path)

    def parse(self, data: bytes, first_line: int) -> Batch:
        try:
            text, clean = data.decode("utf-8"), True
        except UnicodeDecodeError:
            text, clean = data.decode("utf-8", "surrogateescape"), False
        if first_line == 1 and text.startswith("\ufeff"):
            text = text[1:]  # a byte order mark: not part of the first field
        header = self.lines.header
        if isinstance(header, HeaderLayout):
            header.learn(text)
        lines = text.split("\n")
        if lines[-1] == "":
            lines.pop()
        start = 1 if first_line == 1 and self._skip_first else 0
        batch = Batch(lines=len(lines) - start)  # a header row is no line of calls
        try:
            self._fast(lines, start, first_line, clean, batch)
        except csv.Error:
            batch = Batch(lines=len(lines) - start)
            for i in range(start, len(lines)):
                self._one(lines[i], first_line + i, clean, batch)
        if isinstance(header, HeaderLayout) and header.guessed and not self._warned_dates:
            self._warned_dates = True
            batch.warnings.insert(0, Reject(
                self.name, first_line + start,
                "dates like 07/01/2026 read month first (MM/DD/YYYY): no day over 12 in "
                "the file says otherwise; check the times", b"",
            ))  # fmt: skip
        self.recovery.track_batch(batch)
        batch.directions = self.deriver.take_signs()
        return batch

    def _fast(self, lines: list[str], start: int, first: int, clean: bool, batch: Batch) -> None:
        reader = csv.reader(lines[start:] if start else lines)
        rows, layout_of, row_of = batch.rows, self.lines.layout, self.deriver.row
        warnings = batch.warnings
        nulls = self.lines.fixed is not None or self.lines.header is not None
        width, make = -1, None  # the layout of the line before, as in LineParser.cdr
        previous = 0
        for fields in reader:
            number = reader.line_num
            if number != previous + 1:  # a quote ran over line ends: take lines one by one
                for k in range(previous, number):
                    self._one(lines[start + k], first + start + k, clean, batch)
                previous, width = number, -1  # the parser's last layout may have changed
                continue
            previous = number
            if not fields:
                continue
            line = lines[start + number - 1]
            if not clean and not line.isascii():
                fields = decode_fields(fields)
            if nulls and ("NULL" in line or "\\N" in line):
                fields = unquoted_nulls(line, fields)
            if len(fields) != width or make is None:
                found = layout_of(fields)
                if isinstance(found, str):
                    self._reject(batch, line, first + start + number - 1, found, fields)
                    continue
                width, make = len(fields), found
            cdr = make(fields)
            try:
                rows.append(row_of(cdr))
            except ValueError as exc:
                self._reject(batch, line, first + start + number - 1, str(exc))
                continue
            if cdr[_CLID].count('"') & 1:  # quotes that do not pair: stored, but reported
                warnings.append(self._broken_clid(line, first + start + number - 1, cdr[_CLID]))

    def _one(self, line: str, number: int, clean: bool, batch: Batch) -> None:
        fields = split_line(line)
        if isinstance(fields, str):
            self._reject(batch, line, number, fields)
            return
        if not fields:
            return
        if not clean:
            fields = decode_fields(fields)
        if (self.lines.fixed is not None or self.lines.header is not None) and (
            "NULL" in line or "\\N" in line
        ):
            fields = unquoted_nulls(line, fields)
        cdr = self.lines.cdr(fields)
        if isinstance(cdr, str):
            self._reject(batch, line, number, cdr, fields)
            return
        try:
            batch.rows.append(self.deriver.row(cdr))
        except ValueError as exc:
            self._reject(batch, line, number, str(exc))
            return
        if cdr[_CLID].count('"') & 1:
            batch.warnings.append(self._broken_clid(line, number, cdr[_CLID]))

    def _broken_clid(self, line: str, number: int, clid: str) -> Reject:
        raw = line.encode("utf-8", "surrogateescape")
        reason = f"caller id {clid!r}: its quotes do not pair; stored as written"
        return Reject(self.name, number, reason, raw)

    def _reject(
        self, batch: Batch, line: str, number: int, reason: str, fields: Sequence[str] = ()
    ) -> None:
        """Reject ``line``; ``fields`` when it is no CDR layout (to say what it looks like)."""
        if fields:
            hint = other_source(line, fields)
            if hint:
                reason = f"{reason}: {hint}"
        raw = line.encode("utf-8", "surrogateescape")
        batch.rejects.append(Reject(self.name, number, reason, raw))


def ingest_csv(
    engine: Engine,
    paths: Sequence[str | Path],
    options: Options | None = None,
    *,
    follow: bool = False,
    gmt: bool = False,
    columns: str | None = None,
) -> Summary:
    """Import Asterisk CSV files (any layout above) into the store at ``engine``.

    Each file resumes after its checkpoint (``options.from_start`` ignores it). With
    ``follow``, the files are tailed until ``options.stop`` is set. ``gmt``: the file's
    times are UTC (cdr_csv ``usegmtime``) and are converted to the configured time zone.
    """
    options = options or Options()
    renames, layout = parse_columns_option(columns)
    store = options.prepare(engine)
    rejects = options.reject_file()
    with store.bulk_load() if not follow else nullcontext(False) as empty:
        # Into an empty store, earlier missed calls can only be in this run (tracked here).
        recovery = options.recovery(in_store=not empty)
        sources = [
            FileSource(
                Path(path),
                "csv",
                CsvChunks(str(path), LineParser(renames, layout), options.deriver(gmt), recovery),
            )
            for path in paths
        ]
        try:
            return run_files(
                store,
                sources,
                follow=follow,
                rejects=rejects,
                summary=Summary(),
                after=queue_fields_for_new_calls(store),
                from_start=options.from_start,
                stop=options.stop,
                on_batch=options.progress,
                producer=True,
            )
        finally:
            rejects.close()
