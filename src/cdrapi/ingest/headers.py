"""Header rows of CSV exports: which column holds which raw CDR field.

A header CSV names its columns in its first row. The names are matched *normalised*
(:func:`norm`: lower case, a parenthesised unit such as ``(s)`` dropped, then letters and
digits only), the same way for the header and for the names in the tables here, so
``CallerID Number``, ``callerid_number`` and ``CALLERID-NUMBER`` are one name.

Two tables decide:

- :data:`~cdrapi.ingest.vendors.FORMATS`: the exports of the PBXs users run, each
  recognised by a few columns that only it has (its *signature*), with its own meaning
  for names other exports use differently (Grandstream's ``Call Time`` is a duration,
  3CX's the start) and the value fixes it needs (status words, times like
  ``07/01/2026 10:00:00``, ``Name <101>`` in a number column, ring + talk time);
- :data:`ALIASES`: every other header: the Asterisk names (``asteriskcdrdb.cdr``,
  cdr.conf) and common spellings (``Start Time``, ``Caller Number``...).

Two columns giving one field is a :class:`~cdrapi.ingest.errors.LayoutError` that names
both (never "the later wins"); ``--columns "Header=field"`` renames a column and
``--columns "Header="`` ignores one.

With ``[fields]`` (:mod:`cdrapi.ingest.crm_fields`), the columns it names that are no raw
CDR field (``extra``) are found by the name a ``--columns`` rename gives a column, else by
their header name (normalised as above), whether or not a CDR field reads them too, and
their values follow the raw CDR (``""`` for a column the header lacks).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from contextlib import suppress
from operator import itemgetter

from cdrapi.ingest.cdr import CDR_FIELDS, CDR_INDEX, is_datetime
from cdrapi.ingest.derive import seconds
from cdrapi.ingest.errors import LayoutError
from cdrapi.ingest.vendors import FORMATS, RING, Format, norm

__all__ = [
    "ALIASES", "HeaderLayout", "Layout", "column_layout", "header_layout", "unquoted_nulls",
    "with_extra",
]  # fmt: skip

Layout = Callable[[list[str]], Sequence[str]]


def _table(spec: dict[str, str]) -> dict[str, str]:
    return {norm(name): target for target, names in spec.items() for name in names.split(",")}


# field -> header names (comma separated, normalised when the table is built)
ALIASES: dict[str, str] = {name: name for name in CDR_FIELDS} | _table({
    "start": "calldate,starttime,startdate,start,datetime,callstart,start_stamp,"
    "start_timestamp,time_start,call_start",
    "answer": "answertime,answered,answerdate,answer_stamp,answer_timestamp,time_answered",
    "end": "endtime,enddate,hanguptime,callend,end_stamp,end_timestamp,time_end",
    "clid": "callerid,clid,caller_id",
    "src": "source,callernumber,callerid_number,caller_id_number,from,fromnumber,caller,"
    "srcnumber,from_no",
    "dst": "destination,calleenumber,callednumber,dialednumber,to,tonumber,callee,"
    "destination_number,to_no",
    "dcontext": "context,destinationcontext",
    "channel": "sourcechannel,srcchannel,src. channel",
    "dstchannel": "destinationchannel,dstchannel,dest channel,dst. channel",
    "lastapp": "application,lastapplication,app",
    "lastdata": "lastapplicationdata,appdata,applicationdata",
    "duration": "totalduration,durationsec,durationseconds,call duration",
    "billsec": "billableseconds,billsecs,talktime,billduration,billableduration,"
    "talkduration,billable",
    "disposition": "status,callstatus,result",
    "amaflags": "ama,ama flags",
    "accountcode": "account,account code",
    "uniqueid": "callid,unique id",
    "userfield": "user field",
    "did": "inbounddid,didnumber,did_number",
    "recordingfile": "recording,recordingfilename,recording file",
    "cnam": "callername,caller_id_name",
    "linkedid": "linkid,linked id",
    "sequence": "seq",
    "hangupcause": "hangup_cause",
    "srctrunk": "source trunk,src_trunk_name,srctrunkname",
    "dsttrunk": "destination trunk,dst_trunk_name,dsttrunkname",
    "calltype": "call type,direction",
})  # fmt: skip

_EXTRA = (RING,)
_START, _ANSWER, _END = CDR_INDEX["start"], CDR_INDEX["answer"], CDR_INDEX["end"]
_SRC, _DST, _CNAM = CDR_INDEX["src"], CDR_INDEX["dst"], CDR_INDEX["cnam"]
_DURATION, _BILLSEC, _DISPOSITION = (
    CDR_INDEX["duration"],
    CDR_INDEX["billsec"],
    CDR_INDEX["disposition"],
)
_RING = len(CDR_FIELDS)

# "Maria Ionescu <101>", "\"Maria\" <101>", "Maria Ionescu (101)": a name and a number
_PARTY = re.compile(r'\s*"?(?P<name>[^"<(]*?)"?\s*[<(](?P<number>[^>)]*)[>)]\s*')
# "07/01/2026 10:00:00", "2026/07/01 10:00", "01.07.2026 10:00:00 PM"
_SLASHED = re.compile(
    r"\s*(?P<a>\d{1,4})[/.](?P<b>\d{1,2})[/.](?P<c>\d{2,4})[ T]+"
    r"(?P<h>\d{1,2}):(?P<m>\d{2})(?::(?P<s>\d{2}))?(?:\.\d+)?\s*(?P<ampm>[AaPp][Mm])?\s*"
)
_DAY_FIRST = re.compile(r"\b(1[3-9]|2\d|3[01])[/.](0?[1-9]|1[0-2])[/.]\d{4}\b")
_MONTH_FIRST = re.compile(r"\b(0?[1-9]|1[0-2])[/.](1[3-9]|2\d|3[01])[/.]\d{4}\b")
# Issabel's "125s (2m 5s)"
_SECONDS_TEXT = re.compile(r"\s*(\d+)s\b.*")


class HeaderLayout:
    """The raw CDR of a header CSV's fields: the columns picked in :data:`CDR_FIELDS`
    order, then the format's fixes. ``learn`` reads a chunk's text for the day/month
    order of slashed dates before its lines are parsed."""

    def __init__(self, where: dict[str, int], fmt: Format | None) -> None:
        self.format = fmt
        names = (*CDR_FIELDS, *_EXTRA) if fmt is not None else CDR_FIELDS
        self._get = itemgetter(*(where.get(name, -1) for name in names))
        self._fixed = fmt is not None and bool(
            fmt.statuses or fmt.times or fmt.parties or fmt.seconds_text or RING in where
        )
        self._ring = RING in where
        self.day_first: bool | None = None  # slashed dates: unknown until learnt
        self.guessed = False  # a slashed date was read month first without evidence

    def __call__(self, fields: list[str]) -> Sequence[str]:
        fields.append("")
        values: tuple[str, ...] = self._get(fields)
        if not self._fixed:
            return values if self.format is None else values[: len(CDR_FIELDS)]
        out = list(values)
        self._fix(out)
        del out[len(CDR_FIELDS) :]
        return out

    def needs_date_order(self) -> bool:
        """Whether this layout rewrites slashed dates and their order is not known yet."""
        return self.day_first is None and self.format is not None and bool(self.format.times)

    def learn(self, text: str) -> None:
        """Take the day/month order of slashed dates from ``text`` (once found)."""
        if self.needs_date_order():
            if _DAY_FIRST.search(text):
                self.day_first = True
            elif _MONTH_FIRST.search(text):
                self.day_first = False

    def _fix(self, out: list[str]) -> None:
        fmt = self.format
        assert fmt is not None
        if fmt.statuses:
            status = fmt.statuses.get(out[_DISPOSITION].strip().upper())
            if status:
                out[_DISPOSITION] = status
        if fmt.times:
            for i in (_START, _ANSWER, _END):
                if out[i] and not is_datetime(out[i]):
                    out[i] = self._time(out[i])
        if fmt.parties:
            for i in (_SRC, _DST):
                party = _PARTY.fullmatch(out[i])
                if party:
                    out[i] = party["number"].strip()
                    if i == _SRC and party["name"].strip() and not out[_CNAM]:
                        out[_CNAM] = party["name"].strip()
        if fmt.seconds_text:
            for i in (_DURATION, _BILLSEC):
                plain = _SECONDS_TEXT.fullmatch(out[i])
                if plain:
                    out[i] = plain[1]
            if not out[_DURATION]:
                out[_DURATION] = out[_BILLSEC]
        if self._ring and not out[_DURATION]:
            with suppress(ValueError):  # derivation names the bad value
                out[_DURATION] = str(seconds(out[_BILLSEC]) + seconds(out[_RING]))

    def _time(self, value: str) -> str:
        """``07/01/2026 10:00:00 PM`` (in the file's day/month order) -> ISO, or the
        value as it was (derivation then rejects it by name)."""
        m = _SLASHED.fullmatch(value)
        if m is None:
            return value
        a, b, c = m["a"], m["b"], m["c"]
        if len(a) == 4:
            year, month, day = a, b, c
        elif len(c) == 4:
            if self.day_first is None:
                self.guessed = self.guessed or (int(a) <= 12 and int(b) <= 12)
            day, month = (a, b) if self.day_first else (b, a)
            year = c
        else:
            return value
        hour = int(m["h"])
        if m["ampm"]:
            hour = hour % 12 + (12 if m["ampm"].lower() == "pm" else 0)
        second = m["s"] or "00"
        return f"{year}-{int(month):02d}-{int(day):02d} {hour:02d}:{m['m']}:{second}"


class _MappedHeader(HeaderLayout):
    """A header layout whose raw CDRs end with the values of the columns at ``extra``
    (``-1``: the header has no such column)."""

    def __init__(self, where: dict[str, int], fmt: Format | None, extra: Sequence[int]) -> None:
        super().__init__(where, fmt)
        self._extra = _picker(extra)

    def __call__(self, fields: list[str]) -> Sequence[str]:
        values = super().__call__(fields)  # it appends "": -1 picks that
        return (*values, *self._extra(fields))


def _picker(indexes: Sequence[int]) -> Callable[[list[str]], tuple[str, ...]]:
    """The values at ``indexes`` of a line's fields, as a tuple."""
    if len(indexes) == 1:
        only = indexes[0]
        return lambda fields: (fields[only],)
    return itemgetter(*indexes)


def with_extra(make: Layout, indexes: Sequence[int]) -> Layout:
    """``make``, its raw CDRs followed by the fields at ``indexes`` of the line (``-1``:
    none; ``make`` must be one that appends an empty field: :func:`column_layout`'s
    picking one)."""
    pick = _picker(indexes)

    def extended(fields: list[str]) -> Sequence[str]:
        return (*make(fields), *pick(fields))

    return extended


def column_layout(names: Sequence[str | None]) -> Layout:
    """A function from a line's fields (as many as ``names``) to a raw CDR: the list
    itself, padded, when the names are the first fields (cdr_csv with ``uniqueid`` and
    ``newcdrcolumns``), else a tuple picked from it."""
    if tuple(names) == CDR_FIELDS[: len(names)]:
        padding = [""] * (len(CDR_FIELDS) - len(names))

        def padded(fields: list[str]) -> list[str]:
            fields.extend(padding)
            return fields

        return padded
    where = {name: i for i, name in enumerate(names) if name}
    getter = itemgetter(*(where.get(name, -1) for name in CDR_FIELDS))

    def make(fields: list[str]) -> tuple[str, ...]:
        fields.append("")
        values: tuple[str, ...] = getter(fields)
        return values

    return make


def _format_of(keys: set[str]) -> Format | None:
    found = [f for f in FORMATS if all(s in keys for s in f.signature)]
    return max(found, key=lambda f: sum(k in f.columns for k in keys), default=None)


def header_layout(
    names: Sequence[str], renames: dict[str, str] | None = None, extra: Sequence[str] = ()
) -> Layout | None:
    """The layout a header row gives, or ``None`` when it is not a header of CDR
    columns. ``renames``: header -> field (``""``: ignore the column), over the tables.
    ``extra``: more columns whose values follow the raw CDR (``[fields]``'s).

    Raises LayoutError when two columns give one field."""
    renamed = {norm(k): v for k, v in (renames or {}).items()}
    keys = [norm(name) for name in names]
    fmt = _format_of(set(keys))
    where: dict[str, int] = {}
    for i, key in enumerate(keys):
        if key in renamed:
            target: str | None = renamed[key] or None
        elif fmt is not None and key in fmt.columns:
            target = fmt.columns[key]
        else:
            target = ALIASES.get(key)
        if target is None:
            continue
        if target in where:
            raise LayoutError(
                f"columns {names[where[target]]!r} and {names[i]!r} both hold {target}: "
                f'rename or ignore one with --columns "{names[i]}=<field>" or '
                f'"{names[i]}="'
            )
        where[target] = i
    if "start" not in where or len(where) < 3 or any(is_datetime(n) for n in names):
        return None
    if extra:
        indexes = _extra_columns(keys, renamed, extra)
        if any(i >= 0 for i in indexes):
            return _MappedHeader(where, fmt, indexes)
    return HeaderLayout(where, fmt)


def _extra_columns(keys: list[str], renamed: dict[str, str], extra: Sequence[str]) -> list[int]:
    """Where each of ``extra`` is among the (normalised) header ``keys``: the column a
    rename gives its name, else the column of that name; ``-1`` when there is none."""
    given = [norm(renamed.get(key) or "") for key in keys]
    out = []
    for name in map(norm, extra):
        if not name:
            out.append(-1)
            continue
        found = next((i for i, key in enumerate(given) if key == name), -1)
        if found < 0:
            found = next((i for i, key in enumerate(keys) if key == name), -1)
        out.append(found)
    return out


def unquoted_nulls(line: str, fields: list[str]) -> list[str]:
    """``fields`` with each *unquoted* ``NULL`` / ``\\N`` of ``line`` made empty (the csv
    module does not tell quoted from unquoted: the line is walked again, field starts
    only, for the few lines that have such a value)."""
    if "NULL" not in fields and "\\N" not in fields:
        return fields
    quoted: list[bool] = []
    i, n = 0, len(line)
    while True:
        if i < n and line[i] == '"':
            quoted.append(True)
            i += 1
            while i < n:  # to the closing quote ("" is a quote inside)
                if line[i] == '"':
                    if line.startswith('"', i + 1):
                        i += 2
                        continue
                    break
                i += 1
        else:
            quoted.append(False)
        i = line.find(",", i)
        if i < 0:
            break
        i += 1
    if len(quoted) != len(fields):
        return fields  # a quote over line ends: leave the values as they are
    return [
        "" if not q and (v == "NULL" or v == "\\N") else v
        for v, q in zip(fields, quoted, strict=True)
    ]
