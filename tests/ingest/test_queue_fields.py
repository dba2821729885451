"""The queue fields of a call's records (:mod:`cdrapi.ingest.queue_fields`): queue_log
events merged into them whichever comes first, the CDRs or the queue_log lines."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from cdrapi.ingest import IngestRun, Reject, ingest_csv, ingest_queue_log
from tests.ingest.test_queue_log import DIRECTORY, QUEUE_LOG, _check, _write_cdrs


def test_queue_log_after_the_cdrs_updates_them(store: Engine, tmp_path: Path) -> None:
    master = tmp_path / "Master.csv"
    _write_cdrs(master)
    ingest_csv(store, [master], IngestRun(directory=DIRECTORY))
    reported: list[Reject] = []
    summary = ingest_queue_log(store, QUEUE_LOG, IngestRun(report=reported.append))
    assert [(r.line, r.reason[:8]) for r in reported] == [(12, "expected")]
    assert summary.updated == 4 and summary.lines == 20
    _check(store)


def test_cdrs_after_the_queue_log_get_its_fields(store: Engine, tmp_path: Path) -> None:
    ingest_queue_log(store, QUEUE_LOG, IngestRun(directory=DIRECTORY, rejects=None))
    master = tmp_path / "Master.csv"
    _write_cdrs(master)
    ingest_csv(store, [master])
    _check(store)
    # the same queue_log read again changes nothing
    ingest_queue_log(store, QUEUE_LOG, IngestRun(from_start=True))
    _check(store)
