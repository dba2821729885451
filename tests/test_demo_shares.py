"""The demo made by several processes: each derives its share of the calls, and the
records are the same, byte for byte, as one process makes them."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from typing import Any

from cdrapi.demo import _stream
from cdrapi.demo.days import in_order
from cdrapi.demo.records import made, records
from cdrapi.demo.shape import SHARE_CALLS

END = dt.date(2024, 3, 31)
DATES = [END - dt.timedelta(days=3 - i) for i in range(4)]

#: sha256 over the repr of each record of ``records(5, 3000, DATES)``, as the demo made
#: them before it was split between processes (commit 151dadc): the speed work keeps
#: every record. A deliberate change of the records (the demo's or ingestion's
#: derivation) changes it: print digest(records(5, 3000, DATES)) and say why.
PINNED = "4dedc6a345057dde25dbbacff23a1be16b9da7b6237eeeab2ac7feb923643a53"


def digest(rows: Iterable[tuple[Any, ...]]) -> str:
    found = hashlib.sha256()
    for row in rows:
        found.update(repr(row).encode())
    return found.hexdigest()


def test_a_seeded_demo_makes_the_records_it_made_before() -> None:
    assert digest(records(5, 3000, DATES)) == PINNED


def test_any_number_of_shares_makes_the_same_records() -> None:
    """Also with chunks that go on past a day's end (fewer calls a day than a chunk)."""
    long = [END - dt.timedelta(days=39 - i) for i in range(40)]
    for calls, dates in ((3000, DATES), (1500, long)):
        alone = list(records(5, calls, dates))
        for shares in (2, 3):
            parts = [made(5, calls, dates, None, s, shares) for s in range(shares)]
            assert list(in_order(parts)) == alone, (calls, shares)
    assert digest(_stream(5, 3000, DATES, True)) == PINNED  # two producer processes


def test_each_share_derives_only_its_chunks_of_calls() -> None:
    """Share ``s`` of 2 derives every other chunk of SHARE_CALLS calls: the shares' rows
    are disjoint, together all of them, and about half each."""
    parts = [list(made(5, 3000, DATES, None, s, 2)) for s in range(2)]
    rows = [[row for item in part if isinstance(item, list) for row in item] for part in parts]
    keys = [{row[0] for row in share} for share in rows]
    assert not keys[0] & keys[1]
    assert len(keys[0]) + len(keys[1]) == 3000
    assert all(1300 < len(share) < 1700 for share in keys)
    chunks = [[item for item in part if isinstance(item, list)] for part in parts]
    calls = [len({row[2] for row in chunk}) for chunk in chunks[0]]  # linkedids
    assert max(calls) <= SHARE_CALLS and len(chunks[0]) > 4
    # each share tells the end of every day, the same
    assert [i for i in parts[0] if isinstance(i, str)] == [
        i for i in parts[1] if isinstance(i, str)
    ]


def test_the_shares_get_as_many_calls_whatever_the_calls_a_day() -> None:
    """Chunks go on past a day's end: with 1.4 chunks of calls a day, the first share
    does not get each day's full chunk while the second gets the rest."""
    dates = [END - dt.timedelta(days=13 - i) for i in range(14)]
    calls = 14 * SHARE_CALLS * 7 // 5
    made_by = [
        sum(len(item) for item in made(5, calls, dates, None, s, 2) if isinstance(item, list))
        for s in range(2)
    ]
    assert sum(made_by) == calls and min(made_by) > 0.45 * calls
