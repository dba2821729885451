"""Where a file source stopped (:mod:`cdrapi.ingest.checkpoint`): the position holds the
rotated file still being read as well as the new one, and resumes both."""

from __future__ import annotations

from pathlib import Path

from cdrapi.ingest.checkpoint import Position
from cdrapi.ingest.follow import FileTail
from tests.ingest.conftest import lines_of


def test_the_checkpoint_holds_both_files(tmp_path: Path) -> None:
    log = tmp_path / "log"
    log.write_bytes(b"1\n")
    tail = FileTail(log)
    with open(log, "ab", buffering=0) as writer:
        try:
            assert lines_of(tail) == [b"1\n"]
            log.rename(tmp_path / "log.1")
            log.write_bytes(b"2\n")
            assert lines_of(tail) == [b"2\n"]
            saved = Position.loads(tail.position.dumps())
        finally:
            tail.close()
        assert saved.offset == 2 and [p.offset for p in saved.rotated] == [2]
        writer.write(b"3\n")
    with open(log, "ab") as new:
        new.write(b"4\n")
    again = FileTail(log, saved)
    try:
        assert lines_of(again) == [b"3\n", b"4\n"]  # nothing lost, nothing twice
    finally:
        again.close()
