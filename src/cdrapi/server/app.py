"""The Starlette application: ``/api/cdr`` and ``/healthz``.

The handler reads and checks the request (protocol), validates it into a
:class:`~cdrapi.protocol.filters.CdrRequest`, asks the store for the page and serializes
it. Every answer that is not a success, 404 and 405 and 500 included, is the vendor's
error envelope. A store that cannot be read (a stopped PostgreSQL server, a deleted or
emptied SQLite file) is 503 with ``Retry-After``, on /api/cdr and /healthz alike: the
same answer for every request until it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from cdrapi.protocol.errors import ProtocolError, SignatureError
from cdrapi.protocol.filters import CallFilters, parse_request
from cdrapi.protocol.request import check_bearer, read_params
from cdrapi.protocol.response import error_body, page_body
from cdrapi.protocol.signing import verify
from cdrapi.server.recordings import recording_routes
from cdrapi.server.supervisor import watch_supervisor
from cdrapi.settings import Settings, load_settings
from cdrapi.store.engine import StoreError, connect, store_generation
from cdrapi.store.health import check_store
from cdrapi.store.pages import CallPages, Page

__all__ = ["create_app", "create_worker_app"]

log = logging.getLogger("cdrapi.server")

_JSON = "application/json"

# Pages are fetched on the worker's own database threads. On SQLite a page is CPU work in
# this process (the file's pages are in memory) and Python runs one thread at a time:
# with four requests in flight, four threads taking turns with the interpreter lock spent
# 2.5 ms of CPU a page, a single thread 1.7 ms. PostgreSQL queries mostly wait on the
# network, so they get more threads. For more cores, run more workers.
_DB_THREADS = {"sqlite": 1, "postgresql": 8}
_UNAVAILABLE = "Service unavailable: the call store cannot be read"
_RETRY_AFTER = {"Retry-After": "5"}


class _Pages:
    """CallPages for the file the store has now: what was cached from a SQLite file that
    was since deleted or replaced describes another database, so it is dropped."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.generation = store_generation(engine)
        self.pages = CallPages(engine)

    def fetch(self, filters: CallFilters, page: int) -> Page:
        for _ in range(2):
            generation = store_generation(self.engine)
            if generation != self.generation:
                self.generation, self.pages = generation, CallPages(self.engine)
            result = self.pages.fetch(filters, page)
            if store_generation(self.engine) == generation:
                return result
        raise StoreError("the database file keeps changing")


def _error(status: int, messages: list[str], headers: dict[str, str] | None = None) -> Response:
    return Response(error_body(messages), status_code=status, media_type=_JSON, headers=headers)


def create_app(settings: Settings | None = None, *, create_store: bool = True) -> Starlette:
    """The ASGI application for ``settings`` (read from the environment when omitted).

    With ``create_store`` false, a database that does not exist is not created (each
    request is 503 until it is there) and the schema is left as it is.
    """
    settings = settings or load_settings()
    engine = connect(settings.db, create=create_store)
    pages = _Pages(engine)
    database = ThreadPoolExecutor(_DB_THREADS[engine.dialect.name], "cdrapi-db")
    tokens = settings.tokens
    api_key = settings.api_key

    async def cdr(request: Request) -> Response:
        try:
            check_bearer(request.headers.get("authorization"), tokens)
            params = await read_params(request)
            if api_key and not verify(params, api_key):
                raise SignatureError("Invalid api_hash")
            query = parse_request(params)
            loop = asyncio.get_running_loop()
            page = await loop.run_in_executor(database, pages.fetch, query.filters, query.page)
        except ProtocolError as exc:
            headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
            return _error(exc.status_code, exc.messages, headers)
        except StoreError as exc:
            log.warning("/api/cdr: %s (%s)", exc, exc.__cause__)
            return _error(503, [_UNAVAILABLE], _RETRY_AFTER)
        except ClientDisconnect:  # gone before its body arrived: nobody reads this answer
            return Response(status_code=400)
        body = page_body(page.row_count, page.page, page.rows)
        return Response(body, media_type=_JSON)

    async def healthz(request: Request) -> Response:
        try:
            await run_in_threadpool(check_store, engine)
        except StoreError as exc:
            log.warning("/healthz: %s (%s)", exc, exc.__cause__)
            return Response(b'{"status":"unavailable"}', 503, _RETRY_AFTER, media_type=_JSON)
        return Response(b'{"status":"ok"}', media_type=_JSON)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        messages = {404: "Not found", 405: "Method not allowed"}
        message = messages.get(exc.status_code, str(exc.detail))
        return _error(exc.status_code, [message], dict(exc.headers or {}))

    async def server_error(request: Request, exc: Exception) -> Response:
        return _error(500, ["Internal error"])

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            database.shutdown(wait=False, cancel_futures=True)
            engine.dispose()

    handlers: dict[Any, Any] = {HTTPException: http_error, Exception: server_error}
    return Starlette(
        routes=[
            Route("/api/cdr", cdr, methods=["GET", "POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            *recording_routes(settings),
        ],
        exception_handlers=handlers,
        lifespan=lifespan,
    )


def create_worker_app() -> Starlette:
    """The application of one ``cdrapi serve`` worker: it exits when its supervisor does.

    ``cdrapi serve`` created the store before starting its workers: a worker started later
    (uvicorn replaces one that died) must not create an empty database where the file was
    deleted in the meantime, and answers 503 instead.
    """
    watch_supervisor()
    return create_app(create_store=False)
