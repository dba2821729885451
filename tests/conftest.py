"""Shared fixtures: real databases and a real HTTP server on loopback.

- ``db_url``: a fresh, empty database for one test, on SQLite and on PostgreSQL (the
  PostgreSQL server is started by the fixture itself with initdb/pg_ctl in a temp dir).
- ``serve``: runs the app under uvicorn on 127.0.0.1 in a thread, for a given Settings.

Locally, PostgreSQL tests skip with a reason when its binaries are missing; with
``CI=true`` they fail instead, so CI never passes with a skipped backend.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn

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
