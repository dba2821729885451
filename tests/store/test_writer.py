"""The write path into ``calls``: batches, defaults, version bumps, bulk loading."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select, text

from cdrapi.store.bulk import bulk_load, ensure_indexes
from cdrapi.store.calls import STORED_COLUMNS, insert_call_rows, insert_calls, write_batch
from cdrapi.store.checkpoints import read_checkpoint
from cdrapi.store.directory import replace_directory
from cdrapi.store.diskfull import DiskFull
from cdrapi.store.engine import StoreError, connect, read_version
from cdrapi.store.schema import SECONDARY_INDEXES, calls, projects, users
from tests.conftest import PostgresServer


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return connect(f"sqlite:///{tmp_path / 'store.db'}")


def call(n: int, **fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "uniqueid": f"1710401324.{n}",
        "linkedid": f"1710401324.{n}",
        "time": f"2024-03-14 09:{n // 60 % 60:02d}:{n % 60:02d}",
        "source": f"07210000{n % 100:02d}",
        "destination": "0312285000",
        "direction": "IN",
        "call_status": "ANSWERED",
    }
    row.update(fields)
    return row


def ids(engine: Engine) -> list[int]:
    with engine.connect() as conn:
        return list(conn.scalars(select(calls.c.id).order_by(calls.c.id)))


def index_names(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'index'")
        return {name for (name,) in rows}


def search(engine: Engine, fragment: str) -> list[int]:
    """Ids whose source or destination contains ``fragment``, through the FTS5 table."""
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT rowid FROM calls_numbers WHERE calls_numbers MATCH :q ORDER BY rowid"),
            {"q": f'"{fragment}"'},
        )
        return [rowid for (rowid,) in rows]


def test_insert_calls_returns_count_and_ids_grow(engine: Engine) -> None:
    assert insert_calls(engine, (call(n) for n in range(7)), batch_size=3) == 7
    assert insert_calls(engine, [call(n) for n in range(7, 10)]) == 3
    assert ids(engine) == list(range(1, 11))
    assert insert_calls(engine, []) == 0


def test_missing_columns_get_their_defaults(engine: Engine) -> None:
    insert_calls(engine, [call(1)])
    with engine.connect() as conn:
        row = conn.execute(select(calls)).mappings().one()
    assert row["channel"] == "" and row["dstchannel_formatted"] == ""
    assert row["billsec"] == 0 and row["duration"] == 0 and row["ring_time"] == 0
    assert row["qname"] is None and row["is_recovered"] is None
    assert row["source"] == "0721000001"


def test_full_rows_and_unicode_round_trip(engine: Engine) -> None:
    full = dict.fromkeys(STORED_COLUMNS)
    full.update(call(3, user_fullname="Ștefan Lazăr", billsec=61, duration=70, ring_time=9))
    full.update(channel="", dstchannel="", caller_id="", channel_formatted="")
    full.update(dstchannel_formatted="", ivr_duration=0, hold_time=0)
    insert_calls(engine, [full])
    with engine.connect() as conn:
        row = conn.execute(select(calls)).mappings().one()
    assert row["user_fullname"] == "Ștefan Lazăr" and row["billsec"] == 61


@pytest.mark.parametrize("bad", [{"id": 5}, {"no_such_column": 1}])
def test_unknown_keys_are_rejected(engine: Engine, bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="not columns of calls"):
        insert_calls(engine, [call(1, **bad)])
    full = dict.fromkeys(STORED_COLUMNS, "") | call(1) | bad
    with pytest.raises(ValueError, match="not columns of calls"):
        insert_calls(engine, [full])
    assert ids(engine) == []


def test_insert_call_rows_checks_its_columns(engine: Engine) -> None:
    for columns in (["id", "time"], ["time", "time"], [], ["nope"]):
        with pytest.raises(ValueError):
            insert_call_rows(engine, columns, [])
    with pytest.raises(ValueError):
        insert_call_rows(engine, ["time"], [], batch_size=0)
    columns = ["time", "direction", "call_status", "source"]
    rows = [
        ("2024-01-01 10:00:00", "OUT", "BUSY", "100"),
        ["2024-01-01 10:00:05", "IN", "ANSWERED", "0722"],  # any sequence will do
    ]
    assert insert_call_rows(engine, columns, rows) == 2
    with engine.connect() as conn:
        statuses = conn.execute(select(calls.c.call_status).order_by(calls.c.id)).scalars()
        assert statuses.all() == ["BUSY", "ANSWERED"]


def test_every_batch_bumps_the_version(engine: Engine) -> None:
    with engine.connect() as conn:
        before = read_version(conn)
    insert_calls(engine, [call(n) for n in range(5)], batch_size=2)
    with engine.connect() as conn:
        assert read_version(conn) == before + 3
    insert_calls(engine, [])
    with engine.connect() as conn:
        assert read_version(conn) == before + 3


def test_a_failed_batch_is_rolled_back_whole(engine: Engine) -> None:
    rows = [call(1), call(2, source_key="k"), call(3, source_key="k")]
    with pytest.raises(Exception, match="UNIQUE"):
        insert_calls(engine, rows, batch_size=10)
    assert ids(engine) == []


def test_bulk_load_into_an_empty_table(engine: Engine) -> None:
    wanted = {index.name for index in SECONDARY_INDEXES}
    assert wanted <= index_names(engine)
    with bulk_load(engine) as fast:
        assert fast is True
        assert not wanted & index_names(engine)
        insert_calls(engine, [call(n, source=f"07{n:08d}") for n in range(50)])
    assert wanted <= index_names(engine)
    assert search(engine, "0000004") == [5, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50]
    assert search(engine, "0312285") == list(range(1, 51))
    with engine.connect() as conn:
        stats = conn.exec_driver_sql("SELECT count(*) FROM sqlite_stat1").scalar()
        plan = conn.exec_driver_sql(
            "EXPLAIN QUERY PLAN SELECT id FROM calls WHERE linkedid = 'x'"
        ).all()
    assert stats and "ix_calls_linkedid" in str(plan)
    # the triggers are back: later rows are searchable too
    insert_calls(engine, [call(99, source="0799123456")])
    assert search(engine, "99123") == [51]


def test_a_bulk_load_keeps_each_committed_batch_searchable(engine: Engine) -> None:
    """A load stopped half way (killed, say) leaves every stored call findable by number."""
    columns = ("source_key", *call(0))

    def batch(first: int, last: int) -> list[tuple[Any, ...]]:
        return [(f"k{n}", *call(n, source=f"07{n:08d}").values()) for n in range(first, last)]

    with bulk_load(engine) as fast:
        assert fast is True
        assert write_batch(engine, columns, batch(0, 30)) == 30
        assert search(engine, "0000002") == [3, *range(21, 31)]
        assert write_batch(engine, columns, batch(25, 60)) == 30  # 25-29: already stored
        assert search(engine, "0000005") == [6, *range(51, 61)]
        assert search(engine, "0000002") == [3, *range(21, 31)]  # none indexed twice
    with engine.begin() as conn:  # FTS5's own check of the index against the table
        conn.exec_driver_sql("INSERT INTO calls_numbers(calls_numbers) VALUES ('integrity-check')")
    insert_calls(engine, [call(99, source="0799123456")])  # one row at a time again
    assert search(engine, "99123") == [61]


def shadow_tables(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE name LIKE 'calls_numbers_%'"
        )
        return {name for (name,) in rows}


def test_the_search_keeps_no_sizes_and_a_search_made_before_still_works(engine: Engine) -> None:
    """The search table keeps no row sizes (only ranking reads them; a search filters). A
    store whose table has them (made before) searches, updates and deletes as it did, and
    gets the lean table on a bulk load into its empty calls."""
    assert "calls_numbers_docsize" not in shadow_tables(engine)
    with engine.begin() as conn:  # the table as stores made before have it
        conn.exec_driver_sql("DROP TABLE calls_numbers")
        conn.exec_driver_sql(
            "CREATE VIRTUAL TABLE calls_numbers USING fts5(source, destination, "
            "content='calls', content_rowid='id', tokenize='trigram')"
        )
    assert "calls_numbers_docsize" in shadow_tables(engine)
    insert_calls(engine, [call(1, source="0733555666"), call(2, source="0744555777")])
    with engine.begin() as conn:
        conn.execute(calls.update().where(calls.c.id == 2).values(source="0755000111"))
    assert search(engine, "555") == [1] and search(engine, "55000") == [2]
    with engine.begin() as conn:
        conn.execute(calls.delete())
    assert search(engine, "555") == []
    columns = ("source_key", *call(0))
    with bulk_load(engine) as fast:
        assert fast is True
        write_batch(
            engine, columns, [(f"k{n}", *call(n, source=f"07{n:08d}").values()) for n in range(9)]
        )
    assert "calls_numbers_docsize" not in shadow_tables(engine)
    assert search(engine, "0000004") == [5]
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO calls_numbers(calls_numbers) VALUES ('integrity-check')")


def test_bulk_load_on_a_table_with_rows_keeps_the_indexes(engine: Engine) -> None:
    insert_calls(engine, [call(1)])
    names = index_names(engine)
    with bulk_load(engine) as fast:
        assert fast is False
        assert index_names(engine) == names
        insert_calls(engine, [call(2, source="0733555666")])
    assert index_names(engine) == names
    assert search(engine, "3555") == [2]


def test_bulk_load_rebuilds_even_when_the_load_fails(engine: Engine) -> None:
    with pytest.raises(RuntimeError), bulk_load(engine):
        insert_calls(engine, [call(1, source="0744000111")])
        raise RuntimeError("producer died")
    assert {index.name for index in SECONDARY_INDEXES} <= index_names(engine)
    assert search(engine, "4000111") == [1]


def test_replace_directory(engine: Engine) -> None:
    replace_directory(engine, projects=[{"id": 1, "name": "A"}, {"id": 2, "name": "B"}])
    replace_directory(
        engine,
        projects=[{"id": 3, "name": "C"}],
        users=[{"id": 7, "extension": "107", "fullname": "Ana Pop", "project_id": 3}],
    )
    replace_directory(engine, users=None)
    with engine.connect() as conn:
        assert conn.execute(select(projects.c.name)).scalars().all() == ["C"]
        assert conn.execute(select(func.count()).select_from(users)).scalar() == 1
    replace_directory(engine, projects=[])
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(projects)).scalar() == 0


def test_bulk_load_changes_connection_settings_only_while_it_runs(engine: Engine) -> None:
    names = ("synchronous", "temp_store", "threads", "cache_size")

    def settings() -> dict[str, int]:
        with engine.connect() as conn:
            return {n: int(conn.exec_driver_sql(f"PRAGMA {n}").scalar_one()) for n in names}

    normal = settings()
    assert normal["synchronous"] > 0 and normal["temp_store"] != 1
    with bulk_load(engine):
        assert settings()["synchronous"] == 0
        insert_calls(engine, [call(1)])
    assert settings() == normal
    with bulk_load(engine):  # not empty: nothing changes
        assert settings() == normal


# A full disk. SQLite is told the file may not grow (``PRAGMA max_page_count`` at its
# size, on every new connection), so it answers SQLITE_FULL exactly as when the disk is
# full; the PostgreSQL test puts the table on a real 2 MB tmpfs when it may mount one.


def fill_disk(engine: Engine) -> Callable[[], None]:
    """From now on the store cannot grow; returns the function that frees space."""
    with engine.connect() as conn:
        pages = int(conn.exec_driver_sql("PRAGMA page_count").scalar_one())

    def no_room(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute(f"PRAGMA max_page_count={pages}")

    event.listen(engine, "connect", no_room)
    engine.dispose()  # every connection from now on is a new one

    def free() -> None:
        event.remove(engine, "connect", no_room)
        engine.dispose()

    return free


KEYED = ("source_key", *call(0))


def keyed(numbers: range) -> list[tuple[Any, ...]]:
    return [(f"k{n}", *call(n, source=f"07{n:08d}").values()) for n in numbers]


def test_a_full_disk_says_which_disk_while_doing_what_and_what_to_do(
    engine: Engine, tmp_path: Path
) -> None:
    write_batch(engine, KEYED, keyed(range(10)), checkpoint=("csv:x", "10"))
    free = fill_disk(engine)
    with pytest.raises(DiskFull) as caught:
        write_batch(engine, KEYED, keyed(range(10, 3000)), checkpoint=("csv:x", "3000"))
    assert isinstance(caught.value, StoreError)  # so every command reports it in one line
    assert str(caught.value) == (
        f"the disk holding {tmp_path / 'store.db'} is full (database or disk is full) while "
        "storing calls; free space and run the same command again: it resumes where it stopped"
    )
    with pytest.raises(DiskFull, match="while storing calls; free space and run the same"):
        insert_calls(engine, [call(n) for n in range(3000)])
    assert ids(engine) == list(range(1, 11)) and read_checkpoint(engine, "csv:x") == "10"
    free()
    assert write_batch(engine, KEYED, keyed(range(10, 3000)), checkpoint=("csv:x", "3000"))
    assert len(ids(engine)) == 3000 and read_checkpoint(engine, "csv:x") == "3000"


def test_a_bulk_load_stopped_by_a_full_disk_tells_that_and_is_finished_later(
    engine: Engine,
) -> None:
    """The index build at the end fails too (no room): the error told is the first one,
    and the next ingestion's :func:`ensure_indexes` builds the indexes."""
    with pytest.raises(DiskFull) as caught, bulk_load(engine):
        write_batch(engine, KEYED, keyed(range(3000)))
        free = fill_disk(engine)
        write_batch(engine, KEYED, keyed(range(3000, 6000)))
    assert "while storing calls" in str(caught.value)
    assert not {index.name for index in SECONDARY_INDEXES} & index_names(engine)
    with pytest.raises(DiskFull, match="while building the indexes; free space and run"):
        ensure_indexes(engine)
    free()
    ensure_indexes(engine)
    assert {index.name for index in SECONDARY_INDEXES} <= index_names(engine)
    assert len(ids(engine)) == 3000
    with engine.connect() as conn:
        stats = conn.exec_driver_sql("SELECT count(*) FROM sqlite_stat1").scalar()
    assert stats


