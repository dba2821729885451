"""``--follow``: a live Master.csv (or queue_log) through the real API and store, across
rotation (with lines added to the rotated file afterwards), truncation and restarts.

The API is the app in process (:func:`tests.conftest.app_client`), reading the same store
file as the run that follows the file (a thread, or the CLI in a process of its own)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from sqlalchemy import Engine, select

from cdrapi.ingest import IngestRun, ingest_csv, ingest_queue_log
from cdrapi.ingest.follow import Chunk, FileTail
from cdrapi.settings import Settings
from cdrapi.store.engine import connect
from cdrapi.store.schema import queue_calls
from tests.conftest import app_client
from tests.ingest.conftest import TOKEN, api, append, cdr_line, lines_of, rows, wait_for

Ingest = Callable[[Engine, Path, IngestRun], object]


def _csv(engine: Engine, path: Path, options: IngestRun) -> object:
    return ingest_csv(engine, [path], options, follow=True)


def _queue_log(engine: Engine, path: Path, options: IngestRun) -> object:
    return ingest_queue_log(engine, path, options, follow=True)


@contextmanager
def following(engine: Engine, path: Path, ingest: Ingest = _csv) -> Iterator[None]:
    """``ingest(..., follow=True)`` running in a thread until the block ends."""
    stop = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            ingest(engine, path, IngestRun(rejects=None, stop=stop))
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(10)
    assert not errors, errors


@contextmanager
def server(tmp_path: Path) -> Iterator[tuple[httpx.Client, Engine]]:
    """The API on a store at ``tmp_path`` (in process), and the store's engine."""
    settings = Settings(db=f"sqlite:///{tmp_path / 'store.db'}", api_token=TOKEN)
    engine = connect(settings.db)
    with app_client(settings) as client:
        yield client, engine


def uniqueids(client: httpx.Client) -> list[str]:
    return [r["uniqueid"] for r in api(client)]


def test_new_lines_are_visible_through_the_api_within_a_second(tmp_path: Path) -> None:
    master = tmp_path / "Master.csv"
    append(master, cdr_line(1))
    with server(tmp_path) as (client, engine):
        with following(engine, master):
            wait_for(lambda: len(api(client)) == 1)
            for n in range(2, 6):
                append(master, cdr_line(n))
                took = wait_for(lambda n=n: api(client, uniqueid=f"1710000000.{n}") != [])
                assert took < 1.0
            append(master, cdr_line(6)[:40])  # half a line: waits for its end
            append(master, cdr_line(6)[40:])
            wait_for(lambda: len(api(client)) == 6, timeout=1.0)
        ids = [int(r["id"]) for r in api(client)]
        assert ids == sorted(ids)
        assert uniqueids(client) == [f"1710000000.{n}" for n in range(1, 7)]


def test_rotation_rename_and_new_file(tmp_path: Path) -> None:
    master = tmp_path / "Master.csv"
    append(master, cdr_line(1), cdr_line(2))
    with server(tmp_path) as (client, engine):
        with following(engine, master):
            wait_for(lambda: len(api(client)) == 2)
            append(master, cdr_line(3))
            master.rename(tmp_path / "Master.csv.1")  # logrotate
            append(master, cdr_line(4), cdr_line(5))  # Asterisk opens a new Master.csv
            wait_for(lambda: len(api(client)) == 5)
            append(master, cdr_line(6))
            wait_for(lambda: len(api(client)) == 6)
        assert sorted(uniqueids(client)) == sorted(f"1710000000.{n}" for n in range(1, 7))


def stored(engine: Engine) -> list[str]:
    return sorted(uid for (uid,) in rows(engine, "uniqueid"))


def uids(*numbers: int) -> list[str]:
    return sorted(f"1710000000.{n}" for n in numbers)


def test_a_line_added_to_the_rotated_file_after_the_switch_is_stored(
    store: Engine, tmp_path: Path
) -> None:
    master = tmp_path / "Master.csv"
    append(master, cdr_line(1))
    with open(master, "a", encoding="utf-8") as writer, following(store, master):
        wait_for(lambda: stored(store) == uids(1), timeout=10)
        master.rename(tmp_path / "Master.csv.1")
        append(master, cdr_line(2))
        wait_for(lambda: stored(store) == uids(1, 2), timeout=10)  # the new file is read
        writer.write(cdr_line(3))  # a writer still holding the rotated file
        writer.flush()
        wait_for(lambda: stored(store) == uids(1, 2, 3), timeout=10)
        append(master, cdr_line(4))
        wait_for(lambda: stored(store) == uids(1, 2, 3, 4), timeout=10)


def _queue_line(n: int) -> str:
    return f"17100000{n:02d}|1710000000.{n}|suport|NONE|ENTERQUEUE||0721000000|1\n"


def queued(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.execute(select(queue_calls.c.callid)).scalars())


def test_a_queue_log_line_added_to_the_rotated_file_after_the_switch_is_stored(
    store: Engine, tmp_path: Path
) -> None:
    queue_log = tmp_path / "queue_log"
    append(queue_log, _queue_line(1))
    with open(queue_log, "a", encoding="utf-8") as logger, following(store, queue_log, _queue_log):
        wait_for(lambda: queued(store) == uids(1), timeout=10)
        queue_log.rename(tmp_path / "queue_log.1")
        append(queue_log, _queue_line(2))
        wait_for(lambda: queued(store) == uids(1, 2), timeout=10)
        logger.write(_queue_line(3))  # Asterisk's logger before it reopens queue_log
        logger.flush()
        wait_for(lambda: queued(store) == uids(1, 2, 3), timeout=10)


