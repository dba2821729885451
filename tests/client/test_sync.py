"""Incremental sync: ``from_id = last + 1`` from page 1 each time. Every call is delivered
exactly once even while the server keeps receiving new calls during the sync, and the state
file says where the next sync starts."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from cdrapi.client import AsyncClient, StateError, SyncState
from cdrapi.client.errors import ResponseError
from cdrapi.client.exchange import Page
from cdrapi.client.walk import Walk
from tests.client.conftest import FAST, KEY, TOKEN, Fault, Server


def test_sync_delivers_new_calls_once_and_remembers(fresh_server: Server, tmp_path: Path) -> None:
    state = tmp_path / "sync.json"
    with fresh_server.client() as client:
        first = [int(r["id"]) for page in client.sync(state) for r in page.records]
        assert first == fresh_server.ids
        assert orjson.loads(state.read_bytes())["last_id"] == first[-1]
        assert [page for page in client.sync(state)] == []
        added = fresh_server.add_calls(150, seed=11)
        fresh_server.switch.requests.clear()
        again = [int(r["id"]) for page in client.sync(state) for r in page.records]
    assert again == [row["id"] for row in added]
    # Page 1 asked with from_id = last + 1, then page 2 of that query, then one empty round.
    bodies = [seen.body.decode() for seen in fresh_server.switch.requests]
    assert bodies[0].startswith(f"page=1&filters%5Bfrom_id%5D={first[-1] + 1}&api_hash=")
    assert bodies[1].startswith(f"page=2&filters%5Bfrom_id%5D={first[-1] + 1}&api_hash=")
    assert bodies[2].startswith(f"page=1&filters%5Bfrom_id%5D={again[-1] + 1}&api_hash=")
    assert len(bodies) == 3


def test_a_page_being_handled_when_the_program_stops_comes_again(
    fresh_server: Server, tmp_path: Path
) -> None:
    state = tmp_path / "sync.json"
    with fresh_server.client() as client:
        pages = client.sync(state, direction="IN")
        first = next(pages)
        second = next(pages)  # the first is done now; the second is being handled...
        pages.close()  # ...when the program stops
        again = next(iter(client.sync(state, direction="IN")))
    assert again.records == second.records
    assert orjson.loads(state.read_bytes())["last_id"] == first.last_id


def _ingest(server: Server, stop: threading.Event) -> None:
    seed = 1000
    while not stop.is_set():
        server.add_calls(7, seed=seed)
        seed += 1
        stop.wait(0.005)


def _while_ingesting(server: Server, sync_once: Callable[[], list[int]]) -> list[int]:
    """Sync after sync while the server receives calls (400 at least), then once more."""
    server.switch.delay = 0.005  # a server a little slower than the PBX's calls
    stop = threading.Event()
    ingest = threading.Thread(target=_ingest, args=(server, stop))
    got: list[int] = []
    syncs = 0
    before = len(server.rows)
    ingest.start()
    try:
        deadline = time.monotonic() + 30
        while len(server.rows) < before + 400 or syncs < 3:
            assert time.monotonic() < deadline
            got += sync_once()
            syncs += 1
    finally:
        stop.set()
        ingest.join()
    return got + sync_once()


def test_sync_while_calls_keep_coming(fresh_server: Server, tmp_path: Path) -> None:
    state = tmp_path / "sync.json"
    with fresh_server.client() as client:

        def sync_once() -> list[int]:
            return [int(r["id"]) for page in client.sync(state) for r in page.records]

        got = _while_ingesting(fresh_server, sync_once)
    assert got == fresh_server.ids  # every call, once, in order


def test_async_sync_while_calls_keep_coming(fresh_server: Server, tmp_path: Path) -> None:
    state = tmp_path / "sync.json"

    async def pages() -> list[int]:
        async with AsyncClient(fresh_server.url, TOKEN, KEY, concurrency=4, retry=FAST) as client:
            return [int(r["id"]) async for page in client.sync(state) for r in page.records]

    got = _while_ingesting(fresh_server, lambda: asyncio.run(pages()))
    assert got == fresh_server.ids


def test_a_state_belongs_to_one_pull(server: Server, tmp_path: Path) -> None:
    state = tmp_path / "sync.json"
    with server.client() as client:
        list(client.sync(state, direction="IN"))
        with pytest.raises(StateError, match="belongs to another pull"):
            list(client.sync(state, direction="OUT"))
        with (
            SyncState.open(state, client.url, {"direction": "IN"}),
            pytest.raises(StateError, match="in use by another pull"),
        ):
            list(client.sync(state, direction="IN"))
    state.write_text("{not json")
    with server.client() as client, pytest.raises(StateError, match="not a cdrapi sync state"):
        list(client.sync(state, direction="IN"))


def _page(ids: list[int], row_count: int, max_page: int = 3, current: int = 1) -> Page:
    return Page([{"id": str(i)} for i in ids], row_count, 100, current, max_page)


def test_a_round_stops_where_deleted_records_moved_the_pages() -> None:
    walk = Walk({"direction": "IN"})
    assert walk.round_filters() == {"direction": "IN"}
    _, rest = walk.first(_page([1, 2], row_count=300))
    assert rest == range(2, 4)
    assert walk.next(_page([3, 4], row_count=300, current=2)) is not None
    # Records were deleted: page 3 now starts further on. The round stops before it...
    assert walk.next(_page([9, 10], row_count=290, current=3)) is None
    # ...and the next one starts right after the last record delivered.
    assert walk.round_filters() == {"direction": "IN", "from_id": 5}
    assert not walk.done


def test_a_server_that_ignores_from_id_fails_loudly() -> None:
    walk = Walk({}, after_id=10)
    assert walk.round_filters() == {"from_id": 11}
    with pytest.raises(ResponseError, match="ascending id order"):
        walk.first(_page([1, 2, 3], row_count=3, max_page=1))


def test_the_callers_from_id_is_a_floor(server: Server) -> None:
    server.switch.fail(Fault())  # counts requests only
    with server.client() as client:
        ids = [int(r["id"]) for r in client.iter_records(from_id=951)]
    assert ids == server.ids[950:]
    assert b"from_id%5D=951" in server.switch.requests[0].body
