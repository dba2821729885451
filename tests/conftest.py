"""Shared fixtures: real databases, the real app in process, and on loopback.

- ``db_url``: a fresh, empty database for one test, on SQLite and on PostgreSQL (the
  PostgreSQL server is started by the fixture itself with initdb/pg_ctl in a temp dir).
- ``asgi_client``: :func:`app_client`, the real app for a given Settings called in
  process through httpx's ASGI transport, its lifespan run as uvicorn runs it: the same
  status, headers and bytes as over HTTP, without a socket, a port or a server thread.
  :func:`async_app_client` is the same for an ``httpx.AsyncClient`` (requests at once).
- ``serve``: runs the app under uvicorn on 127.0.0.1 in a thread, for a given Settings:
  for what needs a real socket (the HTTP limits of ``cdrapi.server.protocol``, clients
  in another process such as php).

Locally, PostgreSQL tests skip with a reason when its binaries are missing; with
``CI=true`` they fail instead, so CI never passes with a skipped backend.
"""

from __future__ import annotations

import asyncio
import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import uvicorn
from anyio.from_thread import BlockingPortal, start_blocking_portal

from cdrapi.server.app import create_app
from cdrapi.settings import Settings

IN_CI = os.environ.get("CI", "").lower() == "true"


def need(condition: bool, reason: str) -> None:
    """Skip locally when something external is missing; fail under CI=true."""
    if not condition:
        if IN_CI:
            pytest.fail(f"{reason} (CI=true: no test may skip)")
        pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


class PostgresServer:
    """A throwaway PostgreSQL cluster in a temp dir, trust auth on 127.0.0.1."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.data = root / "data"
        self._counter = itertools.count()
        self._as_user: list[str] = []
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            self._as_user = ["runuser", "-u", "postgres", "--"]
            shutil.chown(root, "postgres")

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as_user, *args], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
        assert initdb and pg_ctl
        self._run(initdb, "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8")
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            pg_ctl, "-D", str(self.data), "-o", options, "-w", "-l", str(self.root / "log"), "start"
        )

    def stop(self) -> None:
        pg_ctl = _pg_bin("pg_ctl")
        if pg_ctl:
            subprocess.run(
                [*self._as_user, pg_ctl, "-D", str(self.data), "-m", "immediate", "stop"],
                capture_output=True,
                timeout=60,
            )

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        import psycopg

        name = f"test_{os.getpid()}_{next(self._counter)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    need(
        _pg_bin("initdb") is not None and _pg_bin("pg_ctl") is not None,
        "PostgreSQL server binaries (initdb, pg_ctl) are not installed",
    )
    # Not under pytest's tmp dir: that one is private to root, and postgres must enter it.
    root = Path(tempfile.mkdtemp(prefix="cdrapi-pg-"))
    root.chmod(0o755)
    server = PostgresServer(root)
    try:
        server.start()
    except (subprocess.CalledProcessError, OSError) as exc:
        log = root / "log"
        detail = log.read_text() if log.exists() else getattr(exc, "stderr", b"")
        need(False, f"PostgreSQL could not start: {exc}: {detail!r}")
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh empty database URL on the parametrised backend."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'cdrapi.db'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.new_database()


def start_uvicorn(config: uvicorn.Config) -> tuple[uvicorn.Server, threading.Thread]:
    """A uvicorn server for ``config`` running in a thread, once it accepts connections."""
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    return server, thread


@contextmanager
def serve_app(app: Any) -> Iterator[str]:
    """``app`` under uvicorn on loopback, in a thread; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="critical", access_log=False, lifespan="off"
    )
    server, thread = start_uvicorn(config)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def running(settings: Settings) -> Iterator[str]:
    """The app for ``settings`` under uvicorn on loopback; yields its base URL."""
    with serve_app(create_app(settings)) as url:
        yield url


@pytest.fixture
def serve() -> Callable[[Settings], Iterator[str]]:
    return running


