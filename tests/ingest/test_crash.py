"""kill -9 in the middle of an import: after a restart nothing is lost and nothing doubled."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.ingest.conftest import cdr_line, wait_for

LINES = 80_000


def _start(db: Path, master: Path, *extra: str) -> subprocess.Popen[bytes]:
    code = "from cdrapi.cli.ingest import ingest; ingest()"
    return subprocess.Popen(
        [sys.executable, "-c", code, "csv", "--db", f"sqlite:///{db}", str(master), *extra],
        cwd=master.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group: the producer process dies with it
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )  # fmt: skip


def _count(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=10) as conn:
            return int(conn.execute("SELECT count(*) FROM calls").fetchone()[0])
    except sqlite3.OperationalError:  # not created yet
        return 0


def _kill(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.communicate(timeout=30)


def test_kill_9_mid_import_then_restart_loses_and_doubles_nothing(tmp_path: Path) -> None:
    master = tmp_path / "Master.csv"
    master.write_text("".join(cdr_line(n, minute=n % 60) for n in range(LINES)))
    db = tmp_path / "store.db"
    seen = []
    for _ in range(2):  # killed twice, at different points, each while batches are written
        process = _start(db, master)
        before = _count(db)
        wait_for(lambda before=before: _count(db) > before, timeout=60, step=0.005)
        time.sleep(0.05)
        _kill(process)
        seen.append(_count(db))
    assert 0 < seen[0] < seen[1] < LINES, seen  # really mid-import
    finished = _start(db, master)
    _, err = finished.communicate(timeout=120)
    assert finished.returncode == 0, err
    with sqlite3.connect(db) as conn:
        count, keys, low, high = conn.execute(
            "SELECT count(*), count(DISTINCT uniqueid), min(id), max(id) FROM calls"
        ).fetchone()
        indexes = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
        found = conn.execute(
            "SELECT count(*) FROM calls_numbers WHERE calls_numbers MATCH '\"0721000000\"'"
        ).fetchone()[0]
    assert count == keys == LINES  # every line once
    assert (low, high) == (1, LINES)  # ids with no gap, in file order
    assert {"ix_calls_time", "ix_calls_source", "calls_numbers"} <= indexes
    assert found == LINES  # the search index covers every call


def test_kill_9_while_following_then_restart(tmp_path: Path) -> None:
    master = tmp_path / "Master.csv"
    master.write_text("".join(cdr_line(n) for n in range(3000)))
    db = tmp_path / "store.db"
    process = _start(db, master, "--follow")
    wait_for(lambda: _count(db) == 3000, timeout=60)
    with open(master, "a") as handle:  # a burst of calls, killed while it is written
        for n in range(3000, 23000):
            handle.write(cdr_line(n))
            if n == 13000:
                handle.flush()
                wait_for(lambda: _count(db) > 3000, timeout=60, step=0.002)
                _kill(process)
    restarted = _start(db, master, "--follow")
    wait_for(lambda: _count(db) == 23000, timeout=60)
    time.sleep(0.3)
    restarted.send_signal(signal.SIGTERM)
    restarted.communicate(timeout=30)
    with sqlite3.connect(db) as conn:
        count, keys = conn.execute(
            "SELECT count(*), count(DISTINCT uniqueid) FROM calls"
        ).fetchone()
    assert count == keys == 23000
