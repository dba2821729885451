"""A full disk in the middle of an import (issue 8, item 13): ``ingest csv``, and
``ingest cel`` from a cel_custom file and from a cel table.

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

import csv
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cdrapi.ingest.cel_events import DEFAULT_LAYOUT
from tests.ingest.conftest import cdr_line

ROOT = Path(__file__).parents[2]
LINES = 12_000
#: The CEL fixture's calls, copied this many times (each copy its own linkedids): 29,250
#: events, far more than the small disk holds (it fills at about 15,000).
CEL_COPIES = 250
CEL_MASTER = ROOT / "tests" / "fixtures" / "cel" / "Master.csv"
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

    def ingest(self, *args: str, command: str = "csv") -> subprocess.CompletedProcess[str]:
        """``cdrapi ingest <command> ...`` run to its end."""
        code = (_LIMITED if self.limited else "") + _RUN
        return subprocess.run(
            [sys.executable, "-c", code, "ingest", command, *args],
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


def _cel_lines() -> list[str]:
    """:data:`CEL_COPIES` copies of the CEL fixture's lines, each with its own ids."""
    lines = CEL_MASTER.read_text().splitlines()
    return [
        line.replace('"1710', f'"{1800 + n}') + "\n" for n in range(CEL_COPIES) for line in lines
    ]


def _cel_table(path: Path, lines: list[str]) -> None:
    """A cel_sqlite3-style table (an ``id``, then the sample template's columns) of
    ``lines``, in the PBX's database ``path``."""
    names = [*DEFAULT_LAYOUT, "extra"]
    with sqlite3.connect(path) as conn:
        conn.execute(f"CREATE TABLE cel (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                     f"{', '.join(name + ' TEXT' for name in names)})")  # fmt: skip
        conn.executemany(
            f"INSERT INTO cel ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
            csv.reader(lines),
        )
    conn.close()


def cel_state(db: Path) -> tuple[list[str], dict[str, object]]:
    """(every stored CEL event, the checkpoint's position), opening the store afresh."""
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        found = conn.execute("SELECT events FROM cel_calls").fetchall()
        saved = conn.execute("SELECT position FROM checkpoints").fetchone()
    conn.close()
    events = [event for (text,) in found for event in text.split("\x1e")]
    return events, json.loads(saved[0]) if saved else {}


@pytest.mark.parametrize("source", ["file", "table"])
def test_a_full_disk_in_ingest_cel_ends_with_one_error_line_and_resumes(
    disk: SmallDisk, tmp_path: Path, source: str
) -> None:
    lines = _cel_lines()
    if source == "file":
        master = tmp_path / "Master.csv"
        master.write_text("".join(lines))
        given = str(master)
    else:
        _cel_table(tmp_path / "pbx.db", lines)  # the PBX's database: not on the small disk
        given = f"sqlite:///{tmp_path / 'pbx.db'}"
    db = disk.path / "store.db"
    args = ("--db", f"sqlite:///{db}", "--rejects", str(tmp_path / "rejects.txt"), given)

    full = disk.ingest(*args, command="cel")
    assert full.returncode != 0
    assert "Traceback" not in full.stderr, full.stderr
    (message,) = error_lines(full.stderr)
    assert f"the disk holding {db} is full" in message, message
    assert "free space" in message and "run the same command again" in message, message
    events, position = cel_state(db)
    assert 0 < len(events) == len(set(events)) < len(lines)  # some batches, each event once
    if source == "file":  # the checkpoint is after the last committed batch, no further
        assert position["line"] == len(events)
    else:  # the events of the rows up to the saved watermark, no others
        times = [float(line.split(",", 2)[1].strip('"')) for line in lines]
        mark = float(str(position["watermark"]))
        assert sum(t < mark for t in times) <= len(events) <= sum(t <= mark for t in times)

    disk.free()
    again = disk.ingest(*args, command="cel")
    assert again.returncode == 0, again.stderr
    assert not error_lines(again.stderr)
    events, _ = cel_state(db)
    assert len(events) == len(set(events)) == len(lines)  # every event stored, once
    assert not (tmp_path / "rejects.txt").exists()
