"""The reject file (:mod:`cdrapi.ingest.rejects`): each rejected line written once, not
again when the file is read again; a device taken as is, a full disk a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from cdrapi.ingest import IngestRun, ingest_csv
from tests.ingest.conftest import append, cdr_line


def test_rejects_read_again_are_not_appended_again(store: Engine, tmp_path: Path) -> None:
    master, rejects = tmp_path / "Master.csv", tmp_path / "rejects.txt"
    append(master, cdr_line(1), "garbage,line\n", "garbage,line\n", cdr_line(2))
    ingest_csv(store, [master], IngestRun(rejects=rejects))
    assert rejects.read_text() == "garbage,line\n" * 2  # two lines, each once
    summary = ingest_csv(store, [master], IngestRun(rejects=rejects, from_start=True))
    assert summary.rejected == 2  # still reported
    assert rejects.read_text() == "garbage,line\n" * 2  # not appended again
    append(master, "other,garbage\n", "garbage,line\n")  # new lines, one equal to an old
    ingest_csv(store, [master], IngestRun(rejects=rejects))
    assert rejects.read_text() == "garbage,line\n" * 2 + "other,garbage\ngarbage,line\n"


def test_rejects_to_a_device_or_a_full_disk(store: Engine, tmp_path: Path) -> None:
    from cdrapi.ingest import SourceError

    master = tmp_path / "Master.csv"
    append(master, cdr_line(1), "garbage,line\n")
    ingest_csv(store, [master], IngestRun(rejects="/dev/null"))  # a device: not read first
    append(master, "more,garbage\n")
    with pytest.raises(SourceError, match="the disk holding /dev/full is full"):
        ingest_csv(store, [master], IngestRun(rejects="/dev/full"))
