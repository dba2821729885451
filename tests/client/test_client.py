"""The SDK's reading of pages: the server's pagination as it is, every record once in id
order, pages fetched concurrently yet delivered in order with a bounded number in flight
and held, over loopback and in-process (ASGI transport, no socket)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import orjson

from cdrapi.client import AsyncClient, Page, pull
from cdrapi.server.app import create_app
from cdrapi.settings import Settings
from tests.client.conftest import FAST, KEY, TOKEN, Server


def test_a_page_carries_the_servers_pagination(server: Server) -> None:
    with server.client() as client:
        second = client.page(page=2)
        past = client.page(page=11)
        none = client.page(telephone="nobody")
    assert (second.row_count, second.page_size, second.current_page, second.max_page) == (
        1000,
        100,
        2,
        10,
    )
    assert [int(r["id"]) for r in second.records] == server.ids[100:200]
    assert second.last_id == server.ids[199]
    assert past.records == [] and past.last_id is None and past.max_page == 10
    assert (none.row_count, none.current_page, none.max_page, none.records) == (0, 0, 0, [])


def test_iter_pages_reads_each_page_once_in_order(server: Server) -> None:
    with server.client() as client:
        pages = list(client.iter_pages())
    assert [len(page.records) for page in pages] == [100] * 10
    assert [int(r["id"]) for page in pages for r in page.records] == server.ids
    assert len(server.switch.requests) == 11  # ten pages, then one empty round: caught up


def test_concurrent_pages_are_bounded_and_delivered_in_order(server: Server) -> None:
    server.switch.delay = 0.02
    consumed: list[tuple[int, int]] = []  # (pages delivered, requests made by then)

    async def slowly() -> list[Page]:
        got = []
        async with AsyncClient(server.url, TOKEN, KEY, concurrency=3, retry=FAST) as client:
            async for page in client.iter_pages():
                got.append(page)
                consumed.append((len(got), len(server.switch.requests)))
                await asyncio.sleep(0.05)  # a slow writer
        return got

    pages = asyncio.run(slowly())
    assert [int(r["id"]) for page in pages for r in page.records] == server.ids
    assert 1 < server.switch.most_in_flight <= 3
    # Pages are fetched ahead of the writer, but never more than 2 * concurrency.
    assert all(made <= delivered + 2 * 3 for delivered, made in consumed)
    assert any(made > delivered + 1 for delivered, made in consumed)


def test_in_process_without_a_socket(server: Server, tmp_path: Path) -> None:
    app = create_app(Settings(db=server.db_url, api_token=TOKEN, api_key=KEY))

    async def everything() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with AsyncClient("http://pbx.test", TOKEN, KEY, transport=transport) as client:
            return [int(r["id"]) async for r in client.iter_records(direction="IN")]

    inbound = [row["id"] for row in server.rows if row["direction"] == "IN"]
    assert asyncio.run(everything()) == inbound
    out = tmp_path / "calls.jsonl"
    result = pull(
        "http://pbx.test", TOKEN, out, api_key=KEY, transport=httpx.ASGITransport(app=app)
    )
    assert result.records == 1000
    assert [int(orjson.loads(line)["id"]) for line in out.read_bytes().splitlines()] == server.ids
