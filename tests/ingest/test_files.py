"""Line files read once (as a cron job does): a last line still being written waits for
the next run, the parsing process dies with its writer (rejects: test_rejects.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine

from cdrapi.ingest import IngestRun, ingest_csv
from cdrapi.ingest.files import CHUNK
from tests.ingest.conftest import append, cdr_line, rows, wait_for


def uids(*numbers: int) -> list[str]:
    return [f"1710000000.{n}" for n in numbers]


def test_a_half_written_last_line_waits_for_the_next_run(store: Engine, tmp_path: Path) -> None:
    master = tmp_path / "Master.csv"
    second = cdr_line(2)
    append(master, cdr_line(1), second[:70])  # Asterisk is writing line 2
    summary = ingest_csv(store, [master], IngestRun(rejects=None))
    assert (summary.stored, summary.rejected, summary.left) == (1, 0, 1)
    assert "1 left for the next run" in str(summary)
    append(master, second[70:])  # its end
    summary = ingest_csv(store, [master], IngestRun(rejects=None))
    assert (summary.lines, summary.stored, summary.rejected, summary.left) == (1, 1, 0, 0)
    assert [uid for (uid,) in rows(store, "uniqueid")] == uids(1, 2)


def test_a_file_that_ends_without_a_newline_and_is_done_counts_its_last_line(
    store: Engine, tmp_path: Path
) -> None:
    export = tmp_path / "Master.csv"
    append(export, cdr_line(1), cdr_line(2).rstrip("\n"))
    then = time.time() - 60  # written a minute ago: complete
    os.utime(export, (then, then))
    summary = ingest_csv(store, [export], IngestRun(rejects=None))
    assert (summary.stored, summary.rejected, summary.left) == (2, 0, 0)


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_the_parsing_process_dies_with_the_writer(tmp_path: Path) -> None:
    """kill -9 of ``cdrapi ingest csv`` alone (not its process group): its producer
    process must not live on, blocked with full queues, holding the caller's stdout."""
    master = tmp_path / "Master.csv"
    line_count = 3 * CHUNK // len(cdr_line(10**6))  # past two chunks: parsed by a producer
    with open(master, "w") as out:
        out.write("".join(cdr_line(n) for n in range(line_count)))
    code = "from cdrapi.cli.ingest import ingest; ingest()"
    process = subprocess.Popen(
        [sys.executable, "-c", code, "csv", "--db", f"sqlite:///{tmp_path / 's.db'}",
         str(master), "--rejects", str(tmp_path / "r.txt")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )  # fmt: skip
    wait_for(lambda: bool(_children(process.pid)), timeout=30, step=0.01)
    (child,) = _children(process.pid)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(10)
    wait_for(lambda: not _alive(child), timeout=10)
    started = time.monotonic()
    assert process.stdout is not None and process.stdout.read() == b""  # closed: EOF
    assert time.monotonic() - started < 5


def test_an_error_in_the_parsing_process_comes_after_the_batches_before_it(
    store: Engine, tmp_path: Path
) -> None:
    """A big import is parsed in a producer process; an error there (the second file
    has no header row to rename) is raised here as without one, after the first file's
    calls are stored, and leaves no process behind."""
    from cdrapi.ingest import LayoutError

    before = set(_children(os.getpid()))
    named = tmp_path / "named.csv"
    named.write_text("Ora,De la,Catre,Stare,Durata,Taxabil\n"
                     "2024-05-01 12:00:00,0721000001,101,ANSWERED,30,25\n")  # fmt: skip
    bare = tmp_path / "Master.csv"
    with open(bare, "w") as out:  # past two chunks in all: parsed by a producer
        out.write("".join(cdr_line(n) for n in range(3 * CHUNK // len(cdr_line(10**6)))))
    renames = "Ora=start,De la=src,Catre=dst,Stare=disposition,Durata=duration,Taxabil=billsec"
    with pytest.raises(LayoutError, match="the file has no header row"):
        ingest_csv(store, [named, bare], IngestRun(rejects=None), columns=renames)
    assert rows(store, "source") == [("0721000001",)]
    assert set(_children(os.getpid())) <= before  # the producer is reaped
