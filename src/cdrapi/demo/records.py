"""The demo's records, made day by day from a run's tables.

:func:`records` yields them in time order as tuples of :data:`DEMO_COLUMNS`; each kind of
event (:func:`_outbound`, :func:`_internal`, :func:`_reception`, :func:`_queued`)
makes its legs' records with the day's ``emit`` (:func:`_recorder`).
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Iterator
from itertools import count
from operator import itemgetter
from random import Random
from typing import Any

from cdrapi.demo.shape import (
    CALL_CODES,
    CODES,
    COMMENTS,
    DIRECTIONS,
    HOLIDAYS,
    INFO,
    LEGS,
    RECORDING_URL,
    STATUSES,
    TEXTS,
    Tables,
    draw_tables,
)
from cdrapi.store.calls import STORED_COLUMNS

__all__ = ["DEMO_COLUMNS", "Row", "records"]

Row = tuple[Any, ...]

# Legs (records) by what they are: 0 customer to reception, 1 outbound, 2 internal,
# 3 customer through a queue, 4 customer after a transfer.
CONTEXTS = ("from-pstn", "from-internal", "from-internal", "ext-queues", "from-internal-xfer")
APPS = ("Dial", "Dial", "Dial", "Queue", "Dial")
# The columns the demo fills (the others stay NULL), in the order of its tuples.
DEMO_COLUMNS = tuple(
    c for c in STORED_COLUMNS if c not in ("source_key", "userfield", "peeraccount")
)
_TIME, _RECOVERED = itemgetter(DEMO_COLUMNS.index("time")), DEMO_COLUMNS.index("is_recovered")


Missed = tuple[int, str, int]  # (row index in its day, number, start) of a missed call
#: Appends one record to its day and returns its uniqueid (see :func:`_recorder`).
Emit = Callable[..., str]


def records(seed: int, calls: int, dates: list[dt.date]) -> Iterator[Row]:
    """Yield ``calls`` records over ``dates`` in time order, as tuples of ``DEMO_COLUMNS``.

    The steps: the run's tables (:func:`~cdrapi.demo.shape.draw_tables`), then day by
    day the day's events (:func:`_day`, each making its legs' records with the day's
    :func:`_recorder`); a day's records are handed out once the next day is made
    (:func:`_complete`): whether its missed calls were recovered depends on the next 24
    hours, and its legs that started after midnight belong to the next day.
    """
    rnd = Random(seed)
    tables = draw_tables(rnd, calls, dates)
    seqs, chans = count(101), count(17)
    pending: deque[int] = deque()  # customers who will call back or be called back
    previous: tuple[list[Row], list[Missed], dict[str, list[int]]] | None = None
    for d in range(len(dates) + 1):
        out: list[Row] = []  # this day's records, in the order they were made
        answered: dict[str, list[int]] = {}  # number -> start times of its answered calls
        missed: list[Missed] = []
        if d < len(dates):
            emit = _recorder(tables, rnd, d, out, answered, seqs, chans)
            missed = _day(tables, rnd, d, dates[d], emit, out, pending)
        if previous is not None:  # the previous day is complete now that this one exists
            rows, lost, done = previous
            later = _complete(rows, lost, done, answered, tables.prefix[d])
            out.extend(later)  # legs that started after midnight
            yield from rows
        previous = (out, missed, answered)
    yield from out


def _complete(
    rows: list[Row],
    lost: list[Missed],
    done: dict[str, list[int]],
    answered: dict[str, list[int]],
    midnight: str,
) -> list[Row]:
    """Complete a day's ``rows`` now that the next day is made: mark its ``lost`` calls
    recovered (answered within the next 24 hours: ``done`` that day, ``answered`` the
    next), sort them by time, and cut off and return those from ``midnight`` on."""
    for i, number, at in lost:
        later = (*done.get(number, ()), *answered.get(number, ()))
        recovered = int(any(at < when <= at + 86400 for when in later))
        rows[i] = (*rows[i][:_RECOVERED], recovered, *rows[i][_RECOVERED + 1 :])
    rows.sort(key=_TIME)
    cut = bisect_left(rows, midnight, key=_TIME)
    after = rows[cut:]
    del rows[cut:]
    return after


def _day(
    tables: Tables,
    rnd: Random,
    d: int,
    day: dt.date,
    emit: Emit,
    out: list[Row],
    pending: deque[int],
) -> list[Missed]:
    """Make the events of day ``d`` (``day``) in time order, their records appended to
    ``out`` by ``emit``; return its missed calls with customers."""
    rand, bits = rnd.random, rnd.getrandbits
    base, pool = d * 86400, tables.pool
    workday = day.weekday() < 5 and (day.month, day.day) not in HOLIDAYS
    hours = tables.workday_hours if workday else tables.offday_hours
    kinds_of, kinds, left = tables.kinds_of, [], tables.per_day[d]
    while left > 0:
        k = kinds_of[bits(10)]
        k = k if LEGS[k] <= left else 0
        kinds.append(k)
        left -= LEGS[k]
    times = sorted([hours[bits(12)] + int(rand() * 3600) for _ in kinds])
    missed: list[Missed] = []
    for k, t in zip(kinds, times, strict=True):
        if k == 5:
            _outbound(tables, rnd, emit, pending, t)
            continue
        if k == 6:
            _internal(tables, rnd, emit, t)
            continue
        c = pending.popleft() if pending and rand() < 0.3 else int(rand() * pool)
        ext = f"TCK-{bits(24)}" if rand() < 0.05 else None
        opened = workday and 28800 <= t < 64800
        idx, at = len(out), base + t  # where a missed call's record will be
        if k == 4:
            st = _reception(tables, rnd, emit, t, c, ext, opened)
        else:
            st = _queued(tables, rnd, emit, k, t, c, ext, opened)
        if st:
            missed.append((idx, tables.numbers[c], at))
            if rand() < 0.6:
                pending.append(c)
    return missed


def _outbound(tables: Tables, rnd: Random, emit: Emit, pending: deque[int], t: int) -> None:
    """An agent calls a customer out, sometimes calling back a missed caller."""
    rand, bits, rings = rnd.random, rnd.getrandbits, tables.rings
    agent = tables.callers[bits(8)]
    c = pending.popleft() if pending and rand() < 0.35 else int(rand() * tables.pool)
    st = tables.out_status[bits(10)]
    ring = (rings[bits(8)], 30 + bits(5), 2 + bits(3), bits(2), bits(2))[st]
    bill = tables.talk[bits(12)] if st == 0 else 0
    ext = f"CRM-{bits(24)}" if rand() < 0.2 else None
    emit(1, t, ring, bill, st, c, agent, tables.trunk_of[bits(4)], None, ext=ext)


def _internal(tables: Tables, rnd: Random, emit: Emit, t: int) -> None:
    """An agent calls another."""
    rand, bits, agents, rings = rnd.random, rnd.getrandbits, tables.agents, tables.rings
    a, b = agents[int(rand() * 40)], agents[int(rand() * 40)]
    b = agents[a[0] % 40] if a is b else b
    st = tables.int_status[bits(10)]
    ring = (rings[bits(8)], 15 + bits(4), 1, 0, 0)[st]
    bill = tables.talk[bits(12)] // 3 if st == 0 else 0
    emit(2, t, ring, bill, st, int(rand() < 0.2), a, b, None)


def _reception(
    tables: Tables, rnd: Random, emit: Emit, t: int, c: int, ext: str | None, opened: bool
) -> int:
    """Customer ``c`` dials reception directly; return the call's status index."""
    rand, bits, rings = rnd.random, rnd.getrandbits, tables.rings
    st = tables.direct_status[bits(10)] if opened else int(rand() > 0.1)
    ring = (rings[bits(8)], 20 + bits(4), bits(2), bits(2), bits(2))[st]
    bill = tables.talk[bits(12)] if st == 0 else 0
    emit(0, t, ring, bill, st, c, tables.agents[bits(1)], None, tables.reception, ext=ext)
    return st


