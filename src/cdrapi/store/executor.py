"""The threads a serving process reads its store on, sized for its database, and its ping.

Pages are fetched on the store's own threads, not on the event loop's or Starlette's
shared pool. On SQLite a page is CPU work in this process (the file's pages are in memory)
and Python runs one thread at a time: with four requests in flight, four threads taking
turns with the interpreter lock spent 2.5 ms of CPU a page, a single thread 1.7 ms.
PostgreSQL queries mostly wait on the network, so they get more threads
(:data:`THREADS`). For more cores, run more workers.

A ping (:func:`cdrapi.store.health.ping`) runs on the event loop's default threads, not
behind the pages: a health check is answered while every page thread is busy.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar, TypeVarTuple

from sqlalchemy import Engine

from cdrapi.store.health import ping

__all__ = ["THREADS", "StoreExecutor"]

#: Page threads per process, by SQLAlchemy dialect name.
THREADS = {"sqlite": 1, "postgresql": 8}

_T = TypeVar("_T")
_Args = TypeVarTuple("_Args")


class StoreExecutor:
    """Runs the store's blocking calls for an event loop: :meth:`run` and :meth:`ping`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.threads = THREADS[engine.dialect.name]
        self._pool = ThreadPoolExecutor(self.threads, "cdrapi-db")

    async def run(self, function: Callable[[*_Args], _T], *args: *_Args) -> _T:
        """``function(*args)`` on one of the store's threads."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, function, *args)

    async def ping(self) -> None:
        """Return if the store can be read; raise :class:`~cdrapi.store.engine.StoreError`."""
        await asyncio.to_thread(ping, self.engine)

    def close(self) -> None:
        """Stop the threads; calls not started yet are cancelled, none is waited for."""
        self._pool.shutdown(wait=False, cancel_futures=True)
