"""Log files open for reading (:mod:`cdrapi.ingest.logfile`): a compressed file (gz, bz2,
xz) is read directly and resumed; a damaged one is a clear error."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from sqlalchemy import Engine

from cdrapi.ingest import SourceError
from tests.ingest.conftest import append, cdr_line, compress, run, stored, uids


@pytest.mark.parametrize("suffix", [".gz", ".bz2", ".xz"])
def test_a_compressed_file_is_read_directly_and_resumed(
    store: Engine, tmp_path: Path, suffix: str
) -> None:
    plain = tmp_path / "Master.csv"
    append(plain, cdr_line(1), cdr_line(2))
    packed = tmp_path / f"Master.csv{suffix}"
    compress(plain, packed)
    summary = run(store, packed)
    assert (summary.lines, summary.stored, summary.rejected) == (2, 2, 0)  # type: ignore[attr-defined]
    assert stored(store) == uids(1, 2)
    again = run(store, packed)
    assert (again.lines, again.stored) == (0, 0)  # type: ignore[attr-defined]


def test_a_damaged_compressed_file_is_a_clear_error(store: Engine, tmp_path: Path) -> None:
    packed = tmp_path / "Master.csv.gz"
    packed.write_bytes(gzip.compress(cdr_line(1).encode() * 50)[:-30])
    with pytest.raises(SourceError, match=r"Master\.csv\.gz: damaged or cut short"):
        run(store, packed)
