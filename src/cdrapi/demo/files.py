"""The demo PBX's own files, as Asterisk writes them (``cdrapi demo --write-files DIR``).

:class:`PbxFiles` is the :class:`~cdrapi.demo.records.Pbx` that writes, for each call
the demo makes, what the PBX logged of it, so that ``cdrapi ingest`` can read the demo's
data as it reads a real PBX's:

- ``Master.csv``: cdr_csv's default layout with ``loguniqueid``, ``loguserfield`` and
  ``newcdrcolumns`` (21 columns: ``accountcode, src, dst, dcontext, clid, channel,
  dstchannel, lastapp, lastdata, start, answer, end, duration, billsec, disposition,
  amaflags, uniqueid, userfield, peeraccount, linkedid, sequence``; text quoted, the
  numbers not), one line a leg, in the order of the demo's records (by start time).
  The columns a FreePBX site adds (``did``, ``recordingfile``, ``dialstatus``,
  ``hangupcause``) are not in this layout.
- ``cel.csv``: cel_custom's sample template (``eventtype, eventtime, CALLERID(name),
  CALLERID(num), CALLERID(ANI), CALLERID(RDNIS), CALLERID(DNID), exten, context,
  channame, appname, appdata, amaflags, accountcode, uniqueid, linkedid, peer,
  userfield``) with ``${eventextra}`` as a 19th column, every field quoted, in time
  order.
- ``queue_log``: Asterisk's pipe format (``epoch|callid|queue|agent|event|data...``),
  in time order.
- ``cdrapi.toml``: the settings and directory the demo derives with (its projects,
  users, queues, trunks and inbound routes, ``timezone``, ``public_url``), for
  ``--config``: ingestion names people and routes from it.

Lines are written day by day (the demo makes a day's calls, then the next's): a day's
lines are sorted by time once the day is made, and those from its midnight on (the legs
and events of calls still going) wait for the next day's.
"""

from __future__ import annotations

import json
from bisect import bisect_left
from operator import itemgetter
from pathlib import Path
from typing import IO, Any

from cdrapi.demo import directory
from cdrapi.demo.derivation import ZONE
from cdrapi.demo.events import Cel, QueueEvent
from cdrapi.demo.shape import PUBLIC_URL

__all__ = ["FILES", "PbxFiles", "config_text"]

#: The files :class:`PbxFiles` writes, by what they hold.
FILES = {"cdr": "Master.csv", "cel": "cel.csv", "queue_log": "queue_log", "config": "cdrapi.toml"}

_KEY = itemgetter(0)
_NUMBERS = frozenset((12, 13, 20))  # duration, billsec, sequence: unquoted in cdr_csv
_CDR_COLUMNS = range(21)  # cdr_csv's 21 columns are CDR_FIELDS' first


def _csv_field(value: str) -> str:
    return '"' + value.replace('"', '""') + '"' if '"' in value else f'"{value}"'


def _cdr_line(cdr: tuple[str, ...]) -> str:
    """A raw CDR as cdr_csv writes it."""
    return ",".join(cdr[i] if i in _NUMBERS else _csv_field(cdr[i]) for i in _CDR_COLUMNS) + "\n"


def _cel_line(event: Cel, linkedid: str) -> str:
    """A CEL event as cel_custom's sample template (and ``${eventextra}``) writes it."""
    t, kind, chan, uid, app, data, exten, context, num, peer, extra = event
    fields = (kind, t, "", num, num, "", "", exten, context, chan, app, data,
              "DOCUMENTATION", "", uid, linkedid, peer, "", extra)  # fmt: skip
    return ",".join(map(_csv_field, fields)) + "\n"


def _queue_line(event: QueueEvent) -> str:
    """A queue_log event as Asterisk writes it."""
    epoch, callid, queue, agent, name, data = event
    return f"{epoch}|{callid}|{queue}|{agent}|{name}|{'|'.join(data)}\n"


