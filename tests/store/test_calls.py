"""A batch through the writer: rows, the updates of calls stored before, the run's hook
and the checkpoint commit together or not at all (SQLite and PostgreSQL); the keys a
table source looks up; stored calls read and their derived fields rewritten."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, select
from sqlalchemy.exc import IntegrityError, ProgrammingError

from cdrapi.store.calls import insert_calls
from cdrapi.store.engine import connect
from cdrapi.store.schema import calls
from cdrapi.store.writer import Writer

ELSEWHERE = {"in no answer": "in answered elsewhere"}
#: A record as the demo generator stores it: no source_key (not ingested).
DEMO = {"direction": "IN", "call_status": "ANSWERED"}
COLUMNS = ("source_key", "uniqueid", "linkedid", "time", "source", "direction",
           "call_status", "channel", "dstchannel", "is_recovered", "call_codes")  # fmt: skip


@pytest.fixture
def store(db_url: str) -> Iterator[Writer]:
    engine = connect(db_url)
    yield Writer(engine, ELSEWHERE)
    engine.dispose()


def row(key: str, when: str, status: str = "ANSWERED", **fields: Any) -> tuple[Any, ...]:
    values = {
        "source_key": key, "uniqueid": key, "linkedid": fields.pop("linkedid", key),
        "time": when, "source": "0721000001", "direction": "IN", "call_status": status,
        "channel": "PJSIP/orange-01", "dstchannel": "PJSIP/101-02" if status == "ANSWERED" else "",
        "is_recovered": None if status == "ANSWERED" else 0,
        "call_codes": "in answered" if status == "ANSWERED" else "in no answer", **fields,
    }  # fmt: skip
    return tuple(values[name] for name in COLUMNS)


def stored(engine: Engine) -> dict[str, tuple[Any, Any]]:
    """source_key -> (is_recovered, call_codes)."""
    query = select(calls.c.source_key, calls.c.is_recovered, calls.c.call_codes)
    with engine.connect() as conn:
        return {key: (recovered, codes) for key, recovered, codes in conn.execute(query)}


def missed_before(store: Writer) -> None:
    """Two missed calls stored by an earlier run: one called back later, one a leg of a
    call another leg answers."""
    missed = [row(f"m{n}", f"2024-03-14 09:0{n - 1}:00", "NO ANSWER") for n in (1, 2)]
    store.write_batch(COLUMNS, missed, checkpoint=("csv:/x", "1"))


def test_a_batch_and_its_changes_commit_together_or_not_at_all(store: Writer) -> None:
    missed_before(store)
    before = stored(store.engine)

    def fails(_conn: Connection, _first_id: int) -> None:
        raise RuntimeError("killed in the middle of the batch")

    new = [row("a1", "2024-03-14 10:00:00")]
    batch: dict[str, Any] = {"checkpoint": ("csv:/x", "2"), "recovered": ["m1"], "cleared": ["m2"]}
    with pytest.raises(RuntimeError):
        store.write_batch(COLUMNS, new, after_rows=fails, **batch)
    assert stored(store.engine) == before  # no row, no mark, no checkpoint
    assert store.load_checkpoint("csv:/x") == "1"
    seen: list[int] = []
    new_rows = store.write_batch(
        COLUMNS, new, after_rows=lambda _, first: seen.append(first), **batch
    )
    assert new_rows == 1
    assert stored(store.engine) == {
        "m1": (1, "in no answer"),  # recovered
        "m2": (None, "in answered elsewhere"),  # a leg of an answered call: not missed
        "a1": (None, "in answered"),
    }
    assert seen == [3] and store.load_checkpoint("csv:/x") == "2"


def test_a_row_already_stored_is_not_stored_again(store: Writer) -> None:
    missed_before(store)
    again = [row("m1", "2024-03-14 09:00:00", "NO ANSWER"), row("a1", "2024-03-14 10:00:00")]
    assert store.write_batch(COLUMNS, again) == 1
    assert sorted(stored(store.engine)) == ["a1", "m1", "m2"]


def test_callbacks_recover_the_numbers_missed_calls_in_their_window(store: Writer) -> None:
    missed_before(store)
    store.write_batch(
        COLUMNS, [row("a1", "2024-03-14 10:00:00")],
        callbacks=[("0721000001", "2024-03-14 09:00:30", "2024-03-14 10:00:00")] * 2,
    )  # fmt: skip
    assert stored(store.engine)["m1"] == (0, "in no answer")  # before the window
    assert stored(store.engine)["m2"] == (1, "in no answer")


def test_legs_of_one_call_across_batches(store: Writer) -> None:
    """look_in_store: a leg stored earlier of a call a new leg answered is not missed,
    and a new unanswered leg of a call answered earlier neither."""
    store.write_batch(COLUMNS, [row("l1", "2024-03-14 09:00:00", "NO ANSWER", linkedid="c1"),
                                row("l2", "2024-03-14 09:00:00", linkedid="c2")])  # fmt: skip
    store.write_batch(
        COLUMNS,
        [row("l3", "2024-03-14 09:00:01", linkedid="c1"),
         row("l4", "2024-03-14 09:00:01", "NO ANSWER", linkedid="c2"),
         row("l5", "2024-03-14 09:00:01", "NO ANSWER", linkedid="c3")],
        look_in_store=True,
    )  # fmt: skip
    found = stored(store.engine)
    assert found["l1"] == found["l4"] == (None, "in answered elsewhere")
    assert found["l5"] == (0, "in no answer")  # a call of its own, still missed


def test_keys_since(store: Writer) -> None:
    missed_before(store)
    insert_calls(store.engine, [DEMO | {"time": "2024-03-14 09:30:00"}])  # no key
    with store.engine.connect() as conn:
        assert store.keys_since(conn, "2024-03-14 09:00:30") == ["m2"]
        assert sorted(store.keys_since(conn, "2024-03-14")) == ["m1", "m2"]


def test_stored_calls_read_in_time_order_and_rewritten(store: Writer) -> None:
    store.write_batch(COLUMNS, [row(f"k{n}", f"2024-03-14 09:00:0{9 - n}") for n in range(5)])
    insert_calls(store.engine, [DEMO | {"time": "2024-03-14 08:00:00"}])  # no key: not ingested
    chunks, after = [], None
    while chunk := store.ingested_calls(("id", "time", "source"), after, 2):
        chunks.append([r.source_key for r in chunk])
        after = (chunk[-1].time, chunk[-1].id)
    assert chunks == [["k4", "k3"], ["k2", "k1"], ["k0"]]
    first = store.ingested_calls(("id", "time"), None, 5)
    with pytest.raises(IntegrityError):  # one transaction: the bad row undoes the good one
        store.rewrite_derived(("direction", "project"), [(first[0].id, ("OUT", "Sales")),
                                                         (first[1].id, (None, "x"))])  # fmt: skip
    with store.engine.connect() as conn:
        assert set(conn.scalars(select(calls.c.direction))) == {"IN"}
    store.rewrite_derived(
        ("direction", "project"), [(first[0].id, ("OUT", "Sales"))], recovered=["k1"]
    )
    query = select(calls.c.source_key, calls.c.direction, calls.c.project, calls.c.source)
    with store.engine.connect() as conn:
        found = {key: rest for key, *rest in conn.execute(query) if key}
    assert found["k4"] == ["OUT", "Sales", "0721000001"]  # other columns kept
    assert found["k3"] == ["IN", None, "0721000001"]


def test_columns_null_in_every_row_are_stored_null(store: Writer) -> None:
    """A batch whose rows all leave a column NULL stores NULL there, and a column given in
    some rows only keeps each row's value (the SQLite insert leaves out the columns that
    are NULL both in every row and by default); a column that may not be NULL, given NULL
    in every row, is refused as before, never filled with its default."""
    columns = (*COLUMNS, "user_fullname", "qname", "recording_file")
    first = [(*row(f"n{n}", f"2024-03-14 10:0{n}:00"), None, None, None) for n in (1, 2)]
    second = [
        (*row("s1", "2024-03-14 11:00:00"), "Maria", None, None),
        (*row("s2", "2024-03-14 11:01:00"), None, "sales", None),
    ]
    store.write_batch(columns, first)
    store.write_batch(columns, second)
    query = select(
        calls.c.source_key, calls.c.user_fullname, calls.c.qname, calls.c.recording_file,
        calls.c.is_recovered, calls.c.source,
    ).order_by(calls.c.id)  # fmt: skip
    with store.engine.connect() as conn:
        found = [tuple(r) for r in conn.execute(query)]
    assert found == [
        ("n1", None, None, None, None, "0721000001"),
        ("n2", None, None, None, None, "0721000001"),
        ("s1", "Maria", None, None, None, "0721000001"),
        ("s2", None, "sales", None, None, "0721000001"),
    ]
    refused = [(*row(f"r{n}", f"2024-03-14 12:0{n}:00"), None) for n in (1, 2)]
    with pytest.raises(IntegrityError):
        store.write_batch((*COLUMNS, "caller_id"), refused)
    assert "r1" not in stored(store.engine)
    short = [*first[:1], first[1][:-1]]  # a row without its last value: refused, all of it
    with pytest.raises((ProgrammingError, ValueError)):
        store.write_batch(columns, [(f"w{n}", *r[1:]) for n, r in enumerate(short)])
    assert not {"w0", "w1"} & set(stored(store.engine))
