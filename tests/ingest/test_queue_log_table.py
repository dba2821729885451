"""A queue_log table (Asterisk realtime, FreePBX/PBXware) on a real MariaDB, PostgreSQL
and SQLite gives the same queue fields as the queue_log file, incrementally."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, create_engine, text

from cdrapi.ingest import IngestRun, Reject, SourceError, ingest_csv
from cdrapi.ingest.queue_log_table import ingest_queue_log_table
from cdrapi.ingest.sqltable import source_url
from cdrapi.settings import Settings
from tests.conftest import PostgresServer
from tests.ingest.conftest import MariaDB, wait_for
from tests.ingest.test_queue_log import DIRECTORY, QUEUE_LOG, _check, _queue_fields, _write_cdrs

ZONE = "Europe/Bucharest"

# Asterisk's contrib/realtime queue_log table (alembic 4105ee839f58 + 8e6a9c2f4b17), and
# the same without queue_adaptive_realtime: the arguments in one column, joined by "|".
MARIADB = """CREATE TABLE queuelog (
  id BIGINT NOT NULL AUTO_INCREMENT, time DATETIME(6) NULL, callid VARCHAR(80),
  queuename VARCHAR(256), agent VARCHAR(80), event VARCHAR(32), data1 VARCHAR(100),
  data2 VARCHAR(100), data3 VARCHAR(100), data4 VARCHAR(100), data5 VARCHAR(100),
  PRIMARY KEY (id))"""
POSTGRES = """CREATE TABLE queue_log (
  id BIGSERIAL NOT NULL PRIMARY KEY, time TIMESTAMP WITHOUT TIME ZONE, callid VARCHAR(80),
  queuename VARCHAR(256), agent VARCHAR(80), event VARCHAR(32), data VARCHAR(400))"""
SQLITE = """CREATE TABLE queue_log (time TEXT, callid TEXT, queuename TEXT, agent TEXT,
  event TEXT, data1 TEXT, data2 TEXT, data3 TEXT, data4 TEXT, data5 TEXT)"""


def _events() -> list[list[str]]:
    """The events of the queue_log file fixture, as fields (its bad line left out)."""
    lines = QUEUE_LOG.read_text().splitlines()
    return [line.split("|") for line in lines if line.count("|") >= 4]


def _rows(events: list[list[str]], style: str) -> list[dict[str, Any]]:
    """Table rows for ``events``: local datetimes (``data1``.. or one ``data``) or
    epoch text."""
    zone, out = ZoneInfo(ZONE), []
    for epoch, callid, queue, agent, event, *data in events:
        row: dict[str, Any] = {"callid": callid, "queuename": queue, "agent": agent,
                               "event": event}  # fmt: skip
        when = dt.datetime.fromtimestamp(int(epoch), zone).replace(tzinfo=None)
        row["time"] = epoch if style == "epoch" else when.replace(microsecond=123456)
        if style == "data":
            row["data"] = "|".join(data)
        else:
            row.update({f"data{n}": value for n, value in enumerate(data, 1)})
        out.append(row)
    return out


def _insert(engine: Engine, table: str, rows: list[dict[str, Any]]) -> None:
    with engine.begin() as conn:
        for row in rows:
            names = ", ".join(row)
            conn.execute(text(f"INSERT INTO {table} ({names}) VALUES (:{', :'.join(row)})"), row)


def _store_cdrs(store: Engine, tmp_path: Path) -> None:
    master = tmp_path / "Master.csv"
    _write_cdrs(master)
    ingest_csv(store, [master], IngestRun(directory=DIRECTORY))


@pytest.fixture(params=["mariadb", "postgresql", "sqlite"])
def queue_table(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str, str, Engine]:
    """(url, table name, row style, engine) of an empty queue_log table."""
    if request.param == "mariadb":
        mariadb: MariaDB = request.getfixturevalue("mariadb")
        url, table, style, ddl = mariadb.new_database(), "queuelog", "data1", MARIADB
    elif request.param == "postgresql":
        server: PostgresServer = request.getfixturevalue("postgres")
        url, table, style, ddl = server.new_database(), "queue_log", "data", POSTGRES
    else:
        url, table, style, ddl = f"sqlite:///{tmp_path / 'pbx.db'}", "queue_log", "epoch", SQLITE
    engine = create_engine(source_url(url))
    with engine.begin() as conn:
        conn.execute(text(ddl))
    return url, table, style, engine


def test_the_table_gives_what_the_file_gives(
    queue_table: tuple[str, str, str, Engine], store: Engine, tmp_path: Path
) -> None:
    url, table, style, pbx = queue_table
    events = _events()
    _store_cdrs(store, tmp_path)
    _insert(pbx, table, _rows(events[:10], style))  # up to the EXITWITHKEY call's start
    reported: list[Reject] = []
    options = IngestRun(Settings(timezone=ZONE), report=reported.append)
    first = ingest_queue_log_table(store, url, options, table_name=table)
    assert (first.lines, first.rejected, first.updated) == (10, 0, 4)
    _insert(pbx, table, _rows(events[10:], style))
    second = ingest_queue_log_table(store, url, options, table_name=table)
    assert (second.lines, second.rejected) == (9, 0)  # the window read again: not lines
    _check(store)
    assert not reported
    again = ingest_queue_log_table(store, url, options, table_name=table)
    assert (again.lines, again.updated) == (0, 0)
    pbx.dispose()


def test_follow_and_a_row_without_time(mariadb: MariaDB, store: Engine, tmp_path: Path) -> None:
    url = mariadb.new_database()
    pbx = create_engine(source_url(url))
    with pbx.begin() as conn:
        conn.execute(text(MARIADB))
    _store_cdrs(store, tmp_path)
    events = _events()
    no_time = {**_rows(events[:1], "data1")[0], "time": None}
    _insert(pbx, "queuelog", [*_rows(events[:5], "data1"), no_time])
    reported: list[Reject] = []
    stop = threading.Event()
    options = IngestRun(Settings(timezone=ZONE), report=reported.append, stop=stop)
    thread = threading.Thread(
        target=ingest_queue_log_table,
        args=(store, url, options),
        kwargs={"table_name": "queuelog", "follow": True, "interval": 0.05,
                "lookback": dt.timedelta(minutes=1)},
    )  # fmt: skip
    thread.start()
    try:
        wait_for(lambda: _queue_fields(store, "1710403210.700")["transfers"] is not None)
        no_event = {**_rows(events[5:6], "data1")[0], "event": ""}
        _insert(pbx, "queuelog", [*_rows(events[5:], "data1"), no_event])
        wait_for(lambda: _queue_fields(store, "1710403900.730")["call_codes"] == "queue exit key 5")
        wait_for(lambda: len(reported) == 2)
    finally:
        stop.set()
        thread.join(10)
    _check(store)
    assert [(r.file, r.reason) for r in reported] == [  # where: the table, the row's id
        (f"queue_log:{url}#queuelog", "row id 6: no time"),
        (f"queue_log:{url}#queuelog", "row id 21: no event"),
    ]
    pbx.dispose()


def test_a_table_that_is_not_a_queue_log(store: Engine, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'pbx.db'}"
    with create_engine(url).begin() as conn:
        conn.execute(text("CREATE TABLE cdr (calldate TEXT, src TEXT)"))
    with pytest.raises(SourceError, match="'cdr' is not a queue_log table: expected"):
        ingest_queue_log_table(store, url, table_name="cdr")
    with pytest.raises(SourceError, match="cannot read table 'queue_log'"):
        ingest_queue_log_table(store, url)
