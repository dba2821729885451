"""Ingestion fixtures: a store, the fixture files, a MariaDB server, API queries (on the
app in process: :func:`tests.conftest.app_client`).

``mariadb`` starts a throwaway MariaDB server (mariadb-install-db + mariadbd in a temp
dir, on a free loopback port, grant tables skipped so root needs no password). Like the
PostgreSQL fixture, it skips locally when MariaDB is not installed and fails under
``CI=true``.
"""

from __future__ import annotations

import bz2
import gzip
import itertools
import lzma
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, create_engine, select, text

from cdrapi.ingest import IngestRun, ingest_csv
from cdrapi.ingest.cdr import CDR_FIELDS, CDR_INDEX
from cdrapi.ingest.follow import FileTail
from cdrapi.ingest.sqltable import source_url
from cdrapi.protocol.records import RECORD_COLUMNS, record
from cdrapi.store.engine import connect
from cdrapi.store.schema import calls
from tests.conftest import free_port, need
from tests.ingest.cdr_table import FREEPBX

FIXTURES = Path(__file__).parents[1] / "fixtures" / "asterisk"
TOKEN = "ingest-test-token"


def _binary(name: str) -> str | None:
    for candidate in (shutil.which(name), f"/usr/sbin/{name}", f"/usr/bin/{name}"):
        if candidate and os.path.exists(candidate):
            return candidate
    return None


class MariaDB:
    """A MariaDB server in ``root`` on 127.0.0.1:``port``."""

    def __init__(self, root: Path) -> None:
        self.root, self.port = root, free_port()
        self.data, self.socket = root / "data", root / "mysqld.sock"
        self.process: subprocess.Popen[bytes] | None = None
        self._counter = itertools.count()

    def start(self) -> None:
        install, server = _binary("mariadb-install-db"), _binary("mariadbd")
        assert install and server
        user = ["--user=root"] if os.geteuid() == 0 else []
        subprocess.run(
            [install, "--no-defaults", f"--datadir={self.data}", "--skip-test-db",
             "--auth-root-authentication-method=normal", *user],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        log = open(self.root / "log", "wb")  # noqa: SIM115 (the server's log, closed with it)
        self.process = subprocess.Popen(
            [server, "--no-defaults", f"--datadir={self.data}", f"--socket={self.socket}",
             f"--port={self.port}", "--bind-address=127.0.0.1", "--skip-grant-tables",
             "--skip-log-bin", "--innodb-buffer-pool-size=32M", "--innodb-log-file-size=16M",
             f"--pid-file={self.root / 'pid'}", *user],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        import pymysql

        deadline = time.monotonic() + 60
        while True:
            try:
                pymysql.connect(host="127.0.0.1", port=self.port, user="root").close()
                return
            except pymysql.err.OperationalError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError((self.root / "log").read_text()[-2000:]) from None
                time.sleep(0.2)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def new_database(self) -> str:
        import pymysql

        name = f"asteriskcdrdb_{next(self._counter)}"
        conn = pymysql.connect(host="127.0.0.1", port=self.port, user="root", autocommit=True)
        with conn.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
        conn.close()
        return f"mysql://root@127.0.0.1:{self.port}/{name}"


@pytest.fixture(scope="session")
def mariadb() -> Iterator[MariaDB]:
    need(
        _binary("mariadbd") is not None and _binary("mariadb-install-db") is not None,
        "MariaDB server binaries (mariadbd, mariadb-install-db) are not installed",
    )
    try:
        import pymysql  # noqa: F401
    except ImportError:
        need(False, "PyMySQL is not installed")
    root = Path(tempfile.mkdtemp(prefix="cdrapi-mariadb-"))
    server = MariaDB(root)
    try:
        server.start()
    except (subprocess.CalledProcessError, OSError, RuntimeError) as exc:
        server.stop()
        need(False, f"MariaDB could not start: {exc}")
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def freepbx(mariadb: MariaDB) -> tuple[str, Engine]:
    """A FreePBX ``cdr`` table in a new MariaDB database: its URL and an engine on it."""
    url = mariadb.new_database()
    pbx = create_engine(source_url(url))
    with pbx.begin() as conn:
        conn.execute(text(FREEPBX))
    return url, pbx


@pytest.fixture
def store(tmp_path: Path) -> Engine:
    """A fresh SQLite store."""
    return connect(f"sqlite:///{tmp_path / 'store.db'}")


def rows(engine: Engine, *columns: str, where: Any = None) -> list[tuple[Any, ...]]:
    """Stored calls (the given columns, or all), in id order."""
    chosen = [calls.c[name] for name in columns] if columns else [calls]
    query = select(*chosen).order_by(calls.c.id)
    if where is not None:
        query = query.where(where)
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(query)]


def records(engine: Engine) -> list[dict[str, Any]]:
    """Stored calls as the API's 43-field records, in id order."""
    return [record(row) for row in rows(engine, *RECORD_COLUMNS)]


def api(client: httpx.Client, **filters: Any) -> list[dict[str, Any]]:
    """Every record the API at ``client`` returns for ``filters`` (all pages), as a client
    sees them."""
    records: list[dict[str, Any]] = []
    page = 1
    while True:
        response = client.post(
            "/api/cdr",
            json={"page": page, "filters": filters},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        body = response.json()
        records.extend(body["results"])
        if page >= body["pagination"]["max_page"]:
            return records
        page += 1


def wait_for(condition: Any, timeout: float = 5.0, step: float = 0.02) -> float:
    """Wait until ``condition()`` is true; return how long it took (fail after timeout)."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(step)
    return time.monotonic() - started


def cdr_line(n: int, *, src: str = "0721000000", status: str = "ANSWERED", minute: int = 0) -> str:
    """A 21-column cdr_csv line for call ``n`` (uniqueid ``1710000000.<n>``)."""
    uid = f"1710000000.{n}"
    bill = 30 if status == "ANSWERED" else 0
    answer = f'"2024-03-09 17:{minute:02d}:05"' if bill else ""
    return (
        f'"","{src}","0312285000","from-pstn","""Caller {n}"" <{src}>","PJSIP/orange-{n:08x}",'
        f'"PJSIP/101-{n + 1:08x}","Dial","PJSIP/101,30","2024-03-09 17:{minute:02d}:00",{answer},'
        f'"2024-03-09 17:{minute:02d}:{5 + bill:02d}",{5 + bill},{bill},"{status}","DOCUMENTATION",'
        f'"{uid}","","","{uid}",0\n'
    )


def append(path: Path, *lines: str) -> None:
    """Append lines as Asterisk's cdr_csv does: open, write, close."""
    with open(path, "a", encoding="utf-8") as handle:
        handle.write("".join(lines))


COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    ".gz": gzip.compress,
    ".bz2": bz2.compress,
    ".xz": lzma.compress,
}