@pytest.fixture
def pg_small_disk(postgres: PostgresServer) -> Iterator[tuple[Engine, bool]]:
    """A PostgreSQL store whose ``calls`` lives on a 2 MB tmpfs tablespace, if this
    process may mount one; else a store whose inserts the server refuses with the
    SQLSTATE of a full disk (53100), from a trigger. Yields (engine, real disk)."""
    import psycopg

    url = postgres.new_database()
    engine = connect(url)
    root = Path(tempfile.mkdtemp(prefix="cdrapi-full-"))
    mounted = (
        os.geteuid() == 0
        and shutil.which("mount") is not None
        and subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700,uid=postgres", "tmpfs", str(root)],
            capture_output=True,
        ).returncode
        == 0
    )
    space = f"small_{root.name.replace('-', '_')}"
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            if mounted:
                conn.execute(f"CREATE TABLESPACE {space} LOCATION '{root}'")
                conn.execute(f"ALTER TABLE calls SET TABLESPACE {space}")
            else:
                conn.execute(
                    "CREATE FUNCTION no_room() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                    "RAISE EXCEPTION USING ERRCODE = 'disk_full', "
                    "MESSAGE = 'could not extend file: No space left on device'; END $$"
                )
                conn.execute(
                    "CREATE TRIGGER no_room BEFORE INSERT ON calls FOR EACH ROW "
                    "WHEN (NEW.source = 'full') EXECUTE FUNCTION no_room()"
                )
        yield engine, mounted
    finally:
        engine.dispose()
        if mounted:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("DROP TABLE IF EXISTS calls")
                conn.execute(f"DROP TABLESPACE IF EXISTS {space}")
            subprocess.run(["umount", "-l", str(root)], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def test_a_full_disk_on_postgresql(pg_small_disk: tuple[Engine, bool]) -> None:
    engine, real = pg_small_disk
    write_batch(engine, KEYED, keyed(range(10)), checkpoint=("csv:x", "10"))
    refused = (f"k{20}", *call(20, source="full").values())
    big = keyed(range(10, 20_000)) if real else [*keyed(range(10, 20)), refused]
    with pytest.raises(DiskFull) as caught:
        write_batch(engine, KEYED, big, checkpoint=("csv:x", "20000"))
    message = str(caught.value)
    assert message.startswith(f"the disk of the database server 127.0.0.1:{engine.url.port}/")
    assert "No space left on device" in message
    assert "while storing calls; free space and run the same command again" in message
    assert "\n" not in message
    assert len(ids(engine)) == 10 and read_checkpoint(engine, "csv:x") == "10"
