"""cel_calls copied onto calls: CEL's fields win over queue_log's whichever comes first, a
field CEL says nothing of keeps the row's own, and only rows that change are counted."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from cdrapi.store import cel
from cdrapi.store.calls import insert_calls
from cdrapi.store.engine import connect
from cdrapi.store.schema import calls
from cdrapi.store.transaction import writing
from cdrapi.store.writer import Writer

LEG = {"uniqueid": "1.1", "linkedid": "1.1", "time": "2024-03-14 10:00:00", "direction": "IN",
       "call_status": "ANSWERED", "dstchannel": "PJSIP/101-00000002", "ring_time": 20}  # fmt: skip
CEL = {"linkedid": "1.1", "events": ["1.000000\x1fCHAN_START"], "ivr_uniqueid": "1.1",
       "ivr_log": "ivr-main > 1 queue support", "ivr_duration": 7,
       "transfers": "blind A -> B at 10:01:00",
       "monitor_files": None, "monitor_urls": None, "rings": {"PJSIP/101-00000002": 8},
       "ended": "2024-03-14 10:02:00"}  # fmt: skip
QUEUE = {"callid": "1.1", "events": [], "qname": "support", "hold_time": 5, "ring_time": 12,
         "agent_details": None, "queue_log": "ENTERQUEUE support", "transfers": "blind q -> 300",
         "call_codes": None}  # fmt: skip
SHOWN = ("ivr_log", "ivr_duration", "transfers", "monitor_files", "ring_time", "qname")


def _leg(engine: object) -> tuple[object, ...]:
    with engine.connect() as conn:  # type: ignore[attr-defined]
        return tuple(conn.execute(select(*(calls.c[n] for n in SHOWN))).one())


def _store(tmp_path: Path, name: str) -> tuple[object, Writer]:
    engine = connect(f"sqlite:///{tmp_path / name}")
    insert_calls(engine, [{**LEG, "monitor_files": "old.wav"}])
    return engine, Writer(engine, {})


WANTED = ("ivr-main > 1 queue support", 7, "blind A -> B at 10:01:00", "old.wav", 8, "support")


def test_cel_wins_over_queue_log_in_either_order(tmp_path: Path) -> None:
    engine, store = _store(tmp_path, "a.db")
    with writing(engine) as conn:  # queue_log first, then CEL
        store.save_queue_calls(conn, [QUEUE])
        store.copy_queue_fields(conn, ["1.1"])
        store.save_cel_calls(conn, [CEL])
        assert store.copy_cel_fields(conn, ["1.1"]) == 1
        assert store.copy_cel_fields(conn, ["1.1"]) == 0  # nothing changes a second time
    assert _leg(engine) == WANTED
    engine, store = _store(tmp_path, "b.db")
    with writing(engine) as conn:  # CEL first, then queue_log
        store.save_cel_calls(conn, [CEL])
        store.copy_cel_fields(conn, ["1.1"])
        store.save_queue_calls(conn, [QUEUE])
        store.copy_queue_fields(conn, ["1.1"])
    assert _leg(engine) == WANTED  # monitor_files: CEL had none, the row's own stays


def test_new_calls_get_what_cel_said_before(tmp_path: Path) -> None:
    engine = connect(f"sqlite:///{tmp_path / 'c.db'}")
    store = Writer(engine, {})
    with writing(engine) as conn:
        store.save_cel_calls(conn, [CEL])
    insert_calls(engine, [{**LEG, "monitor_files": "old.wav"}])
    with writing(engine) as conn:
        store.queue_fields_for_new_calls(conn, 1)
        assert cel.call_ended(conn, "1.1") == "2024-03-14 10:02:00"
        assert cel.call_ended(conn, "9.9") is None
    assert _leg(engine)[:5] == WANTED[:5]
