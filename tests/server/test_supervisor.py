"""Workers that die with their supervisor (cdrapi.server.supervisor), and a worker that
uvicorn starts in place of another (cdrapi.server.app.create_worker_app): a real
``cdrapi serve --workers 2`` and its processes, killed for real."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from cdrapi.store.engine import connect
from tests.conftest import free_port
from tests.data import load, sample_rows
from tests.server.conftest import CDRAPI, UNAVAILABLE, assert_envelope, served, sqlite_files

TOKEN = "t"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


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


def test_workers_exit_when_their_supervisor_is_killed(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'cdrapi.db'}"
    load(connect(db), sample_rows(30))
    port = free_port()
    workers: list[int] = []
    try:
        command = [CDRAPI, "serve", "--db", db, "--workers", "2"]
        with served(command, TOKEN, port) as (base, leader):
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
        with served([CDRAPI, "serve", "--db", db], TOKEN, port) as (again, _):  # the port is free
            assert httpx.get(f"{again}/healthz").json() == {"status": "ok"}
    finally:
        for pid in workers:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_worker_started_after_the_file_was_deleted_does_not_create_it(tmp_path: Path) -> None:
    path = tmp_path / "cdrapi.db"
    load(connect(f"sqlite:///{path}"), sample_rows(30))
    command = [CDRAPI, "serve", "--db", f"sqlite:///{path}", "--workers", "2"]
    with served(command, TOKEN) as (base, leader):
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
