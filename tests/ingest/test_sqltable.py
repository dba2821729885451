"""The Asterisk SQL ``cdr`` table read into records (:mod:`cdrapi.ingest.sqltable`): FreePBX's
on a real MariaDB (directory, recordings, caller names), PostgreSQL's integer dispositions
and ``timestamptz``. The polling itself is test_sqlsource.py's."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, text

from cdrapi.ingest import IngestRun, ingest_db
from cdrapi.ingest.directory import directory_from
from cdrapi.ingest.sqltable import source_url
from cdrapi.settings import Settings
from tests.conftest import PostgresServer
from tests.ingest.cdr_table import PGSQL, cdr_row, insert_cdrs
from tests.ingest.conftest import rows


def test_freepbx_table_on_mariadb(
    freepbx: tuple[str, Engine], store: Engine, tmp_path: Path
) -> None:
    url, pbx = freepbx
    day = tmp_path / "monitor" / "2024" / "03" / "14"
    day.mkdir(parents=True)
    name = "in-0312285000-0721000001-20240314-100000-1710400000.1.wav"
    (day / name).write_bytes(b"RIFF")
    with pbx.begin() as conn:
        insert_cdrs(conn, [
            cdr_row(1, "2024-03-14 10:00:00", did="0312285000", recordingfile=name, amaflags=3,
                 linkedid="1710400000.1", sequence=4, cnum="0721000001", cnam="Client 1"),
            cdr_row(2, "2024-03-14 10:05:00", "NO ANSWER", did="0312285000", sequence=5,
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


def test_postgres_integer_dispositions_and_timestamptz(
    postgres: PostgresServer, store: Engine
) -> None:
    url = postgres.new_database()
    pbx = create_engine(source_url(url))
    with pbx.begin() as conn:
        conn.execute(text(PGSQL))
        conn.execute(text("SET TIME ZONE 'UTC'"))
        insert_cdrs(conn, [
            cdr_row(1, "2024-03-14 08:00:00+00", 8, amaflags=3),
            cdr_row(2, "2024-03-14 08:01:00+00", 0), cdr_row(3, "2024-03-14 08:02:00+00", 4),
            cdr_row(4, "2024-03-14 08:03:00+00", 2), cdr_row(5, "2024-03-14 08:04:00+00", 16),
        ])  # fmt: skip
    ingest_db(store, url, IngestRun(Settings(timezone="Europe/Bucharest")))
    got = rows(store, "time", "call_status", "amaflags")
    assert got[0] == ("2024-03-14 10:00:00", "ANSWERED", "DOCUMENTATION")  # UTC+2
    assert [r[1] for r in got] == ["ANSWERED", "NO ANSWER", "BUSY", "FAILED", "CONGESTION"]
    pbx.dispose()
