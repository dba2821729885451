"""The dashboard's figures (store/dashboard.py) on SQLite and PostgreSQL, each compared
with the same figure computed here in Python from the stored rows: calls grouped by
linkedid (a leg without one alone), the first leg's time, direction and status, answered
when any chosen leg is; per hour or day, by direction and status; answer rate; average
and 90th percentile wait (queued calls) and talk (answered calls); weekday x hour; per
queue; per user (answered legs); missed calls not called back, once per call."""

from __future__ import annotations

import datetime as dt
import math
import random
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine

from cdrapi.protocol.filters import CallFilters, ScopedCallFilters, narrow, parse_filters
from cdrapi.store.dashboard import MISSED_SHOWN, Dashboard, DashboardReader
from cdrapi.store.engine import connect
from tests.data import load, oracle

NOW = dt.datetime(2024, 5, 8, 12, 0, 0)
QUEUES = [None, "", "support", "sales"]
USERS = [(None, None), (10, "Ana Pop"), (11, "Ion Ionescu"), (12, "Maria Dan")]


def legs(count: int = 700, seed: int = 5) -> list[dict[str, Any]]:
    """``count`` calls of one to four legs over a week, at every hour; legs of one call
    often share a second (ties broken by id) and are stored out of order; some legs have
    no linkedid; missed calls carry is_recovered 0 or 1 on their legs."""
    rng = random.Random(seed)
    rows = []
    for n in range(count):
        start = dt.datetime(2024, 5, 1) + dt.timedelta(seconds=rng.randrange(6 * 86400))
        linkedid = "" if n % 13 == 0 else f"call-{n}"
        parts = 1 if not linkedid else rng.choice([1, 1, 1, 2, 3, 4])
        direction = rng.choice(["IN", "IN", "OUT", "INTERNAL"])
        queue = rng.choice(QUEUES)
        answered_somewhere = rng.random() < 0.65
        answering = rng.randrange(parts) if answered_somewhere else -1
        recovered = rng.choice([0, 0, 1])
        for part in range(parts):
            at = start + dt.timedelta(seconds=rng.choice([0, 0, 3, 20]) * part)
            status = (
                "ANSWERED"
                if part == answering
                else rng.choice(["NO ANSWER", "NO ANSWER", "BUSY", "FAILED", "CONGESTION"])
            )
            if part and rng.random() < 0.2:
                status = "ANSWERED"  # a transfer: answered twice
            user_id, user = rng.choice(USERS)
            missed = not answered_somewhere and direction == "IN"
            rows.append({
                "uniqueid": f"u{n}.{part}", "linkedid": linkedid,
                "time": at.strftime("%Y-%m-%d %H:%M:%S"), "time_end": None,
                "caller_id": "", "source": f"0721{n % 50:06d}", "destination": "100",
                "direction": direction if part == 0 else rng.choice([direction, "INTERNAL"]),
                "call_status": status, "qname": queue if part == 0 or rng.random() < 0.5 else None,
                "hold_time": rng.choice([0, 5, 19, 20, 21, 45, 130]) if queue else 0,
                "billsec": rng.randrange(1, 400) if status == "ANSWERED" else 0,
                "duration": 400, "ring_time": 3, "user_id": user_id, "user_fullname": user,
                "project_id": rng.choice([1, 2]),
                "is_recovered": (recovered if part == 0 or rng.random() < 0.8 else 0)
                if missed else None,
            })  # fmt: skip
    rng.shuffle(rows)
    return rows


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = connect(db_url)
    yield engine
    engine.dispose()


