"""A full disk in the middle of an import (issue 8, item 13).

It used to end with an 82-line traceback. Now: one ``Error:`` line saying which disk is
full, while doing what, and what to do; a non-zero exit; the store as it was after its
last committed batch (calls and checkpoint agreeing); and, once space is freed, the same
command stores the rest, every line once, with indexes and planner statistics in place.

The store lives on a real 3 MB tmpfs when this process may mount one (root, as in CI).
Where mounting is not allowed, SQLite itself is told the disk holds 3 MB
(``PRAGMA max_page_count`` on every connection the command opens), which makes it fail
exactly as on a full disk (``SQLITE_FULL``), so the test never skips.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ingest.conftest import cdr_line

ROOT = Path(__file__).parents[2]
LINES = 12_000
INDEXES = ("ix_calls_time", "ix_calls_source", "ix_calls_linkedid", "ix_calls_direction")

_RUN = "from cdrapi.cli import main; main()"
# 750 pages of 4 KiB: SQLite answers SQLITE_FULL past 3 MB, as a full disk would.
_LIMITED = (
    "from sqlalchemy import event\n"
    "from sqlalchemy.pool import Pool\n"
    "event.listen(Pool, 'connect', lambda c, r: c.execute('PRAGMA max_page_count=750'))\n"
)


class SmallDisk:
    """A directory with room for about 3 MB, and a way to free space on it."""

    def __init__(self, root: Path) -> None:
        self.path = root / "disk"
        self.path.mkdir()
        self.mounted = self._mount("size=3m")
        self.limited = not self.mounted

    def _mount(self, options: str, *extra: str) -> bool:
        if os.geteuid() != 0 or shutil.which("mount") is None:
            return False
        found = subprocess.run(
            ["mount", *extra, "-t", "tmpfs", "-o", options, "tmpfs", str(self.path)],
            capture_output=True,
        )
        return found.returncode == 0

    def free(self) -> None:
        """Make room: a bigger tmpfs (its files kept), or SQLite's limit lifted."""
        if self.mounted:
            assert self._mount("remount,size=64m")
        self.limited = False

    def unmount(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.path)], capture_output=True)

    def ingest(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``cdrapi ingest csv ...`` run to its end."""
        code = (_LIMITED if self.limited else "") + _RUN
        return subprocess.run(
            [sys.executable, "-c", code, "ingest", "csv", *args],
            capture_output=True, text=True, timeout=180,
            env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])},
        )  # fmt: skip


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[SmallDisk]:
    small = SmallDisk(tmp_path)
    yield small
    small.unmount()


def state(db: Path) -> tuple[int, int, int | None]:
    """(calls, distinct uniqueids, the checkpoint's line), opening the store afresh."""
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        count, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT uniqueid) FROM calls"
        ).fetchone()
        found = conn.execute("SELECT position FROM checkpoints").fetchone()
    line = json.loads(found[0])["line"] if found else None
    return int(count), int(distinct), line


def analysed(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").fetchone():
            return set()
        found = conn.execute("SELECT idx FROM sqlite_stat1 WHERE tbl = 'calls'")
        return {str(name) for (name,) in found}


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("Error:")]


def test_a_full_disk_ends_with_one_error_line_and_the_import_resumes(
    disk: SmallDisk, tmp_path: Path
) -> None:
    master = tmp_path / "Master.csv"
    master.write_text("".join(cdr_line(n, minute=n % 60) for n in range(LINES)))
    db = disk.path / "store.db"
    store, rejects = f"sqlite:///{db}", str(tmp_path / "rejects.txt")

    full = disk.ingest("--db", store, "--rejects", rejects, str(master))
    assert full.returncode != 0
    assert "Traceback" not in full.stderr, full.stderr
    (message,) = error_lines(full.stderr)
    assert f"the disk holding {db} is full" in message, message
    assert "while storing calls" in message and "free space" in message
    assert "run the same command again" in message, message
    count, distinct, line = state(db)
    assert count == distinct == (line or 0) < LINES  # the last committed batch, no more

    disk.free()
    again = disk.ingest("--db", store, "--rejects", rejects, str(master))
    assert again.returncode == 0, again.stderr
    assert state(db) == (LINES, LINES, LINES)  # every line stored, once
    assert set(INDEXES) <= analysed(db)  # and planned as fast as ever (item 11)
    assert not Path(rejects).exists()
