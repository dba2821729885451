"""queue_log events fill the queue fields of a call's records, whichever comes first."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from cdrapi.ingest import IngestRun, Reject, ingest_csv, ingest_queue_log
from cdrapi.ingest.directory import directory_from
from cdrapi.protocol.records import RECORD_COLUMNS, record
from cdrapi.settings import Settings
from cdrapi.store.schema import queue_calls
from tests.ingest.conftest import FIXTURES, rows

QUEUE_LOG = FIXTURES / "queue_log"
FIELDS = ("qname", "hold_time", "ring_time", "agent_details", "queue_log", "transfers",
          "call_codes", "code")  # fmt: skip


def _cdr(uid: str, status: str = "ANSWERED", duration: int = 140, bill: int = 100) -> str:
    return (
        f'"","0721555001","0312285000","ext-queues","""Client"" <0721555001>",'
        f'"PJSIP/orange-00000001","PJSIP/102-00000002","Queue","suport,t,,,300",'
        f'"2024-03-14 10:00:10",,"2024-03-14 10:02:30",{duration},{bill},"{status}",'
        f'"DOCUMENTATION","{uid}","","","{uid}",1\n'
    )


def _queue_fields(engine: Engine, uid: str) -> dict[str, object]:
    found = [record(r) for r in rows(engine, *RECORD_COLUMNS) if r[1] == uid]
    assert len(found) == 1
    return {key: found[0][key] for key in FIELDS}


def _write_cdrs(path: Path) -> None:
    path.write_text(
        _cdr("1710403210.700") + _cdr("1710403400.710", "NO ANSWER", 45, 0)
        + _cdr("1710403500.720", "NO ANSWER", 300, 0) + _cdr("1710403900.730", "NO ANSWER", 5, 0)
    )  # fmt: skip


def _check(engine: Engine) -> None:
    connected = _queue_fields(engine, "1710403210.700")
    assert connected == {
        "qname": "suport", "hold_time": "00:00:22", "ring_time": "00:00:22",  # 15 s + 7 s
        "agent_details": "PJSIP/101: RINGNOANSWER 15s; Maria Ionescu (102): CONNECT",
        "queue_log": "ENTERQUEUE suport; RINGNOANSWER PJSIP/101 15s; "
        "CONNECT Maria Ionescu (102) after 22s; BLINDTRANSFER Maria Ionescu (102) -> "
        "200@from-internal",
        "transfers": "blind Maria Ionescu (102) -> 200@from-internal",
        "call_codes": "queue answered", "code": "queue",
    }  # fmt: skip
    abandoned = _queue_fields(engine, "1710403400.710")
    assert abandoned["call_codes"] == "queue abandoned" and abandoned["hold_time"] == "00:00:45"
    assert _queue_fields(engine, "1710403500.720")["call_codes"] == "queue timeout"
    assert _queue_fields(engine, "1710403900.730")["call_codes"] == "queue exit key 5"


DIRECTORY = directory_from({"users": [{"extension": "102", "fullname": "Maria Ionescu"}]})


def test_other_transfers_and_completions(store: Engine) -> None:
    ingest_queue_log(store, QUEUE_LOG)
    with store.connect() as conn:
        saved = {r.callid: r for r in conn.execute(select(queue_calls))}
    assert saved["1710404100.750"].transfers == "attended Agent/102 -> 1710404150.760"
    assert saved["1710404200.770"].transfers == "blind PJSIP/101 -> 300@from-internal"
    assert saved["1710404400.780"].queue_log.endswith("COMPLETECALLER PJSIP/101 talk 95s")
    assert saved["1710404000.740"].call_codes == "queue exit empty"
    assert "NONE" not in saved  # QUEUESTART has no call


EXPORTS = Path(__file__).parents[1] / "fixtures" / "queue_log"


@pytest.mark.parametrize("export", ["queue_log_export.csv", "queuelog_epoch.csv"])
def test_csv_exports_of_the_queue_log_table(store: Engine, tmp_path: Path, export: str) -> None:
    """An SQL tool's export (quoted, ``NULL``, local datetimes, an ``id`` column) and a
    semicolon one (epoch times, the arguments in one ``data`` column): found by their
    header, they give the same fields, and the same instants, as the pipe file."""
    master = tmp_path / "Master.csv"
    _write_cdrs(master)
    ingest_csv(store, [master], IngestRun(directory=DIRECTORY))
    reported: list[Reject] = []
    options = IngestRun(Settings(timezone="Europe/Bucharest"), report=reported.append)
    summary = ingest_queue_log(store, EXPORTS / export, options)
    assert [(r.line, r.reason[:8]) for r in reported] == [(13, "expected")]
    assert summary.updated == 4 and summary.lines == 20  # as the pipe file: the header no line
    _check(store)
    with store.connect() as conn:
        events = conn.execute(
            select(queue_calls.c.events).where(queue_calls.c.callid == "1710403210.700")
        ).scalar()
    assert json.loads(str(events))[0] == [
        1710403210, "1710403210.700", "suport", "NONE", "ENTERQUEUE", ["", "0721555001", "1"]
    ]  # fmt: skip