def compress(path: Path, target: Path) -> None:
    """What logrotate's ``compress`` does: a compressed copy (same mtime), original gone."""
    target.write_bytes(COMPRESSORS[target.suffix](path.read_bytes()))
    info = path.stat()
    os.utime(target, (info.st_atime, info.st_mtime))
    path.unlink()


def lines_of(tail: FileTail) -> list[bytes]:
    """Every line ``tail`` has now."""
    found: list[bytes] = []
    while (chunk := tail.read()) is not None:
        found += chunk.data.splitlines(keepends=True)
    return found


def raw_cdr(**fields: str) -> tuple[str, ...]:
    """A raw CDR (CDR_FIELDS order) with these fields, an answered 30-second call otherwise."""
    raw = [""] * len(CDR_FIELDS)
    defaults = {"start": "2024-05-06 09:00:00", "duration": "30", "billsec": "25",
                "disposition": "ANSWERED", "uniqueid": "1714986000.1"}  # fmt: skip
    for name, value in {**defaults, **fields}.items():
        raw[CDR_INDEX[name]] = value
    return tuple(raw)


def uids(*numbers: int) -> list[str]:
    """The uniqueids ``cdr_line`` gives lines ``numbers``."""
    return [f"1710000000.{n}" for n in numbers]


def stored(engine: Engine) -> list[str]:
    """The stored calls' uniqueids, in line order."""
    return sorted((uid for (uid,) in rows(engine, "uniqueid")), key=lambda u: int(u[11:]))


def run(engine: Engine, path: Path) -> object:
    """One ``cdrapi ingest csv`` run over ``path``, without a reject file."""
    return ingest_csv(engine, [path], IngestRun(rejects=None))
