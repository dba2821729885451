"""``Client`` and ``AsyncClient``: the /api/cdr protocol from Python, on httpx.

Both build requests and read answers with :mod:`cdrapi.client.exchange`, retry with
:class:`~cdrapi.client.retry.Retry` and walk pages with :class:`~cdrapi.client.walk.Walk`;
they differ only in how they wait. The async client reads the pages of a round
concurrently (at most ``concurrency`` requests in flight) and still delivers them in order,
holding at most ``2 * concurrency`` pages.

    with Client("https://pbx.example.com", token="...", api_key="...") as client:
        for record in client.iter_records(direction="IN", date_between=(date(2024, 1, 1), None)):
            ...

Retries: ``retry=Retry(retry_for=60.0, backoff=0.5, max_backoff=10.0, max_retry_after=60.0)``
(the default). Refused or dropped connections, timeouts, 429 and 500/502/503/504 are tried
again, with exponential backoff and full jitter (honouring ``Retry-After``, capped), for up
to ``retry_for`` seconds from the first failure of an outage; then the last error is
raised. A client's requests share that budget: with four in flight, a server restart is
waited out once, not used up four times as fast, and when one request gets through the
others try again at once. ``Retry(retry_for=0)`` never retries. Other 4xx are never
retried. See :mod:`cdrapi.client.retry`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import deque
from collections.abc import AsyncGenerator, Iterator, Mapping
from typing import Any

import httpx

from cdrapi.client.annotation import annotate_url, annotation_body
from cdrapi.client.errors import ResponseError, TransportError
from cdrapi.client.exchange import Page, Record, endpoint, read_page, request_body
from cdrapi.client.filters import encode_filters
from cdrapi.client.retry import Outage, Retry
from cdrapi.client.state import SyncState
from cdrapi.client.walk import Walk

__all__ = ["AsyncClient", "Client"]

StateArg = SyncState | str | os.PathLike[str]


def _describe(exc: httpx.HTTPError) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _check_page(page: int) -> int:
    if isinstance(page, bool) or not isinstance(page, int) or page < 1:
        raise ValueError(f"page must be an integer >= 1, not {page!r}")
    return page


class _Base:
    """What both clients share: configuration and the shape of a request."""

    def __init__(
        self,
        url: str,
        token: str,
        api_key: str | None = None,
        *,
        json: bool = False,
        timeout: float = 30.0,
        retry: Retry | None = None,
    ) -> None:
        self.url = endpoint(url)
        """The /api/cdr endpoint (``/api/cdr`` is added to a base URL)."""
        self.annotate_url = annotate_url(self.url)
        """The annotate endpoint, ``/api/cdr/annotate`` (cdrapi's own: :meth:`annotate`)."""
        self.api_key = api_key or None
        self.json = json
        self.retry = retry or Retry()
        """The retry policy (:class:`~cdrapi.client.retry.Retry`)."""
        self._outage = Outage()
        self._headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/json",
            "User-Agent": "cdrapi-client",
        }
        self._timeout = httpx.Timeout(timeout, connect=min(timeout, 10.0))

    def _request(self, page: int, filters: Mapping[str, Any]) -> tuple[bytes, dict[str, str]]:
        body, content_type = request_body(page, filters, self.api_key, json=self.json)
        return body, {"Content-Type": content_type}

    def _annotation(
        self, call: dict[str, int | str | None], values: dict[str, str | None]
    ) -> tuple[bytes, dict[str, str]]:
        body, content_type = annotation_body(call, values, self.api_key, json=self.json)
        return body, {"Content-Type": content_type}

    def _failed(self, exc: httpx.RequestError) -> Exception:
        if isinstance(exc, httpx.TransportError):
            return TransportError(f"{self.url}: {_describe(exc)}")
        return ResponseError(f"{self.url}: {_describe(exc)}")

    def _state(self, state: StateArg, filters: Mapping[str, Any]) -> tuple[SyncState, bool]:
        """The state to sync with, and whether this call opened it (and must close it)."""
        if isinstance(state, SyncState):
            return state, False
        return SyncState.open(state, self.url, filters), True


