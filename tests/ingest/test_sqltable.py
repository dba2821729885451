"""The Asterisk SQL ``cdr`` table on a real MariaDB, PostgreSQL and SQLite."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text

from cdrapi.ingest import IngestRun, Reject, SourceError, ingest_db
from cdrapi.ingest.directory import directory_from
from cdrapi.ingest.sqltable import source_url
from cdrapi.settings import Settings
from tests.conftest import PostgresServer
from tests.ingest.conftest import MariaDB, rows, wait_for

FREEPBX = """CREATE TABLE cdr (
  calldate datetime NOT NULL DEFAULT '0000-00-00 00:00:00',
  clid varchar(80) NOT NULL DEFAULT '', src varchar(80) NOT NULL DEFAULT '',
  dst varchar(80) NOT NULL DEFAULT '', dcontext varchar(80) NOT NULL DEFAULT '',
  channel varchar(80) NOT NULL DEFAULT '', dstchannel varchar(80) NOT NULL DEFAULT '',
  lastapp varchar(80) NOT NULL DEFAULT '', lastdata varchar(80) NOT NULL DEFAULT '',
  duration int(11) NOT NULL DEFAULT '0', billsec int(11) NOT NULL DEFAULT '0',
  disposition varchar(45) NOT NULL DEFAULT '', amaflags int(11) NOT NULL DEFAULT '0',
  accountcode varchar(20) NOT NULL DEFAULT '', uniqueid varchar(32) NOT NULL DEFAULT '',
  userfield varchar(255) NOT NULL DEFAULT '', did varchar(50) NOT NULL DEFAULT '',
  recordingfile varchar(255) NOT NULL DEFAULT '', cnum varchar(80) NOT NULL DEFAULT '',
  cnam varchar(80) NOT NULL DEFAULT '', outbound_cnum varchar(80) NOT NULL DEFAULT '',
  outbound_cnam varchar(80) NOT NULL DEFAULT '', dst_cnam varchar(80) NOT NULL DEFAULT '',
  linkedid varchar(32) NOT NULL DEFAULT '', peeraccount varchar(80) NOT NULL DEFAULT '',
  sequence int(11) NOT NULL DEFAULT '0',
  KEY calldate (calldate), KEY dst (dst), KEY uniqueid (uniqueid), KEY did (did)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"""

PGSQL = """CREATE TABLE cdr (
  calldate timestamp with time zone NOT NULL default now(),
  clid varchar(80) NOT NULL default '', src varchar(80) NOT NULL default '',
  dst varchar(80) NOT NULL default '', dcontext varchar(80) NOT NULL default '',
  channel varchar(80) NOT NULL default '', dstchannel varchar(80) NOT NULL default '',
  lastapp varchar(80) NOT NULL default '', lastdata varchar(80) NOT NULL default '',
  duration bigint NOT NULL default 0, billsec bigint NOT NULL default 0,
  disposition bigint NOT NULL default 0, amaflags bigint NOT NULL default 0,
  accountcode varchar(20) NOT NULL default '', uniqueid varchar(150) NOT NULL default '',
  userfield varchar(255) NOT NULL default '', peeraccount varchar(20) NOT NULL default '',
  linkedid varchar(150) NOT NULL default '', sequence int NOT NULL default 0
)"""

SQLITE = """CREATE TABLE cdr (AcctId INTEGER PRIMARY KEY, calldate TEXT, clid TEXT, src TEXT,
  dst TEXT, dcontext TEXT, channel TEXT, dstchannel TEXT, lastapp TEXT, lastdata TEXT,
  duration INTEGER, billsec INTEGER, disposition TEXT, amaflags TEXT, accountcode TEXT,
  uniqueid TEXT, userfield TEXT)"""

COLUMNS = "calldate, clid, src, dst, dcontext, channel, dstchannel, lastapp, duration, billsec, "


def _row(n: int, when: str, status: Any = "ANSWERED", **extra: Any) -> dict[str, Any]:
    row = {
        "calldate": when, "clid": f'"Client {n}" <07210000{n:02d}>', "src": f"07210000{n:02d}",
        "dst": "0312285000", "dcontext": "from-pstn", "channel": f"PJSIP/orange-{n:08x}",
        "dstchannel": f"PJSIP/101-{n + 1:08x}", "lastapp": "Dial", "duration": 40,
        "billsec": 30 if status in ("ANSWERED", 8) else 0, "disposition": status,
        "uniqueid": f"1710400000.{n}",
    }  # fmt: skip
    row.update(extra)
    return row


def _insert(conn: Any, rows_: list[dict[str, Any]]) -> None:
    for row in rows_:
        names = ", ".join(row)
        conn.execute(text(f"INSERT INTO cdr ({names}) VALUES (:{', :'.join(row)})"), row)


@pytest.fixture
def freepbx(mariadb: MariaDB) -> tuple[str, Engine]:
    url = mariadb.new_database()
    pbx = create_engine(source_url(url))
    with pbx.begin() as conn:
        conn.execute(text(FREEPBX))
    return url, pbx


def test_freepbx_table_on_mariadb(
    freepbx: tuple[str, Engine], store: Engine, tmp_path: Path
) -> None:
    url, pbx = freepbx
    day = tmp_path / "monitor" / "2024" / "03" / "14"
    day.mkdir(parents=True)
    name = "in-0312285000-0721000001-20240314-100000-1710400000.1.wav"
    (day / name).write_bytes(b"RIFF")
    with pbx.begin() as conn:
        _insert(conn, [
            _row(1, "2024-03-14 10:00:00", did="0312285000", recordingfile=name, amaflags=3,
                 linkedid="1710400000.1", sequence=4, cnum="0721000001", cnam="Client 1"),
            _row(2, "2024-03-14 10:05:00", "NO ANSWER", did="0312285000", sequence=5,
                 clid="", cnum="0721000002", cnam="Ș. Brâncuși"),
        ])  # fmt: skip
    directory = directory_from(
        {"projects": [{"id": 3, "name": "Suport"}],
         "inbound_routes": [{"id": 9, "did": "0312285000", "name": "Linie suport", "project": 3}]}
    )  # fmt: skip
    settings = Settings(recordings_dir=str(tmp_path / "monitor"), public_url="https://pbx.example")
    summary = ingest_db(store, url, IngestRun(settings, directory))
    assert (summary.stored, summary.rejected) == (2, 0)
    got = rows(store, "uniqueid", "sequence", "time", "inbound_route", "inbound_route_id",
               "project", "recording_file", "recording_url", "amaflags", "caller_id",
               "did")  # fmt: skip
    assert got[0] == (
        "1710400000.1", 4, "2024-03-14 10:00:00", "Linie suport", 9, "Suport",
        f"2024/03/14/{name}", f"https://pbx.example/recordings/2024/03/14/{name}",
        "DOCUMENTATION", '"Client 1" <0721000001>', "0312285000",
    )  # fmt: skip
    assert got[1][9] == '"Ș. Brâncuși" <0721000002>' and got[1][6] is None
    assert ingest_db(store, url, IngestRun(settings, directory)).stored == 0  # nothing new
    assert ingest_db(store, url, IngestRun(settings, from_start=True)).stored == 0  # no doubles


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
    _insert(late, [_row(1, "2024-03-14 10:00:00", status)])  # a long call, not committed yet
    with pbx.begin() as conn:
        _insert(conn, [_row(2, "2024-03-14 10:20:00", status)])
    options = IngestRun(Settings(timezone="UTC"))
    assert ingest_db(store, url, options).stored == 1
    late_tx.commit()
    late.close()
    assert ingest_db(store, url, options).stored == 1  # found behind the watermark
    assert rows(store, "uniqueid") == [("1710400000.2",), ("1710400000.1",)]  # id = visibility
    pbx.dispose()


def test_postgres_integer_dispositions_and_timestamptz(
    postgres: PostgresServer, store: Engine
) -> None:
    url = postgres.new_database()
    pbx = create_engine(source_url(url))
    with pbx.begin() as conn:
        conn.execute(text(PGSQL))
        conn.execute(text("SET TIME ZONE 'UTC'"))
        _insert(conn, [
            _row(1, "2024-03-14 08:00:00+00", 8, amaflags=3),
            _row(2, "2024-03-14 08:01:00+00", 0), _row(3, "2024-03-14 08:02:00+00", 4),
            _row(4, "2024-03-14 08:03:00+00", 2), _row(5, "2024-03-14 08:04:00+00", 16),
        ])  # fmt: skip
    ingest_db(store, url, IngestRun(Settings(timezone="Europe/Bucharest")))
    got = rows(store, "time", "call_status", "amaflags")
    assert got[0] == ("2024-03-14 10:00:00", "ANSWERED", "DOCUMENTATION")  # UTC+2
    assert [r[1] for r in got] == ["ANSWERED", "NO ANSWER", "BUSY", "FAILED", "CONGESTION"]
    pbx.dispose()


def test_sqlite_table_and_follow(store: Engine, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'master.db'}"
    pbx = create_engine(url)
    with pbx.begin() as conn:
        conn.execute(text(SQLITE))
        _insert(conn, [_row(1, "2024-03-14 10:00:00", amaflags="BILLING")])
    stop = threading.Event()
    options = IngestRun(Settings(), stop=stop)
    thread = threading.Thread(
        target=ingest_db, args=(store, url, options), kwargs={"follow": True, "interval": 0.1}
    )
    thread.start()
    try:
        wait_for(lambda: len(rows(store, "id")) == 1)
        with pbx.begin() as conn:
            _insert(conn, [_row(2, "2024-03-14 10:30:00"), _row(3, "2024-03-14 09:59:00")])
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
    twice = _row(3, "2024-03-14 10:02:00", sequence=7)
    with pbx.begin() as conn:
        _insert(conn, [_row(1, "2024-03-14 10:00:00", sequence=1), twice, twice, twice,
                       _row(2, "2024-03-14 10:01:00", "WHATEVER", sequence=2)])  # fmt: skip
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
        _insert(conn, [_row(4, "2024-03-14 10:03:00", sequence=1)] * 2)
    third = ingest_db(store, url, options)
    assert (third.lines, third.stored, third.duplicates, third.rejected) == (2, 1, 1, 0)
    assert len(rows(store, "id")) == 3
