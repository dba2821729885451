"""Asterisk CSV files into the store: :func:`ingest_csv` and its chunk parser.

Which layout a line has (cdr_csv, cdr_custom, a header CSV export, ``--columns``) and how
its fields are decoded is :mod:`cdrapi.ingest.layouts`'s. :class:`CsvChunks` turns a chunk
of a file into a batch: rows derived from its lines, the lines rejected (file and line
number), and warnings: a caller id whose quotes do not pair (``"Maria <101>``) is stored
as written and reported; slashed dates read month first are said once. A rejected line
that looks like another source's (queue_log, CEL) says which command reads it.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from contextlib import nullcontext
from itertools import repeat
from pathlib import Path

from sqlalchemy import Engine

from cdrapi.ingest.batch import Batch
from cdrapi.ingest.cdr import CDR_INDEX
from cdrapi.ingest.derive import Deriver
from cdrapi.ingest.errors import Reject
from cdrapi.ingest.files import FileSource, run_files
from cdrapi.ingest.headers import HeaderLayout, unquoted_nulls
from cdrapi.ingest.layouts import (
    LineParser,
    decode_fields,
    learn_date_order,
    parse_columns_option,
    split_line,
)
from cdrapi.ingest.lookalikes import other_source
from cdrapi.ingest.queue_fields import queue_fields_for_new_calls
from cdrapi.ingest.recovery import Recovery
from cdrapi.ingest.run import IngestRun
from cdrapi.ingest.summary import Summary

__all__ = ["CsvChunks", "ingest_csv"]

_CLID = CDR_INDEX["clid"]


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
            learn_date_order(header, path)

    def parse(self, data: bytes, first_line: int) -> Batch:
        try:
            text, clean = data.decode("utf-8"), True
            lines = text.split("\n")
        except UnicodeDecodeError:  # some bytes are no UTF-8: kept as surrogates (see _fast)
            # line by line: a chunk decoded whole is text of two bytes a character, the
            # surrogates', and each line split from it is copied back to one (3x the work)
            text, clean = "", False
            lines = list(map(str, data.split(b"\n"), repeat("utf-8"), repeat("surrogateescape")))
        if first_line == 1 and lines[0].startswith("\ufeff"):
            lines[0] = lines[0][1:]  # a byte order mark: not part of the first field
        header = self.lines.header
        if isinstance(header, HeaderLayout):
            header.learn(text or "\n".join(lines))
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
    options: IngestRun | None = None,
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
    options = options or IngestRun()
    fields = options.fields()
    renames, layout = parse_columns_option(columns, fields)
    store = options.prepare(engine)
    rejects = options.reject_file()
    with store.bulk_load() if not follow else nullcontext(False) as empty:
        # Into an empty store, earlier missed calls can only be in this run (tracked here).
        recovery = options.recovery(in_store=not empty)
        sources = [
            FileSource(
                Path(path),
                "csv",
                CsvChunks(
                    str(path), LineParser(renames, layout, fields), options.deriver(gmt), recovery
                ),
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
                after_rows=queue_fields_for_new_calls(store),
                from_start=options.from_start,
                stop=options.stop,
                on_batch=options.progress,
                producer=True,
                recovery=recovery,
            )
        finally:
            rejects.close()