def _queued(
    tables: Tables,
    rnd: Random,
    emit: Emit,
    k: int,
    t: int,
    c: int,
    ext: str | None,
    opened: bool,
) -> int:
    """Customer ``c`` calls through a queue (kind ``k``: 0 plain, 1 after an agent rings
    out, 2-3 transferred blind or attended); return the call's status index."""
    rand, bits, rings, talk = rnd.random, rnd.getrandbits, tables.rings, tables.talk
    route = tables.qroutes[bits(6)]
    members = route[4]
    ivr = tables.ivrs[bits(8)] if route[5] else 0
    st = 0 if k else tables.in_status[bits(10)] if opened else int(rand() > 0.08)
    agent: Any = members[int(rand() * len(members))] if st == 0 else None
    hold = tables.waits[bits(10)] if st == 0 else tables.abandons[bits(10)] if st == 1 else 0
    linked, seqno, xfers, other = None, 1, None, agent
    if k == 1:
        rang = members[int(rand() * len(members))]
        linked = emit(3, t, ivr + hold + 15, 0, 1, c, rang, None, route, hold, ivr)
        t, ivr, hold, seqno = t + ivr + hold + 15, 0, 0, 2
    elif k >= 2:
        other = tables.agents[(agent[0] + bits(3)) % 40]
        xfers = f"{('blind', 'attended')[k - 2]} {agent[1]} -> {other[1]}"
    ring = ivr + hold + (rings[bits(8)] if st == 0 else bits(2) * (st > 1))
    bill = talk[bits(12)] if st == 0 else 0
    first = emit(3, t, ring, bill, st, c, agent, None, route, hold, ivr, linked, seqno, xfers,
                 ext)  # fmt: skip
    if k >= 2:  # the transfer: a consultation call, then the customer
        t += ring + bill
        if k == 3:
            talk_c = min(bill // 2, 20 + bits(4))
            emit(2, t - talk_c - 1, 1, talk_c, 0, 0, agent, other, None, linked=first, seqno=2)
        st2 = int(rand() < 0.15)
        emit(4, t, rings[bits(8)] if k == 2 else 1, talk[bits(12)] * (1 - st2), st2, c, other,
             None, route, linked=first, seqno=k, xfers=xfers, ext=ext)  # fmt: skip
    return st


def _recorder(
    tables: Tables,
    rnd: Random,
    d: int,
    out: list[Row],
    answered: dict[str, list[int]],
    seqs: Iterator[int],
    chans: Iterator[int],
) -> Emit:
    """The ``emit`` of day ``d``: it appends a record to ``out`` (answered calls with a
    customer noted in ``answered``) and returns its uniqueid."""
    rand, bits = rnd.random, rnd.getrandbits
    ep, base = tables.epoch[d], d * 86400
    numbers, clids, crm, carrier = tables.numbers, tables.clids, tables.crm, tables.carrier
    hms, compact, prefix, slash, ymd = (
        tables.hms, tables.compact, tables.prefix, tables.slash, tables.ymd,
    )  # fmt: skip
    costs = tables.costs

    def emit(leg: int, t: int, ring: int, bill: int, st: int, c: int, agent: Any, other: Any,
             route: Any, hold: int = 0, ivr: int = 0, linked: str | None = None,
             seqno: int = 1, xfers: str | None = None, ext: str | None = None) -> str:  # fmt: skip
        """Append one record and return its uniqueid.

        ``c`` is the customer (for internal legs: whether to record), ``agent`` the agent
        (or None), ``other`` the trunk (outbound) or the called agent (internal).
        """
        seq = next(seqs)
        uid = f"{ep + t}.{seq}"
        day, s = (d, t) if t < 86400 else (d + 1, t - 86400)
        end = s + ring + bill
        qname = qlog = menu = details = did = route_id = route_name = None
        rec: str | None
        if leg == 1:
            kind, proj, clid, dst, cust, chan = 1, agent[4], agent[6], numbers[c], crm[c], agent[3]
            src, dchan, data, rec = proj[2], other, f"PJSIP/{dst}@{other[6:]},60,Tt", "out"
        elif leg == 2:
            kind, proj, clid, src, dst, cust = 2, agent[4], agent[7], agent[1], other[1], None
            chan, dchan, data, rec = agent[3], other[3], other[8], "internal" if c else None
        else:
            clid, src, cust, chan, proj = clids[c], numbers[c], crm[c], carrier[c], route[3]
            did, route_id, route_name = route[1], route[0], route[2]
            dchan, data = (agent[3], agent[8]) if agent else ("", "")
            if leg == 3:
                kind, dst, rec, qname, data, menu = 3, did, route[6], route[7], route[8], route[5]
                if agent is None:
                    qlog = f"ENTERQUEUE {qname}; ABANDON after {hold}s" if st == 1 else None
                elif st:
                    qlog = f"ENTERQUEUE {qname}; RINGNOANSWER {agent[1]}"
                    details = f"{agent[5]}: RINGNOANSWER"
                else:
                    qlog = f"ENTERQUEUE {qname}; CONNECT {agent[1]} after {hold}s"
                    details = agent[5]
            else:
                kind, dst, rec = 0, did if leg == 0 else agent[1], "in"
                details = agent[5] if leg == 4 else None
        rfile = rurl = tid = text = mfile = murl = comment = value = None
        if st == 0:
            if rec is not None and rand() < 0.9:
                rfile = f"{slash[day]}/{rec}-{dst}-{src}-{ymd[day]}-{compact[s]}-{uid}.wav"
                rurl = RECORDING_URL + rfile
                if rand() < 0.35:
                    tid, text = f"tr-{seq}", TEXTS[bits(3)]
                if rand() < 0.04:
                    mfile = f"ondemand/{slash[day]}/od-{uid}-1.wav"
                    murl = RECORDING_URL + mfile
            if rand() < 0.05:
                comment = COMMENTS[bits(3)]
            if kind == 1:
                value = costs[(bill + 59) // 60]
            if leg != 2:  # an answered call with a customer
                answered.setdefault(dst if kind == 1 else src, []).append(base + t)
        # fmt: off
        out.append((
            uid, linked or uid, seqno, prefix[day] + hms[s],
            prefix[day + end // 86400] + hms[end % 86400], clid, src, dst, DIRECTIONS[kind],
            f"{chan}-{next(chans):08x}", f"{dchan}-{next(chans):08x}" if dchan else "",
            CONTEXTS[leg], APPS[leg], data, "DOCUMENTATION", did, chan, dchan,
            cust, agent and agent[0], agent and agent[2], qname, CODES[kind], STATUSES[st],
            INFO[st][bits(2)], CALL_CODES[kind][st], proj[3], value, comment, mfile, murl,
            rfile, rurl, xfers, proj[0], proj[1], route_id, route_name, qlog, menu, ext,
            ext and "Tichet CRM", details, None, tid, text, bill, ring + bill, ivr, hold, ring,
        ))
        # fmt: on
        return uid

    return emit