class Client(_Base):
    """A blocking /api/cdr client; use it as a context manager or call :meth:`close`."""

    def __init__(
        self,
        url: str,
        token: str,
        api_key: str | None = None,
        *,
        json: bool = False,
        timeout: float = 30.0,
        retry: Retry | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(url, token, api_key, json=json, timeout=timeout, retry=retry)
        self._http = httpx.Client(headers=self._headers, timeout=self._timeout, transport=transport)

    def _fetch(self, page: int, filters: dict[str, Any]) -> Page:
        body, headers = self._request(page, filters)

        def attempt() -> Page:
            try:
                response = self._http.post(self.url, content=body, headers=headers)
            except httpx.RequestError as exc:
                raise self._failed(exc) from exc
            return read_page(response, filters)

        return self.retry.call(attempt, self._outage)

    def page(self, page: int = 1, **filters: Any) -> Page:
        """One page of the calls matching ``filters`` (Python values, see ``filters``)."""
        return self._fetch(_check_page(page), encode_filters(filters))

    def annotate(
        self,
        *,
        id: int | str | None = None,
        uniqueid: str | None = None,
        linkedid: str | None = None,
        customer_id: str | None = None,
        external_id: str | None = None,
        external_info: str | None = None,
        comments: str | None = None,
    ) -> list[Record]:
        """Set CRM fields on the records of one call (exactly one of ``id``, ``uniqueid``,
        ``linkedid``); ``None`` leaves a field as it is, ``""`` clears it. Returns the
        records as the server now serves them. Only a cdrapi server has this endpoint
        (``POST /api/cdr/annotate``); no record of the call: :class:`APIError` 404.
        Retried as a page is (setting the same values twice is harmless)."""
        body, headers = self._annotation(
            {"id": id, "uniqueid": uniqueid, "linkedid": linkedid},
            {"customer_id": customer_id, "external_id": external_id,
             "external_info": external_info, "comments": comments},
        )  # fmt: skip

        def attempt() -> list[Record]:
            try:
                response = self._http.post(self.annotate_url, content=body, headers=headers)
            except httpx.RequestError as exc:
                raise self._failed(exc) from exc
            return read_page(response, {}).records

        return self.retry.call(attempt, self._outage)

    def iter_pages(self, **filters: Any) -> Iterator[Page]:
        """Every page of matching calls, each record once, in id order (see ``walk``)."""
        return self._walk(Walk(encode_filters(filters)))

    def iter_records(self, **filters: Any) -> Iterator[Record]:
        """Every matching call record, once each, in id order."""
        for page in self.iter_pages(**filters):
            yield from page.records

    def sync(self, state: StateArg, **filters: Any) -> Iterator[Page]:
        """The pages of calls newer than ``state`` (a path or a :class:`SyncState`).

        The state advances past a page when you ask for the next one, so a page you were
        handling when your program stopped is delivered again next time (at least once;
        store records by id to make that exactly once).
        """
        wire = encode_filters(filters)
        sync_state, owned = self._state(state, wire)
        try:
            for page in self._walk(Walk(wire, after_id=sync_state.last_id)):
                yield page
                sync_state.last_id = page.last_id
                sync_state.save()
        finally:
            if owned:
                sync_state.close()

    def _walk(self, walk: Walk) -> Iterator[Page]:
        while not walk.done:
            filters = walk.round_filters()
            first, rest = walk.first(self._fetch(1, filters))
            if first.records:
                yield first
            for number in rest:
                page = walk.next(self._fetch(number, filters))
                if page is None:
                    break
                yield page

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncClient(_Base):
    """An asyncio /api/cdr client that reads pages concurrently; ``async with`` it."""

    def __init__(
        self,
        url: str,
        token: str,
        api_key: str | None = None,
        *,
        json: bool = False,
        timeout: float = 30.0,
        retry: Retry | None = None,
        concurrency: int = 4,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(url, token, api_key, json=json, timeout=timeout, retry=retry)
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.concurrency = concurrency
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        self._http = httpx.AsyncClient(
            headers=self._headers, timeout=self._timeout, limits=limits, transport=transport
        )
        self._slots: asyncio.Semaphore | None = None

    async def _fetch(self, page: int, filters: dict[str, Any]) -> Page:
        body, headers = self._request(page, filters)
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.concurrency)
        slots = self._slots

        async def attempt() -> Page:
            try:
                async with slots:
                    response = await self._http.post(self.url, content=body, headers=headers)
            except httpx.RequestError as exc:
                raise self._failed(exc) from exc
            return read_page(response, filters)

        return await self.retry.acall(attempt, self._outage)

    async def page(self, page: int = 1, **filters: Any) -> Page:
        """One page of the calls matching ``filters``."""
        return await self._fetch(_check_page(page), encode_filters(filters))

    async def annotate(
        self,
        *,
        id: int | str | None = None,
        uniqueid: str | None = None,
        linkedid: str | None = None,
        customer_id: str | None = None,
        external_id: str | None = None,
        external_info: str | None = None,
        comments: str | None = None,
    ) -> list[Record]:
        """:meth:`Client.annotate`: set CRM fields on the records of one call."""
        body, headers = self._annotation(
            {"id": id, "uniqueid": uniqueid, "linkedid": linkedid},
            {"customer_id": customer_id, "external_id": external_id,
             "external_info": external_info, "comments": comments},
        )  # fmt: skip

        async def attempt() -> list[Record]:
            try:
                response = await self._http.post(self.annotate_url, content=body, headers=headers)
            except httpx.RequestError as exc:
                raise self._failed(exc) from exc
            return read_page(response, {}).records

        return await self.retry.acall(attempt, self._outage)

    def iter_pages(self, **filters: Any) -> AsyncGenerator[Page, None]:
        """Every page of matching calls, each record once, in id order."""
        return self._walk(Walk(encode_filters(filters)))

    async def iter_records(self, **filters: Any) -> AsyncGenerator[Record, None]:
        """Every matching call record, once each, in id order."""
        async with contextlib.aclosing(self.iter_pages(**filters)) as pages:
            async for page in pages:
                for record in page.records:
                    yield record

    async def sync(self, state: StateArg, **filters: Any) -> AsyncGenerator[Page, None]:
        """Pages newer than ``state``; it advances when the next page is asked for."""
        wire = encode_filters(filters)
        sync_state, owned = self._state(state, wire)
        try:
            async with contextlib.aclosing(self.walk(wire, sync_state.last_id)) as pages:
                async for page in pages:
                    yield page
                    sync_state.last_id = page.last_id
                    sync_state.save()
        finally:
            if owned:
                sync_state.close()

    def walk(
        self, filters: Mapping[str, Any], after_id: int | None = None
    ) -> AsyncGenerator[Page, None]:
        """Pages for wire-ready ``filters`` after ``after_id``: the primitive under
        :meth:`iter_pages` and :meth:`sync`, for callers that keep their own state."""
        return self._walk(Walk(filters, after_id=after_id))

    async def _walk(self, walk: Walk) -> AsyncGenerator[Page, None]:
        while not walk.done:
            filters = walk.round_filters()
            first, rest = walk.first(await self._fetch(1, filters))
            if first.records:
                yield first
            async with contextlib.aclosing(self._in_order(rest, filters)) as pages:
                async for fetched in pages:
                    page = walk.next(fetched)
                    if page is None:
                        break
                    yield page

    async def _in_order(
        self, numbers: range, filters: dict[str, Any]
    ) -> AsyncGenerator[Page, None]:
        """Fetch ``numbers`` concurrently, yield them in order; ``2 * concurrency`` at most
        are held (in flight or waiting their turn)."""
        todo = iter(numbers)
        window: deque[asyncio.Task[Page]] = deque()

        def schedule() -> None:
            for number in todo:
                window.append(asyncio.create_task(self._fetch(number, filters)))
                if len(window) >= 2 * self.concurrency:
                    return

        try:
            schedule()
            while window:
                page = await window.popleft()
                schedule()
                yield page
        finally:
            for task in window:
                task.cancel()
            await asyncio.gather(*window, return_exceptions=True)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
