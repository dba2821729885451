"""Annotations in the store (:mod:`cdrapi.store.annotations`), on SQLite and PostgreSQL:
the fields set on every record of a call, one audit row per field written (who, when, old
and new value), nothing written when nothing matches or too much does, a scope that hides
a call, the table created on every store open, and the rule that an annotation wins:
deriving a call again (``rewrite_derived``, ``rederive``) and ingesting the same CDR again
with ``--from-start`` never overwrite it."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, delete, event, inspect, select, text, update

from cdrapi.ingest import IngestRun, ingest_csv, rederive
from cdrapi.protocol.filters import ScopedCallFilters, narrow
from cdrapi.protocol.records import RECORD_COLUMNS
from cdrapi.store.annotations import (
    MAX_RECORDS,
    InvalidValue,
    annotate,
    audit_trail,
    check_value,
)
from cdrapi.store.calls import rewrite_derived
from cdrapi.store.engine import connect, read_version
from cdrapi.store.schema import calls
from cdrapi.store.transaction import writing
from tests.data import load, sample_rows
from tests.ingest.conftest import append, cdr_line

ANNOTATED = ("customer_id", "external_id", "external_info", "comments")


@pytest.fixture
def store(db_url: str) -> Engine:
    return connect(db_url)


def values(engine: Engine, ids: list[int], *columns: str) -> list[tuple[Any, ...]]:
    query = select(*(calls.c[c] for c in columns)).where(calls.c.id.in_(ids)).order_by(calls.c.id)
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(query)]


def test_annotate_sets_every_record_of_a_linkedid_and_audits_each_field(store: Engine) -> None:
    rows = load(store, sample_rows(12))  # linkedid 1704067200.3 groups calls 3, 4 and 5
    legs = [row["id"] for row in rows if row["linkedid"] == "1704067200.3"]
    assert len(legs) == 3
    others = [row["id"] for row in rows if row["id"] not in legs]
    before = values(store, others, *ANNOTATED)

    done = annotate(store, "linkedid", "1704067200.3",
                    {"customer_id": "C-1001", "comments": "Called back\nall good"},
                    "api_token #1")  # fmt: skip
    assert done.matched == 3 and done.changed == 6
    assert [row[0] for row in done.rows] == legs
    index = {column: RECORD_COLUMNS.index(column) for column in ANNOTATED}
    for row in done.rows:  # the records as /api/cdr now serves them
        assert row[index["customer_id"]] == "C-1001"
        assert row[index["comments"]] == "Called back\nall good"
    assert (
        values(store, legs, "customer_id", "comments") == [("C-1001", "Called back\nall good")] * 3
    )
    assert values(store, others, *ANNOTATED) == before  # no other call touched

    # Again, by uniqueid: one record; the old values are the first annotation's.
    again = annotate(store, "uniqueid", rows[legs[0] - rows[0]["id"]]["uniqueid"],
                     {"customer_id": "C-2002", "comments": ""}, "[[tokens]] #2")  # fmt: skip
    assert again.matched == 1 and again.changed == 2
    assert values(store, legs, "customer_id", "comments") == [
        ("C-2002", None),  # "" clears
        ("C-1001", "Called back\nall good"),
        ("C-1001", "Called back\nall good"),
    ]
    trail = audit_trail(store, legs)
    assert [(e["call_id"], e["field"], e["old_value"], e["new_value"], e["annotated_by"])
            for e in trail] == [
        (legs[0], "customer_id", None, "C-1001", "api_token #1"),
        (legs[0], "comments", None, "Called back\nall good", "api_token #1"),
        (legs[1], "customer_id", None, "C-1001", "api_token #1"),
        (legs[1], "comments", None, "Called back\nall good", "api_token #1"),
        (legs[2], "customer_id", None, "C-1001", "api_token #1"),
        (legs[2], "comments", None, "Called back\nall good", "api_token #1"),
        (legs[0], "customer_id", "C-1001", "C-2002", "[[tokens]] #2"),
        (legs[0], "comments", "Called back\nall good", None, "[[tokens]] #2"),
    ]  # fmt: skip
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", e["annotated_at"]) for e in trail)


def test_annotate_by_id_bumps_the_version_so_cached_pages_are_dropped(store: Engine) -> None:
    rows = load(store, sample_rows(3))
    with store.connect() as conn:
        version = read_version(conn)
    done = annotate(store, "id", rows[1]["id"], {"external_id": "crm-9"}, "api_token #1")
    assert done.matched == 1
    with store.connect() as conn:
        assert read_version(conn) > version  # external_id is a filter: counts change
    assert values(store, [rows[1]["id"]], "external_id") == [("crm-9",)]


def test_nothing_matched_or_out_of_scope_writes_nothing(store: Engine) -> None:
    rows = load(store, sample_rows(12))
    assert annotate(store, "uniqueid", "no-such-call", {"comments": "x"}, "a").matched == 0
    assert annotate(store, "id", 10**12, {"comments": "x"}, "a").matched == 0
    target = next(row for row in rows if row["project_id"] == 1)
    other_project = narrow(ScopedCallFilters(), project_scope=[2])
    hidden = annotate(store, "id", target["id"], {"comments": "x"}, "a", other_project)
    assert hidden.matched == 0
    own_project = narrow(ScopedCallFilters(), project_scope=[1])
    assert annotate(store, "id", target["id"], {"comments": "y"}, "a", own_project).matched == 1
    assert values(store, [target["id"]], "comments") == [("y",)]
    assert [e["new_value"] for e in audit_trail(store, [row["id"] for row in rows])] == ["y"]


def test_a_call_not_there_is_answered_while_another_writer_holds_the_store(
    store: Engine, db_url: str
) -> None:
    """No write lock is taken for a call that is not there: a long write elsewhere (an
    import's transaction) neither delays it nor makes it fail with "database is locked"."""
    rows = load(store, sample_rows(6))
    importer = connect(db_url)
    with ThreadPoolExecutor(1) as pool, writing(importer, "a long import") as conn:
        conn.execute(update(calls).where(calls.c.id == rows[0]["id"]).values(comments="busy"))
        missing = pool.submit(annotate, store, "uniqueid", "no-such-call", {"comments": "x"}, "a")
        hidden = pool.submit(annotate, store, "id", rows[1]["id"], {"comments": "x"}, "a",
                             narrow(ScopedCallFilters(), project_scope=[99]))  # fmt: skip
        # SQLite would wait for its busy timeout (10 s) and fail; PostgreSQL, until this ends.
        assert missing.result(timeout=5).matched == 0
        assert hidden.result(timeout=5).matched == 0
    assert audit_trail(store, [row["id"] for row in rows]) == []
    importer.dispose()


def _after_the_read(store: Engine, db_url: str, change: Any, *annotation: Any) -> Any:
    """``annotate(store, *annotation)`` with ``change`` (statements on a connection)
    committed by another writer after the annotation's read found the records, while its
    write waits for the lock: the write must find them again."""
    writes = threading.Event()

    def first_write(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "pg_advisory_xact_lock" in statement or statement.startswith("UPDATE meta"):
            writes.set()  # annotate's read is done; its write waits for ours

    event.listen(store, "before_cursor_execute", first_write)
    other = connect(db_url)
    try:
        with ThreadPoolExecutor(1) as pool:
            with writing(other, "another writer") as conn:
                change(conn)  # not yet visible to annotate's read
                done = pool.submit(annotate, store, *annotation)
                assert writes.wait(10)
            return done.result(timeout=20)
    finally:
        event.remove(store, "before_cursor_execute", first_write)
        other.dispose()


def test_a_call_changed_or_deleted_between_the_read_and_the_write(
    store: Engine, db_url: str
) -> None:
    rows = load(store, sample_rows(12))
    legs = [row["id"] for row in rows if row["linkedid"] == "1704067200.3"]
    moved = next(row["id"] for row in rows if row["linkedid"] == "1704067200.6")

    def change(conn: Any) -> None:  # a leg commented, one deleted, one joining the call
        conn.execute(update(calls).where(calls.c.id == legs[0]).values(comments="meanwhile"))
        conn.execute(delete(calls).where(calls.c.id == legs[2]))
        conn.execute(update(calls).where(calls.c.id == moved).values(linkedid="1704067200.3"))

    done = _after_the_read(
        store, db_url, change, "linkedid", "1704067200.3", {"comments": "x"}, "a"
    )
    now = sorted([legs[0], legs[1], moved])
    assert done.matched == 3 and [row[0] for row in done.rows] == now
    assert values(store, now, "comments") == [("x",)] * 3
    trail = audit_trail(store, [*legs, moved])
    assert sorted((e["call_id"], e["old_value"]) for e in trail) == sorted(
        [(legs[0], "meanwhile"), (legs[1], None), (moved, None)]
    )  # the old values as they were when the write ran; the deleted leg not there

    def gone(conn: Any) -> None:
        conn.execute(delete(calls).where(calls.c.linkedid == "1704067200.9"))

    ids = [row["id"] for row in rows if row["linkedid"] == "1704067200.9"]
    done = _after_the_read(store, db_url, gone, "linkedid", "1704067200.9", {"comments": "x"}, "a")
    assert done.matched == 0 and done.rows == []
    assert audit_trail(store, ids) == []  # nothing written for a call deleted meanwhile


def test_more_than_a_page_of_records_is_refused_whole(store: Engine) -> None:
    legs = [{**row, "linkedid": "1704067200.0"} for row in sample_rows(MAX_RECORDS + 1)]
    rows = load(store, legs)
    done = annotate(store, "linkedid", "1704067200.0", {"comments": "x"}, "a")
    assert done.matched == MAX_RECORDS + 1 and done.rows == []
    ids = [row["id"] for row in rows]
    assert {value for (value,) in values(store, ids, "comments")} == {None}
    assert audit_trail(store, ids) == []


def test_values_are_checked_against_the_columns() -> None:
    assert check_value("customer_id", "C" * 80) == "C" * 80
    assert check_value("comments", "") is None
    assert check_value("comments", "line 1\r\nline 2\tend") == "line 1\r\nline 2\tend"
    assert check_value("external_info", "ünïcödé ✓ 😀") == "ünïcödé ✓ 😀"
    for name, value, reason in [
        ("customer_id", "C" * 81, "longer than 80 characters (81)"),
        ("external_id", "x" * 151, "longer than 150 characters (151)"),
        ("external_info", "x" * 2001, "longer than 2000 characters (2001)"),
        ("comments", "x" * 4001, "longer than 4000 characters (4001)"),
        ("customer_id", "C\n1", "control character U+000A at position 2"),
        ("comments", "a\x00b", "control character U+0000 at position 2"),
        ("comments", "\x1b[31mred", "control character U+001B at position 1"),
        ("external_info", "x\u2028y", "control character U+2028 at position 2"),
        ("external_id", "x\x85", "control character U+0085 at position 2"),
    ]:
        with pytest.raises(InvalidValue) as caught:
            check_value(name, value)
        assert str(caught.value) == reason


def test_rewriting_derived_fields_never_overwrites_an_annotation(store: Engine) -> None:
    rows = load(store, sample_rows(3))
    annotated, cleared, plain = (row["id"] for row in rows)
    annotate(store, "id", annotated, {"customer_id": "C-1", "external_info": "CRM note"}, "a")
    annotate(store, "id", cleared, {"comments": ""}, "a")  # cleared on purpose: still theirs
    derived = ["from-dialplan", "dialplan info", "dialplan comment", "queue"]
    columns = ["customer_id", "external_info", "comments", "code"]
    with writing(store) as conn:
        rewrite_derived(conn, columns, [(id_, derived) for id_ in (annotated, cleared, plain)])
    assert values(store, [annotated, cleared, plain], *columns) == [
        ("C-1", "CRM note", "dialplan comment", "queue"),  # only the annotated fields kept
        ("from-dialplan", "dialplan info", None, "queue"),
        ("from-dialplan", "dialplan info", "dialplan comment", "queue"),
    ]


def test_rederive_and_ingesting_again_from_the_start_keep_annotations(
    store: Engine, tmp_path: Path
) -> None:
    master = tmp_path / "Master.csv"
    append(master, cdr_line(1), cdr_line(2, status="NO ANSWER", minute=5))
    ingest_csv(store, [master])
    with store.connect() as conn:
        ids = list(conn.execute(select(calls.c.id).order_by(calls.c.id)).scalars())
    done = annotate(store, "uniqueid", "1710000000.1",
                    {"customer_id": "C-7", "external_id": "ticket-7", "comments": "VIP"},
                    "api_token #1")  # fmt: skip
    assert done.matched == 1
    expected = [("C-7", "ticket-7", None, "VIP"), (None, None, None, None)]
    assert values(store, ids, *ANNOTATED) == expected

    summary = ingest_csv(store, [master], IngestRun(from_start=True))
    assert (summary.stored, summary.duplicates) == (0, 2)  # the same CDRs: not stored again
    assert values(store, ids, *ANNOTATED) == expected
    assert rederive(store).updated == 2
    assert values(store, ids, *ANNOTATED) == expected
    with store.connect() as conn:
        assert conn.execute(select(calls.c.id).order_by(calls.c.id)).scalars().all() == ids


def test_the_table_is_created_when_a_store_is_opened(db_url: str) -> None:
    """In a fresh process that imports nothing but the engine, on a store made before the
    table existed: opening it creates the table, as every store table is."""
    engine = connect(db_url)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE call_annotations"))
    assert "call_annotations" not in inspect(engine).get_table_names()
    engine.dispose()
    script = "import sys; from cdrapi.store.engine import connect; connect(sys.argv[1])"
    subprocess.run([sys.executable, "-c", script, db_url], check=True, timeout=60)
    engine = connect(db_url)
    assert "call_annotations" in inspect(engine).get_table_names()
    indexes = {index["name"] for index in inspect(engine).get_indexes("call_annotations")}
    assert "ix_call_annotations_call_field" in indexes
