"""Between two runs, logrotate moved the file: the rest of it is found (renamed, compressed,
copied) and read before the new file, files rotated in between are read whole, and a
file that cannot be found is a warning with its last stored line."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine

from cdrapi.ingest import IngestRun, ingest_csv
from cdrapi.ingest.rotation import rotations
from tests.ingest.conftest import append, cdr_line, compress, rows, run, stored, uids


def age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


@pytest.mark.parametrize(
    "rotated", ["Master.csv.1.gz", "Master.csv-20260701.gz", "Master.csv.1.bz2", "Master.csv.1.xz"]
)
def test_compress_the_rest_of_the_rotated_file_is_read(
    store: Engine, tmp_path: Path, rotated: str
) -> None:
    master = tmp_path / "Master.csv"
    append(master, cdr_line(1))
    run(store, master)
    append(master, cdr_line(2), cdr_line(3))  # written after the run, before the rotation
    compress(master, tmp_path / rotated)  # logrotate: create + compress
    append(master, cdr_line(4))
    summary = run(store, master)
    assert (summary.stored, summary.warnings) == (3, [])  # type: ignore[attr-defined]
    assert [uid for (uid,) in rows(store, "uniqueid")] == uids(1, 2, 3, 4)  # in order
    assert run(store, master).stored == 0  # type: ignore[attr-defined]


def test_delaycompress_two_rotations_between_runs(store: Engine, tmp_path: Path) -> None:
    master = tmp_path / "Master.csv"
    append(master, cdr_line(1))
    run(store, master)
    append(master, cdr_line(2))
    age(master, 300)
    master.rename(tmp_path / "Master.csv.1")  # first rotation (delaycompress)
    append(master, cdr_line(3))
    age(master, 200)
    compress(tmp_path / "Master.csv.1", tmp_path / "Master.csv.2.gz")  # second rotation
    master.rename(tmp_path / "Master.csv.1")
    append(master, cdr_line(4))
    summary = run(store, master)
    assert summary.stored == 3  # type: ignore[attr-defined]
    assert [uid for (uid,) in rows(store, "uniqueid")] == uids(1, 2, 3, 4)


def test_copytruncate_the_lines_only_in_the_copy_are_read(store: Engine, tmp_path: Path) -> None:
    master = tmp_path / "Master.csv"
    append(master, cdr_line(1))
    run(store, master)
    append(master, cdr_line(2))
    shutil.copy2(master, tmp_path / "Master.csv.1")  # logrotate copytruncate
    with open(master, "r+b") as handle:
        handle.truncate(0)
    append(master, cdr_line(3), cdr_line(4), cdr_line(5))  # longer than before: same inode
    summary = run(store, master)
    assert summary.stored == 4  # type: ignore[attr-defined]
    assert stored(store) == uids(1, 2, 3, 4, 5)


def test_a_header_file_replaced_by_one_with_the_same_header_is_new(
    store: Engine, tmp_path: Path
) -> None:
    """The same first bytes (a header row) but other lines before the offset: not the
    file read before, so it is read from its start."""
    header = "calldate,src,dst,dcontext,channel,dstchannel,disposition,duration,billsec,uniqueid\n"

    def line(n: int) -> str:
        return f"2024-03-09 17:00:{n:02d},07210000{n:02d},101,from-internal,PJSIP/a-{n:08x},,ANSWERED,5,5,1710000000.{n}\n"  # noqa: E501

    export = tmp_path / "export.csv"
    export.write_text(header + line(1) + line(2))
    age(export, 60)
    run(store, export)
    export.write_text(header + line(3) + line(4) + line(5))  # rewritten in place
    age(export, 60)
    run(store, export)
    assert stored(store) == uids(1, 2, 3, 4, 5)


def test_a_rotated_file_that_is_gone_is_a_warning_with_its_last_line(
    store: Engine, tmp_path: Path
) -> None:
    master = tmp_path / "Master.csv"
    append(master, cdr_line(1), cdr_line(2))
    run(store, master)
    master.unlink()  # rotated into another directory (olddir) or deleted
    append(master, cdr_line(3))
    summary = run(store, master)
    assert summary.stored == 1  # type: ignore[attr-defined]
    (warning,) = summary.warnings  # type: ignore[attr-defined]
    assert warning.startswith(f"{master}: the file read up to line 2 was rotated away")
    assert "lines written to it after line 2 may be missing" in warning


def test_rotation_names() -> None:
    base = Path("/var/log/asterisk/cdr-csv/Master.csv")
    names = [
        "Master.csv.1", "Master.csv.2.gz", "Master.csv-20260701", "Master.csv-20260701.gz",
        "Master.csv.20260701.bz2", "Master.csv.1.xz", "Master.csv-2026-07-01_10",
    ]  # fmt: skip
    others = ["Master.csv.bak", "Master.csvx", "Master.csv.1.zip", "Other.csv.1", "Master.csv"]
    assert all(_name_matches(base, name) for name in names)
    assert not any(_name_matches(base, name) for name in others)


def _name_matches(base: Path, name: str) -> bool:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / name).write_text("x")
        return bool(rotations(Path(folder) / base.name))


def test_a_run_after_a_rotation_reads_the_old_file_then_the_new_one(
    store: Engine, tmp_path: Path
) -> None:
    master = tmp_path / "Master.csv"
    append(master, cdr_line(1))
    ingest_csv(store, [master], IngestRun(rejects=None))
    append(master, cdr_line(2))
    master.rename(tmp_path / "Master.csv.1")
    append(master, cdr_line(3))
    assert ingest_csv(store, [master], IngestRun(rejects=None)).stored == 2
    assert [uid for (uid,) in rows(store, "uniqueid")] == uids(1, 2, 3)  # in this order
    append(master, cdr_line(4))
    assert ingest_csv(store, [master], IngestRun(rejects=None)).stored == 1
    assert stored(store) == uids(1, 2, 3, 4)
