"""The ``cel`` table (cel_odbc / cel_pgsql / cel_sqlite3, FreePBX's asteriskcdrdb.cel) on
a real MariaDB, PostgreSQL and SQLite gives the same fields as the cel_custom file."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, create_engine, text

from cdrapi.ingest import SourceError, ingest_csv
from cdrapi.ingest.cel_events import EVENT_NAMES
from cdrapi.ingest.cel_table import ingest_cel_table
from cdrapi.ingest.sqltable import source_url
from tests.conftest import PostgresServer
from tests.ingest.conftest import MariaDB
from tests.ingest.test_cel import CDRS, DEFAULT, EXPECTED, MASTER, _check, _run, derived

ZONE = ZoneInfo("Europe/Bucharest")
NUMBERS = {name: number for number, name in EVENT_NAMES.items()}

# FreePBX's asteriskcdrdb.cel (MariaDB), cel_pgsql's table (eventtype a number, as
# cel_pgsql can store it), cel_sqlite3's.
MARIADB = """CREATE TABLE cel (
  id INT(11) NOT NULL AUTO_INCREMENT, eventtype VARCHAR(30) NOT NULL,
  eventtime DATETIME NOT NULL, userdeftype VARCHAR(255) NOT NULL, cid_name VARCHAR(80) NOT NULL,
  cid_num VARCHAR(80) NOT NULL, cid_ani VARCHAR(80) NOT NULL, cid_rdnis VARCHAR(80) NOT NULL,
  cid_dnid VARCHAR(80) NOT NULL, exten VARCHAR(80) NOT NULL, context VARCHAR(80) NOT NULL,
  channame VARCHAR(80) NOT NULL, appname VARCHAR(80) NOT NULL, appdata VARCHAR(255) NOT NULL,
  amaflags INT(11) NOT NULL, accountcode VARCHAR(20) NOT NULL, peeraccount VARCHAR(80) NOT NULL,
  uniqueid VARCHAR(150) NOT NULL, linkedid VARCHAR(150) NOT NULL, userfield VARCHAR(255) NOT NULL,
  peer VARCHAR(80) NOT NULL, extra VARCHAR(512), PRIMARY KEY (id))"""
POSTGRES = """CREATE TABLE cel (
  id SERIAL PRIMARY KEY, eventtype INTEGER NOT NULL, eventtime TIMESTAMP NOT NULL,
  userdeftype TEXT, cid_name TEXT, cid_num TEXT, cid_ani TEXT, cid_rdnis TEXT, cid_dnid TEXT,
  exten TEXT, context TEXT, channame TEXT, appname TEXT, appdata TEXT, amaflags INTEGER,
  accountcode TEXT, peeraccount TEXT, uniqueid TEXT, linkedid TEXT, userfield TEXT, peer TEXT,
  extra TEXT)"""
SQLITE = """CREATE TABLE cel (id INTEGER PRIMARY KEY AUTOINCREMENT, eventtype TEXT,
  eventtime TEXT, userdeftype TEXT, cid_name TEXT, cid_num TEXT, cid_ani TEXT, cid_rdnis TEXT,
  cid_dnid TEXT, exten TEXT, context TEXT, channame TEXT, appname TEXT, appdata TEXT,
  amaflags INTEGER, accountcode TEXT, peeraccount TEXT, uniqueid TEXT, linkedid TEXT,
  userfield TEXT, peer TEXT, extra TEXT)"""


def _rows(numeric: bool) -> list[dict[str, Any]]:
    """The events of Master.csv as cel table rows (local times, with microseconds)."""
    out = []
    with open(MASTER, newline="") as handle:
        for values in csv.reader(handle):
            row = dict(zip((*DEFAULT, "extra"), values, strict=True))
            when = dt.datetime.fromtimestamp(float(row["eventtime"]), ZONE).replace(tzinfo=None)
            row["eventtime"] = when
            row["amaflags"] = 3
            row.update(userdeftype="", peeraccount="")
            if numeric:
                row["eventtype"] = NUMBERS[row["eventtype"]]
            out.append(row)
    return out


def _fill(
    pbx: Engine, create: str, rows: list[dict[str, Any]], *, text_times: bool = False
) -> None:
    names = list(rows[0])
    insert = text(
        f"INSERT INTO cel ({', '.join(names)}) VALUES ({', '.join(':' + n for n in names)})"
    )
    if text_times:
        rows = [{**r, "eventtime": r["eventtime"].isoformat(" ")} for r in rows]
    with pbx.begin() as conn:
        conn.execute(text(create))
        conn.execute(insert, rows)


def _twice(store: Engine, url: str, rows: list[dict[str, Any]]) -> None:
    """The table read in two runs (rows added between), then the CDRs."""
    first = ingest_cel_table(store, url, _run())
    assert (first.lines, first.rejected) == (len(rows), 0)
    again = ingest_cel_table(store, url, _run())
    assert again.lines == 0  # resumed: nothing new, the lookback's rows not counted again
    ingest_csv(store, [CDRS], _run())
    _check(store)


def test_freepbx_mariadb_cel_table(store: Engine, mariadb: MariaDB) -> None:
    url = mariadb.new_database()
    rows = _rows(numeric=False)
    _fill(create_engine(source_url(url)), MARIADB, rows)
    _twice(store, url, rows)


def test_cel_pgsql_numeric_event_types(store: Engine, postgres: PostgresServer) -> None:
    url = postgres.new_database()
    rows = _rows(numeric=True)
    _fill(create_engine(source_url(url)), POSTGRES, rows)
    ingest_csv(store, [CDRS], _run())  # the CDRs first, this time
    summary = ingest_cel_table(store, url, _run())
    assert summary.rejected == 0 and summary.updated == len(EXPECTED) - 1
    _check(store)


def test_cel_sqlite3_table_polled_as_it_grows(store: Engine, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'master.db'}"
    rows = _rows(numeric=False)
    pbx = create_engine(url)
    _fill(pbx, SQLITE, rows[:50], text_times=True)
    ingest_cel_table(store, url, _run())
    names = list(rows[0])
    with pbx.begin() as conn:
        conn.execute(
            text(
                f"INSERT INTO cel ({', '.join(names)}) VALUES ({', '.join(':' + n for n in names)})"
            ),
            [{**r, "eventtime": r["eventtime"].isoformat(" ")} for r in rows[50:]],
        )
    second = ingest_cel_table(store, url, _run())
    assert second.lines == len(rows) - 50
    ingest_csv(store, [CDRS], _run())
    assert derived(store) == EXPECTED


def test_not_a_cel_table(store: Engine, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'pbx.db'}"
    with create_engine(url).begin() as conn:
        conn.execute(text("CREATE TABLE cel (calldate TEXT, src TEXT)"))
    with pytest.raises(SourceError, match="not a CEL table: expected the columns eventtype"):
        ingest_cel_table(store, url, _run())
    with pytest.raises(SourceError, match="cannot read table 'nope'"):
        ingest_cel_table(store, url, _run(), table_name="nope")
