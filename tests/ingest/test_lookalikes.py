"""A rejected line that looks like another source's (queue_log, CEL) says which command
reads it (:mod:`cdrapi.ingest.lookalikes`)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from cdrapi.ingest import IngestRun, Reject, ingest_csv
from tests.ingest.conftest import FIXTURES


def test_a_queue_log_or_cel_file_says_which_command_reads_it(store: Engine, tmp_path: Path) -> None:
    reported: list[Reject] = []
    summary = ingest_csv(store, [FIXTURES / "queue_log"], IngestRun(report=reported.append))
    assert summary.stored == 0 and summary.rejected == len(reported) > 5
    hinted = [r for r in reported if r.reason.endswith("use `cdrapi ingest queue-log`")]
    assert len(hinted) == len(reported) - 1  # all but the fixture's "this is not a..." line
    exported = tmp_path / "queue_log.csv"  # the queue_log table exported as CSV
    exported.write_text(
        "time,callid,queuename,agent,event,data1,data2,data3\n"
        "2024-03-14 10:00:10,1710403210.700,suport,NONE,ENTERQUEUE,,0721555001,1\n"
    )
    cel = tmp_path / "cel.csv"  # cel_custom's default mapping
    cel.write_text(
        '"CHAN_START","2024-03-14 10:00:10","Ion Pop","0721555001","0721555001","","",'
        '"101","from-pstn","PJSIP/orange-00000021","","","3","","1710403210.700",'
        '"1710403210.700","","","",""\n'
    )
    reported.clear()
    ingest_csv(store, [exported, cel], IngestRun(report=reported.append))
    assert [r.line for r in reported] == [1, 2, 1]
    assert all("queue-log" in r.reason for r in reported[:2])
    assert reported[2].reason.endswith(
        "looks like a CEL (cel_custom) line: use `cdrapi ingest cel`"
    )