def p90(values: list[int]) -> int | None:
    """The nearest-rank 90th percentile, from the sorted values themselves."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[math.ceil(len(ordered) * 9 / 10) - 1]


def expected(chosen: list[dict[str, Any]], unit: str, days: list[str]) -> dict[str, Any]:
    """Every figure of the dashboard, from the chosen legs, in Python."""
    by_call: dict[Any, list[dict[str, Any]]] = {}
    for row in chosen:
        by_call.setdefault(row["linkedid"] or ("alone", row["id"]), []).append(row)
    calls = []
    for its in by_call.values():
        its.sort(key=lambda leg: (leg["time"], leg["id"]))
        first = its[0]
        answered = any(leg["call_status"] == "ANSWERED" for leg in its)
        calls.append({
            "time": first["time"], "direction": first["direction"],
            "status": "ANSWERED" if answered else first["call_status"], "answered": answered,
            "wait": max(leg["hold_time"] for leg in its),
            "talk": sum(leg["billsec"] for leg in its),
            "queue": max((leg["qname"] or "") for leg in its),
        })  # fmt: skip
    size = 13 if unit == "hour" else 10
    if unit == "hour":
        buckets = [f"{day} {hour:02d}" for day in days for hour in range(24)]
    else:
        buckets = list(days)
    per_direction = Counter((call["time"][:size], call["direction"]) for call in calls)
    per_status = Counter((call["time"][:size], call["status"]) for call in calls)
    heat = [[0] * 24 for _ in range(7)]
    for call in calls:
        when = dt.datetime.strptime(call["time"], "%Y-%m-%d %H:%M:%S")
        heat[when.weekday()][when.hour] += 1
    queued = [call for call in calls if call["queue"]]
    answered = [call for call in calls if call["answered"]]
    queues = {}
    for name in sorted({call["queue"] for call in queued}):
        offered = [call for call in queued if call["queue"] == name]
        took = [call for call in offered if call["answered"]]
        within = [call for call in took if call["wait"] <= 20]
        queues[name] = (len(offered), len(took), len(offered) - len(took), len(within))
    users: dict[tuple[Any, str], list[int]] = {}
    for row in chosen:
        if row["call_status"] == "ANSWERED" and row["user_fullname"]:
            found = users.setdefault((row["user_id"], row["user_fullname"]), [0, 0])
            found[0] += 1
            found[1] += row["billsec"]
    missed = []
    for key, its in by_call.items():
        marks = [leg["is_recovered"] for leg in its if leg["is_recovered"] is not None]
        if marks and max(marks) == 0:
            first = min(leg["time"] for leg in its)
            waited = NOW - dt.datetime.strptime(first, "%Y-%m-%d %H:%M:%S")
            name = key if isinstance(key, str) else its[0]["uniqueid"]
            missed.append((first, name, int(waited.total_seconds())))
    missed.sort(reverse=True)
    return {
        "calls": len(calls),
        "answered": len(answered),
        "buckets": buckets,
        "by_direction": {
            d: [per_direction[b, d] for b in buckets] for d in ("IN", "OUT", "INTERNAL")
        },
        "by_status": {
            s: [per_status[b, s] for b in buckets]
            for s in ("ANSWERED", "NO ANSWER", "BUSY", "FAILED", "CONGESTION")
        },
        "heat": heat,
        "wait_average": sum(c["wait"] for c in queued) / len(queued) if queued else None,
        "wait_p90": p90([c["wait"] for c in queued]),
        "talk_average": sum(c["talk"] for c in answered) / len(answered) if answered else None,
        "talk_p90": p90([c["talk"] for c in answered]),
        "queues": queues,
        "users": {key: tuple(value) for key, value in users.items()},
        "missed": len(missed),
        "missed_calls": missed[:MISSED_SHOWN],
    }


def shown(board: Dashboard) -> dict[str, Any]:
    """The store's figures in the layout of :func:`expected`."""
    return {
        "calls": board.calls,
        "answered": board.answered,
        "buckets": board.buckets,
        "by_direction": board.by_direction,
        "by_status": board.by_status,
        "heat": board.heat,
        "wait_average": board.wait_average,
        "wait_p90": board.wait_p90,
        "talk_average": board.talk_average,
        "talk_p90": board.talk_p90,
        "queues": {q.name: (q.offered, q.answered, q.abandoned, q.within) for q in board.queues},
        "users": {(u.user_id, u.name): (u.answered, u.talk) for u in board.users},
        "missed": board.missed,
        "missed_calls": [(m.time, m.key, m.waited) for m in board.missed_calls],
    }


