"""A SQL table polled into the store (:mod:`cdrapi.ingest.sqlsource`): a row that commits
late is still found, ``--follow`` polls, rows read again in the lookback window are no new
lines, an unusable source is a clear error (its password hidden)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from cdrapi.ingest import IngestRun, Reject, SourceError, ingest_db
from cdrapi.ingest.sqltable import source_url
from cdrapi.settings import Settings
from tests.conftest import PostgresServer
from tests.ingest.cdr_table import FREEPBX, PGSQL, SQLITE, cdr_row, insert_cdrs
from tests.ingest.conftest import rows, wait_for


@pytest.fixture(params=["mariadb", "postgresql"])
def pbx_url(request: pytest.FixtureRequest) -> tuple[str, Engine]:
    if request.param == "mariadb":
        url = request.getfixturevalue("mariadb").new_database()
        ddl = FREEPBX
    else:
        server: PostgresServer = request.getfixturevalue("postgres")
        url, ddl = server.new_database(), PGSQL
    pbx = create_engine(source_url(url))
    with pbx.begin() as conn:
        conn.execute(text(ddl))
    return url, pbx


def test_a_row_that_commits_late_is_not_skipped(pbx_url: tuple[str, Engine], store: Engine) -> None:
    url, pbx = pbx_url
    status = "ANSWERED" if url.startswith("mysql") else 8
    late = pbx.connect()
    late_tx = late.begin()
    insert_cdrs(late, [cdr_row(1, "2024-03-14 10:00:00", status)])  # a long call, not committed yet
    with pbx.begin() as conn:
        insert_cdrs(conn, [cdr_row(2, "2024-03-14 10:20:00", status)])
    options = IngestRun(Settings(timezone="UTC"))
    assert ingest_db(store, url, options).stored == 1
    late_tx.commit()
    late.close()
    assert ingest_db(store, url, options).stored == 1  # found behind the watermark
    assert rows(store, "uniqueid") == [("1710400000.2",), ("1710400000.1",)]  # id = visibility
    pbx.dispose()


def test_sqlite_table_and_follow(store: Engine, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'master.db'}"
    pbx = create_engine(url)
    with pbx.begin() as conn:
        conn.execute(text(SQLITE))
        insert_cdrs(conn, [cdr_row(1, "2024-03-14 10:00:00", amaflags="BILLING")])
    stop = threading.Event()
    options = IngestRun(Settings(), stop=stop)
    thread = threading.Thread(
        target=ingest_db, args=(store, url, options), kwargs={"follow": True, "interval": 0.1}
    )
    thread.start()
    try:
        wait_for(lambda: len(rows(store, "id")) == 1)
        with pbx.begin() as conn:
            insert_cdrs(
                conn, [cdr_row(2, "2024-03-14 10:30:00"), cdr_row(3, "2024-03-14 09:59:00")]
            )
        took = wait_for(lambda: len(rows(store, "id")) == 3)
        assert took < 1.0
    finally:
        stop.set()
        thread.join(10)
    assert rows(store, "uniqueid", "amaflags")[0] == ("1710400000.1", "BILLING")


def test_unusable_sources_are_clear_errors(store: Engine, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"cannot read table 'nope' of sqlite:///"):
        ingest_db(store, f"sqlite:///{tmp_path / 'empty.db'}", table_name="nope")
    with pytest.raises(SourceError) as caught:
        ingest_db(store, "mysql://root:hunter2@127.0.0.1:1/asteriskcdrdb")
    assert "hunter2" not in str(caught.value) and "***" in str(caught.value)
    assert isinstance(caught.value.__cause__, Exception)


def test_every_row_read_is_a_line_once(freepbx: tuple[str, Engine], store: Engine) -> None:
    """Identical rows are lines (already there), rows read again in the lookback window
    are not new lines, and a rejected row is reported once, not on every run."""
    url, pbx = freepbx
    twice = cdr_row(3, "2024-03-14 10:02:00", sequence=7)
    with pbx.begin() as conn:
        insert_cdrs(conn, [cdr_row(1, "2024-03-14 10:00:00", sequence=1), twice, twice, twice,
                       cdr_row(2, "2024-03-14 10:01:00", "WHATEVER", sequence=2)])  # fmt: skip
    reported: list[Reject] = []
    options = IngestRun(Settings(timezone="UTC"), report=reported.append)
    first = ingest_db(store, url, options)
    assert (first.lines, first.stored, first.duplicates, first.rejected) == (5, 2, 2, 1)
    assert sum(first.directions.values()) == 2  # each derived row's sign, as files have it
    assert [r.reason for r in reported] == [
        "uniqueid '1710400000.2': unknown disposition 'WHATEVER'"
    ]
    again = ingest_db(store, url, options)  # the 3-hour lookback reads them all again
    assert (again.lines, again.stored, again.duplicates, again.rejected) == (0, 0, 0, 0)
    assert len(reported) == 1
    with pbx.begin() as conn:
        insert_cdrs(conn, [cdr_row(4, "2024-03-14 10:03:00", sequence=1)] * 2)
    third = ingest_db(store, url, options)
    assert (third.lines, third.stored, third.duplicates, third.rejected) == (2, 1, 1, 0)
    assert len(rows(store, "id")) == 3


def test_a_row_whose_time_is_not_a_time_does_not_move_the_position(
    store: Engine, tmp_path: Path
) -> None:
    """A text time column holding ``garbage`` (it sorts after every digit): the row is
    rejected, and the next run still finds the calls written after it."""
    url = f"sqlite:///{tmp_path / 'master.db'}"
    pbx = create_engine(url)
    with pbx.begin() as conn:
        conn.execute(text(SQLITE))
        insert_cdrs(conn, [cdr_row(1, "2024-03-14 10:00:00"), cdr_row(2, "garbage")])
    options = IngestRun(Settings(timezone="UTC"))
    first = ingest_db(store, url, options)
    assert (first.stored, first.rejected) == (1, 1)
    with pbx.begin() as conn:
        insert_cdrs(conn, [cdr_row(3, "2024-03-14 11:00:00")])
    again = ingest_db(store, url, options)
    assert (again.stored, again.rejected) == (1, 0)  # the bad row is not rejected twice
    assert rows(store, "uniqueid") == [("1710400000.1",), ("1710400000.3",)]
    pbx.dispose()
