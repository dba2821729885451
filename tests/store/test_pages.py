"""Pages: keyset continuation equals OFFSET paging, in any request order, and cached
counts and boundaries never outlive a write."""

from __future__ import annotations

import random

from sqlalchemy import select

from cdrapi.protocol.filters import CallFilters
from cdrapi.store.engine import bump_version, connect
from cdrapi.store.pages import CallPages
from cdrapi.store.schema import calls
from tests.data import load, sample_rows


def test_pages_equal_offset_paging_in_any_order(db_url: str) -> None:
    engine = connect(db_url)
    load(engine, sample_rows(1050))
    pages = CallPages(engine)
    filters = CallFilters(direction=("IN", "OUT"))
    with engine.connect() as conn:
        ids = [
            row.id
            for row in conn.execute(
                select(calls.c.id).where(calls.c.direction.in_(["IN", "OUT"])).order_by(calls.c.id)
            )
        ]
    order = list(range(1, len(ids) // 100 + 3))
    random.Random(2).shuffle(order)
    for page in [1, 2, 3, *order, *order]:
        got = pages.fetch(filters, page)
        assert got.row_count == len(ids)
        assert [row[0] for row in got.rows] == ids[(page - 1) * 100 : page * 100]


def test_a_write_invalidates_counts_and_boundaries(db_url: str) -> None:
    engine = connect(db_url)
    rows = load(engine, sample_rows(250))
    pages = CallPages(engine)
    everything = CallFilters()
    assert [r[0] for r in pages.fetch(everything, 1).rows][-1] == rows[99]["id"]
    assert pages.fetch(everything, 2).row_count == 250
    # Delete from the front: every page boundary moves.
    with engine.begin() as conn:
        conn.execute(calls.delete().where(calls.c.id <= rows[9]["id"]))
        bump_version(conn)
    second = pages.fetch(everything, 2)
    assert second.row_count == 240
    assert [r[0] for r in second.rows] == [row["id"] for row in rows[110:210]]
    third = pages.fetch(everything, 3)
    assert [r[0] for r in third.rows] == [row["id"] for row in rows[210:]]