def test_a_restart_resumes_the_rotated_file_too(store: Engine, tmp_path: Path) -> None:
    master = tmp_path / "Master.csv"
    append(master, cdr_line(1))
    with open(master, "a", encoding="utf-8") as writer:
        with following(store, master):
            wait_for(lambda: stored(store) == uids(1), timeout=10)
            master.rename(tmp_path / "Master.csv.1")
            append(master, cdr_line(2))
            wait_for(lambda: stored(store) == uids(1, 2), timeout=10)
        # while it is down: a late line in the rotated file, a new one in the new file
        writer.write(cdr_line(3))
    append(master, cdr_line(4))
    summary = ingest_csv(store, [master], IngestRun(rejects=None))
    assert (summary.lines, summary.stored, summary.duplicates) == (2, 2, 0)
    assert stored(store) == uids(1, 2, 3, 4)


def test_the_rotated_file_is_read_first_and_its_last_line_waits_for_its_end(
    tmp_path: Path,
) -> None:
    log = tmp_path / "log"
    log.write_bytes(b"1\n")
    tail = FileTail(log)
    try:
        assert lines_of(tail) == [b"1\n"]
        with open(log, "ab", buffering=0) as writer:
            writer.write(b"2\n3")  # not read yet when the file is rotated, 3 not finished
            log.rename(tmp_path / "log.1")
            log.write_bytes(b"4\n")
            assert lines_of(tail) == [b"2\n", b"4\n"]
            writer.write(b" end\n5\n")
            assert lines_of(tail) == [b"3 end\n", b"5\n"]
    finally:
        tail.close()


def _next_chunk(tail: FileTail, timeout: float = 5.0) -> Chunk:
    """The next lines ``tail`` hands out, waiting for them."""
    deadline = time.monotonic() + timeout
    while (chunk := tail.read()) is None:
        assert time.monotonic() < deadline, f"nothing read within {timeout}s"
        time.sleep(0.02)
    return chunk


def test_the_rotated_file_is_closed_after_the_grace(tmp_path: Path) -> None:
    log = tmp_path / "log"
    log.write_bytes(b"1\n")
    tail = FileTail(log, grace=0.5)
    try:
        assert lines_of(tail) == [b"1\n"]
        with open(log, "ab", buffering=0) as writer:
            writer.write(b"2")  # never finished
            log.rename(tmp_path / "log.1")
            log.write_bytes(b"3\n")
            assert _next_chunk(tail).data == b"3\n"
            assert [p.ino for p in tail.position.rotated] == [os.fstat(writer.fileno()).st_ino]
            last = _next_chunk(tail)  # after the grace: the unfinished line, then closed
            assert last.data == b"2" and last.position.rotated != []
            assert tail.read() is None and tail.position.rotated == []
            writer.write(b"\n5\n")  # too late: no longer read
        append(log, "4\n")
        assert lines_of(tail) == [b"4\n"]
    finally:
        tail.close()


def test_truncation_starts_over_on_the_new_content(tmp_path: Path) -> None:
    master = tmp_path / "Master.csv"
    append(master, cdr_line(1), cdr_line(2), cdr_line(3))
    with server(tmp_path) as (client, engine):
        with following(engine, master):
            wait_for(lambda: len(api(client)) == 3)
            master.write_text(cdr_line(4))  # copytruncate, then a new call
            wait_for(lambda: len(api(client)) == 4)
            append(master, cdr_line(5))
            wait_for(lambda: len(api(client)) == 5)
        assert uniqueids(client) == [f"1710000000.{n}" for n in range(1, 6)]


def _cli(db: str, master: Path, cwd: Path) -> subprocess.Popen[bytes]:
    code = "from cdrapi.cli.ingest import ingest; ingest()"
    return subprocess.Popen(
        [sys.executable, "-c", code, "csv", "--follow", "--db", db, str(master)],
        cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )  # fmt: skip


def test_restart_resumes_from_the_checkpoint(tmp_path: Path) -> None:
    master = tmp_path / "Master.csv"
    append(master, cdr_line(1), cdr_line(2))
    db = f"sqlite:///{tmp_path / 'store.db'}"
    with server(tmp_path) as (client, _engine):
        first = _cli(db, master, tmp_path)
        wait_for(lambda: len(api(client)) == 2, timeout=20)
        first.send_signal(signal.SIGTERM)
        _, err = first.communicate(timeout=20)
        assert first.returncode == 0, err
        assert b"2 calls stored" in err
        # while it is down: more calls, then the file is rotated and a new one started
        append(master, cdr_line(3))
        master.rename(tmp_path / "Master.csv.1")
        append(master, cdr_line(4))
        second = _cli(db, master, tmp_path)
        wait_for(lambda: len(api(client)) == 4, timeout=20)
        second.send_signal(signal.SIGTERM)
        _, err = second.communicate(timeout=20)
        assert b"2 calls stored, 0 already there" in err, err  # only the new ones were read
        assert uniqueids(client) == [f"1710000000.{n}" for n in range(1, 5)]
