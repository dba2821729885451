""":class:`~cdrapi.ingest.recovery.Recovery` against the rules of its docstring, read the
slow way: every leg against every other, whatever the batches and the order of the legs.

The rules (for legs of one run, nothing stored before it):

- a leg *answers* its call (linkedid) when it is ``ANSWERED`` with a destination channel,
  or has no channels at all;
- an unanswered inbound leg (``is_recovered`` 0 as derived) of an answered call is no
  missed call: NULL, its ``call_codes`` "... answered elsewhere";
- any other unanswered inbound leg is missed: 1 when an answering leg not INTERNAL with
  its number (an IN leg from it, an OUT leg to it) starts after it, within the window;
  else 0.

A number with many missed legs and many answers in one window is what the generated
calls are made of (few numbers, times 15 minutes apart over 6 hours), so that legs
recovered once are met again.
"""

from __future__ import annotations

import copy
import datetime as dt
import itertools
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cdrapi.ingest.batch import Batch
from cdrapi.ingest.recovery import ELSEWHERE, Recovery
from cdrapi.ingest.row import (
    CALL_CODES,
    CHANNEL,
    DESTINATION,
    DIRECTION,
    DSTCHANNEL,
    KEY,
    LINKEDID,
    RECOVERED,
    ROW_FIELDS,
    SOURCE,
    STATUS,
    TIME,
)

_START = dt.datetime(2026, 3, 28, 22, 0, 0)
_NUMBERS = ["0711", "0722", "0733"]

_leg = st.fixed_dictionaries(
    {
        "minute": st.integers(0, 24).map(lambda step: step * 15),  # often the same time
        "call": st.integers(0, 60),
        "direction": st.sampled_from(["IN", "IN", "OUT", "INTERNAL"]),
        "status": st.sampled_from(["ANSWERED", "ANSWERED", "NO ANSWER", "BUSY"]),
        "number": st.sampled_from(_NUMBERS),
        "channels": st.sampled_from(["both", "both", "both", "no destination", "none"]),
    }
)


def _row(i: int, leg: dict[str, Any]) -> tuple[Any, ...]:
    values: list[Any] = [None] * len(ROW_FIELDS)
    when = _START + dt.timedelta(minutes=leg["minute"])
    direction, status = leg["direction"], leg["status"]
    values[KEY] = f"leg{i}"
    values[LINKEDID] = "" if leg["call"] == 0 else f"call{leg['call']}"
    values[TIME] = when.strftime("%Y-%m-%d %H:%M:%S")
    values[DIRECTION], values[STATUS] = direction, status
    values[SOURCE] = leg["number"] if direction == "IN" else "101"
    values[DESTINATION] = leg["number"] if direction == "OUT" else "102"
    values[CHANNEL] = "" if leg["channels"] == "none" else "PJSIP/trunk"
    values[DSTCHANNEL] = "PJSIP/102" if leg["channels"] == "both" else ""
    word = {"IN": "in", "OUT": "out", "INTERNAL": "int"}[direction]
    values[CALL_CODES] = f"{word} {status.lower()}"
    values[RECOVERED] = 0 if direction == "IN" and status != "ANSWERED" else None
    return tuple(values)


def _answers(row: tuple[Any, ...]) -> bool:
    return row[STATUS] == "ANSWERED" and bool(row[DSTCHANNEL] or not row[CHANNEL])


def _expected(rows: list[tuple[Any, ...]], window: int) -> dict[str, tuple[Any, Any]]:
    """key -> (is_recovered, call_codes), by the rules, leg against leg."""
    answered_calls = {row[LINKEDID] for row in rows if _answers(row) and row[LINKEDID]}
    expected = {}
    for leg in rows:
        recovered, codes = leg[RECOVERED], leg[CALL_CODES]
        if recovered == 0 and leg[LINKEDID] in answered_calls:
            recovered, codes = None, ELSEWHERE.get(codes, codes)
        elif recovered == 0 and window:
            start = dt.datetime.fromisoformat(leg[TIME])
            for other in rows:
                if not _answers(other) or other[DIRECTION] == "INTERNAL":
                    continue
                number = other[SOURCE] if other[DIRECTION] == "IN" else other[DESTINATION]
                later = dt.datetime.fromisoformat(other[TIME]) - start
                if number == leg[SOURCE] and dt.timedelta(0) < later <= dt.timedelta(hours=window):
                    recovered = 1
        expected[leg[KEY]] = (recovered, codes)
    return expected


@settings(max_examples=300, deadline=None)
@given(
    legs=st.lists(_leg, min_size=1, max_size=60),
    cuts=st.lists(st.integers(1, 60), max_size=5),
    window=st.sampled_from([0, 1, 2, 24]),
    split=st.booleans(),
)
def test_tracking_in_any_batches_gives_what_the_rules_say(
    legs: list[dict[str, Any]], cuts: list[int], window: int, split: bool
) -> None:
    """``split``: as a big import runs it, the numbers' step in the parsing process and
    the linkedids' step in the writer, each with its own copy of the state (a fork)."""
    rows = [_row(i, leg) for i, leg in enumerate(legs)]
    recovery = Recovery(window, in_store=False)
    writer = copy.deepcopy(recovery)
    recovery.calls_in_writer = writer.calls_in_writer = split
    stored: dict[str, tuple[Any, Any]] = {}
    edges = sorted({0, len(rows), *(cut for cut in cuts if cut < len(rows))})
    for lo, hi in itertools.pairwise(edges):
        batch = rows[lo:hi]
        cleared: list[str] = []
        if split:
            made = Batch(rows=batch)
            recovery.track_batch(made)
            writer.group_batch(made)
            earlier, cleared = made.recovered, made.cleared
        else:
            earlier = recovery.track(batch, None, cleared)
        # the batch's statements, in commit's order: recovered (0 -> 1), then cleared
        for key in earlier:
            if stored[key][0] == 0:
                stored[key] = (1, stored[key][1])
        for key in cleared:
            codes = stored[key][1]
            stored[key] = (None, ELSEWHERE.get(codes, codes))
        stored.update({row[KEY]: (row[RECOVERED], row[CALL_CODES]) for row in batch})
    assert stored == _expected(rows, window)


def test_legs_recovered_by_one_answer_and_those_left_for_the_next() -> None:
    """Missed at 22:00 and 22:30, answered at 22:15 then 22:45 (legs in that order, one
    batch, then in batches of one): the first answer recovers 22:00 only, the second
    22:30; and a number's legs recovered once are not found again."""

    def leg(minute: int, status: str, call: int) -> dict[str, Any]:
        return {
            "minute": minute, "call": call, "direction": "IN", "status": status,
            "number": "0711", "channels": "both",
        }  # fmt: skip

    legs = [
        leg(0, "NO ANSWER", 1), leg(30, "NO ANSWER", 2), leg(15, "ANSWERED", 3),
        leg(45, "ANSWERED", 4), leg(50, "ANSWERED", 5),
    ]  # fmt: skip
    for size in (len(legs), 1):
        rows = [_row(i, one) for i, one in enumerate(legs)]
        recovery, stored = Recovery(1, in_store=False), {}
        for lo in range(0, len(rows), size):
            batch = rows[lo : lo + size]
            earlier = recovery.track(batch, None, [])
            for key in earlier:
                stored[key] = (1, stored[key][1])
            stored.update({row[KEY]: (row[RECOVERED], row[CALL_CODES]) for row in batch})
        assert stored == _expected(rows, 1)
        assert stored["leg0"][0] == stored["leg1"][0] == 1
