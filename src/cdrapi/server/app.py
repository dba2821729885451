"""The Starlette application: ``/api/cdr`` and ``/healthz``, the recordings and the web
pages (:func:`cdrapi.web.app.web_routes`: the call log at ``/``, sign-in, static files).

The handler reads the request's body (at most :data:`~cdrapi.protocol.request.MAX_BODY`
bytes, counted as they arrive), hands its bytes, Content-Type and query string to the
protocol, which reads and checks them and validates them into a
:class:`~cdrapi.protocol.filters.CdrRequest`, asks the store for the page on the store's
threads (:class:`~cdrapi.store.executor.StoreExecutor`) and serializes it. Every answer
that is not a success, 404 and 405 and 500 included, is the vendor's error envelope. A
store that cannot be read (a stopped PostgreSQL server, a deleted or emptied SQLite file)
is 503 with ``Retry-After``, on /api/cdr and /healthz alike: the same answer for every
request until it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from cdrapi.protocol.errors import ProtocolError, SignatureError
from cdrapi.protocol.filters import ScopedCallFilters, narrow, parse_request
from cdrapi.protocol.request import check_bearer, check_body_size, read_params
from cdrapi.protocol.response import error_body, page_body
from cdrapi.protocol.signing import verify
from cdrapi.server.annotate import annotate_routes
from cdrapi.server.recordings import recording_routes, signed_path
from cdrapi.server.supervisor import watch_supervisor
from cdrapi.settings import Settings, TokenScope, load_settings
from cdrapi.store.engine import StoreError, connect
from cdrapi.store.executor import StoreExecutor
from cdrapi.store.pages import CallPages
from cdrapi.web.app import web_routes
from cdrapi.web.dashboard import dashboard_warmup

__all__ = ["create_app", "create_worker_app"]

log = logging.getLogger("cdrapi.server")

_JSON = "application/json"

_UNAVAILABLE = "Service unavailable: the call store cannot be read"
_RETRY_AFTER = {"Retry-After": "5"}


async def _body(request: Request) -> bytes:
    """The request's body, refused (413) as soon as it is over the limit; GET has none."""
    if request.method in ("GET", "HEAD"):
        return b""
    declared = request.headers.get("content-length", "")
    if declared.isdigit():
        check_body_size(int(declared))
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        check_body_size(size)
        chunks.append(chunk)
    return b"".join(chunks)


def _error(status: int, messages: list[str], headers: dict[str, str] | None = None) -> Response:
    return Response(error_body(messages), status_code=status, media_type=_JSON, headers=headers)


def _scope_filters(scope: TokenScope) -> dict[str, list[Any]]:
    """The server-only filters a scoped token's requests are narrowed with (:func:`narrow`),
    checked once here: a scope that cannot narrow fails the app's start, not a request."""
    given: dict[str, list[Any]] = {}
    if scope.projects:
        given["project_scope"] = list(scope.projects)
    if scope.extensions:
        given["extension_scope"] = list(scope.extensions)
    narrow(ScopedCallFilters(), **given)
    return given


def _recording_link(settings: Settings) -> Callable[[str], str | None]:
    """How the web pages link a recording for a browser's ``<audio>``: a signed
    ``/recordings/...`` path, or ``None`` without ``recording_secret`` and ``recordings_dir``."""

    def link(path: str) -> str | None:
        if not (settings.recording_secret and settings.recordings_dir):
            return None
        return signed_path(settings.recording_secret, path, settings.recording_link_ttl)

    return link


def create_app(
    settings: Settings | None = None, *, create_store: bool = True, warm_up: bool = False
) -> Starlette:
    """The ASGI application for ``settings`` (read from the environment when omitted).

    With ``create_store`` false, a database that does not exist is not created (each
    request is 503 until it is there) and the schema is left as it is. With ``warm_up``
    (``cdrapi serve``'s, unless the ``dashboard_warmup`` setting is off), the dashboard's
    first periods are counted in the background from the start
    (:class:`~cdrapi.web.dashboard.DashboardWarmup`), stopped at the shutdown.
    """
    settings = settings or load_settings()
    engine = connect(settings.db, create=create_store)
    pages = CallPages(engine)
    database = StoreExecutor(engine)
    # The tokens of api_token see every call; a scoped token's answers are narrowed to its
    # scope (the server-only filters of ScopedCallFilters), as if it were one more filter.
    scopes = {scope.token: _scope_filters(scope) for scope in settings.scoped_tokens}
    tokens = [*settings.tokens, *scopes]
    api_key = settings.api_key

    async def cdr(request: Request) -> Response:
        try:
            token = check_bearer(request.headers.get("authorization"), tokens)
            content_type = request.headers.get("content-type", "")
            query_string = request.scope.get("query_string", b"")
            params = read_params(await _body(request), content_type, query_string)
            if api_key and not verify(params, api_key):
                raise SignatureError("Invalid api_hash")
            query = parse_request(params)
            filters, scope = query.filters, scopes.get(token)
            if scope is not None:
                filters = narrow(ScopedCallFilters.of(filters), **scope)
            page = await database.run(pages.fetch, filters, query.page)
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
            await database.ping()
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

    web = web_routes(settings, engine, database, _recording_link(settings))
    warmup = dashboard_warmup(web) if warm_up and settings.dashboard_warmup else None

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if warmup is not None:
            warmup.start()
        try:
            yield
        finally:
            if warmup is not None:
                await asyncio.to_thread(warmup.stop)
            database.close()
            engine.dispose()

    handlers: dict[Any, Any] = {HTTPException: http_error, Exception: server_error}
    return Starlette(
        routes=[
            Route("/api/cdr", cdr, methods=["GET", "POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            *annotate_routes(settings, engine, database, scopes),
            *recording_routes(settings, database),
            *web,
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
    return create_app(create_store=False, warm_up=True)
