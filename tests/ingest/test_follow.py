"""``--follow``: a live Master.csv through the real API, across rotation, truncation and
restarts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine

from cdrapi.ingest import Options, ingest_csv
from cdrapi.settings import Settings
from cdrapi.store.engine import connect
from tests.conftest import running
from tests.ingest.conftest import TOKEN, api, append, cdr_line, wait_for


@contextmanager
def following(engine: Engine, path: Path) -> Iterator[None]:
    """``ingest_csv(..., follow=True)`` running in a thread until the block ends."""
    stop = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            ingest_csv(engine, [path], Options(rejects=None, stop=stop), follow=True)
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
def server(tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    settings = Settings(db=f"sqlite:///{tmp_path / 'store.db'}", api_token=TOKEN)
    engine = connect(settings.db)
    with running(settings) as base:
        yield base, engine


def uniqueids(base: str) -> list[str]:
    return [r["uniqueid"] for r in api(base)]


def test_new_lines_are_visible_through_the_api_within_a_second(tmp_path: Path) -> None:
    master = tmp_path / "Master.csv"
    append(master, cdr_line(1))
    with server(tmp_path) as (base, engine):
        with following(engine, master):
            wait_for(lambda: len(api(base)) == 1)
            for n in range(2, 6):
                append(master, cdr_line(n))
                took = wait_for(lambda n=n: api(base, uniqueid=f"1710000000.{n}") != [])
                assert took < 1.0
            append(master, cdr_line(6)[:40])  # half a line: waits for its end
            append(master, cdr_line(6)[40:])
            wait_for(lambda: len(api(base)) == 6, timeout=1.0)
        ids = [int(r["id"]) for r in api(base)]
        assert ids == sorted(ids)
        assert uniqueids(base) == [f"1710000000.{n}" for n in range(1, 7)]


def test_rotation_rename_and_new_file(tmp_path: Path) -> None:
    master = tmp_path / "Master.csv"
    append(master, cdr_line(1), cdr_line(2))
    with server(tmp_path) as (base, engine):
        with following(engine, master):
            wait_for(lambda: len(api(base)) == 2)
            append(master, cdr_line(3))
            master.rename(tmp_path / "Master.csv.1")  # logrotate
            append(master, cdr_line(4), cdr_line(5))  # Asterisk opens a new Master.csv
            wait_for(lambda: len(api(base)) == 5)
            append(master, cdr_line(6))
            wait_for(lambda: len(api(base)) == 6)
        assert sorted(uniqueids(base)) == sorted(f"1710000000.{n}" for n in range(1, 7))


def test_truncation_starts_over_on_the_new_content(tmp_path: Path) -> None:
    master = tmp_path / "Master.csv"
    append(master, cdr_line(1), cdr_line(2), cdr_line(3))
    with server(tmp_path) as (base, engine):
        with following(engine, master):
            wait_for(lambda: len(api(base)) == 3)
            master.write_text(cdr_line(4))  # copytruncate, then a new call
            wait_for(lambda: len(api(base)) == 4)
            append(master, cdr_line(5))
            wait_for(lambda: len(api(base)) == 5)
        assert uniqueids(base) == [f"1710000000.{n}" for n in range(1, 6)]


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
    with server(tmp_path) as (base, _engine):
        first = _cli(db, master, tmp_path)
        wait_for(lambda: len(api(base)) == 2, timeout=20)
        first.send_signal(signal.SIGTERM)
        _, err = first.communicate(timeout=20)
        assert first.returncode == 0, err
        assert b"2 calls stored" in err
        # while it is down: more calls, then the file is rotated and a new one started
        append(master, cdr_line(3))
        master.rename(tmp_path / "Master.csv.1")
        append(master, cdr_line(4))
        second = _cli(db, master, tmp_path)
        wait_for(lambda: len(api(base)) == 4, timeout=20)
        second.send_signal(signal.SIGTERM)
        _, err = second.communicate(timeout=20)
        assert b"2 calls stored, 0 already there" in err, err  # only the new ones were read
        assert uniqueids(base) == [f"1710000000.{n}" for n in range(1, 5)]
