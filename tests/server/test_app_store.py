"""The store under the app (cdrapi.server.app): a store that cannot be read is 503 with
Retry-After on /api/cdr and /healthz alike, never a 500, never a mix of two databases,
and back as soon as the store is. Real SQLite files and a real PostgreSQL server, the app
called in process; a read-only file is served by a real ``cdrapi serve`` run as another
user (as root, file permissions bind nobody).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from cdrapi.settings import Settings
from cdrapi.store.engine import connect
from tests.conftest import PostgresServer, _pg_bin, app_client, async_app_client
from tests.data import load, sample_rows
from tests.server.conftest import CDRAPI, UNAVAILABLE, assert_envelope, served, sqlite_files

TOKEN = "t"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_a_dropped_table_is_a_503_envelope_with_retry_after(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'gone.db'}"
    engine = connect(url)
    with app_client(Settings(db=url, api_token=TOKEN)) as client:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE calls")
        response = client.post("/api/cdr", headers=AUTH, json={})
        assert assert_envelope(response, 503) == UNAVAILABLE
        assert response.headers["retry-after"] == "5"


def test_a_dropped_table_fails_healthz(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'gone.db'}"
    engine = connect(url)
    with app_client(Settings(db=url, api_token=TOKEN)) as client:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE calls")
        assert client.get("/healthz").status_code == 503


def store_answers(url: str, fault: Any, rounds: int = 4) -> tuple[list[Any], list[int]]:
    """Serve ``url``; apply ``fault()`` after a first page; then ``rounds`` of /api/cdr and
    /healthz requests at once. The row counts (or error statuses) and healthz statuses."""
    settings = Settings(db=url, api_token=TOKEN)

    async def run() -> tuple[list[Any], list[int]]:
        async with async_app_client(settings) as client:
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


def test_deleted_database_is_503_everywhere_and_never_recreated(tmp_path: Path) -> None:
    path = tmp_path / "cdrapi.db"
    load(connect(f"sqlite:///{path}"), sample_rows(30))

    def delete() -> None:
        for file in sqlite_files(path):
            file.unlink(missing_ok=True)

    pages, health = store_answers(f"sqlite:///{path}", delete)
    assert set(pages) == {503} and set(health) == {503}
    assert not path.exists()


def replaced_by(path: Path, source: Path) -> Callable[[], None]:
    """A fault: a whole database ``source`` put in place of ``path``, its -wal and -shm
    removed with it (as a backup restored by copying)."""

    def fault() -> None:
        incoming = path.with_name("incoming.db")
        shutil.copy(source, incoming)
        for stale in sqlite_files(path)[1:]:
            stale.unlink(missing_ok=True)
        os.replace(incoming, path)

    return fault


def test_database_replaced_by_another_is_read_whole_never_mixed(tmp_path: Path) -> None:
    path = tmp_path / "cdrapi.db"
    load(connect(f"sqlite:///{path}"), sample_rows(30))
    other = tmp_path / "other.db"
    engine = connect(f"sqlite:///{other}")
    load(engine, sample_rows(120, seed=3))  # another database at the same store version
    engine.dispose()  # all of it in the main file, none left in other.db-wal
    pages, health = store_answers(f"sqlite:///{path}", replaced_by(path, other))
    assert set(pages) == {120} and set(health) == {200}


def test_database_replaced_by_one_without_calls_is_503(tmp_path: Path) -> None:
    path = tmp_path / "cdrapi.db"
    load(connect(f"sqlite:///{path}"), sample_rows(30))
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).execute("CREATE TABLE unrelated (x)").connection.close()
    pages, health = store_answers(f"sqlite:///{path}", replaced_by(path, empty))
    assert set(pages) == {503} and set(health) == {503}


def test_read_only_database_is_still_served(tmp_path: Path) -> None:
    # As root, permissions bind nobody: the server runs as "nobody" then.
    root = Path(tempfile.mkdtemp(prefix="cdrapi-ro-"))
    try:
        path = root / "cdrapi.db"
        engine = connect(f"sqlite:///{path}")
        load(engine, sample_rows(30))
        engine.dispose()  # closed now: its last close folds the WAL into the file
        as_user: list[str] = []
        if os.geteuid() == 0:
            as_user = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
            shutil.chown(root, "nobody")
            for file in root.iterdir():
                shutil.chown(file, "nobody")
        path.chmod(0o444)
        before = hashlib.sha256(path.read_bytes()).hexdigest()
        command = [*as_user, CDRAPI, "serve", "--db", f"sqlite:///{path}"]
        with served(command, TOKEN) as (base, _):
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
        async with async_app_client(settings) as client:
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
