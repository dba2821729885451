"""A day of a PBX's life against one store: not one call lost, not one doubled.

Asterisk's cdr_csv appends each call to ``Master.csv`` (sometimes caught half-written),
logrotate rotates it in each of its ways (``copytruncate``; ``create`` + ``compress``;
``delaycompress``; several times between two runs), and the import runs as sites run it:
a cron job (``cdrapi ingest csv`` once), a ``--follow`` service that is restarted, and one
that is killed with ``kill -9``. At the end the store holds every call written, once.
"""

from __future__ import annotations

import gzip
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from cdrapi.ingest import IngestRun, ingest_csv
from cdrapi.store.engine import connect
from tests.ingest.conftest import cdr_line, wait_for

ROOT = Path(__file__).parents[2]


class Pbx:
    """Writes calls as cdr_csv does, and rotates its file as logrotate does."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.master = folder, folder / "Master.csv"
        self.written = 0
        self.half = ""  # the second half of a line being written

    def calls(self, count: int, *, half: bool = False) -> None:
        """``count`` calls; with ``half``, the last one only half-written for now."""
        self.finish()
        text = "".join(cdr_line(self.written + n + 1, minute=n % 60) for n in range(count))
        self.written += count
        if half:
            cut = len(text) - 40
            text, self.half = text[:cut], text[cut:]
        with open(self.master, "a", encoding="utf-8") as handle:  # open, write, close
            handle.write(text)

    def finish(self) -> None:
        if self.half:
            with open(self.master, "a", encoding="utf-8") as handle:
                handle.write(self.half)
            self.half = ""

    def _shift(self) -> None:
        """Master.csv.N[.gz] -> Master.csv.N+1[.gz], oldest first."""
        numbered = []
        for path in self.folder.iterdir():
            parts = path.name.split(".")
            if path.name.startswith("Master.csv.") and parts[2].isdigit():
                numbered.append((int(parts[2]), path))
        for number, path in sorted(numbered, reverse=True):
            path.rename(self.folder / path.name.replace(f".{number}", f".{number + 1}", 1))

    def _compress(self, path: Path) -> None:
        target = path.with_name(path.name + ".gz")
        with open(path, "rb") as source, gzip.open(target, "wb") as out:
            shutil.copyfileobj(source, out)
        info = path.stat()
        os.utime(target, (info.st_atime, info.st_mtime))  # gzip keeps the time
        path.unlink()

    def rotate(self, how: str) -> None:
        self.finish()
        self._shift()
        rotated = self.folder / "Master.csv.1"
        if how == "copytruncate":
            shutil.copy2(self.master, rotated)
            with open(self.master, "r+b") as handle:
                handle.truncate(0)
        else:
            self.master.rename(rotated)
            self.master.touch()  # create
        if how == "compress":
            self._compress(rotated)
        if how == "delaycompress" and (self.folder / "Master.csv.2").exists():
            self._compress(self.folder / "Master.csv.2")


def stored(db: Path) -> tuple[int, int]:
    """(calls, distinct uniqueids) in the store."""
    with sqlite3.connect(db, timeout=30) as conn:
        count, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT uniqueid) FROM calls"
        ).fetchone()
    return int(count), int(distinct)


def follower(db: Path, master: Path) -> subprocess.Popen[bytes]:
    code = "from cdrapi.cli.ingest import ingest; ingest()"
    return subprocess.Popen(
        [sys.executable, "-c", code, "csv", "--follow", "--db", f"sqlite:///{db}", str(master),
         "--rejects", str(master.parent / "rejects.txt")],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip


def caught_up(db: Path, pbx: Pbx, timeout: float = 30) -> None:
    wait_for(lambda: stored(db)[0] >= pbx.written - bool(pbx.half), timeout=timeout, step=0.05)


def test_a_day_of_calls_with_rotations_restarts_and_a_kill(tmp_path: Path) -> None:
    services: list[subprocess.Popen[bytes]] = []
    try:
        _a_day(tmp_path, services)
    finally:  # a failed check must not leave a follower running
        for service in services:
            if service.poll() is None:
                os.killpg(service.pid, signal.SIGKILL)
                service.wait(30)


def _a_day(tmp_path: Path, services: list[subprocess.Popen[bytes]]) -> None:
    pbx, db = Pbx(tmp_path), tmp_path / "store.db"
    engine = connect(f"sqlite:///{db}")

    def cron() -> None:
        summary = ingest_csv(engine, [pbx.master], IngestRun(rejects=tmp_path / "rejects.txt"))
        assert summary.rejected == 0 and summary.warnings == [], summary

    # morning: cron runs, one of them while a line is being written
    pbx.calls(200)
    cron()
    pbx.calls(30, half=True)
    cron()
    pbx.calls(20)
    pbx.rotate("copytruncate")  # lines 231-250 are only in the copy now
    pbx.calls(25, half=True)
    cron()
    # midday: a --follow service, across two kinds of rotation and a restart
    service = follower(db, pbx.master)
    services.append(service)
    pbx.calls(40, half=True)
    pbx.rotate("compress")
    pbx.calls(30)
    caught_up(db, pbx)
    pbx.calls(10, half=True)
    service.send_signal(signal.SIGTERM)  # restarted (a package upgrade)
    assert service.wait(30) == 0, service.stderr.read() if service.stderr else ""
    pbx.calls(15)
    pbx.rotate("delaycompress")
    pbx.calls(15)
    service = follower(db, pbx.master)
    services.append(service)
    caught_up(db, pbx)
    # afternoon: killed with kill -9 in the middle of a burst, two rotations while down
    pbx.calls(3000)
    wait_for(lambda: stored(db)[0] > pbx.written - 3000, timeout=30, step=0.01)
    os.killpg(service.pid, signal.SIGKILL)
    service.wait(30)
    pbx.calls(20, half=True)
    pbx.rotate("delaycompress")
    pbx.calls(20)
    pbx.rotate("delaycompress")
    pbx.calls(20, half=True)
    # evening: cron again, then the last line's end arrives and the next run takes it
    cron()
    pbx.finish()
    cron()
    assert stored(db) == (pbx.written, pbx.written)  # every call, once
    with sqlite3.connect(db) as conn:
        uids = {uid for (uid,) in conn.execute("SELECT uniqueid FROM calls")}
    assert uids == {f"1710000000.{n}" for n in range(1, pbx.written + 1)}
    assert not (tmp_path / "rejects.txt").exists()
