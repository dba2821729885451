"""The HTTP connection's limits (cdrapi.server.protocol), over real sockets: oversized
and slow heads, slow bodies and pipelined garbage (issue 9). Never a 5xx, never a hang,
and little CPU for the worker.

These need a socket: the app runs under uvicorn on loopback with cdrapi's connection
protocol (its timeouts shortened), in a thread whose CPU time is read.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import orjson
import pytest
import uvicorn

from cdrapi.server.app import create_app
from cdrapi.server.protocol import HttpProtocol
from cdrapi.settings import Settings
from cdrapi.store.engine import connect
from tests.conftest import free_port, start_uvicorn
from tests.data import load, sample_rows


class QuickProtocol(HttpProtocol):
    """The production protocol with timeouts short enough for a test."""

    head_timeout = 0.5
    body_timeout = 1.0


def envelope_of(raw: bytes) -> tuple[int, dict[str, Any]]:
    """The status and JSON body of the last response in ``raw`` bytes off a socket."""
    head, _, body = raw.rpartition(b"\r\n\r\n")
    status_line = head[head.rfind(b"HTTP/1.1 ") :].split(b"\r\n")[0]
    assert b"content-type: application/json" in head.lower(), raw[:500]
    return int(status_line.split()[1]), orjson.loads(body)


class Server:
    def __init__(self, port: int, thread: threading.Thread) -> None:
        self.port = port
        self.thread = thread

    def cpu(self) -> float:
        """CPU seconds the server's thread (its event loop) has used so far."""
        assert self.thread.ident is not None
        return time.clock_gettime(time.pthread_getcpuclockid(self.thread.ident))

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock


@contextmanager
def guarded(settings: Settings) -> Iterator[Server]:
    port = free_port()
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, http=QuickProtocol,
        log_config=None, log_level="warning", access_log=False, lifespan="off",
    )  # fmt: skip
    server, thread = start_uvicorn(config)
    try:
        yield Server(port, thread)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def read_all(sock: socket.socket, timeout: float = 5) -> tuple[bytes, bool]:
    """Everything the server sends, and whether it closed the connection in ``timeout``."""
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except TimeoutError:
        return data, False
    except ConnectionResetError:
        pass
    return data, True


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    url = f"sqlite:///{tmp_path_factory.mktemp('protocol') / 'cdrapi.db'}"
    load(connect(url), sample_rows(30))
    with guarded(Settings(db=url, api_token="t")) as running:
        yield running


def healthz_still_quick(server: Server) -> None:
    started = time.monotonic()
    response = httpx.get(f"http://127.0.0.1:{server.port}/healthz", timeout=5)
    assert response.status_code == 200 and time.monotonic() - started < 1


# --- the head's size -------------------------------------------------------------------


@pytest.mark.parametrize(
    "opening",
    [
        pytest.param(b"GET /api/cdr HTTP/1.1\r\nHost: x\r\nX-Big: ", id="one huge header"),
        pytest.param(b"GET /api/cdr?" + b"a" * 70_000, id="a huge request line"),
    ],
)
def test_oversized_head_is_431_and_costs_the_worker_little(server: Server, opening: bytes) -> None:
    before = server.cpu()
    with server.connect() as sock:
        sock.sendall(opening)
        sent = 0
        try:  # 4 MiB more, in 4 KiB pieces, unless the server hangs up first
            while sent < 4 << 20:
                sock.sendall(b"a" * 4096)
                sent += 4096
        except OSError:
            pass
        raw, closed = read_all(sock)
    assert closed and sent < 4 << 20
    status, body = envelope_of(raw)
    assert status == 431 and body["messages"] == [
        "Request header fields too large: the limit is 65536 bytes"
    ]
    assert server.cpu() - before < 0.1
    healthz_still_quick(server)


def test_many_small_headers_count_too(server: Server) -> None:
    with server.connect() as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\n" + b"X-A: b\r\n" * 10_000 + b"\r\n")
        assert envelope_of(read_all(sock)[0])[0] == 431


def test_a_head_just_under_the_limit_is_an_ordinary_request(server: Server) -> None:
    with server.connect() as sock:
        pad = b"X-Pad: " + b"p" * 60_000 + b"\r\n"
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + pad + b"Connection: close\r\n\r\n")
        assert read_all(sock)[0].startswith(b"HTTP/1.1 200 ")


# --- time limits -----------------------------------------------------------------------


def test_slow_head_gets_408_and_is_closed(server: Server) -> None:
    with server.connect() as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
        started = time.monotonic()
        raw, closed = read_all(sock)
    assert closed and time.monotonic() - started < 2
    status, body = envelope_of(raw)
    assert status == 408 and "headers did not arrive within 0.5 s" in body["messages"][0]


def test_a_connection_that_says_nothing_is_just_closed(server: Server) -> None:
    with server.connect() as sock:
        raw, closed = read_all(sock)
    assert closed and raw == b""


def test_the_head_deadline_holds_from_its_first_byte(server: Server) -> None:
    # one byte every 0.2 s never completes a head
    with server.connect() as sock:
        started = time.monotonic()
        try:
            for byte in b"GET /healthz HTTP/1.1\r\nHost: xxxxxxxxxxxxxxxxxxxxxx":
                sock.sendall(bytes([byte]))
                time.sleep(0.2)
        except OSError:
            pass
        raw, closed = read_all(sock)
    assert closed and time.monotonic() - started < 3
    assert envelope_of(raw)[0] == 408


def test_slow_body_gets_408_and_the_application_is_told(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    head = (
        b"POST /api/cdr HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\n"
        b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    )
    with server.connect() as sock:
        sock.sendall(head + b'{"page": 1')
        started = time.monotonic()
        raw, closed = read_all(sock)
    assert closed and time.monotonic() - started < 3
    status, body = envelope_of(raw)
    assert status == 408 and "body did not arrive within 1 s" in body["messages"][0]
    time.sleep(0.1)
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]
    healthz_still_quick(server)


# --- requests the parser cannot read ---------------------------------------------------


def test_pipelined_garbage_is_answered_after_the_valid_request(server: Server) -> None:
    with server.connect() as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGARBAGE \x00\r\n\r\n")
        raw, closed = read_all(sock)
    assert closed
    assert raw.startswith(b"HTTP/1.1 200 ") and b'{"status":"ok"}' in raw
    status, body = envelope_of(raw)
    assert status == 400 and body["messages"] == ["Bad request: the HTTP request cannot be parsed"]


def test_garbage_after_three_pipelined_requests_is_answered_fourth(server: Server) -> None:
    with server.connect() as sock:  # three valid requests, then garbage: three answers, then 400
        ok = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        sock.sendall(ok * 3 + b"\x01\x02\r\n\r\n")
        raw, _ = read_all(sock)
    assert raw.count(b"HTTP/1.1 200 ") == 3 and envelope_of(raw)[0] == 400
