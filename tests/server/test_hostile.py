"""Hostile requests and faults (issue 9): never a 5xx, never a hang, never a lie.

Socket-level attacks (oversized and slow heads, slow bodies, pipelining) run against
uvicorn on loopback with cdrapi's connection protocol, in a thread whose CPU time is read;
the supervisor test runs a real ``cdrapi serve --workers 2``. The rest goes through
httpx's in-process ASGI transport, on real SQLite files and a real PostgreSQL server.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import uvicorn

from cdrapi.server.app import create_app
from cdrapi.server.protocol import HttpProtocol
from cdrapi.server.recordings import sign
from cdrapi.settings import Settings
from cdrapi.store.engine import connect
from tests.conftest import PostgresServer, _pg_bin, free_port, start_uvicorn
from tests.data import load, sample_rows

TOKEN = "t"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SECRET = "s3cret"
AUDIO = bytes(range(256)) * 4  # 1,024 bytes
CDRAPI = str(Path(sys.executable).parent / "cdrapi")
UNAVAILABLE = ["Service unavailable: the call store cannot be read"]


class QuickProtocol(HttpProtocol):
    """The production protocol with timeouts short enough for a test."""

    head_timeout = 0.5
    body_timeout = 1.0


def assert_envelope(response: httpx.Response, status: int) -> list[str]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["has_error"] is True and body["pagination"] == [] and body["results"] == []
    return list(body["messages"])


def envelope_of(raw: bytes) -> tuple[int, dict[str, Any]]:
    """The status and JSON body of the last response in ``raw`` bytes off a socket."""
    head, _, body = raw.rpartition(b"\r\n\r\n")
    status_line = head[head.rfind(b"HTTP/1.1 ") :].split(b"\r\n")[0]
    assert b"content-type: application/json" in head.lower(), raw[:500]
    return int(status_line.split()[1]), orjson.loads(body)


# --- a server on loopback with cdrapi's protocol -------------------------------------


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
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('hostile') / 'cdrapi.db'}"
    load(connect(url), sample_rows(30))
    return url


@pytest.fixture(scope="module")
def server(store: str) -> Iterator[Server]:
    with guarded(Settings(db=store, api_token=TOKEN)) as running:
        yield running


def healthz_still_quick(server: Server) -> None:
    started = time.monotonic()
    response = httpx.get(f"http://127.0.0.1:{server.port}/healthz", timeout=5)
    assert response.status_code == 200 and time.monotonic() - started < 1


def test_oversized_head_is_431_and_costs_the_worker_little(server: Server) -> None:
    for opening in (
        b"GET /api/cdr HTTP/1.1\r\nHost: x\r\nX-Big: ",  # one huge header
        b"GET /api/cdr?" + b"a" * 70_000,  # a huge request line
    ):
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
    # many small headers count too
    with server.connect() as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\n" + b"X-A: b\r\n" * 10_000 + b"\r\n")
        assert envelope_of(read_all(sock)[0])[0] == 431
    # just under the limit is an ordinary request
    with server.connect() as sock:
        pad = b"X-Pad: " + b"p" * 60_000 + b"\r\n"
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + pad + b"Connection: close\r\n\r\n")
        assert read_all(sock)[0].startswith(b"HTTP/1.1 200 ")
    healthz_still_quick(server)


def test_slow_head_gets_408_and_is_closed(server: Server) -> None:
    with server.connect() as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
        started = time.monotonic()
        raw, closed = read_all(sock)
    assert closed and time.monotonic() - started < 2
    status, body = envelope_of(raw)
    assert status == 408 and "headers did not arrive within 0.5 s" in body["messages"][0]
    with server.connect() as sock:  # a connection that says nothing is just closed
        raw, closed = read_all(sock)
    assert closed and raw == b""
    # one byte every 0.2 s never completes a head: the deadline holds from its first byte
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


def test_pipelined_garbage_is_answered_after_the_valid_request(server: Server) -> None:
    with server.connect() as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGARBAGE \x00\r\n\r\n")
        raw, closed = read_all(sock)
    assert closed
    assert raw.startswith(b"HTTP/1.1 200 ") and b'{"status":"ok"}' in raw
    status, body = envelope_of(raw)
    assert status == 400 and body["messages"] == ["Bad request: the HTTP request cannot be parsed"]
    with server.connect() as sock:  # three valid requests, then garbage: three answers, then 400
        ok = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        sock.sendall(ok * 3 + b"\x01\x02\r\n\r\n")
        raw, _ = read_all(sock)
    assert raw.count(b"HTTP/1.1 200 ") == 3 and envelope_of(raw)[0] == 400


# --- in process: links, tokens, ranges, recordings ------------------------------------


def asgi(settings: Settings, *requests: tuple[str, str, dict[str, Any]]) -> list[httpx.Response]:
    """The responses of ``create_app(settings)`` to (method, url, httpx kwargs), in order."""

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=create_app(settings))
        async with httpx.AsyncClient(transport=transport, base_url="http://cdrapi") as client:
            return [await client.request(method, url, **kw) for method, url, kw in requests]

    return asyncio.run(run())


@pytest.fixture
def recordings(tmp_path: Path, store: str) -> Settings:
    root = tmp_path / "monitor"
    (root / "2024").mkdir(parents=True)
    (root / "2024" / "a.wav").write_bytes(AUDIO)
    (root / ".hidden.wav").write_bytes(b"dot")
    (root / ".git").mkdir()
    (root / ".git" / "config.wav").write_bytes(b"dot")
    (root / "2024" / ".secret.wav").write_bytes(b"dot")
    os.symlink(root / "2024" / ".secret.wav", root / "2024" / "b.wav")
    return Settings(db=store, api_token=TOKEN, recordings_dir=str(root), recording_secret=SECRET)


def test_bad_signatures_of_every_shape_are_403(recordings: Settings) -> None:
    future = int(time.time()) + 600
    good = sign(SECRET, "2024/a.wav", future)
    past = int(time.time()) - 10
    shapes = {
        "non-ASCII": f"expires={future}&signature=%C3%A9",
        "non-ASCII, 64 characters": f"expires={future}&signature=" + "%C3%A9" * 64,
        "not UTF-8": f"expires={future}&signature=%FF%FE",
        "too long": f"expires={future}&signature={good}{good}",
        "one digit more": f"expires={future}&signature={good}0",
        "one digit less": f"expires={future}&signature={good[:-1]}",
        "empty": f"expires={future}&signature=",
        "not hex": f"expires={future}&signature=" + "g" * 64,
        "NUL": f"expires={future}&signature=%00{good[1:]}",
        "wrong": f"expires={future}&signature=" + "0" * 64,
        "expires changed": f"expires={future + 1}&signature={good}",
        "expires missing": f"signature={good}",
        "expires not a number": f"expires=soon&signature={good}",
        "expires in other digits": f"expires=%D9%A1%D9%A2&signature={good}",
        "expires with a sign": f"expires=%2B{future}&signature={good}",
        "expires huge": f"expires={'9' * 5000}&signature={good}",
        "expired": f"expires={past}&signature={sign(SECRET, '2024/a.wav', past)}",
    }
    requests = [("GET", f"/recordings/2024/a.wav?{query}", {}) for query in shapes.values()]
    far = 4_000_000_000
    requests.append(("GET", f"/recordings/2024/a.wav?expires={future}&signature={good}", {}))
    far_signature = sign(SECRET, "2024/a.wav", far)
    requests.append(("GET", f"/recordings/2024/a.wav?expires={far}&signature={far_signature}", {}))
    *refused, valid, far_future = asgi(recordings, *requests)
    for name, response in zip(shapes, refused, strict=True):
        messages = assert_envelope(response, 403)
        expected = "Recording link expired" if name == "expired" else "Invalid recording link"
        assert messages == [expected], name
    assert valid.status_code == 200 and valid.content == AUDIO
    assert far_future.status_code == 200  # a far expiry is the signer's choice


def test_hostile_tokens_and_hashes_are_4xx(recordings: Settings) -> None:
    signed = recordings.model_copy(update={"api_key": "k\u00e9y"})
    requests: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", "/api/cdr", {"headers": {"Authorization": b"Bearer \xe9\xff\x00"}}),
        ("GET", "/api/cdr", {"headers": {"Authorization": b"Bearer " + b"t" * 60_000}}),
        ("GET", "/api/cdr", {"headers": {"Authorization": b"\xff\xfe"}}),
        ("GET", "/recordings/2024/a.wav", {"headers": {"Authorization": b"Bearer \xe9"}}),
        ("GET", "/recordings/%FF%FE.wav", {"headers": AUTH}),
        ("GET", "/api/cdr?api_hash=%C3%A9&page=1", {"headers": AUTH}),
        ("GET", "/api/cdr?api_hash=%FF&page=%FF", {"headers": AUTH}),
        ("GET", "/api/cdr?%FF=1&api_hash=" + "a" * 32, {"headers": AUTH}),
        ("POST", "/api/cdr", {"headers": AUTH, "content": b"api_hash=%E9&\xff=1"}),
        ("POST", "/api/cdr", {"headers": AUTH, "json": {"api_hash": "\u00e9" * 32}}),
        ("POST", "/api/cdr", {"headers": AUTH, "json": {"api_hash": ["x"], "\u00e9": 1}}),
    ]
    for response in asgi(signed, *requests):
        assert 400 <= response.status_code < 500, response.text
        assert_envelope(response, response.status_code)


def test_ranges_follow_rfc_9110_and_errors_are_envelopes(recordings: Settings) -> None:
    url = "/recordings/2024/a.wav"

    def ranged(value: str, **extra: str) -> tuple[str, str, dict[str, Any]]:
        return ("GET", url, {"headers": {**AUTH, "Range": value.encode("latin-1"), **extra}})

    many = "bytes=" + ",".join(["0-0"] * 101)
    ignored = ["bytes=5-2", "bytes=abc", "bytes=", "bytes=-", "items=0-1", "bytes 0-1",
               "bytes=1-2-3", "bytes=--1", many, "bytes=\u00b2-3"]  # fmt: skip
    unsatisfiable = ["bytes=999999-", "bytes=-0", "bytes=1024-2000", "bytes=5000-,6000-"]
    answers = asgi(
        recordings,
        *[ranged(value) for value in ignored],
        *[ranged(value) for value in unsatisfiable],
        ranged("bytes=0-1"),
        ranged("bytes=1000-"),
        ranged("bytes=-2000"),
        ranged("bytes=10-19, 2000-3000"),
        ranged("bytes=0-1,4-5"),
        ranged("bytes=999999-", **{"If-Range": '"not-this-etag"'}),
    )
    for value, response in zip(ignored, answers, strict=False):
        assert response.status_code == 200 and response.content == AUDIO, value
    for value, response in zip(unsatisfiable, answers[len(ignored) :], strict=False):
        assert assert_envelope(response, 416), value
        assert response.headers["content-range"] == f"bytes */{len(AUDIO)}"
    first, tail, whole, one_of_two, two, stale = answers[len(ignored) + len(unsatisfiable) :]
    assert first.status_code == 206 and first.content == AUDIO[:2]
    assert tail.status_code == 206 and tail.content == AUDIO[1000:]
    assert whole.status_code == 206 and whole.content == AUDIO
    assert one_of_two.status_code == 206 and one_of_two.content == AUDIO[10:20]
    assert two.status_code == 206 and two.headers["content-type"].startswith("multipart/byteranges")
    assert stale.status_code == 200 and stale.content == AUDIO  # If-Range failed: all of it


def test_dotfiles_in_the_recordings_directory_are_not_served(recordings: Settings) -> None:
    paths = [".hidden.wav", ".git/config.wav", "2024/.secret.wav", "2024/b.wav", "%2Ehidden.wav"]
    answers = asgi(
        recordings,
        *[("GET", f"/recordings/{path}", {"headers": AUTH}) for path in paths],
        *[("GET", f"/recording-links/{path}", {"headers": AUTH}) for path in paths],
    )
    for path, response in zip(paths * 2, answers, strict=True):
        assert assert_envelope(response, 404) == ["Not found"], path


# --- the store under the server -------------------------------------------------------


def store_answers(url: str, fault: Any, rounds: int = 4) -> tuple[list[Any], list[int]]:
    """Serve ``url``; apply ``fault()`` after a first page; then ``rounds`` of /api/cdr and
    /healthz requests at once. The row counts (or error statuses) and healthz statuses."""
    settings = Settings(db=url, api_token=TOKEN)

    async def run() -> tuple[list[Any], list[int]]:
        transport = httpx.ASGITransport(app=create_app(settings))
        async with httpx.AsyncClient(transport=transport, base_url="http://cdrapi") as client:
            first = await client.post("/api/cdr", headers=AUTH, json={})
            assert first.json()["pagination"]["row_count"] == 30
            fault()
            pages: list[Any] = []
            health: list[int] = []
            for _ in range(rounds):
                answers = await asyncio.gather(
                    client.post("/api/cdr", headers=AUTH, json={}),
                    client.post("/api/cdr", headers=AUTH, json={"page": 2}),
                    client.get("/healthz"),
                    client.get("/healthz"),
                )
                for response in answers[:2]:
                    if response.status_code == 200:
                        pages.append(response.json()["pagination"]["row_count"])
                    else:
                        assert assert_envelope(response, 503) == UNAVAILABLE
                        pages.append(503)
                health += [response.status_code for response in answers[2:]]
            return pages, health

    return asyncio.run(run())


def sqlite_files(path: Path) -> list[Path]:
    return [path.with_name(path.name + suffix) for suffix in ("", "-wal", "-shm")]


def test_deleted_database_is_503_everywhere_and_never_recreated(tmp_path: Path) -> None:
    path = tmp_path / "cdrapi.db"
    load(connect(f"sqlite:///{path}"), sample_rows(30))

    def delete() -> None:
        for file in sqlite_files(path):
            file.unlink(missing_ok=True)

    pages, health = store_answers(f"sqlite:///{path}", delete)
    assert set(pages) == {503} and set(health) == {503}
    assert not path.exists()


def test_replaced_database_is_read_whole_never_mixed(tmp_path: Path) -> None:
    path = tmp_path / "cdrapi.db"
    load(connect(f"sqlite:///{path}"), sample_rows(30))
    other = tmp_path / "other.db"
    engine = connect(f"sqlite:///{other}")
    load(engine, sample_rows(120, seed=3))  # another database at the same store version
    engine.dispose()  # all of it in the main file, none left in other.db-wal
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).execute("CREATE TABLE unrelated (x)").connection.close()

    def replace_with(source: Path) -> Any:
        def fault() -> None:  # a whole database for another: its -wal and -shm go too
            shutil.copy(source, tmp_path / "incoming.db")
            for stale in sqlite_files(path)[1:]:
                stale.unlink(missing_ok=True)
            os.replace(tmp_path / "incoming.db", path)

        return fault

    pages, health = store_answers(f"sqlite:///{path}", replace_with(other))
    assert set(pages) == {120} and set(health) == {200}
    path = tmp_path / "second.db"
    load(connect(f"sqlite:///{path}"), sample_rows(30))
    pages, health = store_answers(f"sqlite:///{path}", replace_with(empty))
    assert set(pages) == {503} and set(health) == {503}


def test_read_only_database_is_still_served(tmp_path: Path) -> None:
    # As root, permissions bind nobody: the server runs as "nobody" then.
    root = Path(tempfile.mkdtemp(prefix="cdrapi-ro-"))
    try:
        path = root / "cdrapi.db"
        load(connect(f"sqlite:///{path}"), sample_rows(30))
        as_user: list[str] = []
        if os.geteuid() == 0:
            as_user = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
            shutil.chown(root, "nobody")
            for file in root.iterdir():
                shutil.chown(file, "nobody")
        path.chmod(0o444)
        before = hashlib.sha256(path.read_bytes()).hexdigest()
        with served([*as_user, CDRAPI, "serve", "--db", f"sqlite:///{path}"]) as (base, _):
            page = httpx.post(f"{base}/api/cdr", headers=AUTH, json={})
            assert page.status_code == 200 and page.json()["pagination"]["row_count"] == 30
            assert httpx.get(f"{base}/healthz").status_code == 200
        assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    finally:
        shutil.rmtree(root, ignore_errors=True)


# --- PostgreSQL stopped and restarted -------------------------------------------------


def pg_ctl(server: PostgresServer, *args: str) -> None:
    pg = _pg_bin("pg_ctl")
    assert pg is not None
    server._run(pg, "-D", str(server.data), *args)


def test_postgresql_stopped_is_503_and_restarted_is_served(postgres: PostgresServer) -> None:
    url = postgres.new_database()
    load(connect(url), sample_rows(30))
    settings = Settings(db=url, api_token=TOKEN)
    options = f"-p {postgres.port} -k {postgres.root} -c listen_addresses=127.0.0.1 -c fsync=off"

    async def run() -> None:
        transport = httpx.ASGITransport(app=create_app(settings))
        async with httpx.AsyncClient(transport=transport, base_url="http://cdrapi") as client:
            assert (await client.post("/api/cdr", headers=AUTH, json={})).status_code == 200
            pg_ctl(postgres, "-m", "immediate", "stop")
            try:
                for _ in range(3):
                    down = await client.post("/api/cdr", headers=AUTH, json={})
                    assert assert_envelope(down, 503) == UNAVAILABLE
                    assert down.headers["retry-after"] == "5"
                    assert (await client.get("/healthz")).status_code == 503
            finally:
                log = str(postgres.root / "log")
                pg_ctl(postgres, "-o", options, "-w", "-l", log, "start")
            back = await client.post("/api/cdr", headers=AUTH, json={})
            assert back.status_code == 200 and back.json()["pagination"]["row_count"] == 30
            assert (await client.get("/healthz")).status_code == 200

    asyncio.run(run())


# --- cdrapi serve: the supervisor killed ----------------------------------------------


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def workers_of(supervisor: int) -> list[int]:
    """uvicorn's worker processes (multiprocessing's spawned children) of ``supervisor``."""
    found = []
    for pid in children(supervisor):
        try:
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(pid)
        except OSError:
            continue
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


@contextmanager
def served(command: list[str], port: int | None = None) -> Iterator[tuple[str, int]]:
    """``command`` (a ``cdrapi serve``) on ``port`` once it answers /healthz: its base URL
    and process id."""
    port = port or free_port()
    env = {**os.environ, "CDRAPI_API_TOKEN": TOKEN}
    args = [*command, "--port", str(port), "--no-access-log"]
    process = subprocess.Popen(
        args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"{base}/healthz", timeout=2)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                assert time.monotonic() < deadline, "cdrapi serve did not start"
                time.sleep(0.05)
        yield base, process.pid
    finally:
        if process.poll() is None:
            process.terminate()
        process.wait(timeout=20)


def test_workers_exit_when_their_supervisor_is_killed(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'cdrapi.db'}"
    load(connect(db), sample_rows(30))
    port = free_port()
    workers: list[int] = []
    try:
        with served([CDRAPI, "serve", "--db", db, "--workers", "2"], port) as (base, leader):
            deadline = time.monotonic() + 10
            while len(workers) < 2 and time.monotonic() < deadline:
                workers = workers_of(leader)
                time.sleep(0.05)
            assert len(workers) == 2
            os.kill(leader, signal.SIGKILL)
            deadline = time.monotonic() + 5
            while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not any(alive(pid) for pid in workers), "workers outlived their supervisor"
            with pytest.raises(httpx.TransportError):
                httpx.get(f"{base}/healthz", timeout=2)
        with served([CDRAPI, "serve", "--db", db], port) as (again, _):  # the port is free
            assert httpx.get(f"{again}/healthz").json() == {"status": "ok"}
    finally:
        for pid in workers:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_worker_started_after_the_file_was_deleted_does_not_create_it(tmp_path: Path) -> None:
    path = tmp_path / "cdrapi.db"
    load(connect(f"sqlite:///{path}"), sample_rows(30))
    with served([CDRAPI, "serve", "--db", f"sqlite:///{path}", "--workers", "2"]) as (base, leader):
        deadline = time.monotonic() + 10
        workers: list[int] = []
        while len(workers) < 2 and time.monotonic() < deadline:
            workers = workers_of(leader)
            time.sleep(0.05)
        for file in sqlite_files(path):
            file.unlink(missing_ok=True)
        os.kill(workers[0], signal.SIGKILL)  # uvicorn starts another in its place
        deadline = time.monotonic() + 15
        replaced = False
        while not replaced and time.monotonic() < deadline:
            now = workers_of(leader)
            replaced = len(now) == 2 and workers[0] not in now
            time.sleep(0.05)
        assert replaced, "uvicorn did not replace the worker"
        time.sleep(0.5)  # the new worker has started (it answers once it is ready)
        for _ in range(20):
            page = httpx.post(f"{base}/api/cdr", headers=AUTH, json={})
            assert assert_envelope(page, 503) == UNAVAILABLE
            assert httpx.get(f"{base}/healthz").status_code == 503
        assert not path.exists()
