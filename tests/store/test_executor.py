"""The store's threads and its ping (store/executor.py, store/health.py), on SQLite and
PostgreSQL: pages on the store's own threads (one on SQLite, eight on PostgreSQL), a ping
that says whether the store can be read, and is answered while the page threads are busy."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from cdrapi.protocol.filters import CallFilters
from cdrapi.store.engine import StoreError, connect
from cdrapi.store.executor import THREADS, StoreExecutor
from cdrapi.store.pages import CallPages
from tests.data import load, sample_rows


def test_pages_are_fetched_on_the_stores_threads(db_url: str) -> None:
    engine = connect(db_url)
    load(engine, sample_rows(30))
    executor = StoreExecutor(engine)
    pages = CallPages(engine)
    threads = THREADS[engine.dialect.name]
    started = threading.Barrier(threads, timeout=10)  # all of them at once, or it breaks

    def page_and_thread() -> tuple[int, str]:
        started.wait()
        return pages.fetch(CallFilters(), 1).row_count, threading.current_thread().name

    async def many() -> list[tuple[int, str]]:
        return await asyncio.gather(*(executor.run(page_and_thread) for _ in range(threads)))

    try:
        answers = asyncio.run(many())
    finally:
        executor.close()
        engine.dispose()
    assert {count for count, _ in answers} == {30}
    names = {name for _, name in answers}
    assert len(names) == threads == {"sqlite": 1, "postgresql": 8}[engine.dialect.name]
    assert all(name.startswith("cdrapi-db") for name in names)


def test_ping_says_whether_the_store_can_be_read(db_url: str) -> None:
    engine = connect(db_url)
    executor = StoreExecutor(engine)
    try:
        asyncio.run(executor.ping())
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE calls")
        with pytest.raises(StoreError, match="the store cannot be read"):
            asyncio.run(executor.ping())
    finally:
        executor.close()
        engine.dispose()


def test_a_ping_is_answered_while_every_page_thread_is_busy(tmp_path: Path) -> None:
    engine = connect(f"sqlite:///{tmp_path}/cdrapi.db")
    executor = StoreExecutor(engine)
    release = threading.Event()

    async def ping_while_busy() -> bool:
        busy = asyncio.ensure_future(executor.run(release.wait, 10))
        await asyncio.wait_for(executor.ping(), timeout=5)
        answered_while_busy = not busy.done()
        release.set()
        await busy
        return answered_while_busy

    try:
        assert asyncio.run(ping_while_busy())
    finally:
        release.set()
        executor.close()
        engine.dispose()
