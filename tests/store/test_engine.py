"""Opening a store (store/engine.py): a SQLite file replaced under a running engine is read
as the new file, whole, even at the same store version, never from what was learned of
the old one."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from cdrapi.protocol.filters import CallFilters
from cdrapi.store.engine import connect, read_version, store_generation
from cdrapi.store.pages import CallPages
from tests.data import load, sample_rows


def test_pages_of_a_replaced_file_are_the_new_files(tmp_path: Path) -> None:
    path = tmp_path / "cdrapi.db"
    engine = connect(f"sqlite:///{path}")
    load(engine, sample_rows(30))
    other = connect(f"sqlite:///{tmp_path / 'other.db'}")
    load(other, sample_rows(120, seed=3))
    with engine.connect() as mine, other.connect() as theirs:
        assert read_version(mine) == read_version(theirs)  # the version cannot tell them apart
    other.dispose()  # all of it in other.db, no -wal left

    pages = CallPages(engine)
    assert pages.fetch(CallFilters(), 1).row_count == 30
    before = store_generation(engine)
    shutil.copy(tmp_path / "other.db", tmp_path / "incoming.db")
    for stale in (tmp_path / "cdrapi.db-wal", tmp_path / "cdrapi.db-shm"):
        stale.unlink(missing_ok=True)
    os.replace(tmp_path / "incoming.db", path)

    first, second = pages.fetch(CallFilters(), 1), pages.fetch(CallFilters(), 2)
    assert (first.row_count, len(first.rows), len(second.rows)) == (120, 100, 20)
    assert store_generation(engine) > before
    engine.dispose()
