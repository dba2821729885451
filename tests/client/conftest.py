"""The client's tests run against cdrapi's real server over HTTP on loopback, behind a
switch (an ASGI wrapper) that can make it fail on purpose: HTTP errors with Retry-After,
slow answers, answers cut off mid-way with the connection dropped, garbage. The switch
also keeps what every request carried, so tests can count retries and read bodies.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine

from cdrapi.client import Client, Retry
from cdrapi.server.app import create_app
from cdrapi.settings import Settings
from cdrapi.store.engine import connect
from tests.conftest import serve_app
from tests.data import load, sample_rows

TOKEN = "client-test-token"
KEY = "client-test-key"
FAST = Retry(retry_for=0.3, backoff=0.01, max_backoff=0.05)  # gives up after 0.3 s

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[Message], Any]


@dataclass
class Fault:
    """What the switch does to one request instead of passing it on."""

    status: int | None = None  # answer this status with the vendor's error envelope
    retry_after: str | None = None  # ... and this Retry-After header
    delay: float = 0.0  # wait first (then answer normally, unless told otherwise)
    cut: bool = False  # start a 200 answer, send a little of it, drop the connection
    body: bytes | None = None  # answer 200 with this body
    headers: dict[str, str] = field(default_factory=dict)  # more headers for the answer


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Switch:
    """ASGI middleware in front of the real app."""

    app: Any
    faults: deque[Fault] = field(default_factory=deque)
    always: Fault | None = None
    delay: float = 0.0  # added to every request
    choose: Callable[[Seen], Fault | None] | None = None  # the fault for a request, by content
    requests: list[Seen] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0

    def reset(self) -> None:
        self.faults.clear()
        self.always = None
        self.delay = 0.0
        self.choose = None
        self.requests.clear()
        self.most_in_flight = 0

    def fail(self, *faults: Fault) -> None:
        self.faults.extend(faults)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await self._handle(scope, receive, send)
        finally:
            self.in_flight -= 1

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        seen = Seen(scope["method"], scope["path"], headers, body, time.time())
        self.requests.append(seen)
        fault = self.faults.popleft() if self.faults else self.always
        if fault is None and self.choose is not None:
            fault = self.choose(seen)
        if self.delay:
            await asyncio.sleep(self.delay)
        if fault is not None:
            await asyncio.sleep(fault.delay)
            if fault.cut:
                start = [(b"content-type", b"application/json"), (b"content-length", b"50000")]
                await send({"type": "http.response.start", "status": 200, "headers": start})
                await send({"type": "http.response.body", "body": b'{"has_error": false, "re'})
                raise ConnectionAbortedError("cut on purpose")  # uvicorn drops the connection
            if fault.status is not None or fault.body is not None:
                status = fault.status or 200
                content = fault.body
                if content is None:
                    content = orjson.dumps(
                        {
                            "has_error": True,
                            "messages": [f"Failing on purpose with {status}"],
                            "pagination": [],
                            "results": [],
                        }
                    )
                out = [(b"content-type", b"application/json")]
                if fault.retry_after is not None:
                    out.append((b"retry-after", fault.retry_after.encode()))
                out += [(k.encode(), v.encode()) for k, v in fault.headers.items()]
                await send({"type": "http.response.start", "status": status, "headers": out})
                await send({"type": "http.response.body", "body": content})
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            message: Message = await receive()
            return message

        await self.app(scope, replay, send)


@dataclass
class Server:
    """Our server with calls in its database, behind a :class:`Switch`."""

    url: str
    rows: list[dict[str, Any]]
    switch: Switch
    db_url: str
    engine: Engine

    def client(self, **options: Any) -> Client:
        options.setdefault("retry", FAST)
        options.setdefault("api_key", KEY)
        return Client(self.url, TOKEN, **options)

    def add_calls(self, count: int, seed: int) -> list[dict[str, Any]]:
        """Insert new calls (as a PBX would, while clients read); return them with ids."""
        added = load(self.engine, sample_rows(count, seed=seed))
        self.rows.extend(added)
        return added

    @property
    def ids(self) -> list[int]:
        return [row["id"] for row in self.rows]


@contextmanager
def server_with(path: Path, rows: int, *, api_key: str = KEY) -> Iterator[Server]:
    db_url = f"sqlite:///{path}"
    engine = connect(db_url)
    loaded = load(engine, sample_rows(rows)) if rows else []
    switch = Switch(create_app(Settings(db=db_url, api_token=TOKEN, api_key=api_key)))
    with serve_app(switch) as url:
        yield Server(url, loaded, switch, db_url, engine)
    engine.dispose()


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with server_with(tmp_path_factory.mktemp("calls") / "calls.db", 1000) as server:
        yield server


@pytest.fixture
def server(shared_server: Server) -> Server:
    """A server with 1,000 calls (10 pages), shared by a module's tests: do not add calls."""
    shared_server.switch.reset()
    return shared_server


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[Server]:
    """A server of one's own, with 300 calls, for tests that add calls."""
    with server_with(tmp_path / "calls.db", 300) as server:
        yield server