class _Lines:
    """One file's lines by their sort key, handed out day by day (see the module)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle: IO[str] | None = None
        self.made: list[tuple[Any, str]] = []  # this day's, in the order they were made
        self.previous: list[tuple[Any, str]] | None = None
        self.midnight: Any = None  # where the previous day ends

    def day(self, midnight: Any) -> None:
        """A day is made (it ends at ``midnight``): the previous day's lines are written,
        but those from its own end on, which join this day's."""
        made, self.made = self.made, []
        if self.previous is not None:
            made.extend(self._after(self.previous, self.midnight))
            self._write(self.previous)
        self.previous, self.midnight = made, midnight

    def end(self) -> None:
        """Write the last day's lines, and close the file."""
        if self.previous is not None:
            after = self._after(self.previous, self.midnight)
            self._write(self.previous)
            self._write(after)
            self.previous = None
        if self.handle is None:
            self.handle = self.path.open("a", encoding="utf-8", newline="")
        self.handle.close()

    @staticmethod
    def _after(lines: list[tuple[Any, str]], midnight: Any) -> list[tuple[Any, str]]:
        lines.sort(key=_KEY)  # stable: lines of one time stay in the order they were made
        cut = bisect_left(lines, midnight, key=_KEY)
        after = lines[cut:]
        del lines[cut:]
        return after

    def _write(self, lines: list[tuple[Any, str]]) -> None:
        if self.handle is None:  # opened by the process that makes the calls
            self.handle = self.path.open("a", encoding="utf-8", newline="")
        self.handle.write("".join(line for _, line in lines))


class PbxFiles:
    """Writes the demo PBX's files under ``root`` (see the module's docstring).

    Made before the run: the directory is created and the files emptied (so that a
    directory that cannot be written is told before any call is made); the process
    that makes the calls opens them at its first line and closes them at :meth:`end`.
    """

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        for name in FILES.values():
            (root / name).write_bytes(b"")
        (root / FILES["config"]).write_text(config_text(), encoding="utf-8")
        self.cdr = _Lines(root / FILES["cdr"])
        self.cel = _Lines(root / FILES["cel"])
        self.queue_log = _Lines(root / FILES["queue_log"])

    def call(self, cdrs: list[tuple[str, ...]], cel: list[Cel], log: list[QueueEvent]) -> None:
        """One call's lines, kept until its day is made."""
        cdr_line, cel_line = self.cdr.made.append, self.cel.made.append
        queue_line = self.queue_log.made.append
        for cdr in cdrs:
            cdr_line((cdr[9], _cdr_line(cdr)))
        linkedid = cdrs[0][19]
        for event in cel:
            cel_line((event[0], _cel_line(event, linkedid)))
        for logged in log:
            queue_line((logged[0], _queue_line(logged)))

    def day(self, midnight: str, epoch: int) -> None:
        """A day's calls are made (see :meth:`_Lines.day`)."""
        self.cdr.day(midnight)
        self.cel.day(f"{epoch}")
        self.queue_log.day(epoch)

    def end(self) -> None:
        """The run is over: the last lines written, the files closed."""
        for lines in (self.cdr, self.cel, self.queue_log):
            lines.end()


def config_text() -> str:
    """``cdrapi.toml``: the demo's settings and directory, as ``--config`` reads them."""
    lines = [
        "# The settings and directory of cdrapi's demo PBX (cdrapi demo --write-files):",
        "# give it to cdrapi ingest with --config so that calls get their names.",
        f"timezone = {json.dumps(ZONE.key)}",
        f"public_url = {json.dumps(PUBLIC_URL)}",
        "recovered_window = 24",
    ]
    for table, rows in directory.rows().items():
        for row in rows:
            lines.append(f"\n[[{table}]]")
            lines.extend(f"{key} = {json.dumps(value, ensure_ascii=False)}"
                         for key, value in row.items() if value is not None)  # fmt: skip
    return "\n".join(lines) + "\n"
