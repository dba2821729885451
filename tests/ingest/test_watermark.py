"""Positions in a table's time column (:mod:`cdrapi.ingest.watermark`), in the column's
own terms: ``ingest db`` finds every new row whatever the column type and the PBX's zone.

The position is kept in the column's own terms: an instant for PostgreSQL
``timestamptz``, the column's local time for MariaDB ``datetime`` and PostgreSQL
``timestamp``. Each scenario: a first run, rows inserted, a second run, then
``--follow``, all with a 1-minute lookback; east (Asia/Tashkent, UTC+5) and west
(America/New_York) of UTC, and across the New York fall-back hour (01:30 twice).
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, create_engine, text

from cdrapi.ingest import IngestRun, ingest_db
from cdrapi.ingest.sqltable import source_url
from cdrapi.ingest.watermark import Clock
from cdrapi.settings import Settings
from cdrapi.store.checkpoints import read_checkpoint, save_checkpoint
from cdrapi.store.transaction import writing
from tests.conftest import PostgresServer
from tests.ingest.cdr_table import FREEPBX, PGSQL, cdr_row, insert_cdrs
from tests.ingest.conftest import MariaDB, rows, wait_for

MINUTE = dt.timedelta(minutes=1)
NEW_YORK, TASHKENT = "America/New_York", "Asia/Tashkent"


class Pbx:
    """A cdr table of one column type, rows given by their local time in ``zone``."""

    def __init__(self, url: str, kind: str, zone: str) -> None:
        self.url, self.kind, self.zone = url, kind, ZoneInfo(zone)
        self.engine = create_engine(source_url(url))
        self.count = 0

    def add(self, *times: tuple[str, int]) -> None:
        """Rows at local ``(time, fold)``: fold 1 is the second 01:30 of a fall-back."""
        new = []
        for when, fold in times:
            self.count += 1
            local = dt.datetime.fromisoformat(when).replace(fold=fold)
            value: Any = local
            if self.kind == "timestamptz":  # as written by a PBX in another zone than ours
                value = local.replace(tzinfo=self.zone).astimezone(dt.UTC).isoformat(" ")
            status = "ANSWERED" if self.kind == "datetime" else 8
            new.append(cdr_row(self.count, value, status, sequence=1))
        with self.engine.begin() as conn:
            insert_cdrs(conn, new)


@pytest.fixture(params=["datetime", "timestamp", "timestamptz"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _pbx(request: pytest.FixtureRequest, kind: str, zone: str) -> Pbx:
    if kind == "datetime":
        mariadb: MariaDB = request.getfixturevalue("mariadb")
        url, ddl = mariadb.new_database(), FREEPBX
    else:
        server: PostgresServer = request.getfixturevalue("postgres")
        url = server.new_database()
        ddl = PGSQL if kind == "timestamptz" else PGSQL.replace("with time zone", "")
        with create_engine(source_url(server.url())).connect() as conn:  # sessions in UTC
            conn.execute(text(f"ALTER DATABASE {url.rsplit('/', 1)[1]} SET timezone TO 'UTC'"))
            conn.commit()
    pbx = Pbx(url, kind, zone)
    with pbx.engine.begin() as conn:
        conn.execute(text(ddl))
    return pbx


def _follow(
    store: Engine, pbx: Pbx, options: IngestRun, expect: int, *more: tuple[str, int]
) -> None:
    """``--follow`` picks up ``more`` rows (``expect`` calls stored in all)."""
    stop = threading.Event()
    options.stop = stop
    thread = threading.Thread(
        target=ingest_db,
        args=(store, pbx.url, options),
        kwargs={"follow": True, "interval": 0.05, "lookback": MINUTE},
    )
    thread.start()
    try:
        wait_for(lambda: len(rows(store, "id")) == expect - len(more))
        pbx.add(*more)
        wait_for(lambda: len(rows(store, "id")) == expect)
    finally:
        stop.set()
        thread.join(10)
    options.stop = None


@pytest.mark.parametrize("zone", [TASHKENT, NEW_YORK])
def test_new_rows_are_found_east_and_west_of_utc(
    request: pytest.FixtureRequest, kind: str, zone: str, store: Engine
) -> None:
    pbx = _pbx(request, kind, zone)
    options = IngestRun(Settings(timezone=zone))
    pbx.add(("2024-03-14 15:00:00", 0), ("2024-03-14 15:05:00", 0))
    assert ingest_db(store, pbx.url, options, lookback=MINUTE).stored == 2
    pbx.add(("2024-03-14 15:06:00", 0))  # after the first run, a minute later
    second = ingest_db(store, pbx.url, options, lookback=MINUTE)
    assert (second.lines, second.stored, second.duplicates) == (1, 1, 0)
    _follow(store, pbx, options, 4, ("2024-03-14 15:07:00", 0))
    assert rows(store, "uniqueid", "time") == [
        ("1710400000.1", "2024-03-14 15:00:00"),
        ("1710400000.2", "2024-03-14 15:05:00"),
        ("1710400000.3", "2024-03-14 15:06:00"),
        ("1710400000.4", "2024-03-14 15:07:00"),
    ]  # fmt: skip  (timestamptz rows in the PBX's local time too)
    pbx.engine.dispose()


def test_the_fall_back_hour_loses_and_doubles_nothing(
    request: pytest.FixtureRequest, kind: str, store: Engine
) -> None:
    pbx = _pbx(request, kind, NEW_YORK)
    options = IngestRun(Settings(timezone=NEW_YORK))
    # 2026-11-01 in New York: 01:59:59 EDT is followed by 01:00:00 EST
    pbx.add(("2026-11-01 00:50:00", 0), ("2026-11-01 01:10:00", 0), ("2026-11-01 01:30:00", 0))
    assert ingest_db(store, pbx.url, options, lookback=MINUTE).stored == 3
    # then the second 01:00 and 01:05, behind the first 01:30 in local time
    pbx.add(("2026-11-01 01:40:00", 0), ("2026-11-01 01:00:00", 1), ("2026-11-01 01:05:00", 1))
    second = ingest_db(store, pbx.url, options, lookback=MINUTE)
    assert (second.lines, second.stored) == (3, 3)
    pbx.add(("2026-11-01 01:30:00", 1))
    third = ingest_db(store, pbx.url, options, lookback=MINUTE)
    assert (third.lines, third.stored) == (1, 1)
    _follow(store, pbx, options, 9, ("2026-11-01 01:50:00", 1), ("2026-11-01 02:10:00", 0))
    got = rows(store, "uniqueid", "time")
    assert sorted(uid for uid, _ in got) == sorted(f"1710400000.{n}" for n in range(1, 10))
    assert sorted(time[11:16] for _, time in got) == [
        "00:50", "01:00", "01:05", "01:10", "01:30", "01:30", "01:40", "01:50", "02:10"
    ]  # fmt: skip
    again = ingest_db(store, pbx.url, IngestRun(Settings(timezone=NEW_YORK), from_start=True))
    assert (again.lines, again.stored, again.duplicates) == (9, 0, 9)
    pbx.engine.dispose()


def test_a_checkpoint_of_the_old_form_still_resumes(
    request: pytest.FixtureRequest, store: Engine
) -> None:
    pbx = _pbx(request, "timestamptz", TASHKENT)
    options = IngestRun(Settings(timezone=TASHKENT))
    pbx.add(("2024-03-14 15:00:00", 0), ("2024-03-14 15:05:00", 0))
    ingest_db(store, pbx.url, options, lookback=MINUTE)
    (name,) = _checkpoint_names(store)
    assert json.loads(read_checkpoint(store, name) or "")["watermark"].endswith("+00:00")
    with writing(store) as conn:  # as earlier versions saved it: local time, no zone
        save_checkpoint(conn, name, json.dumps({"watermark": "2024-03-14 15:05:00"}))
    pbx.add(("2024-03-14 15:06:00", 0))
    second = ingest_db(store, pbx.url, options, lookback=MINUTE)
    assert (second.lines, second.stored) == (1, 1)
    assert rows(store, "time")[-1] == ("2024-03-14 15:06:00",)
    pbx.engine.dispose()


def _checkpoint_names(store: Engine) -> list[str]:
    from sqlalchemy import select

    from cdrapi.store.schema import checkpoints

    with store.connect() as conn:
        return [str(n) for n in conn.execute(select(checkpoints.c.source)).scalars()]


def test_epoch_columns_of_any_number_type_are_positions() -> None:
    clock = Clock("epoch", dt.UTC)
    for value in (1710000000, 1710000000.25, Decimal("1710000000.250")):  # DECIMAL: Decimal
        assert clock.mark(value) == 1710000000
    assert clock.mark(True) is None and clock.mark("soon") is None
