"""An import read once checkpoints SQLite's write-ahead log less often, then once at its
end (:func:`cdrapi.store.bulk.long_import`): the connections get their own setting back,
a thread folds the log into the database file while the import runs, and the log is
folded when the run returns, even while another connection (a server) keeps the store
open."""

from __future__ import annotations

import shutil
import sqlite3
import time
from contextlib import suppress
from pathlib import Path

from cdrapi.ingest import IngestRun, ingest_csv
from cdrapi.store.bulk import LONG_IMPORT_PAGES
from cdrapi.store.engine import connect
from cdrapi.store.writer import Writer

_LINE = (
    '"","07{n:08d}","100","from-pstn","","PJSIP/trunk-{n:08x}","PJSIP/100-{n:08x}","Dial",'
    '"PJSIP/100","2026-03-01 10:{m:02d}:{s:02d}","2026-03-01 10:{m:02d}:{s:02d}",'
    '"2026-03-01 10:{m:02d}:{s:02d}",0,0,"ANSWERED","DOCUMENTATION","1772359200.{n}","",'
    '"","1772359200.{n}",{n}\n'
)


def test_connections_checkpoint_less_during_the_import_and_as_before_after(
    tmp_path: Path,
) -> None:
    engine = connect(f"sqlite:///{tmp_path / 'store.db'}")
    writer = Writer(engine, {})
    with writer.long_import(), engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == LONG_IMPORT_PAGES
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 1000
    engine.dispose()


def test_the_log_is_folded_back_when_the_import_returns(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    engine = connect(f"sqlite:///{path}")
    server = sqlite3.connect(path)  # keeps the store open: no checkpoint at the last close
    server.execute("SELECT count(*) FROM calls").fetchone()
    master = tmp_path / "Master.csv"
    master.write_text("".join(_LINE.format(n=n, m=n // 60 % 60, s=n % 60) for n in range(3000)))
    summary = ingest_csv(engine, [master], IngestRun(rejects=None))
    assert summary.stored == 3000
    # the database file alone (no log beside it) holds every call
    shutil.copyfile(path, tmp_path / "copy.db")
    copy = sqlite3.connect(tmp_path / "copy.db")
    assert copy.execute("SELECT count(*) FROM calls").fetchone() == (3000,)
    copy.close()
    server.close()
    engine.dispose()


def test_a_thread_folds_the_log_into_the_database_file_while_the_import_runs(
    tmp_path: Path,
) -> None:
    path = tmp_path / "store.db"
    engine = connect(f"sqlite:///{path}")
    server = sqlite3.connect(path)  # keeps the store open, as a server does
    server.execute("SELECT count(*) FROM calls").fetchone()
    with Writer(engine, {}).long_import():
        with engine.begin() as conn:  # about 1 MB: far fewer pages than the writer's bound
            conn.exec_driver_sql("CREATE TABLE scratch (x BLOB)")
            conn.exec_driver_sql(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000) "
                "INSERT INTO scratch SELECT randomblob(1000) FROM n"
            )
        deadline, found = time.monotonic() + 10, None
        while found != (1000,):  # the database file alone, copied, holds the rows
            assert time.monotonic() < deadline, f"not in the database file after 10 s: {found}"
            time.sleep(0.02)
            shutil.copyfile(path, tmp_path / "copy.db")
            with suppress(sqlite3.DatabaseError):  # no such table yet, or a copy mid-write
                copy = sqlite3.connect(tmp_path / "copy.db")
                try:
                    found = copy.execute("SELECT count(*) FROM scratch").fetchone()
                finally:
                    copy.close()
    server.close()
    engine.dispose()