def check(board: Dashboard, want: dict[str, Any]) -> None:
    got = shown(board)
    for name in ("wait_average", "talk_average"):
        assert got.pop(name) == pytest.approx(want.pop(name)), name
    for name, value in want.items():
        assert got[name] == value, name


def days(first: str, last: str) -> list[str]:
    start, end = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
    return [str(start + dt.timedelta(days=n)) for n in range((end - start).days + 1)]


@pytest.mark.parametrize(
    "filters",
    [
        {"date_between": ["2024-04-30", "2024-05-09"]},  # quiet days at both ends: zeros
        {"date_between": ["2024-05-02", "2024-05-03"]},  # two days: per hour
        {"date_between": ["2024-05-01", "2024-05-07"], "direction": "IN"},
        {"date_between": ["2024-05-01", "2024-05-07"], "call_status": ["NO ANSWER", "BUSY"]},
        {"date_between": ["2024-05-01", "2024-05-07"], "hour_between": ["09:00", "17:00"]},
    ],
)
def test_every_figure_equals_python_over_the_stored_rows(
    engine: Engine, filters: dict[str, Any]
) -> None:
    stored = load(engine, legs())
    board = DashboardReader(engine).figures(parse_filters(filters, CallFilters), NOW)
    chosen = [row for row in stored if oracle(row, filters)]
    unit = "hour" if filters["date_between"][0] == "2024-05-02" else "day"
    assert board.unit == unit
    want = expected(chosen, unit, days(*filters["date_between"]))
    check(board, want)
    assert board.calls > 50 and board.missed > 5 and len(board.queues) == 2  # a real test
    rate = board.answer_rate
    assert rate is not None and rate == pytest.approx(want["answered"] / want["calls"])
    for queue in board.queues:
        assert queue.service_level == pytest.approx(queue.within / queue.offered)


def test_a_scope_is_one_more_filter(engine: Engine) -> None:
    stored = load(engine, legs(300, seed=9))
    filters = narrow(ScopedCallFilters(), project_scope=[2])
    board = DashboardReader(engine).figures(filters, NOW)
    chosen = [row for row in stored if row["project_id"] == 2]
    first = min(row["time"] for row in chosen)[:10]
    last = max(row["time"] for row in chosen)[:10]
    check(board, expected(chosen, "day", days(first, last)))  # open ends: the calls' days
    everything = DashboardReader(engine).figures(CallFilters(), NOW)
    assert 0 < board.calls < everything.calls


def test_the_missed_list_is_the_most_recent_and_counts_every_call(engine: Engine) -> None:
    rows = [
        {
            "uniqueid": f"m{n}", "linkedid": f"missed-{n}" if n % 4 else "",
            "time": f"2024-05-0{1 + n % 7} {n % 24:02d}:{n % 60:02d}:00", "direction": "IN",
            "call_status": "NO ANSWER", "source": f"07{n:08d}", "destination": "100",
            "is_recovered": 0, "hold_time": 0, "billsec": 0, "qname": None,
            "user_id": None, "user_fullname": None,
        }
        for n in range(MISSED_SHOWN + 40)
    ]  # fmt: skip
    rows.append({**rows[1], "uniqueid": "m1-b", "is_recovered": 1})  # called back: not listed
    stored = load(engine, rows)
    board = DashboardReader(engine).figures(CallFilters(), NOW)
    assert board.missed == MISSED_SHOWN + 39
    assert len(board.missed_calls) == MISSED_SHOWN
    want = expected(stored, "day", days("2024-05-01", "2024-05-07"))["missed_calls"]
    assert [(m.time, m.key, m.waited) for m in board.missed_calls] == want
    assert "missed-1" not in {m.key for m in board.missed_calls}
    alone = [m for m in board.missed_calls if not m.key.startswith("missed-")]
    assert alone and all(m.key.startswith("m") and m.legs == 1 for m in alone)


def test_an_empty_store_has_no_figures(engine: Engine) -> None:
    board = DashboardReader(engine).figures(CallFilters(), NOW)
    assert (board.calls, board.buckets, board.answer_rate, board.wait_p90) == (0, [], None, None)
    assert board.queues == [] and board.users == [] and board.missed_calls == []
