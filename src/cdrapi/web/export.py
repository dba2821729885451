"""Export of the call log's current search: ``GET /export.csv`` and ``GET /export.xlsx``.

The query string is the call log's (:mod:`cdrapi.web.searchform`), plus ``columns``:
``all`` (the default) gives the 43 fields of ``/api/cdr``'s record, one row per leg, the
same keys and values (times in the PBX's zone, as stored; ``null`` an empty cell);
``shown`` gives the columns the call log shows, one row per call or, with ``view=legs``,
per leg. Rows come newest first, as on the page, narrowed to the account's scope
(:func:`~cdrapi.web.auth.scoped`). Without a session: the sign-in form, back here after.

- CSV (UTF-8 with a byte order mark, so Excel reads it as such; CRLF line ends) is
  streamed as it is read: the store is walked by key a chunk at a time
  (:class:`~cdrapi.store.export.ExportReader`), the next chunks read while the last is
  sent; memory is a few chunks whatever the size of the search, nothing is written to
  disk. For ``all`` the database writes each chunk's lines as one string
  (:func:`~cdrapi.store.export.csv_line`), two chunks at once on threads and connections
  of the export's own (a core each on SQLite), sent in order as they come: no Python
  value a record. A client that goes away stops the reads at once.
- XLSX is written with XlsxWriter's ``constant_memory`` mode into a temporary file
  (removed once sent), and stops at Excel's :data:`XLSX_ROWS` rows, header included:
  the last row then says so, and the response's ``X-Export-Cut`` header gives how many
  records of how many are in the file.

Formulas are neutralised: a spreadsheet runs a cell starting with ``=``, ``+``, ``-`` or
``@`` (and tab or carriage return) as a formula. In CSV such a value gets a leading
apostrophe (``'+40721...``), as OWASP advises; so that this stays reversible, a value that
already starts with an apostrophe followed by one of them gets one too. To get the stored
value back, remove one leading apostrophe from a cell that starts with an apostrophe, an
optional second one, then ``= + - @`` TAB or CR. In XLSX every text is written as a
string cell, never a formula, and those cells also carry Excel's "quote prefix" (text,
even once edited): their values stay exactly the stored ones.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import re
import tempfile
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

import xlsxwriter  # type: ignore[import-untyped]
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from cdrapi.protocol.filters import CallFilters
from cdrapi.protocol.records import RECORD_KEYS, record
from cdrapi.settings import Settings
from cdrapi.store.calllog import CallLog, Key, LogRow
from cdrapi.store.engine import StoreError
from cdrapi.store.executor import StoreExecutor
from cdrapi.store.export import Edge, ExportReader
from cdrapi.web.auth import scoped, templates
from cdrapi.web.calllog import signed_in, store_unavailable
from cdrapi.web.searchform import SearchForm, read_form
from cdrapi.web.shown import caller_name, direction_label, duration, pbx_now, status_label

__all__ = ["CSV_CHUNK", "SHOWN_COLUMNS", "XLSX_ROWS", "export_routes", "neutral"]

#: Records of a CSV export read at a time (about 1.5 MB of text for 43 fields; two being
#: written, one waiting and one being sent at most).
CSV_CHUNK = 2_500
#: Excel's rows per sheet, the header included (tests make it small).
XLSX_ROWS = 1_048_576
#: The call log's columns (``Legs``: grouped by call only).
SHOWN_COLUMNS = (
    "Time", "Direction", "From", "Caller name", "To", "User", "Queue", "Status",
    "Wait", "Ring", "Talk", "Recording", "Transcription", "Legs",
)  # fmt: skip

_TRIGGERS = frozenset("=+-@\t\r")
_FIELD_START = re.compile(rb",\"(?=[=+\-@\t\r]|'[=+\-@\t\r])")  # see csv_line
_CSV = "text/csv; charset=utf-8"
_XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_NO_STORE = {"Cache-Control": "no-store"}
_SHOWN_CHUNK = 50  # the call log's page: one read of it per chunk


def neutral(value: str) -> str:
    """``value`` as a CSV cell no spreadsheet runs as a formula (see the module's text)."""
    if value and (
        value[0] in _TRIGGERS or (value[0] == "'" and len(value) > 1 and value[1] in _TRIGGERS)
    ):
        return "'" + value
    return value


def _file_name(form: SearchForm, extension: str) -> str:
    start, end = form.values.get("from", ""), form.values.get("to", "")
    dates = f"{start or 'start'}_to_{end or 'now'}" if start or end else "all"
    safe = re.sub(r"[^0-9A-Za-z_.-]", "", dates)
    return f"calls_{safe}.{extension}"


def _disposition(name: str) -> dict[str, str]:
    return {**_NO_STORE, "Content-Disposition": f'attachment; filename="{name}"'}


def _shown_cells(row: LogRow, grouped: bool) -> list[Any]:
    cells: list[Any] = [
        row.time,
        direction_label(row.direction),
        row.source,
        caller_name(row.caller_id, row.source),
        row.destination,
        row.user,
        row.queue,
        status_label(row.status),
        duration(row.wait),
        duration(row.ring),
        duration(row.talk),
        "yes" if row.recorded else "",
        "yes" if row.transcribed else "",
    ]
    if grouped:
        cells.append(row.legs)
    return cells


def _shown_header(grouped: bool) -> list[str]:
    return list(SHOWN_COLUMNS if grouped else SHOWN_COLUMNS[:-1])


class _Search:
    """One export's reads, on the store's threads: records, or the call log's rows."""

    def __init__(
        self,
        reader: ExportReader,
        log: CallLog,
        database: StoreExecutor,
        filters: CallFilters,
        form: SearchForm,
    ) -> None:
        self.reader, self.log, self.database = reader, log, database
        self.filters, self.grouped = filters, form.grouped

    async def matches(self) -> int:
        return await self.database.run(self.reader.count, self.filters)

    def csv_texts(self, matches: int) -> AsyncGenerator[bytes, None]:
        """The records as CSV text (UTF-8), :data:`CSV_CHUNK` at a time, each chunk one
        string the database wrote, its formulas neutralised on the thread that read it;
        the next ones are written meanwhile (:meth:`ExportReader.csv_texts`)."""
        return self.reader.csv_texts(self.filters, matches, CSV_CHUNK, _neutralised)

    async def records(self, matches: int) -> AsyncGenerator[list[list[Any]], None]:
        """The records' values (``record``'s), a chunk at a time."""
        edge = None
        while True:
            rows = await self.database.run(self.reader.chunk, self.filters, edge, matches)
            if not rows:
                return
            edge = Edge.of(rows[-1])
            yield [list(record(row).values()) for row in rows]

    async def shown(self) -> AsyncGenerator[list[list[Any]], None]:
        """The call log's rows, page after page by key, as cells."""
        bound: Key | None = None
        number = 1
        while True:
            page = await self.database.run(self._page, bound, number)
            rows = [row for row in page.rows if bound is None or Key(row.time, row.id) < bound]
            if not rows:  # past the end (the log answers its last page again)
                return
            yield [_shown_cells(row, self.grouped) for row in rows]
            if not page.has_next:
                return
            bound, number = Key(rows[-1].time, rows[-1].id), number + 1

    def _page(self, bound: Key | None, number: int) -> Any:
        return self.log.page(self.filters, grouped=self.grouped, after=bound, number=number)


def _neutralised(text: bytes) -> bytes:
    """CSV lines of :func:`~cdrapi.store.export.csv_line` with each field that starts as a
    formula given its apostrophe (one scan when none does, as is usual)."""
    if _FIELD_START.search(text) is None:
        return text
    return _FIELD_START.sub(b",\"'", text)


def _csv_text(rows: list[list[Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerows([neutral(c) if isinstance(c, str) else c for c in row] for row in rows)
    return out.getvalue().encode()


async def _csv_body(search: _Search, columns: str) -> AsyncGenerator[bytes, None]:
    if columns == "all":
        matches = await search.matches()
        yield ("\ufeff" + ",".join(RECORD_KEYS) + "\r\n").encode()
        async with aclosing(search.csv_texts(matches)) as texts:
            async for text in texts:
                yield text
    else:
        yield ("\ufeff" + ",".join(_shown_header(search.grouped)) + "\r\n").encode()
        async for rows in search.shown():
            yield _csv_text(rows)


class _Streamed(StreamingResponse):
    """A streamed body closed as soon as the response ends, sent whole or not: when the
    client goes away, the export's reads stop then (not once the generator is collected)."""

    def __init__(self, body: AsyncGenerator[bytes, None], **options: Any) -> None:
        super().__init__(body, **options)
        self.parts = body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.parts.aclose()


class _Sheet:
    """An XLSX file being written in constant memory, stopping at :data:`XLSX_ROWS`."""

    def __init__(self, path: str, header: list[str]) -> None:
        self.workbook = xlsxwriter.Workbook(
            path, {"constant_memory": True, "strings_to_numbers": False, "in_memory": False}
        )
        self.sheet = self.workbook.add_worksheet("Calls")
        self.text = self.workbook.add_format({"quote_prefix": True})
        self.sheet.write_row(0, 0, header)
        self.row = 1  # the next row's number
        self.written = 0  # records
        self.held: list[Any] | None = None  # the one that would fill the last row

    def add(self, cells: list[Any]) -> bool:
        """Write a record; False once the sheet is full (that record was not written)."""
        if self.held is not None:
            return False
        if self.row == XLSX_ROWS - 1:  # the last row: a record only if it is the last one
            self.held = cells
            return True
        self._write(cells)
        return True

    def _write(self, cells: list[Any]) -> None:
        sheet, row = self.sheet, self.row
        for column, value in enumerate(cells):
            if value is None or value == "":
                continue
            if isinstance(value, str):
                text = self.text if value[0] in _TRIGGERS else None
                sheet.write_string(row, column, value, text)
            else:
                sheet.write_number(row, column, value)
        self.row += 1
        self.written += 1

    def close(self, more: bool, matches: int | None) -> str | None:
        """Finish the file; ``more``: records were left out. The ``X-Export-Cut`` text."""
        cut = None
        if more:
            total = f"{matches:,}" if matches is not None else "more"
            cut = f"{self.written} of {matches if matches is not None else 'more'}"
            message = (
                f"Cut here: an Excel sheet holds {XLSX_ROWS:,} rows; this file has the "
                f"newest {self.written:,} of {total} records. Narrow the search, or export "
                "CSV for all of them."
            )
            self.sheet.write_string(self.row, 0, message)
        elif self.held is not None:
            self._write(self.held)
        self.workbook.close()
        return cut


def _write_chunk(sheet: _Sheet, rows: list[list[Any]]) -> bool:
    """Write ``rows``; False once the sheet is full."""
    return all(sheet.add(cells) for cells in rows)


async def _xlsx_file(search: _Search, columns: str, path: str) -> str | None:
    matches: int | None = None
    chunks: AsyncGenerator[list[list[Any]], None]
    if columns == "all":
        matches = await search.matches()
        header, chunks = list(RECORD_KEYS), search.records(matches)
    else:
        header, chunks = _shown_header(search.grouped), search.shown()
    sheet = await asyncio.to_thread(_Sheet, path, header)
    more = False
    try:
        async for rows in chunks:
            if not await asyncio.to_thread(_write_chunk, sheet, rows):
                more = True
                break
    finally:
        await chunks.aclose()
    return await asyncio.to_thread(sheet.close, more, matches)


def export_routes(settings: Settings, database: StoreExecutor) -> list[Route]:
    """``GET /export.csv`` and ``GET /export.xlsx`` for the app's store ``database``."""
    reader, log = ExportReader(database.engine), CallLog(database.engine)

    async def start(request: Request) -> tuple[_Search, SearchForm, str] | Response:
        account = await signed_in(request)
        if isinstance(account, Response):
            return account
        params = request.query_params
        form = read_form(params, pbx_now(settings.timezone).date())
        columns = params.get("columns") or "all"
        problems = [f"{name}: {'; '.join(texts)}" for name, texts in form.errors.items()]
        if columns not in ("all", "shown"):
            problems.append(f"columns: all or shown, not {columns}")
        if problems or form.filters is None:
            context = {
                "title": "Cannot export",
                "message": "Fix the search: " + "; ".join(problems),
            }
            return templates.TemplateResponse(request, "message.html", context, 400, _NO_STORE)
        filters = scoped(form.filters, account)
        return _Search(reader, log, database, filters, form), form, columns

    async def export_csv(request: Request) -> Response:
        started = await start(request)
        if isinstance(started, Response):
            return started
        search, form, columns = started
        body = _csv_body(search, columns)
        try:
            first = await body.__anext__()  # a store that cannot be read: a 503 page
        except StoreError:
            return store_unavailable(request)

        async def stream() -> AsyncGenerator[bytes, None]:
            async with aclosing(body):
                yield first
                async for part in body:  # a failure past here cuts the transfer short
                    yield part

        headers = _disposition(_file_name(form, "csv"))
        return _Streamed(stream(), media_type=_CSV, headers=headers)

    async def export_xlsx(request: Request) -> Response:
        started = await start(request)
        if isinstance(started, Response):
            return started
        search, form, columns = started
        handle, path = tempfile.mkstemp(prefix="cdrapi-export-", suffix=".xlsx")
        os.close(handle)
        try:
            cut = await _xlsx_file(search, columns, path)
        except StoreError:
            os.unlink(path)
            return store_unavailable(request)
        except BaseException:
            os.unlink(path)
            raise
        headers = _disposition(_file_name(form, "xlsx"))
        if cut is not None:
            headers["X-Export-Cut"] = cut
        return FileResponse(
            path, media_type=_XLSX, headers=headers, background=BackgroundTask(os.unlink, path)
        )

    return [
        Route("/export.csv", export_csv, methods=["GET"]),
        Route("/export.xlsx", export_xlsx, methods=["GET"]),
    ]