# --- the app in process -----------------------------------------------------------------

APP_URL = "http://cdrapi.test"  # the base URL of an in-process client (no DNS, no socket)
_APP_TIMEOUT = 30.0  # seconds an answer may take, as the socket clients' timeout


@asynccontextmanager
async def app_lifespan(app: Any) -> AsyncIterator[None]:
    """The app's ASGI lifespan, as uvicorn runs it: startup before the first request,
    shutdown after the last (cdrapi's closes its database threads and engine)."""
    to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
    task = asyncio.ensure_future(app(scope, to_app.get, from_app.put))

    async def step(kind: str) -> None:
        await to_app.put({"type": f"lifespan.{kind}"})
        answer = asyncio.ensure_future(from_app.get())
        await asyncio.wait([answer, task], return_when=asyncio.FIRST_COMPLETED)
        if not answer.done():
            answer.cancel()
            task.result()  # the app's own exception, if it raised one
            raise RuntimeError(f"the app ended its lifespan before {kind} completed")
        message = answer.result()
        if message["type"] != f"lifespan.{kind}.complete":
            await asyncio.wait([task])  # a failing app raises right after saying so
            failure = task.exception()
            raise RuntimeError(f"lifespan {kind} failed: {message['type']}") from failure

    await step("startup")
    try:
        yield
    finally:
        await step("shutdown")
        await task


class _Chunks(httpx.AsyncByteStream):
    """A sync client's request body, handed to the app piece by piece as it is produced
    (a generator body stays a stream without Content-Length, as on a socket)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._stream:
            yield chunk


class _AppTransport(httpx.BaseTransport):
    """A sync transport: each request goes to httpx's ASGI transport on the event loop of
    ``portal``. The app's status, headers (raw bytes) and body come back untouched; an
    exception the app raises (a 500) is raised in the test."""

    def __init__(self, portal: BlockingPortal, app: Any) -> None:
        self._portal = portal
        self._asgi = httpx.ASGITransport(app=app)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.stream = _Chunks(request.stream)
        return self._portal.call(self._send, request)

    async def _send(self, request: httpx.Request) -> httpx.Response:
        with anyio.fail_after(_APP_TIMEOUT):
            response = await self._asgi.handle_async_request(request)
            assert isinstance(response.stream, httpx.AsyncByteStream)
            body = b"".join([part async for part in response.stream])
        return httpx.Response(
            response.status_code,
            headers=response.headers.raw,
            stream=httpx.ByteStream(body),
            extensions=response.extensions,
        )


def _app(target: Settings | Any) -> Any:
    return create_app(target) if isinstance(target, Settings) else target


@contextmanager
def app_client(target: Settings | Any, **client: Any) -> Iterator[httpx.Client]:
    """An ``httpx.Client`` (``client`` are its options, e.g. ``headers``) calling
    ``create_app(target)`` (or the ASGI app ``target``) in process, on an event loop of
    its own; the app's lifespan runs around the block."""
    app = _app(target)
    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(app_lifespan(app)),
        httpx.Client(transport=_AppTransport(portal, app), base_url=APP_URL, **client) as http,
    ):
        yield http


@asynccontextmanager
async def async_app_client(
    target: Settings | Any, **client: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """:func:`app_client` for async tests: an ``httpx.AsyncClient`` on the ASGI transport,
    on the caller's event loop (for requests in flight at once)."""
    app = _app(target)
    transport = httpx.ASGITransport(app=app)
    async with (
        app_lifespan(app),
        httpx.AsyncClient(transport=transport, base_url=APP_URL, **client) as http,
    ):
        yield http


AppClient = Callable[..., AbstractContextManager[httpx.Client]]


@pytest.fixture
def asgi_client() -> AppClient:
    """:func:`app_client`: ``with asgi_client(settings, headers=...) as client: ...``."""
    return app_client
