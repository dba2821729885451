"""What queue_log says of a call reaches its records whichever comes first: the queued
call saved and copied onto the calls of its uniqueid by callid, the calls of a batch
given it by id, every call given it again (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from cdrapi.store.calls import insert_calls
from cdrapi.store.engine import connect
from cdrapi.store.schema import calls
from cdrapi.store.writer import Writer

FIELDS = ("qname", "hold_time", "ring_time", "code", "call_codes", "agent_details")


@pytest.fixture
def store(db_url: str) -> Iterator[Writer]:
    engine = connect(db_url)
    yield Writer(engine, {})
    engine.dispose()


def call(uniqueid: str, **fields: Any) -> dict[str, Any]:
    return {"uniqueid": uniqueid, "time": "2024-03-14 09:00:00", "direction": "IN",
            "call_status": "NO ANSWER", "ring_time": 7, "call_codes": "in no answer",
            **fields}  # fmt: skip


def queued(callid: str, **fields: Any) -> dict[str, Any]:
    events = [[1710406800, callid, "support", "NONE", "ENTERQUEUE", ["", "0721000001", "1"]]]
    return {"callid": callid, "events": events, "qname": "support", "hold_time": 12,
            "ring_time": 0, "agent_details": None, "queue_log": "ENTERQUEUE support",
            "transfers": None, "call_codes": None, **fields}  # fmt: skip


def fields(store: Writer) -> dict[str, tuple[Any, ...]]:
    query = select(calls.c.uniqueid, *(calls.c[name] for name in FIELDS)).order_by(calls.c.id)
    with store.engine.connect() as conn:
        return {uid: tuple(rest) for uid, *rest in conn.execute(query)}


UNTOUCHED = (None, 0, 7, None, "in no answer", None)
QUEUED = ("support", 12, 7, "queue", "in no answer", None)


def test_saved_events_read_back_and_copied_by_callid(store: Writer) -> None:
    insert_calls(store.engine, [call("u1"), call("u2"), call("u3")])
    with store.engine.begin() as conn:
        assert store.read_queue_events(conn, ["u1"]) == {}
        store.save_queue_calls(conn, [queued("u1"), queued("u2", call_codes="queue abandoned")])
        assert store.read_queue_events(conn, ["u1", "u9"]) == {"u1": queued("u1")["events"]}
        assert store.copy_queue_fields(conn, ["u1"]) == 1
    assert fields(store) == {
        # ring_time and call_codes kept where queue_log says nothing of them
        "u1": QUEUED,
        "u2": UNTOUCHED,  # saved, but not asked for
        "u3": UNTOUCHED,
    }
    with store.engine.begin() as conn:  # saved again: replaced, not doubled
        store.save_queue_calls(conn, [queued("u1", ring_time=4, agent_details="Maria: CONNECT")])
        store.copy_queue_fields(conn, ["u1", "u2"])
    assert fields(store)["u1"] == ("support", 12, 4, "queue", "in no answer", "Maria: CONNECT")
    assert fields(store)["u2"] == ("support", 12, 7, "queue", "queue abandoned", None)


def test_new_calls_get_what_queue_log_said_before_them(store: Writer) -> None:
    insert_calls(store.engine, [call("u1")])
    with store.engine.begin() as conn:
        store.queue_fields_for_new_calls(conn, 1)  # nothing queued yet: nothing to do
        store.save_queue_calls(conn, [queued("u1"), queued("u2")])
    insert_calls(store.engine, [call("u2")])
    with store.engine.begin() as conn:
        store.queue_fields_for_new_calls(conn, 2)  # the batch's rows: ids from 2 on
    assert fields(store) == {"u1": UNTOUCHED, "u2": QUEUED}
    store.copy_all_queue_fields()
    assert fields(store)["u1"] == QUEUED
