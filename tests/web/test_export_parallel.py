"""The CSV export's chunks are written several at once, each on a thread and connection of
its own (:meth:`cdrapi.store.export.ExportReader.csv_texts`), and sent in order: on SQLite
and PostgreSQL the text is the same whatever the chunk size and the number of builders
(many chunks in flight, their edges between calls of one second), every record once in
the walk's order while calls are written meanwhile, and a client that goes away midway
leaves no export thread and no connection behind."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, delete, select
from starlette.applications import Starlette

from cdrapi.protocol.filters import CallFilters
from cdrapi.protocol.records import record
from cdrapi.settings import Settings
from cdrapi.store import export as store_export
from cdrapi.store.accounts import create_account
from cdrapi.store.engine import connect
from cdrapi.store.executor import StoreExecutor
from cdrapi.store.export import ExportReader
from cdrapi.store.schema import calls
from cdrapi.web import export
from cdrapi.web.auth import sign_in_routes
from cdrapi.web.export import export_routes
from tests.conftest import serve_app
from tests.data import load, sample_rows

PASSWORD = "correct horse battery"


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = connect(db_url)
    yield engine
    engine.dispose()


def cells(text: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text.decode(), newline="")))


def expected_cells(reader: ExportReader, filters: CallFilters, matches: int) -> list[list[str]]:
    """The search's records as :func:`record` gives them (Python, not the database's
    text), read in one chunk, as CSV cells."""
    rows = reader.chunk(filters, None, matches, size=10**6)
    return [["" if v is None else str(v) for v in record(row).values()] for row in rows]


def read_all(reader: ExportReader, filters: CallFilters, matches: int, size: int) -> bytes:
    async def gather() -> bytes:
        return b"".join([text async for text in reader.csv_texts(filters, matches, size)])

    return asyncio.run(gather())


def test_the_text_is_the_same_whatever_the_chunks_and_builders(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks of 1 to 50 records, 1 to 4 builders (up to 5 chunks in flight), through the
    time index's walk and through sorting, filtered or not: the bytes of one chunk, and
    the records Python makes of the same rows."""
    load(engine, sample_rows(300, seed=11))  # 31 days of about 8 seconds each: many ties
    reader = ExportReader(engine)
    searches = [CallFilters(), CallFilters(direction=["IN", "OUT"], call_status=["ANSWERED"])]
    for walk_from in (0, 10**9):
        monkeypatch.setattr(store_export, "_WALK_FROM", walk_from)
        for filters in searches:
            matches = reader.count(filters)
            whole = reader.csv_range(filters, None, None, matches) + b"\r\n"
            assert cells(whole) == expected_cells(reader, filters, matches)
            for builders in (1, 2, 4):
                monkeypatch.setattr(store_export, "BUILDERS", builders)
                for size in (1, 2, 7, 50, matches, matches + 1):
                    found = read_all(reader, filters, matches, size)
                    assert found == whole, (walk_from, filters, builders, size)


def test_every_record_once_while_calls_are_written(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Midway through an export (chunks of 4, four builders: ranges already found and
    being written), older calls arrive, the oldest are deleted and newer ones arrive: the
    export holds each call that was there throughout exactly once, the older arrivals,
    none of the deleted ones, none of the newer, in the walk's order."""
    monkeypatch.setattr(store_export, "BUILDERS", 4)
    rows = load(engine, sample_rows(200, seed=3))
    reader = ExportReader(engine)
    matches = reader.count(CallFilters())
    oldest = sorted(rows, key=lambda r: (r["time"], r["id"]))[:30]
    older = [{**r, "time": "2023-12-31 23:59:59", "uniqueid": f"old-{n}"} for n, r in
             enumerate(sample_rows(20, seed=4))]  # fmt: skip
    newer = [{**r, "time": "2024-02-09 10:00:00", "uniqueid": f"new-{n}"} for n, r in
             enumerate(sample_rows(20, seed=5))]  # fmt: skip

    async def export_while_writing() -> bytes:
        texts = reader.csv_texts(CallFilters(), matches, 4)
        parts = [await texts.__anext__() for _ in range(6)]  # three chunks and their CRLFs
        with engine.begin() as conn:
            conn.execute(delete(calls).where(calls.c.id.in_([r["id"] for r in oldest])))
        arrived = load(engine, older) + load(engine, newer)
        assert arrived
        parts.extend([text async for text in texts])
        return b"".join(parts)

    found = cells(asyncio.run(export_while_writing()))
    with engine.connect() as conn:
        stored = {i: (t, u) for i, t, u in conn.execute(select(calls.c.id, calls.c.time,
                                                                calls.c.uniqueid))}  # fmt: skip
    keys = [(row[3], int(row[0])) for row in found]
    assert keys == sorted(keys, reverse=True) and len(set(keys)) == len(keys)
    gone = {r["id"] for r in oldest}
    throughout = {r["id"] for r in rows} - gone
    ids = {int(row[0]) for row in found}
    assert throughout <= ids and not ids & gone
    assert {stored[i][1] for i in ids - throughout} == {r["uniqueid"] for r in older}


def web_app(db: str, engine: Engine) -> Starlette:
    database = StoreExecutor(engine)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        database.close()

    settings = Settings(db=db)
    routes = [*sign_in_routes(settings, database), *export_routes(settings, database)]
    return Starlette(routes=routes, lifespan=lifespan)


def export_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("cdrapi-export")]


def wait_for(condition: Any, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_a_client_that_goes_away_leaves_no_thread_or_connection(
    db_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An export of about 20 MB in 100 chunks of 20 records, over a real socket: the
    client reads its first bytes and closes the connection. The export was under way (its
    threads waiting for the client to read), then within seconds its threads are gone,
    every connection is back in the pool and most chunks were never written; the server
    still answers."""
    monkeypatch.setattr(export, "CSV_CHUNK", 20)
    written = []  # the chunks written (the method itself, counted)
    csv_range = store_export._Walk.csv_range

    def counted(walk: Any, after: Any, until: Any) -> bytes:
        written.append(until)
        return csv_range(walk, after, until)

    monkeypatch.setattr(store_export._Walk, "csv_range", counted)
    rows = [{**row, "comments": "x" * 10_000} for row in sample_rows(2000, seed=9)]
    load(engine, rows)
    create_account(engine, "admin", PASSWORD)
    app = web_app(db_url, engine)
    with serve_app(app) as url:
        signed = httpx.post(f"{url}/login", data={"username": "admin", "password": PASSWORD})
        assert signed.status_code == 303
        cookie = "; ".join(f"{name}={value}" for name, value in signed.cookies.items())
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port))) as client:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            client.sendall(
                f"GET /export.csv HTTP/1.1\r\nHost: {host}\r\nCookie: {cookie}\r\n\r\n".encode()
            )
            first = client.recv(65536)
            assert first.startswith(b"HTTP/1.1 200")
            assert wait_for(lambda: bool(export_threads()), 5), "the export was not under way"
            time.sleep(0.2)  # (the server sends what the socket takes, then waits)
            assert export_threads()
        assert wait_for(lambda: not export_threads()), export_threads()
        assert wait_for(lambda: engine.pool.checkedout() == 0), engine.pool.status()
        assert 0 < len(written) < 60, len(written)
        again = httpx.get(f"{url}/export.csv?from=2024-01-31", cookies=signed.cookies)
        assert again.status_code == 200 and again.content.count(b"\r\n") > 1
    assert not export_threads()
