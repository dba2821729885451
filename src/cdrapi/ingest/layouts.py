"""Asterisk CSV files' layouts: which one a line has, and its fields as a raw CDR.

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
value; a quoted ``"NULL"`` stays text. Importing the lines is
:mod:`cdrapi.ingest.csvfile`'s.

With ``[fields]`` (a :class:`~cdrapi.ingest.crm_fields.FieldMap`), the columns it names
that are no raw CDR field are more names ``--columns`` knows (a layout
``clid,src,...,sequence,external_id``, a rename ``"Client=customer_id"``), and the raw
CDRs of a header CSV or a ``--columns`` layout end with their values (see
:mod:`cdrapi.ingest.crm_fields`); the cdr_csv and cdr_custom default layouts have none
(``userfield`` and ``accountcode`` are raw CDR fields). Without ``[fields]`` nothing here
changes, line by line.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from cdrapi.ingest.cdr import CDR_FIELDS, CDR_INDEX, is_datetime, looks_like_uniqueid
from cdrapi.ingest.crm_fields import FieldMap
from cdrapi.ingest.errors import LayoutError
from cdrapi.ingest.files import CHUNK
from cdrapi.ingest.headers import (
    HeaderLayout,
    Layout,
    column_layout,
    header_layout,
    with_extra,
)
from cdrapi.ingest.logfile import LogFile

__all__ = [
    "CUSTOM",
    "LineParser",
    "decode_fields",
    "learn_date_order",
    "parse_columns_option",
    "split_line",
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


def parse_columns_option(
    value: str | None, fields: FieldMap | None = None
) -> tuple[dict[str, str], tuple[str, ...] | None]:
    """``--columns``: ``"Header=field,..."`` renames, or ``"field,field,..."`` a layout;
    the names of ``fields``' extra columns are fields too."""
    if not value:
        return {}, None
    extra = fields.extra_columns if fields is not None else ()
    known = {*CDR_INDEX, *extra}
    items = [item.strip() for item in value.split(",")]
    if all("=" in item for item in items):
        renames = {}
        for item in items:
            header, _, name = item.partition("=")
            if name.strip() and name.strip() not in known:  # "Header=": ignore it
                raise LayoutError(
                    f"--columns: unknown field {name.strip()!r} (known: {_known(extra)})"
                )
            renames[header.strip()] = name.strip()
        return renames, None
    if any("=" in item for item in items):
        raise LayoutError("--columns: give either Header=field pairs or a list of fields")
    unknown = [item for item in items if item and item not in known]
    if unknown or "start" not in items:
        raise LayoutError(
            f"--columns: unknown field(s) {', '.join(unknown)} (known: {_known(extra)})"
            if unknown
            else "--columns: the layout needs a start column"
        )
    return {}, tuple(items)


def _known(extra: tuple[str, ...] = ()) -> str:
    text = ", ".join(CDR_FIELDS)
    return f"{text}; and [fields]' {', '.join(extra)}" if extra else text


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

    def __init__(
        self,
        renames: dict[str, str] | None = None,
        layout: Sequence[str] | None = None,
        fields: FieldMap | None = None,
    ):
        self.renames = renames or {}
        #: ``[fields]``' columns that are no raw CDR field: their values end the raw CDRs
        self.extra = fields.extra_columns if fields is not None else ()
        self.fixed: Layout | None = _layout(layout) if layout else None
        if self.fixed is not None and layout and self.extra:
            where = [layout.index(name) if name in layout else -1 for name in self.extra]
            if any(i >= 0 for i in where):
                self.fixed = with_extra(self.fixed, where)
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
        layout = header_layout(names, self.renames, self.extra)
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


def learn_date_order(header: HeaderLayout, path: str) -> None:
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
